"""Same inputs and configuration give bit-identical outputs, whatever the thread count or
the input row order."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl

import invclose
from invclose.batched import close_batched
from tests.helpers import ACCOUNTS, tx

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, polars as pl, invclose
tx = invclose.read_transactions("sample_data/transactions.parquet", dimensions=["site"])
result = invclose.close(
    tx, "2025-01-31", dimensions=["site"], items=pl.read_csv("sample_data/items.csv"),
    accounts=pl.read_csv("sample_data/accounts.csv", infer_schema=False),
)
result.write(sys.argv[1])
"""


def _close_with_threads(threads: int, out: Path) -> invclose.CloseResult:
    env = {**os.environ, "POLARS_MAX_THREADS": str(threads), "NUMBA_NUM_THREADS": str(threads)}
    subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out)], cwd=ROOT, env=env, check=True, timeout=300
    )
    return invclose.read_result(out)


def test_one_and_two_threads_give_identical_tables(tmp_path: Path) -> None:
    one = _close_with_threads(1, tmp_path / "one")
    two = _close_with_threads(2, tmp_path / "two")
    assert one.close_id == two.close_id
    for name, table in one.tables().items():
        assert table.equals(two.tables()[name]), name
    # And the written files are byte-identical, table by table.
    for name in one.tables():
        a = (tmp_path / "one" / f"{name}.parquet").read_bytes()
        b = (tmp_path / "two" / f"{name}.parquet").read_bytes()
        assert a == b, name


def _many_groups(n_items: int) -> pl.DataFrame:
    """Per item, at sites S1 and S2: a receipt of 3 for 30.00 and an issue of 1 for -10.00."""
    items = [f"I{k:04d}" for k in range(n_items)]
    rows = [
        (f"{item}-{site}-{n}", item, site, qty, amount, n)
        for item in items
        for site in ("S1", "S2")
        for n, (qty, amount) in enumerate([("3", "30.00"), ("-1", "-10.00")])
    ]
    return pl.DataFrame(
        {
            "txn_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "site": [r[2] for r in rows],
            "date": [dt.date(2025, 1, 2 + r[5]) for r in rows],
            "qty": [Decimal(r[3]) for r in rows],
            "amount": [Decimal(r[4]) for r in rows],
        },
        schema_overrides={"qty": pl.Decimal(38, 6), "amount": pl.Decimal(38, 2)},
    )


def test_moving_average_on_hand_rows_come_in_one_order_whatever_the_input_order() -> None:
    # Each of the 600 groups keeps 2 units for 20.00 on hand: one on-hand row per group, in
    # item then site order, every time (they once came in hash-table order).
    frame = _many_groups(300)
    expected = [(f"I{k:04d}", site) for k in range(300) for site in ("S1", "S2")]
    for seed in range(4):
        shuffled = frame.sample(fraction=1.0, shuffle=True, seed=seed)
        result = invclose.close(
            shuffled, "2025-01-31", method="moving_average", dimensions=["site"], accounts=ACCOUNTS
        )
        on_hand = result.open_items
        assert on_hand.select("item_id", "site").rows() == expected
        assert on_hand["qty"].to_list() == [Decimal("2")] * 600
        assert on_hand["amount"].to_list() == [Decimal("20.00")] * 600


def test_findings_of_one_item_at_two_sites_are_ordered_by_site() -> None:
    # Negative on hand at both sites of every item: the log's rows differ only in the site
    # (no txn_id), and come site by site for each item, whatever the input order.
    frame = _many_groups(40).with_columns(qty=-pl.col("qty"), amount=-pl.col("amount"))
    for seed in range(3):
        shuffled = frame.sample(fraction=1.0, shuffle=True, seed=seed)
        log = invclose.close(
            shuffled, "2025-01-31", method="fifo", dimensions=["site"], accounts=ACCOUNTS
        ).log.filter(pl.col("code") == "negative_on_hand")
        assert log.select("item_id", "site").rows() == [
            (f"I{k:04d}", site) for k in range(40) for site in ("S1", "S2")
        ]


def _january_and_february() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Item A, fifo, by hand: receipts 2 @ 15.00 (30.00) on Jan 1 and 1 @ 21.00 on Jan 2; the
    sale of 2 on Jan 3, posted at -34.00 (the running average), settles the first receipt at
    30.00: cost_delta -4.00. February: a receipt of 1 @ 24.00 and a sale of 2 posted at
    -45.00 (the average 22.50), which settles 21.00 + 24.00 = 45.00: nothing to adjust."""
    january = tx(
        ("A1", "A", 1, 2, "30.00"),
        ("A2", "A", 2, 1, "21.00"),
        ("AS", "A", 3, -2, "-34.00"),
    )
    february = tx(
        ("A3", "A", dt.date(2025, 2, 3), 1, "24.00"),
        ("AS2", "A", dt.date(2025, 2, 4), -2, "-45.00"),
    ).with_columns(seq=pl.col("seq") + 3)
    return january, february


def test_rows_after_the_closing_date_leave_the_close_id_unchanged(tmp_path: Path) -> None:
    """A January close run on Feb 5, its input already holding February's rows, is the same
    close as one run on Jan 31: the same id, voucher ids and closed_by, because the close
    reads nothing dated after its closing date. So are the February closes that follow it,
    given the whole history or only the rows after January."""
    january, february = _january_and_february()
    jan31 = dt.date(2025, 1, 31)
    on_time = invclose.close(january, jan31, method="fifo", accounts=ACCOUNTS)
    late = invclose.close(pl.concat([january, february]), jan31, method="fifo", accounts=ACCOUNTS)
    assert on_time.adjustments["cost_delta"].to_list() == [Decimal("-4.00")]
    assert late.close_id == on_time.close_id
    assert late.vouchers["voucher_id"].to_list() == on_time.vouchers["voucher_id"].to_list()
    assert late.closed_items["closed_by"].to_list() == [on_time.close_id] * 2
    batched = close_batched(
        pl.concat([january, february]), jan31, tmp_path / "b", method="fifo", accounts=ACCOUNTS
    )
    assert batched.close_id == on_time.close_id

    feb28 = dt.date(2025, 2, 28)
    whole = pl.concat([january, february])
    second = invclose.close(whole, feb28, method="fifo", accounts=ACCOUNTS, opening=on_time)
    only_after = invclose.close(february, feb28, method="fifo", accounts=ACCOUNTS, opening=late)
    assert second.adjustments.is_empty()
    assert only_after.close_id == second.close_id
    assert set(second.closed_items["closed_by"]) == {on_time.close_id, second.close_id}
    assert only_after.closed_items.sort("txn_id").equals(second.closed_items.sort("txn_id"))


def test_a_later_order_receipt_counts_in_the_id_but_changes_no_table() -> None:
    """README decision: later receipts of orders count in the id (an output still to come
    keeps a component's change waiting), even of an order wholly after the closing date.
    February's production order PO2 (component A on Feb 3, output P on Feb 3) gives January's
    close a new id; the tables hold the same rows (AS settled at 30.00: cost_delta -4.00)."""
    january, _ = _january_and_february()
    jan31 = dt.date(2025, 1, 31)
    order = tx(
        ("C2", "A", dt.date(2025, 2, 3), -1, "-21.00"),
        ("P2", "P", dt.date(2025, 2, 3), 1, "21.00"),
        kind=["consumption", "production"],
        order_id=["PO2", "PO2"],
    ).with_columns(seq=pl.col("seq") + 3)
    on_time = invclose.close(january, jan31, method="fifo", accounts=ACCOUNTS)
    with_order = invclose.close(
        pl.concat([january, order], how="diagonal_relaxed"), jan31, method="fifo", accounts=ACCOUNTS
    )
    assert with_order.close_id != on_time.close_id
    assert with_order.adjustments["cost_delta"].to_list() == [Decimal("-4.00")]
    for table in ("settlements", "adjustments", "balances", "open_items", "log", "cost_flow"):
        mine = getattr(with_order, table).drop("close_id", strict=False)
        theirs = getattr(on_time, table).drop("close_id", strict=False)
        assert mine.equals(theirs), table
