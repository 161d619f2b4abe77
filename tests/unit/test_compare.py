"""invclose.compare: one item under every periodic method, hand-calculated (sample PAINT)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

import invclose
from tests.helpers import D

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def test_compare_paint_under_every_periodic_method() -> None:
    tx = invclose.read_transactions(SAMPLE / "transactions.parquet", dimensions=["site"])
    table = invclose.compare(tx, "2025-01-31", dimensions=["site"]).filter(
        pl.col("item_id") == "PAINT"
    )
    # PAINT: P-201 10 @ 8.00 (2 Jan), S-201 -5 (8 Jan), P-202 10 @ 9.50 (16 Jan), S-202 -8 (28 Jan).
    expected = {
        # fifo: 5 @ 8.00 + (5 @ 8.00 + 3 @ 9.50) = 40.00 + 68.50
        "fifo": D("108.50"),
        # lifo (periodic): 10 @ 9.50 + 3 @ 8.00
        "lifo": D("119.00"),
        # lifo_date: S-201 takes P-201 (5 @ 8.00), S-202 takes P-202 (8 @ 9.50)
        "lifo_date": D("116.00"),
        # weighted average: 175.00 / 20 units, 13 issued: round(175.00 * 13 / 20)
        "weighted_average": D("113.75"),
        # by date: 8 Jan direct 40.00; 28 Jan (40.00 + 95.00) / 15 = 9.00 x 8 = 72.00
        "weighted_average_date": D("112.00"),
    }
    assert dict(table.select("method", "cost_of_goods").rows()) == expected
    # Cost of goods + ending value = everything received (175.00), under every method.
    assert set((table["cost_of_goods"] + table["ending_value"]).to_list()) == {D("175.00")}
    assert set(table["issued_qty"].to_list()) == {D(13)}
    assert set(table["ending_qty"].to_list()) == {D(7)}


def test_compare_ignores_marking_only_per_copy() -> None:
    # BOLT's marked sale S-003 must find its receipt in every method's copy: fifo cost is the
    # hand calculation of sample_data/README.md (214.00 at S1 + 44.00 at S2).
    tx = invclose.read_transactions(SAMPLE / "transactions.parquet", dimensions=["site"])
    table = invclose.compare(tx, "2025-01-31", methods=["fifo"], dimensions=["site"])
    assert table.filter(pl.col("item_id") == "BOLT")["cost_of_goods"].to_list() == [D("258.00")]
