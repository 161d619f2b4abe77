"""Posting-time costing (contract §2, close-semantics §1.3, §3.7, §3.8), hand-calculated."""

from __future__ import annotations

import datetime as dt

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
