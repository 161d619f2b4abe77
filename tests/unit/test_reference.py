"""Hand-calculated cases for the reference close (``invclose.testing.reference``).

Every expected number is worked out in a comment next to it, from ``docs/close-rules.md``
(section numbers ``§n`` refer to that page). These tests pin the oracle down on its own, so
the property tests that compare the kernel against it compare against something checked.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from invclose.schemas import input_schema
from invclose.testing import assert_frames_equal_exact, reference_close
from invclose.testing.reference import ReferenceResult

D = Decimal
CLOSE = dt.date(2025, 1, 31)
EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "worked_examples.json"


def day(n: int) -> dt.date:
    """January 2025, day ``n`` (32, 33 ... run on into February)."""
    return dt.date(2025, 1, 1) + dt.timedelta(days=n - 1)


def frame(rows: list[dict[str, Any]], dims: tuple[str, ...] = ()) -> pl.DataFrame:
    """Contract frame from short rows: defaults item A, financial, seq = position + 1."""
    full = []
    for i, r in enumerate(rows):
        row = {"item_id": "A", "status": "financial", "seq": i + 1, **r}
        row["qty"] = D(str(row["qty"]))
        row["amount"] = D(str(row["amount"]))
        full.append(row)
    schema = input_schema(dims)
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in full], schema=schema)


def R(txn_id: str, d: int, qty: Any, amount: Any, **kw: Any) -> dict[str, Any]:
    return {"txn_id": txn_id, "date": day(d), "qty": qty, "amount": amount, **kw}


def I(txn_id: str, d: int, qty: Any, amount: Any, **kw: Any) -> dict[str, Any]:  # noqa: E743
    return {"txn_id": txn_id, "date": day(d), "qty": -D(str(qty)), "amount": -D(str(amount)), **kw}


def pieces(res: ReferenceResult) -> list[tuple[str, str, Decimal, Decimal, str]]:
    return sorted(
        res.settlements.select(
            "issue_txn_id", "receipt_txn_id", "qty", "amount", "principle"
        ).iter_rows()
    )


def adjustments(res: ReferenceResult) -> dict[str, tuple[Decimal, Decimal, Decimal, Decimal]]:
    return {
        r[0]: r[1:]
        for r in res.adjustments.select(
            "txn_id", "posted_amount", "settled_amount", "adjustment", "cost_delta"
        ).iter_rows()
    }


def open_items(res: ReferenceResult) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    return {
        r[0]: r[1:]
        for r in res.open_items.select(
            "txn_id", "open_qty", "open_value", "carried_value"
        ).iter_rows()
    }


def log(res: ReferenceResult) -> list[tuple[str, str | None, Decimal]]:
    return sorted(
        res.log.select("code", "txn_id", "qty").iter_rows(), key=lambda r: (r[0], r[1] or "")
    )


def balance(res: ReferenceResult) -> dict[str, Any]:
    assert res.balances.height == 1
    return res.balances.row(0, named=True)


def closed(res: ReferenceResult) -> set[str]:
    return set(res.closed_txn_ids["txn_id"].to_list())


# --------------------------------------------------------------------------------------------
# fifo / lifo / lifo_date on two receipts and one issue
# --------------------------------------------------------------------------------------------

TWO_RECEIPTS = [R("R1", 30, 1, "10.00"), R("R2", 30, 1, "22.00"), I("I1", 30, 1, "16.00")]


def test_fifo_takes_the_first_receipt() -> None:
    res = reference_close(frame(TWO_RECEIPTS), CLOSE, method="fifo")
    # I1's one unit takes R1's one unit: round(10.00 * 1/1) = 10.00.
    assert pieces(res) == [("I1", "R1", D(1), D("10.00"), "fifo")]
    # posted -16.00, new value 10.00: cost_delta = 10.00 - 16.00 = -6.00, adjustment +6.00.
    assert adjustments(res) == {"I1": (D("-16.00"), D("-10.00"), D("6.00"), D("-6.00"))}
    assert res.adjustments["adjusted_against"].to_list() == [None]
    # R2 stays open: 1 unit, 22.00; R1 and I1 closed.
    assert open_items(res) == {"R2": (D(1), D("22.00"), D("22.00"))}
    assert closed(res) == {"R1", "I1"}
    b = balance(res)
    assert (b["qty"], b["value"], b["open_receipts"], b["unit_cost"]) == (
        D(1),
        D("22.00"),
        1,
        D("22.000000"),
    )
    assert (b["physical_qty"], b["physical_value"]) == (D(0), D(0))
    assert log(res) == []


def test_lifo_takes_the_last_receipt() -> None:
    res = reference_close(frame(TWO_RECEIPTS), CLOSE, method="lifo")
    # Receipts in reverse key order: R2 first; 22.00 - 16.00 = +6.00 more cost.
    assert pieces(res) == [("I1", "R2", D(1), D("22.00"), "lifo")]
    assert adjustments(res) == {"I1": (D("-16.00"), D("-22.00"), D("-6.00"), D("6.00"))}
    assert balance(res)["value"] == D("10.00")


def test_lifo_date_takes_the_latest_receipt_on_or_before_the_issue_date() -> None:
    res = reference_close(frame(TWO_RECEIPTS), CLOSE, method="lifo_date")
    # Both receipts are dated on the issue's date; the greatest key is R2 (seq 2): 22.00.
    assert pieces(res) == [("I1", "R2", D(1), D("22.00"), "lifo_date")]
    assert adjustments(res)["I1"][3] == D("6.00")


# --------------------------------------------------------------------------------------------
# §3 cumulative rounding along the receipt, §4 the unsettled remainder
# --------------------------------------------------------------------------------------------


def test_cumulative_rounding_along_the_receipt() -> None:
    rows = [R("R", 29, 3, "62.00")] + [I(f"I{k}", 30, 1, "20.00") for k in (1, 2, 3)]
    res = reference_close(frame(rows), CLOSE, method="fifo")
    # cumulative: round(62 * 1/3) = 20.67, round(62 * 2/3) = 41.33, round(62 * 3/3) = 62.00
    # pieces:     20.67,  41.33 - 20.67 = 20.66,  62.00 - 41.33 = 20.67
    assert pieces(res) == [
        ("I1", "R", D(1), D("20.67"), "fifo"),
        ("I2", "R", D(1), D("20.66"), "fifo"),
        ("I3", "R", D(1), D("20.67"), "fifo"),
    ]
    assert adjustments(res) == {
        "I1": (D("-20.00"), D("-20.67"), D("-0.67"), D("0.67")),
        "I2": (D("-20.00"), D("-20.66"), D("-0.66"), D("0.66")),
        "I3": (D("-20.00"), D("-20.67"), D("-0.67"), D("0.67")),
    }
    # Used up: the pieces sum to exactly 62.00; nothing open, unit cost null at qty 0.
    assert sum(p[3] for p in pieces(res)) == D("62.00")
    assert closed(res) == {"R", "I1", "I2", "I3"}
    b = balance(res)
    assert (b["qty"], b["value"], b["open_receipts"], b["unit_cost"]) == (D(0), D(0), 0, None)


def test_insufficient_receipts_keeps_the_remainder_pro_rata() -> None:
    rows = [R("R", 29, 1, "10.00"), I("I", 30, 3, "36.00")]
    res = reference_close(frame(rows), CLOSE, method="fifo")
    # s = 1 of q = 3: new = 10.00 + (36.00 - round(36.00 * 1/3)) = 10.00 + 24.00 = 34.00
    assert pieces(res) == [("I", "R", D(1), D("10.00"), "fifo")]
    assert adjustments(res) == {"I": (D("-36.00"), D("-34.00"), D("2.00"), D("-2.00"))}
    # open: qty -(3 - 1) = -2, value -(34.00 - 10.00) = -24.00, carried -34.00
    assert open_items(res) == {"I": (D(-2), D("-24.00"), D("-34.00"))}
    assert closed(res) == {"R"}
    assert log(res) == [
        ("insufficient_receipts", "I", D(2)),
        ("negative_on_hand", None, D(-2)),
    ]
    b = balance(res)
    assert (b["qty"], b["value"], b["open_receipts"], b["unit_cost"]) == (
        D(-2),
        D("-24.00"),
        0,
        None,
    )


def test_unsettled_remainder_rounds_half_away_from_zero() -> None:
    rows = [R("R", 29, 1, "5.00"), I("I", 30, 3, "10.00")]
    res = reference_close(frame(rows), CLOSE, method="fifo")
    # round(10.00 * 1/3) = round(3.333..) = 3.33; new = 5.00 + (10.00 - 3.33) = 11.67
    assert adjustments(res) == {"I": (D("-10.00"), D("-11.67"), D("-1.67"), D("1.67"))}
    # open value -(11.67 - 5.00) = -6.67
    assert open_items(res)["I"] == (D(-2), D("-6.67"), D("-11.67"))


def test_half_cent_rounds_away_from_zero() -> None:
    rows = [R("R", 29, 2, "0.01"), I("I", 30, 1, "0.00")]
    res = reference_close(frame(rows), CLOSE, method="fifo")
    # round(0.01 * 1/2) = round(0.005) = 0.01 (half away from zero, not to even)
    assert pieces(res) == [("I", "R", D(1), D("0.01"), "fifo")]
    assert open_items(res) == {"R": (D(1), D("0.00"), D("0.01"))}


def test_fractional_quantities() -> None:
    rows = [R("R", 29, "1.5", "10.00"), I("I1", 30, "0.333333", "2.00"), I("I2", 30, "2", "14")]
    res = reference_close(frame(rows), CLOSE, method="fifo")
    # I1: c = 0.333333, round(10.00 * 0.333333/1.5) = round(2.22222) = 2.22
    # I2: takes the rest 1.166667, cumulative round(10.00 * 1.5/1.5) = 10.00 -> 7.78
    assert pieces(res) == [
        ("I1", "R", D("0.333333"), D("2.22"), "fifo"),
        ("I2", "R", D("1.166667"), D("7.78"), "fifo"),
    ]
    # I2: q = 2, w = 14.00, s = 1.166667: round(14 * 1.166667 / 2) = round(8.1666669) = 8.17
    # new = 7.78 + (14.00 - 8.17) = 13.61 -> cost_delta -0.39
    assert adjustments(res)["I2"] == (D("-14.00"), D("-13.61"), D("0.39"), D("-0.39"))
    # I1: 2.00 -> 2.22, cost_delta +0.22
    assert adjustments(res)["I1"][3] == D("0.22")
    # I2 open: qty -(2 - 1.166667) = -0.833333, value -(13.61 - 7.78) = -5.83
    assert open_items(res)["I2"] == (D("-0.833333"), D("-5.83"), D("-13.61"))


# --------------------------------------------------------------------------------------------
# §2 lifo_date against fifo and lifo
# --------------------------------------------------------------------------------------------

LATE_RECEIPT = [
    I("I1", 28, 1, "15.00"),  # no receipt on or before day 28
    R("R1", 29, 1, "10.00"),
    R("R2", 30, 1, "30.00"),
    I("I2", 30, 1, "25.00"),
]


def test_lifo_date_later_receipts_nearest_first() -> None:
    res = reference_close(frame(LATE_RECEIPT), CLOSE, method="lifo_date")
    # Day 28: I1 finds nothing dated <= 28. Day 30: I2 takes the greatest key <= 30: R2 30.00.
    # Leftovers: I1 takes the smallest key dated after day 28 still open: R1 10.00.
    assert pieces(res) == [
        ("I1", "R1", D(1), D("10.00"), "lifo_date"),
        ("I2", "R2", D(1), D("30.00"), "lifo_date"),
    ]
    # I1: 15.00 -> 10.00 (cost_delta -5.00); I2: 25.00 -> 30.00 (+5.00)
    assert adjustments(res) == {
        "I1": (D("-15.00"), D("-10.00"), D("5.00"), D("-5.00")),
        "I2": (D("-25.00"), D("-30.00"), D("-5.00"), D("5.00")),
    }
    assert log(res) == []


def test_lifo_ignores_dates() -> None:
    res = reference_close(frame(LATE_RECEIPT), CLOSE, method="lifo")
    # Receipts reversed (R2, R1), issues in key order (I1, I2): I1 <- R2, I2 <- R1.
    assert pieces(res) == [
        ("I1", "R2", D(1), D("30.00"), "lifo"),
        ("I2", "R1", D(1), D("10.00"), "lifo"),
    ]
    assert adjustments(res)["I1"][3] == D("15.00")  # 30.00 - 15.00
    assert adjustments(res)["I2"][3] == D("-15.00")  # 10.00 - 25.00


def test_fifo_serves_an_issue_from_a_later_receipt() -> None:
    res = reference_close(frame(LATE_RECEIPT), CLOSE, method="fifo")
    # k-th issued unit takes k-th received unit: I1 <- R1, I2 <- R2.
    assert pieces(res) == [
        ("I1", "R1", D(1), D("10.00"), "fifo"),
        ("I2", "R2", D(1), D("30.00"), "fifo"),
    ]


def test_lifo_date_visits_issues_of_a_date_last_first() -> None:
    rows = [
        R("R1", 29, 1, "10.00"),
        R("R2", 30, 1, "20.00"),
        I("I1", 30, 1, "15.00"),
        I("I2", 30, 1, "15.00"),
    ]
    res = reference_close(frame(rows), CLOSE, method="lifo_date")
    # Day 30, issues in reverse key order: I2 takes R2 (20.00), then I1 takes R1 (10.00).
    assert pieces(res) == [
        ("I1", "R1", D(1), D("10.00"), "lifo_date"),
        ("I2", "R2", D(1), D("20.00"), "lifo_date"),
    ]
    lifo = reference_close(frame(rows), CLOSE, method="lifo")
    # lifo: issues in key order, I1 gets the last receipt R2.
    assert pieces(lifo) == [
        ("I1", "R2", D(1), D("20.00"), "lifo"),
        ("I2", "R1", D(1), D("10.00"), "lifo"),
    ]


def test_lifo_date_same_day_receipt_posted_after_the_issue_counts() -> None:
    rows = [R("R1", 28, 1, "10.00"), I("I1", 29, 1, "12.00"), R("R2", 29, 1, "14.00")]
    res = reference_close(frame(rows), CLOSE, method="lifo_date")
    # R2 is dated day 29 like I1 (posted after it): greatest key <= day 29 is R2.
    assert pieces(res) == [("I1", "R2", D(1), D("14.00"), "lifo_date")]


def test_lifo_date_drawing_order_spans_both_phases() -> None:
    rows = [
        I("I1", 28, 1, "0.00"),
        R("R1", 29, 3, "10.00"),
        I("I2", 29, 1, "0.00"),
        I("I3", 30, 1, "0.00"),
    ]
    res = reference_close(frame(rows), CLOSE, method="lifo_date")
    # Visiting order: I2 (day 29), I3 (day 30), then leftover I1. All draw on R1:
    # I2: round(10 * 1/3) = 3.33; I3: round(10 * 2/3) = 6.67 -> 3.34; I1: 10.00 - 6.67 = 3.33
    assert pieces(res) == [
        ("I1", "R1", D(1), D("3.33"), "lifo_date"),
        ("I2", "R1", D(1), D("3.33"), "lifo_date"),
        ("I3", "R1", D(1), D("3.34"), "lifo_date"),
    ]


# --------------------------------------------------------------------------------------------
# §1 marking
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["fifo", "lifo", "lifo_date"])
def test_marking_overrides_the_method(method: str) -> None:
    rows = [
        R("R1", 30, 1, "10.00"),
        R("R2", 30, 1, "22.00"),
        I("I1", 30, 1, "16.00", marked_to="R2"),
    ]
    res = reference_close(frame(rows), CLOSE, method=method)
    # Marked to R2: 22.00 whatever the method; cost_delta 22.00 - 16.00 = +6.00
    assert pieces(res) == [("I1", "R2", D(1), D("22.00"), "marking")]
    assert adjustments(res) == {"I1": (D("-16.00"), D("-22.00"), D("-6.00"), D("6.00"))}


def test_marking_excess_goes_to_the_method() -> None:
    rows = [
        R("R1", 29, 1, "10.00"),
        R("R2", 30, 1, "22.00"),
        I("I1", 30, 2, "30.00", marked_to="R2"),
    ]
    res = reference_close(frame(rows), CLOSE, method="fifo")
    # 1 unit from R2 by marking (22.00), the other unit by fifo from R1 (10.00): new = 32.00
    assert pieces(res) == [
        ("I1", "R1", D(1), D("10.00"), "fifo"),
        ("I1", "R2", D(1), D("22.00"), "marking"),
    ]
    assert adjustments(res) == {"I1": (D("-30.00"), D("-32.00"), D("-2.00"), D("2.00"))}


def test_marking_comes_first_in_the_receipts_drawing_order() -> None:
    rows = [
        R("R", 29, 3, "10.00"),
        I("I1", 30, 1, "0.00"),
        I("I2", 31, 1, "0.00", marked_to="R"),
    ]
    res = reference_close(frame(rows), CLOSE, method="fifo")
    # Marking first: I2 draws round(10 * 1/3) = 3.33, then fifo I1: 6.67 - 3.33 = 3.34.
    assert pieces(res) == [
        ("I1", "R", D(1), D("3.34"), "fifo"),
        ("I2", "R", D(1), D("3.33"), "marking"),
    ]


def test_marked_receipt_after_the_closing_date_excludes_the_issue() -> None:
    rows = [
        R("R1", 29, 1, "10.00"),
        I("I1", 30, 1, "16.00", marked_to="R3"),
        R("R3", 33, 1, "30.00"),  # dated after the closing date
    ]
    res = reference_close(frame(rows), CLOSE, method="fifo")
    # No fallback to fifo: nothing settled, nothing adjusted, R1 untouched; one log row.
    assert pieces(res) == []
    assert adjustments(res) == {}
    assert log(res) == [("marked_receipt_after_close_date", "I1", D(1))]
    assert open_items(res) == {
        "R1": (D(1), D("10.00"), D("10.00")),
        "I1": (D(-1), D("-16.00"), D("-16.00")),
    }


def test_financial_issue_marked_to_a_physical_receipt_is_excluded() -> None:
    rows = [
        R("P", 29, 1, "25.00", status="physical"),
        R("R1", 29, 1, "10.00"),
        I("I1", 30, 1, "16.00", marked_to="P"),
    ]
    for include in (False, True):
        res = reference_close(frame(rows), CLOSE, method="fifo", include_physical_value=include)
        assert pieces(res) == []
        assert adjustments(res) == {}
        assert log(res) == [("marked_receipt_after_close_date", "I1", D(1))]


# --------------------------------------------------------------------------------------------
# Include physical value
# --------------------------------------------------------------------------------------------


def test_physical_issue_against_financial_receipt_is_adjustment_only() -> None:
    rows = [R("R1", 29, 1, "10.00"), I("P1", 30, 1, "12.00", status="physical")]
    res = reference_close(frame(rows), CLOSE, method="fifo", include_physical_value=True)
    # P1 takes R1's cost 10.00 without a piece: cost_delta 10.00 - 12.00 = -2.00
    assert pieces(res) == []
    assert adjustments(res) == {"P1": (D("-12.00"), D("-10.00"), D("2.00"), D("-2.00"))}
    assert res.adjustments["adjusted_against"].to_list() == [["R1"]]
    # Quantities stay open on both sides; R1 keeps its full value.
    assert open_items(res) == {
        "R1": (D(1), D("10.00"), D("10.00")),
        "P1": (D(-1), D("-10.00"), D("-10.00")),
    }
    assert closed(res) == set()
    b = balance(res)
    assert (b["qty"], b["value"], b["open_receipts"]) == (D(1), D("10.00"), 1)
    assert (b["physical_qty"], b["physical_value"]) == (D(-1), D("-10.00"))
    assert log(res) == []
    # Without the option, physical rows take no part.
    off = reference_close(frame(rows), CLOSE, method="fifo")
    assert adjustments(off) == {}
    assert open_items(off)["P1"] == (D(-1), D("-12.00"), D("-12.00"))


def test_financial_issue_against_physical_receipt() -> None:
    rows = [R("P", 29, 1, "25.00", status="physical"), I("I1", 30, 1, "20.00")]
    res = reference_close(frame(rows), CLOSE, method="fifo", include_physical_value=True)
    # Adjusted to P's 25.00 (cost_delta +5.00), no piece; I1 stays open at -25.00.
    assert pieces(res) == []
    assert adjustments(res) == {"I1": (D("-20.00"), D("-25.00"), D("-5.00"), D("5.00"))}
    assert res.adjustments["adjusted_against"].to_list() == [["P"]]
    assert open_items(res)["I1"] == (D(-1), D("-25.00"), D("-25.00"))
    # §7 literally: I1's open qty after the run is 1 > 0 -> insufficient_receipts; P is a
    # physical receipt a financial issue took an adjustment-only piece from.
    assert log(res) == [
        ("insufficient_receipts", "I1", D(1)),
        ("negative_on_hand", None, D(-1)),
        ("receipt_not_invoiced", "P", D(1)),
    ]


def test_receipt_not_invoiced_without_include_physical() -> None:
    rows = [R("P", 29, 2, "25.00", status="physical"), I("I1", 30, 1, "20.00")]
    res = reference_close(frame(rows), CLOSE, method="fifo")
    # No financial receipt: I1 unsettled; P is a physical receipt in a group with an
    # insufficient_receipts row.
    assert log(res) == [
        ("insufficient_receipts", "I1", D(1)),
        ("negative_on_hand", None, D(-1)),
        ("receipt_not_invoiced", "P", D(2)),
    ]


def test_physical_and_real_pieces_share_one_walk() -> None:
    rows = [
        R("R", 29, 3, "10.00"),
        I("P", 30, 1, "3.00", status="physical"),
        I("I", 30, 2, "7.00"),
    ]
    res = reference_close(frame(rows), CLOSE, method="fifo", include_physical_value=True)
    # Walk of R: P (adjustment-only) round(10 * 1/3) = 3.33; I (real) 10.00 - 3.33 = 6.67
    assert pieces(res) == [("I", "R", D(2), D("6.67"), "fifo")]
    assert adjustments(res) == {
        "P": (D("-3.00"), D("-3.33"), D("-0.33"), D("0.33")),
        "I": (D("-7.00"), D("-6.67"), D("0.33"), D("-0.33")),
    }
    # R: open qty 3 - 2 = 1 (the adjustment-only unit stays open), value 10.00 - 6.67 = 3.33
    assert open_items(res)["R"] == (D(1), D("3.33"), D("10.00"))
    assert closed(res) == {"I"}


def test_physical_issue_marked_to_a_physical_receipt() -> None:
    rows = [
        R("R1", 29, 1, "10.00"),
        R("PR", 29, 1, "30.00", status="physical"),
        I("PI", 30, 1, "12.00", status="physical", marked_to="PR"),
    ]
    res = reference_close(frame(rows), CLOSE, method="fifo", include_physical_value=True)
    # Marking, both sides physical: adjustment only, 30.00 - 12.00 = +18.00
    assert pieces(res) == []
    assert adjustments(res) == {"PI": (D("-12.00"), D("-30.00"), D("-18.00"), D("18.00"))}
    off = reference_close(frame(rows), CLOSE, method="fifo")
    # Without the option PI does not participate: untouched and not logged.
    assert adjustments(off) == {}
    assert log(off) == []


# --------------------------------------------------------------------------------------------
# Scope, groups, item table
# --------------------------------------------------------------------------------------------


def test_rows_after_the_closing_date_take_no_part() -> None:
    rows = [I("I1", 30, 1, "16.00"), R("R1", 32, 1, "10.00")]
    res = reference_close(frame(rows), CLOSE, method="fifo")
    assert pieces(res) == []
    assert set(open_items(res)) == {"I1"}  # R1 is not reported
    assert log(res) == [("insufficient_receipts", "I1", D(1)), ("negative_on_hand", None, D(-1))]


def test_groups_by_dimensions_with_null_as_a_value() -> None:
    rows = [
        R("R1", 29, 1, "10.00", site="S1"),
        R("R2", 29, 1, "20.00", site=None),
        I("I1", 30, 1, "15.00", site=None),
    ]
    res = reference_close(frame(rows, ("site",)), CLOSE, method="fifo", dimensions=["site"])
    # I1 (site null) settles only within the null-site group: R2 20.00
    assert pieces(res) == [("I1", "R2", D(1), D("20.00"), "fifo")]
    assert res.settlements["site"].to_list() == [None]
    assert res.balances.sort("site", nulls_last=False).select("site", "qty").rows() == [
        (None, D(0)),
        ("S1", D(1)),
    ]


def test_item_table_overrides_the_keywords() -> None:
    rows = [
        *TWO_RECEIPTS,
        R("B1", 30, 1, "10.00", item_id="B"),
        R("B2", 30, 1, "22.00", item_id="B"),
        I("BI", 30, 1, "16.00", item_id="B"),
    ]
    items = pl.DataFrame(
        {"item_id": ["B"], "method": ["lifo"], "include_physical_value": [None]},
        schema={"item_id": pl.String, "method": pl.String, "include_physical_value": pl.Boolean},
    )
    res = reference_close(frame(rows), CLOSE, method="fifo", items=items)
    assert pieces(res) == [
        ("BI", "B2", D(1), D("22.00"), "lifo"),
        ("I1", "R1", D(1), D("10.00"), "fifo"),
    ]


def test_default_status_and_seq() -> None:
    df = pl.DataFrame(
        {
            "txn_id": ["b", "a", "c"],
            "item_id": ["A"] * 3,
            "date": [day(30)] * 3,
            "qty": [D(1), D(1), D(-1)],
            "amount": [D("10.00"), D("20.00"), D("-10.00")],
        },
        schema={
            "txn_id": pl.String,
            "item_id": pl.String,
            "date": pl.Date,
            "qty": pl.Decimal(38, 6),
            "amount": pl.Decimal(38, 2),
        },
    )
    # seq = row order, so "b" (row 0) is the first receipt although "a" < "b".
    res = reference_close(df, CLOSE, method="fifo")
    assert pieces(res) == [("c", "b", D(1), D("10.00"), "fifo")]


def test_input_row_order_does_not_matter() -> None:
    df = frame([*LATE_RECEIPT, R("R9", 30, "0.5", "7.77"), I("I9", 29, "2.25", "3.00")])
    a = reference_close(df, CLOSE, method="lifo_date")
    b = reference_close(df.reverse(), CLOSE, method="lifo_date")
    for name in ("settlements", "adjustments", "balances", "log", "open_items"):
        assert getattr(a, name).equals(getattr(b, name)), name


def test_rejects_bad_markings_and_ids() -> None:
    with pytest.raises(ValueError, match="not a receipt of its group"):
        reference_close(
            frame([R("R1", 29, 1, "1.00", item_id="B"), I("I1", 30, 1, "1.00", marked_to="R1")]),
            CLOSE,
        )
    with pytest.raises(ValueError, match="repeated txn_id"):
        reference_close(frame([R("R1", 29, 1, "1.00"), R("R1", 30, 1, "1.00")]), CLOSE)
    with pytest.raises(ValueError, match="average_cost"):
        reference_close(frame([R("R1", 29, 1, "1.00")]), CLOSE, method="average_cost")


# --------------------------------------------------------------------------------------------
# Opening state: two consecutive closes
# --------------------------------------------------------------------------------------------


def test_two_closes_continue_open_receipts_and_issues() -> None:
    rows = [
        R("R1", 30, 2, "20.00"),
        I("I1", 31, 1, "10.00"),
        I("I2", 32, 2, "24.00"),  # after the first closing date
        R("R2", 33, 1, "13.00"),
    ]
    df = frame(rows)
    first = reference_close(df, CLOSE, method="fifo")
    # I1 <- R1: round(20.00 * 1/2) = 10.00, as posted: no adjustment. R1 open 1 at 10.00.
    assert pieces(first) == [("I1", "R1", D(1), D("10.00"), "fifo")]
    assert adjustments(first) == {}
    assert open_items(first) == {"R1": (D(1), D("10.00"), D("20.00"))}
    assert closed(first) == {"I1"}

    second = reference_close(df, day(33), method="fifo", opening=first.state)
    # R1 continues with q = 1, w = 10.00: its one unit costs round(10.00 * 1/1) = 10.00.
    # I2: 10.00 + 13.00 = 23.00 against 24.00 posted: cost_delta -1.00.
    assert pieces(second) == [
        ("I2", "R1", D(1), D("10.00"), "fifo"),
        ("I2", "R2", D(1), D("13.00"), "fifo"),
    ]
    assert adjustments(second) == {"I2": (D("-24.00"), D("-23.00"), D("1.00"), D("-1.00"))}
    assert closed(second) == {"R1", "I1", "I2", "R2"}
    assert open_items(second) == {}


def test_open_issue_continues_from_its_carried_value() -> None:
    rows = [I("I1", 30, 3, "36.00"), R("R1", 31, 1, "10.00"), R("R2", 32, 2, "30.00")]
    df = frame(rows)
    first = reference_close(df, CLOSE, method="fifo")
    # As in the insufficient case: I1 new 34.00, open -2 at -24.00, carried -34.00.
    assert open_items(first)["I1"] == (D(-2), D("-24.00"), D("-34.00"))
    second = reference_close(df, day(32), method="fifo", opening=first.state)
    # I1 now q = 2, w = 24.00; piece 2 units of R2 = 30.00: new = 30.00 + (24.00 - 24.00)
    # cost_delta +6.00; posted = carried before = -34.00, settled = -40.00.
    assert adjustments(second) == {"I1": (D("-34.00"), D("-40.00"), D("-6.00"), D("6.00"))}
    assert closed(second) == {"I1", "R1", "R2"}
    # The state also works when the next df holds only the rows after the first close.
    only_new = df.filter(pl.col("date") > CLOSE)
    again = reference_close(only_new, day(32), method="fifo", opening=first.state)
    assert_frames_equal_exact(again.adjustments, second.adjustments, ["txn_id"])
    assert_frames_equal_exact(
        again.settlements, second.settlements, ["issue_txn_id", "receipt_txn_id"]
    )


def test_invoice_replaces_a_physical_row() -> None:
    rows = [R("P", 30, 1, "25.00", status="physical"), I("I1", 31, 1, "20.00")]
    first = reference_close(frame(rows), CLOSE, method="fifo", include_physical_value=True)
    # I1 adjusted to 25.00 against physical P, stays open at -25.00.
    assert open_items(first)["I1"] == (D(-1), D("-25.00"), D("-25.00"))
    invoiced = [R("P", 32, 1, "27.00"), I("I1", 31, 1, "20.00")]
    second = reference_close(
        frame(invoiced),
        day(32),
        method="fifo",
        include_physical_value=True,
        opening=first.state,
    )
    # P starts fresh from its invoice (27.00); I1 from its carried 25.00: +2.00.
    assert pieces(second) == [("I1", "P", D(1), D("27.00"), "fifo")]
    assert adjustments(second) == {"I1": (D("-25.00"), D("-27.00"), D("-2.00"), D("2.00"))}


def test_opening_rejects_unknown_rows_in_the_closed_period() -> None:
    first = reference_close(frame([R("R1", 30, 1, "1.00")]), CLOSE)
    with pytest.raises(ValueError, match="does not know it"):
        reference_close(
            frame([R("R1", 30, 1, "1.00"), R("R0", 29, 1, "1.00")]),
            day(33),
            opening=first.state,
        )


# --------------------------------------------------------------------------------------------
# The public worked examples (fifo, lifo, lifo_date), close-semantics §17
# --------------------------------------------------------------------------------------------

_ORDINAL_CASES = [
    c
    for c in json.loads(EXAMPLES.read_text())["cases"]
    if c["method"] in ("FIFO", "LIFO", "LIFO_DATE")
]


def _case_frame(case: dict[str, Any]) -> pl.DataFrame:
    rows = []
    for t in case["transactions"]:
        qty = D(str(t["qty"]))
        amount = (qty * D(str(t["unit_cost_posted"]))).quantize(D("0.01"))
        sign = 1 if t["type"] == "receipt" else -1
        rows.append(
            {
                "txn_id": t["id"],
                "date": dt.date.fromisoformat(t["date"]),
                "qty": sign * qty,
                "amount": sign * amount,
                "status": t["status"],
                "seq": t["seq"],
                "marked_to": t.get("marked_to"),
            }
        )
    return frame(rows)


@pytest.mark.parametrize("case", _ORDINAL_CASES, ids=lambda c: c["name"])
def test_worked_examples(case: dict[str, Any]) -> None:
    exp = case["expected"]
    res = reference_close(
        _case_frame(case),
        dt.date.fromisoformat(case["close_date"]),
        method=case["method"].lower(),
        include_physical_value=case["options"]["include_physical_value"],
    )
    expected_pieces = sorted(
        (
            s["issue"],
            s["receipt"],
            D(str(s["qty"])),
            D(str(s["amount"])).quantize(D("0.01")),
            s["principle"].lower().replace(" ", "_"),
        )
        for s in exp["settlements"]
    )
    assert pieces(res) == expected_pieces
    got = adjustments(res)
    assert set(got) == {a["txn"] for a in exp["adjustments"]}
    for a in exp["adjustments"]:
        assert got[a["txn"]][3] == D(str(a["cost_delta"])).quantize(D("0.01"))
        if not a["settled"]:
            row = res.adjustments.filter(pl.col("txn_id") == a["txn"]).row(0, named=True)
            assert row["adjusted_against"] == [a["adjusted_against"]]
    for txn in exp.get("unchanged", []):
        assert txn not in got
        assert txn not in res.settlements["issue_txn_id"].to_list()
    ending = exp.get("ending_financial_derived")
    if ending:
        b = balance(res)
        assert (b["qty"], b["value"]) == (D(str(ending["qty"])), D(str(ending["value"])))
        for txn, (q, v) in ending["open_receipts"].items():
            assert open_items(res)[txn][:2] == (D(str(q)), D(str(v)))


# --------------------------------------------------------------------------------------------
# weighted_average and weighted_average_date: the averaging walk (§8)
# --------------------------------------------------------------------------------------------

WA = "weighted_average"
WAD = "weighted_average_date"
#: The closing pair of item A (no dimensions) at the closing date.
CI31, CR31 = "~wac:2025-01-31:A::issue", "~wac:2025-01-31:A::receipt"


def virtual_rows(res: ReferenceResult) -> set[str]:
    return set(res.open_items.filter(pl.col("is_virtual"))["txn_id"].to_list())


SUMMARIZED = [
    R("R1", 28, 1, "10.00"),
    R("R2", 29, 1, "22.00"),
    I("I1", 29, 1, "16.00"),
    R("R3", 30, 1, "30.00"),
    I("I9", 32, 1, "5.00"),  # after the closing date: untouched, unreported
]


def test_weighted_average_summarized_closing_pair() -> None:
    res = reference_close(frame(SUMMARIZED), CLOSE, method=WA)
    # One day (D): pool {R1, R2, R3} holds 3 sources, so a closing pair dated D. The closing
    # issue takes each source in full (10.00, 22.00, 30.00): 3 units, 62.00. I1 takes one
    # unit of the closing receipt: round(62.00 * 1/3) = round(20.666..) = 20.67.
    assert pieces(res) == [
        ("I1", CR31, D(1), D("20.67"), WA),
        (CI31, "R1", D(1), D("10.00"), WA),
        (CI31, "R2", D(1), D("22.00"), WA),
        (CI31, "R3", D(1), D("30.00"), WA),
    ]
    # I1 posted -16.00, now 20.67: cost_delta +4.67, adjustment -4.67. The pair is never
    # adjusted.
    assert adjustments(res) == {"I1": (D("-16.00"), D("-20.67"), D("-4.67"), D("4.67"))}
    # The closing receipt keeps 2 units, 62.00 - 20.67 = 41.33, carried at its full 62.00.
    assert open_items(res) == {CR31: (D(2), D("41.33"), D("62.00"))}
    assert virtual_rows(res) == {CR31}
    assert res.open_items.row(0, named=True)["date"] == CLOSE
    assert closed(res) == {"R1", "R2", "R3", "I1", CI31}
    b = balance(res)
    assert (b["qty"], b["value"], b["open_receipts"], b["unit_cost"]) == (
        D(2),
        D("41.33"),
        1,
        D("20.665000"),  # 41.33 / 2
    )
    assert log(res) == []
    # The state carries the closing receipt with its input fields, a source for later closes.
    entry = res.state.open[CR31]
    assert (entry.row["qty"], entry.row["amount"], entry.row["seq"]) == (
        D(3),
        D("62.00"),
        2**63 - 1,
    )
    assert (entry.row["date"], entry.row["status"], entry.row["item_id"]) == (
        CLOSE,
        "financial",
        "A",
    )


def test_weighted_average_date_pending_issue_waits_for_a_receipt() -> None:
    rows = [
        I("I1", 27, 2, "30.00"),  # no source on day 27: pending
        R("R1", 28, 1, "10.00"),
        R("R2", 29, 1, "14.00"),
        R("R3", 29, 1, "20.00"),
        I("I2", 30, 1, "16.00"),
        R("R4", 31, 1, "12.00"),
    ]
    res = reference_close(frame(rows), CLOSE, method=WAD)
    ci29, cr29 = "~wac:2025-01-29:A::issue", "~wac:2025-01-29:A::receipt"
    # Day 27: I1 pending, pool empty. Day 28: pool {R1}, one source: direct, I1 takes 1 unit
    # = 10.00; R1 used up, I1 still pending with 1 unit. Day 29: pool {R2, R3}: a pair dated
    # day 29 (2 units, 34.00); I1 takes 1 unit: round(34.00 * 1/2) = 17.00. Day 30: I2 takes
    # the closing receipt's last unit: round(34.00 * 2/2) - 17.00 = 17.00. Day 31: R4 joins
    # the pool, no issue: nothing.
    assert pieces(res) == [
        ("I1", "R1", D(1), D("10.00"), WAD),
        ("I1", cr29, D(1), D("17.00"), WAD),
        ("I2", cr29, D(1), D("17.00"), WAD),
        (ci29, "R2", D(1), D("14.00"), WAD),
        (ci29, "R3", D(1), D("20.00"), WAD),
    ]
    # I1: 10.00 + 17.00 = 27.00 against 30.00 posted: cost_delta -3.00. I2: 17.00 vs 16.00.
    assert adjustments(res) == {
        "I1": (D("-30.00"), D("-27.00"), D("3.00"), D("-3.00")),
        "I2": (D("-16.00"), D("-17.00"), D("-1.00"), D("1.00")),
    }
    # The used-up closing receipt is closed like any receipt; only R4 stays open.
    assert open_items(res) == {"R4": (D(1), D("12.00"), D("12.00"))}
    assert closed(res) == {"I1", "I2", "R1", "R2", "R3", ci29, cr29}
    b = balance(res)
    assert (b["qty"], b["value"], b["open_receipts"]) == (D(1), D("12.00"), 1)

    # The same rows under weighted_average are one day (D): pool {R1..R4} = 4 units, 56.00.
    # Pending in key order (I1 of day 27 first): I1 takes 2 units, round(56 * 2/4) = 28.00;
    # I2 takes 1, round(56 * 3/4) - 28.00 = 14.00; 1 unit, 14.00 stays open.
    res = reference_close(frame(rows), CLOSE, method=WA)
    assert [p for p in pieces(res) if not p[0].startswith("~")] == [
        ("I1", CR31, D(2), D("28.00"), WA),
        ("I2", CR31, D(1), D("14.00"), WA),
    ]
    assert open_items(res) == {CR31: (D(1), D("14.00"), D("56.00"))}


def test_weighted_average_orders_issues_by_their_own_key() -> None:
    # One day for weighted_average groups the rows, but key order stays (date, seq, txn_id):
    # I1 (day 30, seq 2) is served before I2 (day 31, seq 1).
    rows = [
        I("I2", 31, 1, "0.00", seq=1),
        I("I1", 30, 1, "0.00", seq=2),
        R("R1", 31, 1, "7.00", seq=3),
    ]
    res = reference_close(frame(rows), CLOSE, method=WA)
    assert pieces(res) == [("I1", "R1", D(1), D("7.00"), WA)]
    assert log(res) == [
        ("insufficient_receipts", "I2", D(1)),
        ("negative_on_hand", None, D(-1)),
    ]


def test_weighted_average_direct_settlement_with_one_source() -> None:
    rows = [
        R("R1", 29, 3, "10.00"),
        R("P1", 29, 10, "200.00", status="physical"),  # never part of an average
        I("I1", 30, 1, "3.00"),
        I("I2", 30, 1, "3.00"),
    ]
    for include in (False, True):
        res = reference_close(frame(rows), CLOSE, method=WA, include_physical_value=include)
        # One source: no closing pair, the issues draw on R1 in key order along its walk:
        # round(10.00 * 1/3) = 3.33, then round(10.00 * 2/3) - 3.33 = 6.67 - 3.33 = 3.34.
        assert pieces(res) == [
            ("I1", "R1", D(1), D("3.33"), WA),
            ("I2", "R1", D(1), D("3.34"), WA),
        ]
        assert adjustments(res) == {
            "I1": (D("-3.00"), D("-3.33"), D("-0.33"), D("0.33")),
            "I2": (D("-3.00"), D("-3.34"), D("-0.34"), D("0.34")),
        }
        # R1: 1 unit, 10.00 - 6.67 = 3.33; the physical receipt stays as posted.
        assert open_items(res) == {
            "R1": (D(1), D("3.33"), D("10.00")),
            "P1": (D(10), D("200.00"), D("200.00")),
        }
        assert virtual_rows(res) == set()
        b = balance(res)
        assert (b["qty"], b["value"], b["physical_qty"], b["physical_value"]) == (
            D(1),
            D("3.33"),
            D(10),
            D("200.00"),
        )


def test_marking_comes_first_and_leaves_the_average() -> None:
    rows = [
        R("R1", 29, 2, "20.00"),
        R("R2", 29, 1, "40.00"),
        I("I1", 30, 3, "30.00", marked_to="R2"),
    ]
    res = reference_close(frame(rows), CLOSE, method=WA)
    # Marking: I1 takes R2's one unit (40.00, principle marking); R2 is used up, so the pool
    # is {R1}: direct, I1's other 2 units take R1 for 20.00. New value 60.00: +30.00.
    assert pieces(res) == [
        ("I1", "R1", D(2), D("20.00"), WA),
        ("I1", "R2", D(1), D("40.00"), "marking"),
    ]
    assert adjustments(res) == {"I1": (D("-30.00"), D("-60.00"), D("-30.00"), D("30.00"))}
    assert open_items(res) == {}


def test_a_source_walk_continues_after_its_marking_pieces() -> None:
    rows = [
        R("R1", 29, 3, "10.00"),
        R("R2", 29, 1, "5.00"),
        I("I1", 30, 1, "3.00", marked_to="R1"),
        I("I2", 30, 1, "4.00"),
    ]
    res = reference_close(frame(rows), CLOSE, method=WA)
    # Marking: I1 <- R1, round(10.00 * 1/3) = 3.33. Pool {R1 (2 left), R2}: the closing
    # issue takes R1's rest along its walk, round(10.00 * 3/3) - 3.33 = 6.67, and R2 5.00:
    # 3 units, 11.67. I2 takes one: round(11.67 / 3) = round(3.89) = 3.89.
    assert pieces(res) == [
        ("I1", "R1", D(1), D("3.33"), "marking"),
        ("I2", CR31, D(1), D("3.89"), WA),
        (CI31, "R1", D(2), D("6.67"), WA),
        (CI31, "R2", D(1), D("5.00"), WA),
    ]
    assert open_items(res) == {CR31: (D(2), D("7.78"), D("11.67"))}


def test_averages_marked_receipt_after_the_closing_date_and_no_sources() -> None:
    rows = [
        R("R1", 29, 1, "10.00"),
        I("I1", 30, 1, "12.00", marked_to="R9"),
        R("R9", 32, 1, "15.00"),
        I("B1", 30, 2, "8.00", item_id="B"),  # no source at all
    ]
    for method in (WA, WAD):
        res = reference_close(frame(rows), CLOSE, method=method)
        # I1 is excluded (no fallback to the average): it keeps its value, R1 stays open.
        # B1 finds no source: unsettled at its posted value.
        assert pieces(res) == []
        assert adjustments(res) == {}
        assert open_items(res) == {
            "R1": (D(1), D("10.00"), D("10.00")),
            "I1": (D(-1), D("-12.00"), D("-12.00")),
            "B1": (D(-2), D("-8.00"), D("-8.00")),
        }
        assert log(res) == [
            ("insufficient_receipts", "B1", D(2)),
            ("marked_receipt_after_close_date", "I1", D(1)),
            ("negative_on_hand", None, D(-2)),
        ]


def test_two_weighted_average_closes_reuse_the_closing_receipt() -> None:
    rows = [*SUMMARIZED, R("R5", 32, 1, "50.00"), I("I5", 33, 1, "20.00")]
    df = frame(rows)
    first = reference_close(df, CLOSE, method=WA)
    assert open_items(first) == {CR31: (D(2), D("41.33"), D("62.00"))}
    second = reference_close(df, day(33), method=WA, opening=first.state)
    ci, cr = "~wac:2025-02-02:A::issue", "~wac:2025-02-02:A::receipt"
    # Sources: CR31 (2 units, 41.33 open) and R5 (50.00): a pair dated Feb 2, 3 units,
    # 91.33. The closing issue takes CR31 along CR31's own walk from its open state:
    # round(41.33 * 2/2) = 41.33. I9 (day 32, -5.00) and I5 (day 33, -20.00) in key order:
    # I9 round(91.33 * 1/3) = 30.44; I5 round(91.33 * 2/3) - 30.44 = 60.89 - 30.44 = 30.45.
    assert pieces(second) == [
        ("I5", cr, D(1), D("30.45"), WA),
        ("I9", cr, D(1), D("30.44"), WA),
        (ci, "R5", D(1), D("50.00"), WA),
        (ci, CR31, D(2), D("41.33"), WA),
    ]
    assert adjustments(second) == {
        "I5": (D("-20.00"), D("-30.45"), D("-10.45"), D("10.45")),
        "I9": (D("-5.00"), D("-30.44"), D("-25.44"), D("25.44")),
    }
    # 3 - 2 = 1 unit, 91.33 - 60.89 = 30.44 open.
    assert open_items(second) == {cr: (D(1), D("30.44"), D("91.33"))}
    assert {CR31, CI31, ci, "R5", "I5", "I9"} <= closed(second)
    # The state alone is enough: the next df may hold only the rows after the first close.
    again = reference_close(
        df.filter(pl.col("date") > CLOSE), day(33), method=WA, opening=first.state
    )
    assert pieces(again) == pieces(second)


# --------------------------------------------------------------------------------------------
# standard and moving_average in a close (§9)
# --------------------------------------------------------------------------------------------

ONHAND31 = "~onhand:2025-01-31:A:"


def test_standard_close_carries_one_on_hand_row() -> None:
    rows = [
        R("R1", 29, 2, "20.00"),
        I("I1", 30, 1, "10.00", marked_to="R1"),
        R("P1", 30, 1, "9.00", status="physical"),
        I("I2", 32, 1, "10.00"),  # after D
    ]
    res = reference_close(frame(rows), CLOSE, method="standard")
    # No pieces, no adjustments; the marking is ignored (info, qty = the issue's 1 unit).
    assert pieces(res) == []
    assert adjustments(res) == {}
    assert log(res) == [("marking_ignored", "I1", D(1))]
    assert res.log["level"].to_list() == ["info"]
    # R1 and I1 are closed into the on-hand row: 2 - 1 = 1 unit, 20.00 - 10.00 = 10.00.
    assert closed(res) == {"R1", "I1"}
    assert open_items(res) == {
        ONHAND31: (D(1), D("10.00"), D("10.00")),
        "P1": (D(1), D("9.00"), D("9.00")),
    }
    assert virtual_rows(res) == {ONHAND31}
    b = balance(res)
    assert (b["qty"], b["value"], b["open_receipts"], b["unit_cost"]) == (
        D(1),
        D("10.00"),
        1,
        D("10.000000"),
    )
    assert (b["physical_qty"], b["physical_value"]) == (D(1), D("9.00"))

    # Next close: the on-hand row is a financial row dated <= D like any other: closed into
    # the new on-hand row with I2 and R3: 1 - 1 + 1 = 1 unit, 10.00 - 10.00 + 12.00 = 12.00.
    df = frame([*rows, R("R3", 33, 1, "12.00")])
    second = reference_close(df, day(33), method="standard", opening=res.state)
    assert open_items(second) == {
        "~onhand:2025-02-02:A:": (D(1), D("12.00"), D("12.00")),
        "P1": (D(1), D("9.00"), D("9.00")),
    }
    assert {ONHAND31, "I2", "R3"} <= closed(second)


def test_moving_average_negative_zero_and_empty_on_hand() -> None:
    rows = [
        # site S1: negative on-hand, carried as an issue
        R("R1", 29, 1, "5.00", site="S1"),
        I("I1", 30, 3, "15.00", site="S1"),
        # site null: quantity 0 but value -0.01 (not both zero): still carried
        R("R2", 30, 1, "0.00"),
        I("I2", 30, 1, "0.01"),
        # site S2: quantity and value both zero: no on-hand row
        R("R3", 30, 1, "4.00", site="S2"),
        I("I3", 31, 1, "4.00", site="S2"),
    ]
    res = reference_close(
        frame(rows, ("site",)), CLOSE, method="moving_average", dimensions=["site"]
    )
    assert pieces(res) == []
    assert adjustments(res) == {}
    assert open_items(res) == {
        "~onhand:2025-01-31:A:S1": (D(-2), D("-10.00"), D("-10.00")),
        "~onhand:2025-01-31:A:": (D(0), D("-0.01"), D("-0.01")),
    }
    assert closed(res) == {"R1", "I1", "R2", "I2", "R3", "I3"}
    bal = {r["site"]: r for r in res.balances.iter_rows(named=True)}
    assert (bal["S1"]["qty"], bal["S1"]["value"], bal["S1"]["open_receipts"]) == (
        D(-2),
        D("-10.00"),
        0,
    )
    assert bal["S1"]["unit_cost"] is None
    assert (bal[None]["qty"], bal[None]["value"]) == (D(0), D("-0.01"))
    assert (bal["S2"]["qty"], bal["S2"]["value"]) == (D(0), D(0))
    assert log(res) == [("negative_on_hand", None, D(-2))]


def test_item_table_mixing_all_methods() -> None:
    rows = [
        R("R1", 29, 1, "10.00"),
        R("R2", 29, 1, "22.00"),
        I("I1", 30, 1, "16.00"),
        *(
            r
            for item in ("B", "C", "E")
            for r in (
                R(f"{item}1", 29, 1, "10.00", item_id=item),
                R(f"{item}2", 29, 1, "22.00", item_id=item),
                I(f"{item}I", 30, 1, "16.00", item_id=item),
            )
        ),
    ]
    items = pl.DataFrame(
        {
            "item_id": ["A", "B", "C", "E"],
            "method": [WA, WAD, "lifo", "standard"],
            "standard_cost": [None, None, None, D("16.00")],  # not read by the close
        },
        schema={"item_id": pl.String, "method": pl.String, "standard_cost": pl.Decimal(38, 2)},
    )
    res = reference_close(frame(rows), CLOSE, method="fifo", items=items)
    # A, B: a pair of 2 units, 32.00; the issue takes 16.00 (as posted). C: lifo, 22.00.
    # E: standard, no pieces, on-hand 1 unit 16.00.
    assert [p for p in pieces(res) if not p[0].startswith("~")] == [
        ("BI", "~wac:2025-01-30:B::receipt", D(1), D("16.00"), WAD),
        ("CI", "C2", D(1), D("22.00"), "lifo"),
        ("I1", CR31, D(1), D("16.00"), WA),
    ]
    assert set(adjustments(res)) == {"CI"}
    assert virtual_rows(res) == {
        CR31,
        "~wac:2025-01-30:B::receipt",
        "~onhand:2025-01-31:E:",
    }
    assert open_items(res)["~onhand:2025-01-31:E:"] == (D(1), D("16.00"), D("16.00"))


# --------------------------------------------------------------------------------------------
# The public worked examples (weighted_average, weighted_average_date)
# --------------------------------------------------------------------------------------------

_AVERAGE_CASES = [
    c
    for c in json.loads(EXAMPLES.read_text())["cases"]
    if c["method"] in ("WEIGHTED_AVERAGE", "WEIGHTED_AVERAGE_DATE")
]


@pytest.mark.parametrize("case", _AVERAGE_CASES, ids=lambda c: c["name"])
def test_average_worked_examples(case: dict[str, Any]) -> None:
    exp = case["expected"]
    method = case["method"].lower()
    res = reference_close(
        _case_frame(case),
        dt.date.fromisoformat(case["close_date"]),
        method=method,
        include_physical_value=case["options"]["include_physical_value"],
    )
    # The documentation's closing pair 7a/7b, per date (weighted_average: the closing date).
    pairs = exp.get("wa_closing_transactions") or {}
    if "closing_issue" in pairs:
        pairs = {case["close_date"]: pairs}
    expected = [
        (s["issue"], s["receipt"], s["qty"], s["amount"], s["principle"].lower())
        for s in exp.get("settlements", [])
    ]
    for date, pair in pairs.items():
        ids = {"7a": f"~wac:{date}:A::issue", "7b": f"~wac:{date}:A::receipt"}
        expected += [
            (
                ids.get(s["issue"], s["issue"]),
                ids.get(s["receipt"], s["receipt"]),
                s["qty"],
                s["amount"],
                method,
            )
            for s in (
                *pair["closing_issue"]["settles_receipts"],
                *pair["closing_receipt"]["settles_issues"],
            )
        ]
    assert pieces(res) == sorted(
        (i, r, D(str(q)), D(str(a)).quantize(D("0.01")), p.replace(" ", "_"))
        for i, r, q, a, p in expected
    )
    rule = exp.get("adjustments_rule_derived", exp.get("adjustments", []))
    got = adjustments(res)
    want = {a["txn"]: D(str(a["cost_delta"])).quantize(D("0.01")) for a in rule}
    assert {t: v[3] for t, v in got.items()} == {t: v for t, v in want.items() if v != 0}
    for txn in exp.get("unchanged", []):
        assert txn not in got
    ending = exp.get("ending_financial_derived")
    if ending:
        b = balance(res)
        assert (b["qty"], b["value"]) == (D(str(ending["qty"])), D(str(ending["value"])))
