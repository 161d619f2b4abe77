"""The running-average cases of the documentation, through ``invclose.post_costs``.

Each case posts its receipts, then a probe issue of 1 unit with no amount: ``post_costs``
gives it the running average of its group at that point (close-semantics §1.3).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

import invclose
from tests.scenarios.worked_cases import cases_for, dec

CASES = {c["name"]: c for c in cases_for("RUNNING_AVERAGE")}
DAY = dt.date(2021, 12, 30)


def _frame(case: dict[str, Any], probes: list[dict[str, str]] | None = None) -> pl.DataFrame:
    rows = []
    for t in case["transactions"]:
        sign = 1 if t["type"] == "receipt" else -1
        qty = dec(t["qty"]) * sign
        cost = t.get("unit_cost_posted")
        amount = None if cost is None else (qty * dec(cost)).quantize(Decimal("0.01"))
        rows.append(
            {
                "txn_id": t["id"],
                "item_id": "ITEM",
                "date": DAY,
                "qty": qty,
                "amount": amount,
                "status": t["status"],
                "seq": t["seq"],
                "warehouse": t.get("dims", {}).get("warehouse"),
                "batch": t.get("dims", {}).get("batch"),
            }
        )
    for k, probe in enumerate(probes or [{}]):
        rows.append(
            {
                "txn_id": f"PROBE{k}",
                "item_id": "ITEM",
                "date": DAY,
                "qty": Decimal(-1),
                "amount": None,
                "status": "financial",
                "seq": 1000 + k,
                "warehouse": probe.get("warehouse"),
                "batch": probe.get("batch"),
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "txn_id": pl.String,
            "item_id": pl.String,
            "date": pl.Date,
            "qty": pl.Decimal(38, 6),
            "amount": pl.Decimal(38, 2),
            "status": pl.String,
            "seq": pl.Int64,
            "warehouse": pl.String,
            "batch": pl.String,
        },
    )


def _cost(frame: pl.DataFrame, txn: str) -> Decimal:
    """Posted unit cost of a row (positive)."""
    row = frame.filter(pl.col("txn_id") == txn).row(0, named=True)
    return abs(row["amount"] / row["qty"]).quantize(Decimal("0.01"))


def test_physical_value_counts_with_the_option() -> None:
    # 2 @ 10.00 physical + 3 @ 12.00 financial = 56.00 / 5 = 11.20.
    case = CASES["running_average_include_physical_example1"]
    costed = invclose.post_costs(_frame(case), include_physical_value=True)
    assert _cost(costed, "PROBE0") == dec(case["expected"]["running_average"])


@pytest.mark.parametrize("include", [False, True])
def test_only_physical_stock_falls_back_to_the_default_cost(include: bool) -> None:
    # Without the option the financial on-hand is empty: the sale posts at the item's
    # default cost 10.00; with it, at the physical receipt's 12.00.
    case = CASES["running_average_include_physical_example2"]
    items = pl.DataFrame({"item_id": ["ITEM"], "default_cost": ["10.00"]})
    frame = _frame(case, probes=[])  # SO1 itself has no posted cost
    costed = invclose.post_costs(
        frame.filter(~pl.col("txn_id").str.starts_with("PROBE")),
        items=items,
        include_physical_value=include,
    )
    key = (
        "issue_posted_unit_cost_if_include_physical_value" if include else "issue_posted_unit_cost"
    )
    assert _cost(costed, "SO1") == dec(case["expected"][key]["SO1"])


def test_negative_stock_amplifies_a_small_quantity() -> None:
    # 100 in for 100.00, 200 out at 1.00, 101 in physically for 202.00:
    # (202.00 - 100.00) / (101 - 100) = 102.00 per unit.
    case = CASES["running_average_pricing_amplification"]
    costed = invclose.post_costs(_frame(case), include_physical_value=True)
    assert _cost(costed, "PROBE0") == dec(case["expected"]["running_average_after_R2"])


def test_receipt_before_the_issue_gives_the_exact_average() -> None:
    # Order R1, R2, I1 instead: the issue of 200 costs round(302.00 * 200 / 201) = 300.50
    # (1.5025 a unit, not the documentation's 1.51, §15.8); 1 unit for 1.50 stays.
    case = CASES["running_average_pricing_amplification"]
    frame = _frame(case, probes=[]).filter(~pl.col("txn_id").str.starts_with("PROBE"))
    frame = frame.with_columns(
        amount=pl.when(pl.col("txn_id") == "I1").then(None).otherwise(pl.col("amount")),
        seq=pl.when(pl.col("txn_id") == "I1").then(9).otherwise(pl.col("seq")),
    )
    costed = invclose.post_costs(frame, include_physical_value=True)
    i1 = costed.filter(pl.col("txn_id") == "I1").row(0, named=True)
    assert i1["amount"] == Decimal("-300.50")
    assert Decimal("302.00") + i1["amount"] == Decimal("1.50")


def test_running_average_per_financial_warehouse() -> None:
    case = CASES["running_average_per_financial_warehouse"]
    frame = _frame(case, probes=[{"warehouse": "GW"}, {"warehouse": "MW"}])
    costed = invclose.post_costs(frame, dimensions=["warehouse"])
    expected = case["expected"]["sales_issue_posted_unit_cost"]
    assert _cost(costed, "PROBE0") == dec(expected["GW"])
    assert _cost(costed, "PROBE1") == dec(expected["MW"])


def test_running_average_per_warehouse_and_batch() -> None:
    case = CASES["running_average_per_warehouse_and_batch"]
    probes = [{"warehouse": "GW", "batch": "AAA"}, {"warehouse": "GW", "batch": "BBB"}]
    costed = invclose.post_costs(_frame(case, probes=probes), dimensions=["warehouse", "batch"])
    expected = case["expected"]["running_average"]
    assert _cost(costed, "PROBE0") == dec(expected["GW/AAA"])
    assert _cost(costed, "PROBE1") == dec(expected["GW/BBB"])


def test_every_running_average_case_is_covered() -> None:
    assert len(CASES) == 5
