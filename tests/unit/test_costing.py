"""Posting-time costing (contract §2, close-semantics §1.3, §3.7, §3.8), hand-calculated."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

import invclose
from tests.helpers import ACCOUNTS, D, day, tx


def costed_row(frame: pl.DataFrame, txn: str) -> tuple[object, object]:
    row = frame.filter(pl.col("txn_id") == txn).row(0, named=True)
    return row["amount"], row["variance"]


def with_null(frame: pl.DataFrame, *txns: str) -> pl.DataFrame:
    return frame.with_columns(
        amount=pl.when(pl.col("txn_id").is_in(list(txns))).then(None).otherwise(pl.col("amount"))
    )


def test_running_average_fills_only_missing_amounts() -> None:
    # 2 @ 10.00 + 3 @ 12.00 = 56.00 for 5 -> an issue of 2 posts round(56.00 * 2 / 5) = 22.40.
    # The given issue amount (-30.00) is kept: the close corrects it later.
    frame = with_null(
        tx(
            ("R1", "A", 1, 2, "20.00"),
            ("R2", "A", 2, 3, "36.00"),
            ("S1", "A", 3, -2, "0"),
            ("S2", "A", 4, -1, "-30.00"),
        ),
        "S1",
    )
    costed = invclose.post_costs(frame)
    assert costed_row(costed, "S1") == (D("-22.40"), D("0.00"))
    assert costed_row(costed, "S2") == (D("-30.00"), D("0.00"))


def test_standard_cost_posts_every_row_and_splits_the_variance() -> None:
    # Standard 5.00 from the start, 6.00 from 15 January.
    items = pl.DataFrame(
        {
            "item_id": ["A", "A"],
            "method": ["standard", "standard"],
            "standard_cost": ["5.00", "6.00"],
            "valid_from": [None, dt.date(2025, 1, 15)],
        }
    )
    frame = with_null(
        tx(("R1", "A", 1, 10, "55.00"), ("S1", "A", 3, -4, "0"), ("S2", "A", 20, -1, "0")),
        "S1",
        "S2",
    )
    costed = invclose.post_costs(frame, items=items)
    # Receipt at standard 50.00; the 5.00 it was invoiced above that is purchase price variance.
    assert costed_row(costed, "R1") == (D("50.00"), D("5.00"))
    assert costed_row(costed, "S1") == (D("-20.00"), D("0.00"))
    # From 15 January the new standard applies.
    assert costed_row(costed, "S2") == (D("-6.00"), D("0.00"))
    # On-hand before 15 January: 10 - 4 = 6 units, revalued by +1.00 each = 6.00.
    reval = costed.filter(pl.col("kind") == "revaluation").row(0, named=True)
    assert (reval["txn_id"], reval["date"], reval["qty"], reval["amount"]) == (
        "REVAL:2025-01-15:A:",
        dt.date(2025, 1, 15),
        D(0),
        D("6.00"),
    )


def test_standard_item_without_a_standard_cost_is_an_error_naming_it() -> None:
    items = pl.DataFrame({"item_id": ["A", "B"], "method": ["standard", "fifo"]})
    frame = tx(("R1", "A", 1, 1, "5.00"), ("R2", "B", 1, 1, "5.00"))
    with pytest.raises(invclose.InputValidationError, match="standard cost") as err:
        invclose.post_costs(frame, items=items)
    assert ": A." in str(err.value)


def test_moving_average_issue_at_current_average_and_crossing_zero() -> None:
    items = pl.DataFrame({"item_id": ["A"], "method": ["moving_average"]})
    frame = with_null(
        tx(
            ("R1", "A", 1, 2, "20.00"),  # on hand 2 @ 10.00
            ("S1", "A", 2, -4, "0"),  # issue 4 at the average 10.00 -> -40.00; on hand -2, -20.00
            (
                "R2",
                "A",
                3,
                5,
                "60.00",
            ),  # crosses zero: 2 at the average (20.00) + 3 at 12.00 (36.00)
            ("S2", "A", 4, -1, "0"),  # on hand 3 @ 36.00 -> 12.00 each
        ),
        "S1",
        "S2",
    )
    costed = invclose.post_costs(frame, items=items)
    assert costed_row(costed, "S1") == (D("-40.00"), D("0.00"))
    # 60.00 given, 56.00 enters inventory, 4.00 goes to price difference.
    assert costed_row(costed, "R2") == (D("56.00"), D("4.00"))
    assert costed_row(costed, "S2") == (D("-12.00"), D("0.00"))


def test_moving_average_invoice_capitalises_only_what_is_on_hand() -> None:
    # Received 2 at 10.00 (physical), sold 1, invoiced at 12.00 each (24.00): of the 4.00
    # difference, the share on hand (1 of 2) is capitalised (2.00) and 2.00 is expensed.
    items = pl.DataFrame({"item_id": ["A"], "method": ["moving_average"]})
    jan = tx(("P1", "A", 1, 2, "20.00", "physical"), ("S1", "A", 2, -1, "-10.00"))
    closed = invclose.close(jan, day(31), items=items, accounts=ACCOUNTS)
    invoice = tx(("P1", "A", dt.date(2025, 2, 3), 2, "24.00"))
    costed = invclose.post_costs(invoice, items=items, opening=closed)
    assert costed_row(costed, "P1") == (D("22.00"), D("2.00"))


def test_moving_average_invoice_of_a_physical_issue_keeps_the_cost_it_left_at() -> None:
    # R1 receives 10 for 100.00; I1 ships 4 physically at the average 10.00 (-40.00), then
    # is invoiced: an issue's invoice keeps the cost it left at (§3.8), -40.00 (it posted
    # 0.00: the pro-rata part was divided by the physical issue's negative quantity).
    items = pl.DataFrame({"item_id": ["A"], "method": ["moving_average"]})
    frame = with_null(
        tx(
            ("R1", "A", 2, 10, "100.00"),
            ("I1", "A", 2, -4, "0", "physical"),
            ("I1", "A", 3, -4, "0"),
        ),
        "I1",
    )
    costed = invclose.post_costs(frame, items=items)
    rows = costed.select("txn_id", "status", "amount", "variance").rows()
    assert rows == [
        ("R1", "financial", D("100.00"), D("0.00")),
        ("I1", "physical", D("-40.00"), D("0.00")),
        ("I1", "financial", D("-40.00"), D("0.00")),
    ]


def test_moving_average_invoice_of_a_receipt_that_crossed_zero_keeps_the_gap_in_variance() -> None:
    # R1 1 @ 10.00; S1 sells 2 at the average: -20.00, leaving -1 unit at -10.00. P (2 units,
    # price 8.00) is received physically and crosses zero (§3.8): 1 unit at the average
    # (10.00) + 1 unit at its own cost (4.00) = 14.00 into stock, variance 8.00 - 14.00 =
    # -6.00 (the gap of negative stock). On hand: 1 unit for 4.00. P is invoiced at its own
    # price, 8.00 for 2: its price difference is 8.00 - 8.00 = 0, so it posts what the
    # physical row put in (14.00) with no variance, on hand stays 4.00 and S2 = -4.00. The
    # -6.00 gap stays in variance (it was measured against the 14.00 posted once, giving
    # -6.00 of which half was capitalised: an invoice of 11.00 and S2 at -1.00).
    items = pl.DataFrame({"item_id": ["M"], "method": ["moving_average"]})
    frame = with_null(
        tx(
            ("R1", "M", 1, 1, "10.00"),
            ("S1", "M", 2, -2, "0"),
            ("P", "M", 3, 2, "8.00", "physical"),
            ("P", "M", 4, 2, "8.00"),
            ("S2", "M", 5, -1, "0"),
        ),
        "S1",
        "S2",
    )
    costed = invclose.post_costs(frame, items=items)
    assert costed.select("txn_id", "status", "amount", "variance").rows() == [
        ("R1", "financial", D("10.00"), D("0.00")),
        ("S1", "financial", D("-20.00"), D("0.00")),
        ("P", "physical", D("14.00"), D("-6.00")),
        ("P", "financial", D("14.00"), D("0.00")),
        ("S2", "financial", D("-4.00"), D("0.00")),
    ]
    # Posted before (as Ledger.post replays it): the physical row's amount (14.00) with the
    # variance it posted (-6.00) gives back its price, 8.00; the invoice is the same.
    posted = invclose.post_costs(frame.head(3), items=items)
    again = invclose.post_costs(frame.tail(2), items=items, posted=posted)
    assert again.select("txn_id", "amount", "variance").rows() == [
        ("P", D("14.00"), D("0.00")),
        ("S2", D("-4.00"), D("0.00")),
    ]
    # An invoice at 10.00 (1.00 more per unit): the 2.00 difference to the price is
    # capitalised for the 1 unit on hand (1.00) and 1.00 is variance: 15.00, S2 = -5.00.
    dearer = frame.with_columns(
        amount=pl.when((pl.col("txn_id") == "P") & (pl.col("status") == "financial"))
        .then(pl.lit(D("10.00")))
        .otherwise(pl.col("amount"))
    )
    costed = invclose.post_costs(dearer, items=items)
    assert costed_row(costed.filter(pl.col("status") == "financial"), "P") == (
        D("15.00"),
        D("1.00"),
    )
    assert costed_row(costed, "S2") == (D("-5.00"), D("0.00"))


def test_moving_average_revaluation_changes_the_average() -> None:
    items = pl.DataFrame({"item_id": ["A"], "method": ["moving_average"]})
    frame = with_null(
        tx(("R1", "A", 1, 4, "40.00"), ("RV", "A", 2, 0, "8.00"), ("S1", "A", 3, -1, "0")),
        "S1",
    ).with_columns(kind=pl.when(pl.col("txn_id") == "RV").then(pl.lit("revaluation")))
    costed = invclose.post_costs(frame, items=items)
    # 48.00 for 4 units after the revaluation: 12.00 each.
    assert costed_row(costed, "S1") == (D("-12.00"), D("0.00"))


def test_close_of_standard_and_moving_average_items_settles_nothing() -> None:
    items = pl.DataFrame(
        {
            "item_id": ["S", "M"],
            "method": ["standard", "moving_average"],
            "standard_cost": ["5.00", None],
        }
    )
    frame = tx(
        ("SR", "S", 1, 4, "20.00"),
        ("SI", "S", 2, -1, "-5.00", "financial", "SR"),
        ("MR", "M", 1, 3, "30.00"),
        ("MI", "M", 2, -1, "-10.00"),
        ("MP", "M", 3, 1, "11.00", "physical"),
    )
    result = invclose.close(frame, day(31), items=items, accounts=ACCOUNTS)
    assert result.settlements.is_empty()
    assert result.adjustments.is_empty()
    # Financial rows are closed; each group carries one on-hand row; physical rows stay open.
    assert {"SR", "SI", "MR", "MI"} <= set(result.closed_items["txn_id"])
    onhand = result.open_items.filter(pl.col("is_virtual")).select(
        "txn_id", "open_qty", "open_value"
    )
    assert sorted(onhand.rows()) == [
        ("~onhand:2025-01-31:M:", D(2), D("20.00")),
        ("~onhand:2025-01-31:S:", D(3), D("15.00")),
    ]
    assert "MP" in set(result.open_items["txn_id"])
    assert result.log.select("level", "code", "txn_id").rows() == [
        ("info", "marking_ignored", "SI")
    ]
    balances = dict(result.balances.select("item_id", "value").rows())
    assert balances == {"M": D("20.00"), "S": D("15.00")}


def test_next_close_rolls_the_onhand_row_forward() -> None:
    items = pl.DataFrame({"item_id": ["M"], "method": ["moving_average"]})
    jan_rows = tx(("MR", "M", 1, 3, "30.00"), ("MI", "M", 2, -1, "-10.00"))
    jan = invclose.close(jan_rows, day(31), items=items, accounts=ACCOUNTS)
    feb_rows = pl.concat(
        [
            jan_rows,
            tx(("MF", "M", dt.date(2025, 2, 2), -1, "-10.00")).with_columns(
                seq=pl.lit(9, pl.Int64)
            ),
        ]
    )
    feb = invclose.close(
        feb_rows, dt.date(2025, 2, 28), items=items, accounts=ACCOUNTS, opening=jan
    )
    assert "~onhand:2025-01-31:M:" in set(feb.closed_items["txn_id"])
    assert feb.open_items.select("txn_id", "open_qty", "open_value").rows() == [
        ("~onhand:2025-02-28:M:", D(1), D("10.00"))
    ]


def test_revaluation_row_on_a_periodic_item_is_rejected() -> None:
    frame = tx(("R1", "A", 1, 1, "10.00"), ("RV", "A", 2, 0, "5.00")).with_columns(
        kind=pl.when(pl.col("txn_id") == "RV").then(pl.lit("revaluation"))
    )
    with pytest.raises(invclose.InputValidationError, match="RV"):
        invclose.close(frame, day(31), accounts=ACCOUNTS)


def test_a_periodic_revaluation_is_named_beside_the_other_failures() -> None:
    # RV revalues FIFO item A (refused once the rows are valid) and R1 is repeated (invalid):
    # one error names both, where RV was named only after R1's correction. Item S is
    # standard (items table): its revaluation RS is allowed and not named.
    frame = tx(
        ("R1", "A", 1, 1, "10.00"),
        ("R1", "A", 2, 1, "10.00"),
        ("RV", "A", 2, 0, "5.00"),
        ("RS", "S", 2, 0, "5.00"),
    ).with_columns(kind=pl.when(pl.col("txn_id").is_in(["RV", "RS"])).then(pl.lit("revaluation")))
    items = pl.DataFrame({"item_id": ["S"], "method": ["standard"]})
    with pytest.raises(invclose.InputValidationError) as err:
        invclose.close(frame, day(31), accounts=ACCOUNTS, items=items)
    failures = err.value.failures
    assert failures is not None
    assert sorted(failures.select("txn_id", "check").rows()) == [
        ("R1", "txn_id_duplicate"),
        ("R1", "txn_id_duplicate"),
        ("RV", "revaluation_periodic"),
    ]
    assert "RV (item A, fifo)" in str(err.value)


def _rows(*rows: tuple[str, dt.date, str, str | None, str]) -> pl.DataFrame:
    """Rows of item A as (txn_id, date, qty, amount or None, status); seq = row order."""
    return pl.DataFrame(
        {
            "txn_id": [r[0] for r in rows],
            "item_id": ["A"] * len(rows),
            "date": [r[1] for r in rows],
            "qty": [D(r[2]) for r in rows],
            "amount": [None if r[3] is None else D(r[3]) for r in rows],
            "status": [r[4] for r in rows],
            "seq": list(range(len(rows))),
        },
        schema_overrides={"amount": pl.Decimal(38, 2)},
    )


def _amounts(frame: pl.DataFrame) -> list[tuple[object, ...]]:
    return frame.select("txn_id", "status", "amount", "variance").rows()


@pytest.mark.parametrize(
    ("method", "physical", "expected"),
    [
        # Moving average (on-hand counts physical rows, §3.8): P1 puts 2 @ 20.00 on hand;
        # S1 leaves at 20.00 / 2 = 10.00 (1 left, 10.00). The invoice (24.00) is 4.00 above
        # P1's 20.00; 1 of its 2 units is still on hand, so 4.00 * 1/2 = 2.00 is capitalised
        # (P1 posts 20.00 + 2.00 = 22.00) and 2.00 is variance. On hand: 1 unit, 10.00 + 2.00
        # = 12.00, so S2 leaves at 12.00.
        (
            "moving_average",
            False,
            [
                ("P1", "physical", D("20.00"), D("0.00")),
                ("S1", "financial", D("-10.00"), D("0.00")),
                ("P1", "financial", D("22.00"), D("2.00")),
                ("S2", "financial", D("-12.00"), D("0.00")),
            ],
        ),
        # fifo with physical value (§1.3): S1 at (0 + 20.00) / (0 + 2) = 10.00, leaving
        # financial -1 / -10.00 and physical 2 / 20.00. The invoice replaces P1: physical
        # 0 / 0.00, financial 1 / 14.00 (-10.00 + 24.00), so S2 takes 14.00.
        (
            "fifo",
            True,
            [
                ("P1", "physical", D("20.00"), D("0.00")),
                ("S1", "financial", D("-10.00"), D("0.00")),
                ("P1", "financial", D("24.00"), D("0.00")),
                ("S2", "financial", D("-14.00"), D("0.00")),
            ],
        ),
    ],
)
def test_invoice_in_the_same_frame_follows_its_physical_row(
    method: str, physical: bool, expected: list[tuple[object, ...]]
) -> None:
    # Default cost 5.00 would show if S1 did not see P1 on hand.
    items = pl.DataFrame(
        {
            "item_id": ["A"],
            "method": [method],
            "include_physical_value": [physical],
            "default_cost": ["5.00"],
        }
    )
    frame = _rows(
        ("P1", day(1), "2", "20.00", "physical"),
        ("S1", day(2), "-1", None, "financial"),
        ("P1", day(3), "2", "24.00", "financial"),
        ("S2", day(4), "-1", None, "financial"),
    )
    assert _amounts(invclose.post_costs(frame, items=items)) == expected


def test_invoice_before_its_physical_row_is_refused() -> None:
    frame = _rows(
        ("P1", day(3), "2", "24.00", "financial"),
        ("P1", day(1), "2", "20.00", "physical"),
    )
    with pytest.raises(invclose.InputValidationError, match="P1") as err:
        invclose.post_costs(frame)
    assert err.value.failures is not None
    assert err.value.failures["check"].to_list() == ["invoice_before_physical"]


@pytest.mark.parametrize(
    ("method", "physical"), [("fifo", True), ("fifo", False), ("moving_average", False)]
)
def test_invoice_of_an_opening_physical_row_replaces_it(method: str, physical: bool) -> None:
    items = pl.DataFrame(
        {"item_id": ["A"], "method": [method], "include_physical_value": [physical]}
    )
    jan = _rows(("P1", day(5), "2", "20.00", "physical"))
    opening = invclose.close(jan, day(31), items=items, accounts=ACCOUNTS)
    feb = _rows(
        ("P1", dt.date(2025, 2, 2), "2", "24.00", "financial"),
        ("S1", dt.date(2025, 2, 3), "-1", None, "financial"),
    )
    costed = invclose.post_costs(feb, items=items, opening=opening)
    # The invoice replaces the physical 2 @ 20.00: on hand 2 units, 24.00 (not 4 units,
    # 44.00), so S1 leaves at 12.00 whether physical stock counts or not. (Moving average:
    # all 2 invoiced units are on hand, the 4.00 difference is capitalised in full.)
    assert _amounts(costed) == [
        ("P1", "financial", D("24.00"), D("0.00")),
        ("S1", "financial", D("-12.00"), D("0.00")),
    ]


@pytest.mark.parametrize(
    ("method", "physical", "issue"),
    [
        # Counting physical stock: financial 1 @ 12.00 + physical rest 1 @ 10.00 = 22.00 / 2.
        ("fifo", True, D("-11.00")),
        ("moving_average", False, D("-11.00")),
        # Financial stock only: 1 @ 12.00.
        ("fifo", False, D("-12.00")),
    ],
)
def test_partial_invoice_of_an_opening_physical_row(method: str, physical: bool, issue: D) -> None:
    items = pl.DataFrame(
        {"item_id": ["A"], "method": [method], "include_physical_value": [physical]}
    )
    jan = _rows(("P1", day(5), "2", "20.00", "physical"))
    opening = invclose.close(jan, day(31), items=items, accounts=ACCOUNTS)
    # 1 of the 2 units is invoiced at 12.00; the rest stays physical as P1b at 10.00.
    # Moving average: the invoiced unit's physical value is 20.00 * 1/2 = 10.00, so its
    # 2.00 difference is on hand (2 units on hand >= 1 invoiced) and capitalised in full.
    feb = _rows(
        ("P1", dt.date(2025, 2, 2), "1", "12.00", "financial"),
        ("P1b", dt.date(2025, 2, 2), "1", "10.00", "physical"),
        ("S1", dt.date(2025, 2, 3), "-1", None, "financial"),
    )
    costed = invclose.post_costs(feb, items=items, opening=opening)
    assert _amounts(costed) == [
        ("P1", "financial", D("12.00"), D("0.00")),
        ("P1b", "physical", D("10.00"), D("0.00")),
        ("S1", "financial", issue, D("0.00")),
    ]


_DATED_STANDARD = pl.DataFrame(
    {
        "item_id": ["A", "A"],
        "method": ["standard", "standard"],
        "standard_cost": ["10.00", "12.00"],
        "valid_from": [None, dt.date(2025, 2, 1)],
    }
)


def test_standard_revaluation_of_the_onhand_carried_in_the_opening() -> None:
    jan_rows = _rows(
        ("R1", day(5), "5", None, "financial"), ("S1", day(6), "-1", None, "financial")
    )
    jan_costed = invclose.post_costs(jan_rows, items=_DATED_STANDARD)
    # January alone: the February cost change is not active by its last date (6 January),
    # so no revaluation yet (the run that reaches 1 February makes it).
    assert jan_costed.filter(pl.col("kind") == "revaluation").is_empty()
    jan = invclose.close(jan_costed, day(31), items=_DATED_STANDARD, accounts=ACCOUNTS)
    feb_rows = _rows(
        ("R2", dt.date(2025, 2, 5), "2", "30.00", "financial"),
        ("S2", dt.date(2025, 2, 6), "-1", None, "financial"),
    )
    feb = invclose.post_costs(feb_rows, items=_DATED_STANDARD, opening=jan)
    # The opening carries 4 units (5 - 1) at 10.00; from 1 February the standard is 12.00:
    # +2.00 x 4 = +8.00 to inventory, -8.00 variance. R2: 2 x 12.00 = 24.00, 6.00 variance.
    reval = feb.filter(pl.col("kind") == "revaluation")
    assert reval.select("txn_id", "date", "qty", "amount", "variance").rows() == [
        ("REVAL:2025-02-01:A:", dt.date(2025, 2, 1), D(0), D("8.00"), D("-8.00"))
    ]
    assert costed_row(feb, "R2") == (D("24.00"), D("6.00"))
    assert costed_row(feb, "S2") == (D("-12.00"), D("0.00"))
    # The same rows in one frame give the same revaluation.
    whole = invclose.post_costs(pl.concat([jan_rows, feb_rows]), items=_DATED_STANDARD)
    assert whole.filter(pl.col("kind") == "revaluation").rows() == reval.rows()


def test_post_costs_on_its_own_output_adds_no_second_revaluation() -> None:
    frame = _rows(
        ("R1", day(5), "5", None, "financial"),
        ("S1", day(6), "-1", None, "financial"),
        ("R2", dt.date(2025, 2, 5), "2", "30.00", "financial"),
    )
    once = invclose.post_costs(frame, items=_DATED_STANDARD)
    twice = invclose.post_costs(once.drop("variance"), items=_DATED_STANDARD)
    # On hand at 1 February: 5 - 1 = 4 units, +2.00 each = 8.00, once.
    reval = twice.filter(pl.col("kind") == "revaluation")
    assert reval.select("txn_id", "amount", "variance").rows() == [
        ("REVAL:2025-02-01:A:", D("8.00"), D("-8.00"))
    ]
    assert twice.height == once.height == 4


def test_a_row_backdated_before_a_revalued_cost_change_adds_the_rest_of_it() -> None:
    # A at standard 10.00, 12.00 from 1 February. R1 (5 units, 5 January) and S1 (1 unit,
    # 5 February) are costed: 5 units on hand on 1 February, revaluation +10.00. Then R0
    # (3 units, 20 January) is posted late: 8 units were on hand on 1 February, so the change
    # comes to +16.00; 10.00 is already there, the rest +6.00 is one more part of it.
    first = invclose.post_costs(
        _rows(
            ("R1", day(5), "5", None, "financial"),
            ("S1", dt.date(2025, 2, 5), "-1", None, "financial"),
        ),
        items=_DATED_STANDARD,
    )
    reval = first.filter(pl.col("kind") == "revaluation")
    assert reval.select("txn_id", "amount").rows() == [("REVAL:2025-02-01:A:", D("10.00"))]
    late = _rows(("R0", day(20), "3", None, "financial")).with_columns(seq=pl.lit(10, pl.Int64))
    second = invclose.post_costs(
        pl.concat([first.drop("variance"), late], how="diagonal_relaxed"), items=_DATED_STANDARD
    )
    added = second.filter(pl.col("kind") == "revaluation")
    assert added.select("txn_id", "date", "amount", "variance").rows() == [
        ("REVAL:2025-02-01:A:", dt.date(2025, 2, 1), D("10.00"), D("-10.00")),
        ("REVAL#2:2025-02-01:A:", dt.date(2025, 2, 1), D("6.00"), D("-6.00")),
    ]
    assert costed_row(second, "R0") == (D("30.00"), D("0.00"))
    # The same rows at once revalue the 8 units in one row: 16.00 in both cases.
    whole = invclose.post_costs(
        pl.concat(
            [first.drop("variance").filter(pl.col("kind").is_null()), late],
            how="diagonal_relaxed",
        ),
        items=_DATED_STANDARD,
    )
    assert whole.filter(pl.col("kind") == "revaluation")["amount"].to_list() == [D("16.00")]
    # Given its own output back, nothing more is added.
    again = invclose.post_costs(second.drop("variance"), items=_DATED_STANDARD)
    assert again.filter(pl.col("kind") == "revaluation")["amount"].to_list() == [
        D("10.00"),
        D("6.00"),
    ]


def test_a_backdated_issue_that_empties_the_on_hand_at_a_change_takes_its_revaluation_back() -> (
    None
):
    # A at standard 10.00, 12.00 from 1 February. R1 (10 units, 5 January) and S9 (1 unit,
    # 5 February): 10 units on hand on 1 February, +20.00. S0 (10 units, 20 January) is
    # posted late: nothing was on hand on 1 February, the change comes to 0.00 and the
    # 20.00 already there is taken back by a second part of -20.00.
    first = invclose.post_costs(
        _rows(
            ("R1", day(5), "10", None, "financial"),
            ("S9", dt.date(2025, 2, 5), "-1", None, "financial"),
        ),
        items=_DATED_STANDARD,
    )
    late = _rows(("S0", day(20), "-10", None, "financial")).with_columns(seq=pl.lit(10, pl.Int64))
    second = invclose.post_costs(
        pl.concat([first.drop("variance"), late], how="diagonal_relaxed"), items=_DATED_STANDARD
    )
    reval = second.filter(pl.col("kind") == "revaluation")
    assert reval.select("txn_id", "amount", "variance").rows() == [
        ("REVAL:2025-02-01:A:", D("20.00"), D("-20.00")),
        ("REVAL#2:2025-02-01:A:", D("-20.00"), D("20.00")),
    ]


def test_a_dimension_value_ending_in_a_number_sign_does_not_double_a_revaluation() -> None:
    # Site "Bin#1": the revaluation's id ends in "#1", which once read as a later part of
    # another id: post_costs given its own output back added the 20.00 again.
    frame = _rows(
        ("R1", day(5), "10", None, "financial"),
        ("S1", dt.date(2025, 2, 5), "-1", None, "financial"),
    ).with_columns(site=pl.lit("Bin#1"))
    once = invclose.post_costs(frame, items=_DATED_STANDARD, dimensions=["site"])
    twice = invclose.post_costs(once.drop("variance"), items=_DATED_STANDARD, dimensions=["site"])
    reval = twice.filter(pl.col("kind") == "revaluation")
    assert reval.select("txn_id", "amount").rows() == [("REVAL:2025-02-01:A:Bin#1", D("20.00"))]


def test_groups_that_print_alike_get_revaluations_with_different_ids(tmp_path: Path) -> None:
    # A at standard 10.00, 12.00 from 1 February. Four groups of (site, wh) hold stock on
    # 1 February: ("a|b", "c") 3 units, ("a", "b|c") 5, (null, "c") 2 and ("", "c") 4. Each
    # gets its own revaluation, +2.00 per unit: 6.00, 10.00, 4.00 and 8.00, under four ids
    # (values escaped as in the virtual rows' ids: \| for |, an empty value \e). The first
    # two (and the last two) used to share one id, which the close refused as a duplicate
    # txn_id and the ledger stored once while posting its voucher for both.
    groups = [("a|b", "c", "3"), ("a", "b|c", "5"), (None, "c", "2"), ("", "c", "4")]
    frame = pl.concat(
        [
            _rows((f"R{k}", day(5), qty, None, "financial")).with_columns(
                site=pl.lit(site, pl.String), wh=pl.lit(wh)
            )
            for k, (site, wh, qty) in enumerate(groups)
        ]
        + [
            _rows(("S1", dt.date(2025, 2, 5), "-1", None, "financial")).with_columns(
                site=pl.lit("a"), wh=pl.lit("b|c")
            )
        ]
    ).with_columns(seq=pl.int_range(pl.len()))
    costed = invclose.post_costs(frame, items=_DATED_STANDARD, dimensions=["site", "wh"])
    reval = costed.filter(pl.col("kind") == "revaluation").sort("txn_id")
    assert reval.select("txn_id", "site", "wh", "amount").rows() == [
        ("REVAL:2025-02-01:A:\\e|c", "", "c", D("8.00")),
        ("REVAL:2025-02-01:A:a\\|b|c", "a|b", "c", D("6.00")),
        ("REVAL:2025-02-01:A:a|b\\|c", "a", "b|c", D("10.00")),
        ("REVAL:2025-02-01:A:|c", None, "c", D("4.00")),
    ]
    accounts = ACCOUNTS.with_columns(variance_account=pl.lit("5900"))
    config = invclose.CloseConfig(
        dimensions=["site", "wh"], items=_DATED_STANDARD, accounts=accounts
    )
    with invclose.Ledger(tmp_path / "books.duckdb", config=config) as books:
        books.post(frame.with_columns(kind=pl.lit(None, pl.String)))
        assert books.verify()["ok"].all()
        stored = books.transactions().filter(pl.col("kind") == "revaluation")
        assert stored["amount"].sum() == D("28.00")


def test_post_costs_from_an_opening_skips_the_rows_it_knows() -> None:
    # Moving average. January: R1 2 @ 20.00, S1 -1 (at 10.00), R2 1 @ 40.00: 2 units, 50.00
    # on hand at the January close. February: R3 1 @ 10.00, then S2 -1 at (50 + 10) / 3 =
    # 20.00. Given the whole history with the opening, January's rows are the opening's
    # (returned as given, variance null), not replayed on top of it: S2 costs 20.00 as with
    # February's rows alone (it used to cost 20.50, January counted twice).
    items = pl.DataFrame({"item_id": ["A"], "method": ["moving_average"]})
    january = _rows(
        ("R1", day(5), "2", "20.00", "financial"),
        ("S1", day(6), "-1", None, "financial"),
        ("R2", day(7), "1", "40.00", "financial"),
    )
    costed = invclose.post_costs(january, items=items).drop("variance")
    assert costed["amount"].to_list() == [D("20.00"), D("-10.00"), D("40.00")]
    jan = invclose.close(costed, "2025-01-31", items=items)
    february = _rows(
        ("R3", dt.date(2025, 2, 5), "1", "10.00", "financial"),
        ("S2", dt.date(2025, 2, 6), "-1", None, "financial"),
    ).with_columns(seq=pl.Series([3, 4]))
    alone = invclose.post_costs(february, items=items, opening=jan)
    history = pl.concat([costed, february], how="diagonal_relaxed")
    whole = invclose.post_costs(history, items=items, opening=jan)
    assert alone.select("txn_id", "amount").rows() == [("R3", D("10.00")), ("S2", D("-20.00"))]
    assert whole.select("txn_id", "amount", "variance").rows() == [
        ("R1", D("20.00"), None),
        ("S1", D("-10.00"), None),
        ("R2", D("40.00"), None),
        ("R3", D("10.00"), D("0.00")),
        ("S2", D("-20.00"), D("0.00")),
    ]


def test_a_close_warns_of_a_standard_cost_change_nothing_revalued() -> None:
    # A at standard 10.00, 12.00 from 1 February. R1 (5 units, 5 January) posts 50.00; nothing
    # is posted after 1 February, so no revaluation row exists. Closed at 28 February the
    # 5 units stand at 50.00 where the standard says 60.00: the close logs the gap (10.00)
    # instead of leaving it unseen. Once the revaluation is there (post_costs of a February
    # row), 4 units at 48.00 = 4 x 12.00 and nothing is logged.
    january = invclose.post_costs(
        _rows(("R1", day(5), "5", None, "financial")), items=_DATED_STANDARD
    )
    feb = dt.date(2025, 2, 28)
    closed = invclose.close(january.drop("variance"), feb, items=_DATED_STANDARD, accounts=ACCOUNTS)
    warned = closed.log.filter(pl.col("code") == "standard_not_revalued")
    assert warned.select("level", "item_id", "qty", "amount").rows() == [
        ("warning", "A", D(5), D("10.00"))
    ]
    assert (
        invclose.check(january.drop("variance"), feb, items=_DATED_STANDARD, accounts=ACCOUNTS)
        .filter(pl.col("code") == "standard_not_revalued")
        .height
        == 1
    )
    revalued = invclose.post_costs(
        pl.concat(
            [january.drop("variance"), _rows(("S1", dt.date(2025, 2, 5), "-1", None, "financial"))],
            how="diagonal_relaxed",
        ),
        items=_DATED_STANDARD,
    )
    fine = invclose.close(revalued.drop("variance"), feb, items=_DATED_STANDARD, accounts=ACCOUNTS)
    assert fine.balances.select("qty", "value").rows() == [(D(4), D("48.00"))]
    assert fine.log.filter(pl.col("code") == "standard_not_revalued").is_empty()


def test_rounding_carried_in_the_opening_on_hand_is_not_a_missing_revaluation() -> None:
    # T at standard 0.05, never changed. January: 10 receipts of 0.5 units, each posted
    # round(0.025) = 0.03 (half away from zero): 5 units for 0.30, where 5 x 0.05 = 0.25;
    # 5 cents of rounding over 10 rows, within their half cent each, so January warns
    # nothing. February: one issue of 0.5 at -0.03 leaves 4.5 units for 0.27, where
    # round(4.5 x 0.05) = 0.23: 4 cents off. The carried on-hand (one row) stands for the
    # 10 January rows: its 5 cents of rounding are allowed for (5 + half a cent for the
    # issue + half for the expected value), so February warns nothing either (it said "a
    # cost change was not revalued" and asked for a -0.04 revaluation).
    items = pl.DataFrame({"item_id": ["T"], "method": ["standard"], "standard_cost": ["0.05"]})
    receipts = with_null(tx(*[(f"R{i}", "T", 5, "0.5", "0") for i in range(10)]))
    january_rows = invclose.post_costs(receipts, items=items).drop("variance")
    assert january_rows["amount"].to_list() == [D("0.03")] * 10
    january = invclose.close(january_rows, day(31), items=items, accounts=ACCOUNTS)
    assert january.log.filter(pl.col("code") == "standard_not_revalued").is_empty()
    issue = with_null(tx(("S1", "T", dt.date(2025, 2, 5), "-0.5", "0")), "S1")
    feb_rows = invclose.post_costs(issue, items=items, opening=january).drop("variance")
    assert feb_rows["amount"].to_list() == [D("-0.03")]
    feb = dt.date(2025, 2, 28)
    february = invclose.close(feb_rows, feb, items=items, accounts=ACCOUNTS, opening=january)
    assert february.balances.select("qty", "value").rows() == [(D("4.5"), D("0.27"))]
    assert february.log.filter(pl.col("code") == "standard_not_revalued").is_empty()
    # A real change still warns: 0.05 -> 1.05 from 1 February, no February row posted, so
    # nothing revalued the 5 units: 5.25 expected, 0.30 held, 4.95 beyond the 5 cents carried.
    dearer = pl.DataFrame(
        {
            "item_id": ["T", "T"],
            "method": ["standard", "standard"],
            "standard_cost": ["0.05", "1.05"],
            "valid_from": [None, dt.date(2025, 2, 1)],
        }
    )
    january = invclose.close(january_rows, day(31), items=dearer, accounts=ACCOUNTS)
    empty = january_rows.clear()
    missed = invclose.close(empty, feb, items=dearer, accounts=ACCOUNTS, opening=january)
    warned = missed.log.filter(pl.col("code") == "standard_not_revalued")
    assert warned.select("qty", "amount").rows() == [(D(5), D("4.95"))]


def test_standard_issue_given_an_amount_leaves_at_standard_without_variance() -> None:
    # Standard 10.00. R1 was invoiced at 24.00 for 2: 20.00 at standard, 4.00 purchase
    # price variance. An issue has no price of its own: S1 given -15.00 still leaves at
    # 10.00 and carries no variance (as under moving average), like S2 without an amount.
    items = pl.DataFrame({"item_id": ["A"], "method": ["standard"], "standard_cost": ["10.00"]})
    frame = _rows(
        ("R1", day(1), "2", "24.00", "financial"),
        ("S1", day(2), "-1", "-15.00", "financial"),
        ("S2", day(3), "-1", None, "financial"),
    )
    assert _amounts(invclose.post_costs(frame, items=items)) == [
        ("R1", "financial", D("20.00"), D("4.00")),
        ("S1", "financial", D("-10.00"), D("0.00")),
        ("S2", "financial", D("-10.00"), D("0.00")),
    ]


def test_posted_rows_rebuild_the_state_with_their_final_amounts() -> None:
    items = pl.DataFrame({"item_id": ["A"], "method": ["moving_average"]})
    first = _rows(
        ("P1", day(1), "2", "20.00", "physical"),
        ("S1", day(2), "-1", None, "financial"),
        ("P1", day(3), "2", "30.00", "financial"),
    )
    # P1's invoice posts 25.00: 10.00 above 20.00, half of it (1 of 2 units on hand)
    # capitalised. On hand: 1 unit, 20.00 - 10.00 + 5.00 = 15.00.
    done = invclose.post_costs(first, items=items)
    assert _amounts(done)[2] == ("P1", "financial", D("25.00"), D("5.00"))
    nxt = _rows(("S2", day(4), "-1", None, "financial")).with_columns(seq=pl.lit(3, pl.Int64))
    costed = invclose.post_costs(nxt, items=items, posted=done.drop("variance"))
    # Replayed as posted, P1's 25.00 is final (re-costing it as a 25.00 invoice would
    # capitalise only 2.50 of it), so S2 leaves at 15.00; only S2 is returned.
    assert _amounts(costed) == [("S2", "financial", D("-15.00"), D("0.00"))]


# 2**62 cents = 46,116,860,184,273,879.04: the close's bound on a group's absolute amounts.
STANDARD_A = pl.DataFrame(
    {"item_id": ["A"], "method": ["standard"], "standard_cost": ["1000000.00"]}
)
MOVING_A = pl.DataFrame({"item_id": ["A"], "method": ["moving_average"]})


def _too_large(frame: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    with pytest.raises(invclose.InputValidationError, match=r"too_large") as refused:
        invclose.post_costs(frame, items=items)
    failures = refused.value.failures
    assert failures is not None
    assert set(failures["check"]) == {"too_large"}
    assert failures["hint"].str.contains("2\\*\\*62 cents").all()
    return failures


def test_standard_cost_beyond_64_bits_is_refused_not_wrapped() -> None:
    # 100,000,000,000 units at 1,000,000.00 = 10**19 cents > 2**62: it wrapped around to
    # -84,467,440,737,095,516.16. Item B, small, is in the same frame: only A's row is named.
    frame = with_null(tx(("R1", "A", 1, "100000000000", "0"), ("R2", "B", 1, 1, "1.00")), "R1")
    failures = _too_large(frame, STANDARD_A)
    assert failures["txn_id"].to_list() == ["R1"]
    assert failures["column"].to_list() == ["amount"]


def test_standard_cost_just_under_the_bound_costs_exactly() -> None:
    # 46,116,860,184.273879 units x 1,000,000.00 = 4,611,686,018,427,387,900 cents, 4 under
    # 2**62 (…904): posted exactly. One micro-unit more is 4,611,686,018,427,388,000: refused.
    frame = with_null(tx(("R1", "A", 1, "46116860184.273879", "0")), "R1")
    costed = invclose.post_costs(frame, items=STANDARD_A)
    assert costed_row(costed, "R1") == (D("46116860184273879.00"), D("0.00"))
    over = with_null(tx(("R1", "A", 1, "46116860184.273880", "0")), "R1")
    assert _too_large(over, STANDARD_A)["txn_id"].to_list() == ["R1"]


def test_moving_average_issue_beyond_64_bits_is_refused_not_wrapped() -> None:
    # On hand 0.000001 at 1,000,000,000.00: 10**11 cents per micro-unit. An issue of
    # 4,000,000,000,000 units at that average is -4 * 10**29 cents; it came out as
    # +53,479,199,213,617,152.00. Both rows of the group are named.
    frame = with_null(
        tx(("R1", "A", 1, "0.000001", "1000000000.00"), ("S1", "A", 2, "-4000000000000", "0")),
        "S1",
    )
    assert _too_large(frame, MOVING_A)["txn_id"].to_list() == ["R1", "S1"]


def test_moving_average_issue_under_the_bound_costs_exactly() -> None:
    # On hand 0.000001 at 46,116,860.18 = 4,611,686,018 cents per micro-unit. An issue of 999
    # units (more than on hand) at that average: 4,611,686,018 x 999,000,000 =
    # 4,607,074,331,982,000,000 cents; with the receipt the group's absolute amounts come to
    # 4,607,074,336,593,686,018 <= 2**62. An issue of 1,000 units, 4,611,686,018,000,000,000
    # cents, fits alone but not with the receipt (…022,611,686,018 > …018,427,387,904): as
    # the close would refuse the group, post_costs does.
    frame = with_null(
        tx(("R1", "A", 1, "0.000001", "46116860.18"), ("S1", "A", 2, "-999", "0")), "S1"
    )
    costed = invclose.post_costs(frame, items=MOVING_A)
    assert costed_row(costed, "S1") == (D("-46070743319820000.00"), D("0.00"))
    over = with_null(
        tx(("R1", "A", 1, "0.000001", "46116860.18"), ("S1", "A", 2, "-1000", "0")), "S1"
    )
    assert _too_large(over, MOVING_A)["txn_id"].to_list() == ["R1", "S1"]


def test_standard_revaluation_beyond_64_bits_is_refused() -> None:
    # 40,000,000,000 units on hand at 1.00 (4 * 10**12 cents, fine) when the standard becomes
    # 1,000,000,000.00 on 5 January: the revaluation is (10**11 - 100) x 4 * 10**10 =
    # 3,999,999,996 * 10**12 cents > 2**62. It failed in Polars' cast to 64 bits.
    items = pl.DataFrame(
        {
            "item_id": ["A", "A"],
            "method": ["standard", "standard"],
            "standard_cost": ["1.00", "1000000000.00"],
            "valid_from": [day(1), day(5)],
        }
    )
    frame = with_null(tx(("R1", "A", 1, "40000000000", "0"), ("R2", "A", 6, 1, "0")), "R1", "R2")
    assert _too_large(frame, items)["txn_id"].to_list() == ["R1", "R2"]
