"""The ERP documentation's worked cases for FIFO, LIFO and LIFO date, as scenario tests.

Each case is the documentation's transactions; each test states, in the case's own numbers,
what an accountant would check: which issue settled against which receipt for how much, what
each adjustment is, which rows the close must leave alone, and what stays on hand.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

import invclose
from tests.scenarios.worked_cases import cases_for, close_kwargs, dec, to_frame, txn_qty

CASES = cases_for("FIFO", "LIFO", "LIFO_DATE")


def _close(case: dict[str, Any]) -> invclose.CloseResult:
    return invclose.close(to_frame(case), case["close_date"], **close_kwargs(case))


def test_every_ordinal_case_is_covered() -> None:
    # 3 methods x (without, with include physical value, marking) in the 2022 documentation.
    assert len(CASES) == 9


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_settlements_are_the_documented_pieces(case: dict[str, Any]) -> None:
    result = _close(case)
    actual = {
        (r["issue_txn_id"], r["receipt_txn_id"], r["qty"], r["amount"], r["principle"])
        for r in result.settlements.iter_rows(named=True)
    }
    expected = {
        (
            s["issue"],
            s["receipt"],
            dec(s["qty"]),
            dec(s["amount"]),
            s["principle"].lower().replace(" ", "_"),
        )
        for s in case["expected"]["settlements"]
    }
    assert actual == expected


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_adjustments_move_each_issue_to_its_settled_cost(case: dict[str, Any]) -> None:
    result = _close(case)
    by_txn = {r["txn_id"]: r for r in result.adjustments.iter_rows(named=True)}
    for exp in case["expected"]["adjustments"]:
        qty = txn_qty(case, exp["txn"])
        # cost_delta in the case is per unit: (final - posted unit cost); ours is for the row.
        want = (dec(exp["cost_delta"]) * qty).quantize(Decimal("0.01"))
        if want == 0:
            assert exp["txn"] not in by_txn
            continue
        row = by_txn[exp["txn"]]
        assert row["cost_delta"] == want, exp
        # Issues: adjustment is in the transaction's own sign, so the opposite of cost_delta.
        assert row["adjustment"] == -want
        assert row["settled_amount"] - row["posted_amount"] == row["adjustment"]
        assert row["settled_amount"] == -(dec(exp["final_unit_cost"]) * qty).quantize(
            Decimal("0.01")
        )
        if exp.get("settled") is False:
            assert row["adjusted_against"] == [exp["adjusted_against"]]
        else:
            assert row["adjusted_against"] is None
    expected_txns = {e["txn"] for e in case["expected"]["adjustments"] if dec(e["cost_delta"]) != 0}
    assert set(by_txn) == expected_txns


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_rows_the_close_must_leave_alone(case: dict[str, Any]) -> None:
    result = _close(case)
    expected = case["expected"]
    untouched = set(expected.get("unchanged", [])) | set(expected.get("no_settlement_rows_for", []))
    settled_ids = set(result.settlements["issue_txn_id"]) | set(
        result.settlements["receipt_txn_id"]
    )
    assert not (untouched & settled_ids)
    for txn in expected.get("unchanged", []):
        assert txn not in set(result.adjustments["txn_id"])


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if "ending_financial_derived" in c["expected"]],
    ids=lambda c: c["name"],
)
def test_what_stays_on_hand(case: dict[str, Any]) -> None:
    result = _close(case)
    ending = case["expected"]["ending_financial_derived"]
    balance = result.balances.row(0, named=True)
    assert balance["qty"] == dec(ending["qty"])
    assert balance["value"] == dec(ending["value"])
    open_receipts = {
        r["txn_id"]: (r["open_qty"], r["open_value"])
        for r in result.open_items.iter_rows(named=True)
        if r["status"] == "financial" and r["qty"] > 0
    }
    assert open_receipts == {
        txn: (dec(q), dec(v)) for txn, (q, v) in ending["open_receipts"].items()
    }
    assert balance["open_receipts"] == len(ending["open_receipts"])


def test_fifo_marking_example_in_words() -> None:
    """fifo_2022_marking: 3b (posted 16.00) is marked to 2b and settles for 22.00 (+6.00)."""
    (case,) = [c for c in CASES if c["name"] == "fifo_2022_marking"]
    result = _close(case)
    assert result.settlements.select("issue_txn_id", "receipt_txn_id", "principle").rows() == [
        ("3b", "2b", "marking")
    ]
    assert result.adjustments.select("txn_id", "cost_delta").rows() == [("3b", Decimal("6.00"))]


def test_closing_date_is_the_adjustment_date() -> None:
    (case,) = [c for c in CASES if c["name"] == "fifo_2022_without_include_physical"]
    result = _close(case)
    assert set(result.adjustments["adjustment_date"]) == {dt.date.fromisoformat(case["close_date"])}
    assert result.vouchers["posting_date"].unique().to_list() == [
        dt.date.fromisoformat(case["close_date"])
    ]


def test_include_physical_logs_the_uninvoiced_receipt_it_used() -> None:
    """lifo_2022_with_include_physical: 6a (physical) is adjusted to physical receipt 4a only."""
    (case,) = [c for c in CASES if c["name"] == "lifo_2022_with_include_physical"]
    result = _close(case)
    assert pl.Series(
        result.adjustments.filter(pl.col("txn_id") == "6a")["adjusted_against"]
    ).to_list() == [["4a"]]
    # 6a is a physical issue, so no financial issue took 4a: no receipt_not_invoiced row.
    assert "receipt_not_invoiced" not in set(result.log["code"])
