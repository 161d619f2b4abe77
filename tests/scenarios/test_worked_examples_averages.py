"""The ERP documentation's worked cases for weighted average and weighted average date.

Summarized settlement creates a virtual closing pair: the closing issue (the documentation's
7a) settles every source in full, and the closing receipt (7b) serves the issues; its
remainder is the on-hand that opens the next close. Direct settlement pairs issues with the
single source. Where a case is marked ``conflict``, the rule-derived expectation is asserted
and the documentation's own statement is an expected failure (close-semantics §15).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import pytest

import invclose
from tests.scenarios.worked_cases import cases_for, close_kwargs, dec, to_frame, txn_qty

CASES = cases_for("WEIGHTED_AVERAGE", "WEIGHTED_AVERAGE_DATE")
CENT = Decimal("0.01")


def _close(case: dict[str, Any]) -> invclose.CloseResult:
    return invclose.close(to_frame(case), case["close_date"], **close_kwargs(case))


def _closing_sets(case: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The case's closing pairs by date (weighted average: the closing date)."""
    wct = case["expected"].get("wa_closing_transactions")
    if not wct:
        return {}
    if "closing_issue" in wct:
        return {case["close_date"]: wct}
    return dict(wct)


def _virtual(date: str, suffix: str) -> str:
    return f"~wac:{date}:ITEM::{suffix}"


def _full_closing_receipt(ci: dict[str, Any], cr: dict[str, Any]) -> dict[str, Any]:
    """Closing receipt = the closing issue's total; open = total less what it settled (§15.3)."""
    if "remains_open" in cr:
        return {
            "qty": cr["qty"],
            "amount": cr["financial_amount"],
            "open_qty": cr["remains_open"]["qty"],
            "open_amount": cr["remains_open"]["amount"],
        }
    settled_q = sum(dec(s["qty"]) for s in cr["settles_issues"])
    settled_a = sum(dec(s["amount"]) for s in cr["settles_issues"])
    return {
        "qty": ci["qty"],
        "amount": ci["amount"],
        "open_qty": dec(ci["qty"]) - settled_q,
        "open_amount": dec(ci["amount"]) - settled_a,
    }


def _adjustment_expectations(case: dict[str, Any]) -> list[dict[str, Any]]:
    expected = case["expected"]
    if expected.get("conflict"):
        return list(expected["adjustments_rule_derived"])
    return list(expected.get("adjustments", []))


def test_every_average_case_is_covered() -> None:
    assert len(CASES) == 10


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_adjustments(case: dict[str, Any]) -> None:
    result = _close(case)
    by_txn = {r["txn_id"]: r for r in result.adjustments.iter_rows(named=True)}
    wanted = {}
    for exp in _adjustment_expectations(case):
        total = (dec(exp["cost_delta"]) * txn_qty(case, exp["txn"])).quantize(CENT)
        if total != 0:
            wanted[exp["txn"]] = total
    assert {t: r["cost_delta"] for t, r in by_txn.items()} == wanted
    for txn, total in wanted.items():
        assert by_txn[txn]["adjustment"] == -total  # issues: own sign is the opposite


@pytest.mark.parametrize(
    "case", [c for c in CASES if "settlements" in c["expected"]], ids=lambda c: c["name"]
)
def test_direct_and_marked_settlements(case: dict[str, Any]) -> None:
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
    if case["expected"].get("no_other_settlements") or not _closing_sets(case):
        assert actual == expected
    else:
        assert expected <= actual
    assert not any(t.startswith("~wac") for t, *_ in actual)


@pytest.mark.parametrize("case", [c for c in CASES if _closing_sets(c)], ids=lambda c: c["name"])
def test_summarized_settlement_through_the_closing_pair(case: dict[str, Any]) -> None:
    result = _close(case)
    pieces = {
        (r["issue_txn_id"], r["receipt_txn_id"]): (r["qty"], r["amount"])
        for r in result.settlements.iter_rows(named=True)
    }
    principle = {"WEIGHTED_AVERAGE": "weighted_average"}.get(
        case["method"], "weighted_average_date"
    )
    assert set(result.settlements["principle"]) == {principle}
    for date, pair in _closing_sets(case).items():
        issue, receipt = _virtual(date, "issue"), _virtual(date, "receipt")
        ci = pair["closing_issue"]
        # The closing issue takes every source in full.
        for s in ci["settles_receipts"]:
            assert pieces[(issue, s["receipt"])] == (dec(s["qty"]), dec(s["amount"]))
        taken = [v for (i, _), v in pieces.items() if i == issue]
        assert sum(q for q, _ in taken) == dec(ci["qty"])
        assert sum(a for _, a in taken) == dec(ci["amount"])
        # The closing receipt serves the issues at the average, cut cumulatively.
        for s in pair["closing_receipt"]["settles_issues"]:
            assert pieces[(s["issue"], receipt)] == (dec(s["qty"]), dec(s["amount"]))
        cr = pair["closing_receipt"]
        full = cr.get("derived_full") or _full_closing_receipt(ci, cr)
        row = result.open_items.filter(pl.col("txn_id") == receipt).row(0, named=True)
        assert row["is_virtual"] is True
        assert (row["qty"], row["amount"]) == (dec(full["qty"]), dec(full["amount"]))
        assert (row["open_qty"], row["open_value"]) == (
            dec(full["open_qty"]),
            dec(full["open_amount"]),
        )
        # The closing issue is closed, and neither virtual row posts a voucher line.
        assert issue in set(result.closed_items["txn_id"])
        assert not result.vouchers["txn_id"].is_in([issue, receipt]).any()


@pytest.mark.parametrize(
    "case", [c for c in CASES if "daily_average" in c["expected"]], ids=lambda c: c["name"]
)
def test_daily_average(case: dict[str, Any]) -> None:
    result = _close(case)
    for date, unit in case["expected"]["daily_average"].items():
        row = result.open_items.filter(pl.col("txn_id") == _virtual(date, "receipt")).row(
            0, named=True
        )
        assert (row["amount"] / row["qty"]).quantize(CENT) == dec(unit)


@pytest.mark.parametrize(
    "case", [c for c in CASES if "unchanged" in c["expected"]], ids=lambda c: c["name"]
)
def test_physical_rows_are_left_alone(case: dict[str, Any]) -> None:
    result = _close(case)
    touched = (
        set(result.settlements["issue_txn_id"])
        | set(result.settlements["receipt_txn_id"])
        | set(result.adjustments["txn_id"])
    )
    assert not touched & set(case["expected"]["unchanged"])


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if "ending_financial_derived" in c["expected"]],
    ids=lambda c: c["name"],
)
def test_ending_on_hand(case: dict[str, Any]) -> None:
    result = _close(case)
    ending = case["expected"]["ending_financial_derived"]
    assert result.balances.select("qty", "value").row(0) == (
        dec(ending["qty"]),
        dec(ending["value"]),
    )


@pytest.mark.parametrize(
    "case", [c for c in CASES if c["expected"].get("conflict")], ids=lambda c: c["name"]
)
@pytest.mark.xfail(
    strict=True, reason="the documentation's statement contradicts its own rules (§15)"
)
def test_documentation_statement_in_conflict(case: dict[str, Any]) -> None:
    result = _close(case)
    by_txn = {r["txn_id"]: r["cost_delta"] for r in result.adjustments.iter_rows(named=True)}
    for exp in case["expected"]["adjustments_doc_stated"]:
        total = (dec(exp["cost_delta"]) * txn_qty(case, exp["txn"])).quantize(CENT)
        assert by_txn.get(exp["txn"], Decimal(0)) == total
