"""The pre-close check (close-semantics §13): what a close would log, without closing."""

from __future__ import annotations

import polars as pl

import invclose
from tests.helpers import ACCOUNTS, D, day, tx


def test_check_lists_unsettled_issues_and_missing_accounts() -> None:
    frame = tx(("R", "A", 1, 1, "10.00"), ("S", "A", 2, -2, "-30.00"))
    findings = invclose.check(frame, day(31))
    rows = findings.select("level", "code", "txn_id", "qty").rows()
    # S: 1 of 2 units settles at 10.00; the other keeps 15.00 -> value 25.00, 5.00 less cost,
    # which needs accounts: none given, so a missing_account error row instead of a crash.
    assert ("error", "missing_account", "S", D(2)) in rows
    assert ("warning", "insufficient_receipts", "S", D(1)) in rows
    assert ("warning", "negative_on_hand", None, D(-1)) in rows
    assert findings.columns == invclose.close(frame, day(31), accounts=ACCOUNTS).log.columns


def test_check_flags_cost_price_deviation_beyond_25_percent() -> None:
    # Unit costs 10.00, 10.50, 14.00: lower median 10.50; 14.00 is 33 % above, 10.00 is 4.8 %
    # below. Only R3 deviates by more than 25 %.
    frame = tx(
        ("R1", "A", 1, 1, "10.00"),
        ("R2", "A", 2, 2, "21.00"),
        ("R3", "A", 3, 1, "14.00"),
    )
    findings = invclose.check(frame, day(31), accounts=ACCOUNTS)
    deviations = findings.filter(pl.col("code") == "cost_price_deviation")
    assert deviations["txn_id"].to_list() == ["R3"]
    assert "10.5" in deviations["message"][0]


def test_check_writes_nothing_and_leaves_the_input_alone() -> None:
    frame = tx(("R", "A", 1, 1, "10.00"), ("S", "A", 2, -1, "-12.00"))
    before = frame.clone()
    findings = invclose.check(frame, day(31), accounts=ACCOUNTS)
    assert frame.equals(before)
    assert findings.filter(pl.col("level") == "error").is_empty()


def test_a_closing_receipt_is_not_a_receipt_of_the_deviation_check() -> None:
    # Weighted average with R1 10.00, R2 100.00, R3 100.00: the median of the posted unit
    # costs is 100.00 and only R1 deviates (90 % below). The close's virtual closing receipt
    # (~wac..., at the average 70.00) is no posted receipt: it must neither be flagged nor
    # move the median to 70.00 (which would flag R2 and R3, 43 % above).
    frame = tx(
        ("R1", "A", 1, 1, "10.00"),
        ("R2", "A", 2, 1, "100.00"),
        ("R3", "A", 3, 1, "100.00"),
        ("I1", "A", 4, -1, "-70.00"),
    )
    findings = invclose.check(frame, day(31), method="weighted_average", accounts=ACCOUNTS)
    deviations = findings.filter(pl.col("code") == "cost_price_deviation")
    assert deviations["txn_id"].to_list() == ["R1"]
    assert "median receipt unit cost 100.000000" in deviations["message"][0]


def test_unit_costs_beyond_64_bits_are_exact() -> None:
    # 0.000001 units for 10,000,000,000,000.00: a unit cost of 1e19 (1e25 micro-currency,
    # beyond int64) in the balances and the deviation check, without an overflow.
    frame = tx(("R1", "A", 1, "0.000001", "10000000000000.00"))
    result = invclose.close(frame, day(31), accounts=ACCOUNTS)
    assert result.balances["unit_cost"].to_list() == [D("10000000000000000000")]
    assert invclose.check(frame, day(31), accounts=ACCOUNTS).is_empty()
