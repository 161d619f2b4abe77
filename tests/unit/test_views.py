"""The auditor views of ``invclose.views``: every documented example, checked by hand.

The expected values come from the hand-calculated January close in ``sample_data/README.md``
(BOLT fifo at S1 and S2, PAINT lifo, GLUE lifo_date; vouchers 1400/5000 and 1410/5010).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

import invclose
from invclose.errors import InvcloseError
from invclose.notebook import close_months, month_ends
from invclose.views import VIEW_DOCS, register_views, views_markdown
from tests.helpers import ACCOUNTS, ORDER_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"
YEAR = SAMPLE / "year"
D = Decimal


@pytest.fixture(scope="module")
def sample_tx() -> pl.DataFrame:
    return invclose.read_transactions(SAMPLE / "transactions.parquet", dimensions=["site"])


@pytest.fixture(scope="module")
def sample(sample_tx: pl.DataFrame) -> invclose.CloseResult:
    return invclose.close(
        sample_tx,
        "2025-01-31",
        dimensions=["site"],
        items=pl.read_csv(SAMPLE / "items.csv"),
        accounts=pl.read_csv(SAMPLE / "accounts.csv", infer_schema=False),
    )


@pytest.fixture
def con(
    sample: invclose.CloseResult, sample_tx: pl.DataFrame
) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = register_views(None, sample, transactions=sample_tx)
    yield connection
    connection.close()


def expected(close_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """The hand-computed answer of every documented example query."""
    return {
        # FIFO after marking: S-003 <- 5 of P-001 (marking), S-001 <- 95 of P-001 + 55 of
        # P-002 (round(120.00 x 55/100) = 66.00), S-002 <- 40 of P-002 (114.00 - 66.00 = 48.00).
        "settlements": [
            ("S-001", "P-001", D("95.000000"), D("95.00"), "fifo"),
            ("S-001", "P-002", D("55.000000"), D("66.00"), "fifo"),
            ("S-002", "P-002", D("40.000000"), D("48.00"), "fifo"),
            ("S-003", "P-001", D("5.000000"), D("5.00"), "marking"),
        ],
        # BOLT -4.00 + 4.00 - 0.50; GLUE +5.00; PAINT +7.50 - 0.50.
        "adjustments": [("BOLT", D("-0.50")), ("GLUE", D("5.00")), ("PAINT", D("7.00"))],
        # S-201 costs 7.50 more: COGS 5010 debit, inventory 1410 credit.
        "vouchers": [("1410", D("0.00"), D("7.50")), ("5010", D("7.50"), D("0.00"))],
        "log": [
            ("warning", "insufficient_receipts", "S-101", D("10.000000")),
            ("warning", "negative_on_hand", None, D("-10.000000")),
        ],
        "balances": [
            ("BOLT", "S1", D("5.000000"), D("6.00")),
            ("BOLT", "S2", D("-10.000000"), D("-11.00")),
            ("GLUE", "S1", D("15.000000"), D("30.00")),
            ("PAINT", "S1", D("7.000000"), D("56.00")),
        ],
        # P-002 keeps 5 @ 1.20, P-003 is physical, P-201 7 @ 8.00, P-301 15 @ 2.00, and
        # S-101's 10 unsettled units keep 44.00 - round(44.00 x 30/40) = 11.00.
        "open_items": [
            ("P-002", D("5.000000"), D("6.00")),
            ("P-003", D("50.000000"), D("65.00")),
            ("P-201", D("7.000000"), D("56.00")),
            ("P-301", D("15.000000"), D("30.00")),
            ("S-101", D("-10.000000"), D("-11.00")),
        ],
        # 16 rows dated in January, 11 closed: all but the five open items.
        "closed_items": [(11,)],
        "cost_flow": [
            ("P-001", D("95.000000"), D("95.00"), "settlement"),
            ("P-002", D("55.000000"), D("66.00"), "settlement"),
        ],
        "unsettled": [("S-101", "insufficient_receipts", D("10.000000"))],
        "gl_by_account": [
            ("1400", D("4.50"), D("4.00"), D("0.50")),
            ("1410", D("0.50"), D("12.50"), D("-12.00")),
            ("5000", D("4.00"), D("4.50"), D("-0.50")),
            ("5010", D("12.50"), D("0.50"), D("12.00")),
        ],
        "reconciliation": [
            ("1400", D("0.50"), D("0.50"), D("0.00")),
            ("1410", D("-12.00"), D("-12.00"), D("0.00")),
        ],
        "all_adjustments": [(close_id, 6, D("11.50"))],
        "transactions": [("financial", 16), ("physical", 1)],
        # On the 15th nothing is adjusted yet in the ledger (adjustments are dated the 31st):
        # BOLT S1 100.00 + 120.00 - 165.00 = 55.00, at settled cost 55.00 + 4.00 = 59.00;
        # BOLT S2 33.00 - 44.00; GLUE 40.00 + 50.00 - 20.00 = 70.00, settled 70.00 - 5.00;
        # PAINT 80.00 - 40.00 = 40.00, settled 40.00 - 7.50.
        "inventory_value(as_of)": [
            ("BOLT", "S1", D("50.000000"), D("55.00"), D("59.00")),
            ("BOLT", "S2", D("-10.000000"), D("-11.00"), D("-11.00")),
            ("GLUE", "S1", D("30.000000"), D("70.00"), D("65.00")),
            ("PAINT", "S1", D("5.000000"), D("40.00"), D("32.50")),
        ],
        "lineage(txn_id)": [("S-001", 0), ("P-001", 1), ("P-002", 1)],
    }


def test_every_documented_view_has_a_checked_example(sample: invclose.CloseResult) -> None:
    assert [doc.name for doc in VIEW_DOCS] == list(expected(sample.close_id))


@pytest.mark.parametrize("doc", VIEW_DOCS, ids=[doc.name for doc in VIEW_DOCS])
def test_documented_example(
    doc: Any, con: duckdb.DuckDBPyConnection, sample: invclose.CloseResult
) -> None:
    assert con.sql(doc.example).fetchall() == expected(sample.close_id)[doc.name]


def test_views_without_transactions_skip_only_the_transaction_views(
    sample: invclose.CloseResult,
) -> None:
    con = register_views(duckdb.connect(), sample)
    for doc in VIEW_DOCS:
        if doc.needs_transactions:
            with pytest.raises(duckdb.Error):
                con.sql(doc.example).fetchall()
        else:
            assert con.sql(doc.example).fetchall() == expected(sample.close_id)[doc.name]


def test_inventory_value_on_the_closing_date_is_the_balances(
    con: duckdb.DuckDBPyConnection, sample: invclose.CloseResult
) -> None:
    rebuilt = con.sql(
        "select item_id, site, qty, value, settled_value, physical_qty, physical_value "
        "from inventory_value(DATE '2025-01-31')"
    ).fetchall()
    balances = sample.balances.sort("item_id", "site").select(
        "item_id",
        "site",
        "qty",
        "value",
        pl.col("value").alias("settled_value"),  # on the closing date nothing is pending
        "physical_qty",
        "physical_value",
    )
    assert rebuilt == balances.rows()


def test_inventory_value_follows_an_invoice_pair(
    sample: invclose.CloseResult, sample_tx: pl.DataFrame
) -> None:
    # P-003 (50 BOLT at S1, physically 65.00 on 20 January) is invoiced on 5 February at 66.00.
    invoice = sample_tx.filter(pl.col("txn_id") == "P-003").with_columns(
        status=pl.lit("financial"),
        date=pl.lit(dt.date(2025, 2, 5)),
        amount=pl.lit(D("66.00")).cast(pl.Decimal(38, 2)),
        seq=pl.lit(18, dtype=pl.Int64),
    )
    con = register_views(None, sample, transactions=pl.concat([sample_tx, invoice]))
    query = (
        "select qty, value, physical_qty, physical_value from inventory_value(?) "
        "where item_id = 'BOLT' and site = 'S1'"
    )
    # 31 January: 5 units at 6.00 on hand, P-003 still physical.
    assert con.execute(query, ["2025-01-31"]).fetchall() == [
        (D("5.000000"), D("6.00"), D("50.000000"), D("65.00"))
    ]
    # 10 February: S-004 (3 Feb) took 5 units posted at 6.00, the invoice brought 50 at 66.00.
    assert con.execute(query, ["2025-02-10"]).fetchall() == [
        (D("50.000000"), D("66.00"), D("0.000000"), D("0.00"))
    ]


def test_lineage_walks_a_two_level_production_back_to_the_purchase() -> None:
    rows = [
        # txn, item, day, qty, amount, kind, order
        ("P1", "RAW", 1, "10", "20.00", "purchase", None),
        ("C1", "RAW", 2, "-10", "-20.00", "consumption", "M1"),
        ("O1", "SEMI", 2, "2", "20.00", "production", "M1"),
        ("C2", "SEMI", 3, "-2", "-20.00", "consumption", "M2"),
        ("O2", "FG", 3, "1", "20.00", "production", "M2"),
        ("S1", "FG", 4, "-1", "-20.00", "sale", None),
    ]
    frame = pl.DataFrame(
        [
            {
                "txn_id": t,
                "item_id": i,
                "date": dt.date(2025, 1, d),
                "qty": D(q),
                "amount": D(a),
                "seq": n,
                "kind": k,
                "order_id": o,
            }
            for n, (t, i, d, q, a, k, o) in enumerate(rows)
        ],
        schema={
            "txn_id": pl.String,
            "item_id": pl.String,
            "date": pl.Date,
            "qty": pl.Decimal(38, 6),
            "amount": pl.Decimal(38, 2),
            "seq": pl.Int64,
            "kind": pl.String,
            "order_id": pl.String,
        },
    )
    result = invclose.close(frame, "2025-01-31", accounts=ACCOUNTS)
    con = register_views(None, result, transactions=frame)
    assert con.sql("select * from lineage('S1')").fetchall() == [
        ("S1", 0),
        ("O2", 1),
        ("C2", 2),
        ("O1", 3),
        ("C1", 4),
        ("P1", 5),
    ]


def test_inventory_value_across_a_chain_of_monthly_closes() -> None:
    year = pl.read_parquet(YEAR / "transactions.parquet")
    results = close_months(
        year,
        month_ends(2025, [1, 2, 3]),
        dimensions=["site"],
        items=pl.read_csv(YEAR / "items.csv"),
        accounts=pl.read_csv(YEAR / "accounts.csv", infer_schema=False),
    )
    for n, result in enumerate(results):
        con = register_views(None, result, transactions=year, earlier=results[:n])
        rebuilt = con.execute(
            "select item_id, site, qty, value from inventory_value(?)", [result.closing_date]
        ).fetchall()
        balances = result.balances.sort("item_id", "site").select("item_id", "site", "qty", "value")
        assert rebuilt == balances.rows(), result.closing_date
    # Without the earlier closes' adjustments, March's value is off by exactly their sum.
    con = register_views(None, results[2], transactions=year)
    partial = con.sql("select sum(value) from inventory_value('2025-03-31')").fetchall()[0][0]
    earlier = sum(r.adjustments["adjustment"].sum() for r in results[:2])
    assert partial + earlier == results[2].balances["value"].sum()


def test_register_views_refuses_float_money(
    sample: invclose.CloseResult, sample_tx: pl.DataFrame
) -> None:
    floats = sample_tx.with_columns(pl.col("amount").cast(pl.Float64))
    with pytest.raises(InvcloseError, match="binary floats"):
        register_views(None, sample, transactions=floats)


def test_register_views_refuses_rows_without_an_amount(
    sample: invclose.CloseResult, sample_tx: pl.DataFrame
) -> None:
    # inventory_value sums posted amounts; SQL's SUM skipped the nulls of an extract whose
    # issues were costed at posting, and the view returned values above the balances
    # (review 58). Every row without an amount is named.
    blank = sample_tx.with_columns(
        amount=pl.when(pl.col("qty") < 0).then(None).otherwise(pl.col("amount"))
    )
    issues = sample_tx.filter(pl.col("qty") < 0)["txn_id"].to_list()
    with pytest.raises(invclose.InputValidationError, match="have no amount") as refused:
        register_views(None, sample, transactions=blank)
    failures = refused.value.failures
    assert failures is not None
    assert sorted(failures["txn_id"].to_list()) == sorted(issues)
    assert set(failures["check"]) == {"amount_missing"}


def test_register_views_reads_a_path(sample: invclose.CloseResult) -> None:
    con = register_views(None, sample, transactions=SAMPLE / "transactions.csv")
    assert con.sql("select count(*) from transactions").fetchall() == [(17,)]


def test_register_views_refuses_a_chain_with_other_dimensions(
    sample: invclose.CloseResult, sample_tx: pl.DataFrame
) -> None:
    other = invclose.close(sample_tx.drop("site"), "2025-01-31", accounts=ACCOUNTS)
    with pytest.raises(InvcloseError, match="dimensions"):
        register_views(None, sample, earlier=[other])


def test_views_markdown_has_one_row_per_view() -> None:
    table = views_markdown().splitlines()
    assert table[0].startswith("| view |")
    assert len(table) == 2 + len(VIEW_DOCS)
    for doc, line in zip(VIEW_DOCS, table[2:], strict=True):
        assert line.startswith(f"| `{doc.name}` |")


def test_the_readme_shows_the_views_table_as_the_module_renders_it() -> None:
    # The README's table is views_markdown() pasted: a description changed on one side only
    # (the unsettled view's, once) shows here.
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert views_markdown() in readme


def test_lineage_walks_a_long_chain_of_transfers_to_its_end() -> None:
    # One lot of 10 bought at S0 (P1) moves S0 -> S1 -> S0 ... through 60 transfer orders,
    # then is sold at S0. Each move adds two edges (receipt <- shipment <- the receipt before),
    # so the sale's lineage reaches P1 at depth 2 * 60 + 1 = 121, every one of the 122 rows
    # once. A depth cap of 100 used to end the walk at X9 with no word.
    rows = [("P1", "S0", "10", "100.00", "purchase", None)]
    for k in range(60):
        rows += [
            (f"X{k}", f"S{k % 2}", "-10", "-100.00", "transfer", f"O{k}"),
            (f"Y{k}", f"S{(k + 1) % 2}", "10", "100.00", "transfer", f"O{k}"),
        ]
    rows.append(("SALE", "S0", "-10", "-100.00", "sale", None))
    frame = pl.DataFrame(
        [
            {
                "txn_id": t,
                "item_id": "A",
                "site": s,
                "date": dt.date(2025, 1, 2),
                "qty": D(q),
                "amount": D(a),
                "seq": n,
                "kind": k,
                "order_id": o,
            }
            for n, (t, s, q, a, k, o) in enumerate(rows)
        ],
        schema=ORDER_SCHEMA,
    )
    accounts = ACCOUNTS.vstack(ACCOUNTS.head(1).with_columns(kind=pl.lit("transfer")))
    result = invclose.close(frame, "2025-01-31", dimensions=["site"], accounts=accounts)
    walk = register_views(None, result).sql("select * from lineage('SALE')").fetchall()
    assert len(walk) == 122
    assert walk[0] == ("SALE", 0)
    assert walk[-1] == ("P1", 121)
    assert sorted(t for t, _ in walk) == sorted(t for t, *_ in rows)


def test_a_results_own_sql_walks_the_lineage(sample: invclose.CloseResult) -> None:
    # S-001 (BOLT S1, 120 sold) is costed FIFO from P-001 and P-002 (sample_data/README.md):
    # the macro needs only cost_flow, so result.sql has it too.
    walk = sample.sql("select txn_id, depth from lineage('S-001')")
    assert walk.rows() == [("S-001", 0), ("P-001", 1), ("P-002", 1)]


@pytest.mark.parametrize(
    ("query", "needs"),
    [
        (
            "select * from inventory_value('2025-01-15')",
            "inventory_value(as_of) needs the transactions",
        ),
        ("select count(*) from transactions", "transactions needs the transactions"),
        ("select * from all_adjustments", "all_adjustments needs the adjustments of earlier"),
    ],
)
def test_a_view_only_register_views_makes_is_named_with_the_fix(
    sample: invclose.CloseResult, query: str, needs: str
) -> None:
    with pytest.raises(InvcloseError, match="SQL query failed") as caught:
        sample.sql(query)
    assert needs in str(caught.value)
    assert "invclose.views.register_views(con, result" in str(caught.value)
