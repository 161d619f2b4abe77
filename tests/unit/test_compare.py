"""invclose.compare: one item under every periodic method, hand-calculated (sample PAINT)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

import invclose
from invclose.progress import ProgressEvent
from tests.helpers import D, rows_per_part

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


def test_a_repeated_method_is_compared_once() -> None:
    tx = invclose.read_transactions(SAMPLE / "transactions.parquet", dimensions=["site"])
    paint = pl.col("item_id") == "PAINT"
    table = invclose.compare(tx, "2025-01-31", methods=["fifo", "FIFO"], dimensions=["site"])
    # PAINT under fifo, as above: 13 issued for 108.50, 7 left for 175.00 - 108.50 = 66.50
    # (the repeated method was closed twice under one key and every figure doubled).
    assert table.filter(paint).select(
        "method", "issued_qty", "cost_of_goods", "ending_value"
    ).rows() == [("fifo", D(13), D("108.50"), D("66.50"))]
    one = invclose.compare(tx, "2025-01-31", methods="fifo", dimensions=["site"])
    assert one.equals(table)


def test_an_empty_list_of_methods_is_refused() -> None:
    tx = invclose.read_transactions(SAMPLE / "transactions.parquet", dimensions=["site"])
    with pytest.raises(invclose.ConfigError, match="methods is empty"):
        invclose.compare(tx, "2025-01-31", methods=[], dimensions=["site"])


def test_compare_from_an_opening_counts_the_open_part_of_a_carried_issue() -> None:
    # BOLT after the January close: S-101 (S2, 40 issued for 44.00 posted) is open for 10
    # units at 11.00 (no receipt at S2); P-002 (S1) has 5 units left for 6.00. February's
    # rows alone: S-004 issues 5 at S1 and takes P-002's last 5 (6.00) under both methods.
    # The run issues S-101's open 10 units at their 11.00 and S-004's 5 at 6.00: 15 units for
    # 17.00. The cost used to be S-101's whole carried 44.00 beside its open 10 units (50.00).
    tx = invclose.read_transactions(SAMPLE / "transactions.parquet", dimensions=["site"])
    settings = {"dimensions": ["site"], "items": pl.read_csv(SAMPLE / "items.csv")}
    jan = invclose.close(
        tx,
        "2025-01-31",
        accounts=pl.read_csv(SAMPLE / "accounts.csv", infer_schema=False),
        **settings,
    )
    february = tx.filter(pl.col("date") > pl.date(2025, 1, 31))
    for given in (february, tx):
        table = invclose.compare(
            given, "2025-02-28", methods=["fifo", "lifo"], dimensions=["site"], opening=jan
        ).filter(pl.col("item_id") == "BOLT")
        assert table.select("method", "issued_qty", "cost_of_goods").rows() == [
            ("fifo", D(15), D("17.00")),
            ("lifo", D(15), D("17.00")),
        ]


def _produced() -> pl.DataFrame:
    """Component C bought at 10.00 then 30.00; order PO1 consumes one C and outputs one P,
    which is sold."""
    day = [dt.date(2025, 1, d) for d in (1, 2, 3, 3, 4)]
    return pl.DataFrame(
        {
            "txn_id": ["r1", "r2", "c1", "o1", "s1"],
            "item_id": ["C", "C", "C", "P", "P"],
            "date": day,
            "seq": [1, 2, 3, 4, 5],
            "qty": [D("1"), D("1"), D("-1"), D("1"), D("-1")],
            "amount": [D("10.00"), D("30.00"), D("-20.00"), D("20.00"), D("-20.00")],
            "kind": ["purchase", "purchase", "consumption", "production", "sale"],
            "order_id": [None, None, "PO1", "PO1", None],
        }
    )


def test_each_method_costs_its_own_production_orders() -> None:
    # fifo: c1 takes r1 (10.00), so o1 costs 10.00 and its sale s1 10.00; C keeps r2 (30.00).
    # lifo: c1 takes r2 (30.00), so P's sale costs 30.00; C keeps r1 (10.00).
    # Both methods in one run used to share PO1: each output took half of both components,
    # and P cost 20.00 under both.
    table = invclose.compare(_produced(), "2025-01-31", methods=["fifo", "lifo"])
    assert table.select("item_id", "method", "cost_of_goods", "ending_value").rows() == [
        ("C", "fifo", D("10.00"), D("30.00")),
        ("C", "lifo", D("30.00"), D("10.00")),
        ("P", "fifo", D("10.00"), D("0.00")),
        ("P", "lifo", D("30.00"), D("0.00")),
    ]


def test_compare_in_parts_gives_the_figures_of_one_pass() -> None:
    # The sample's items cut into parts of a few rows each (C and P share an order, so they
    # stay in one part): every figure equal to one pass's, PAINT's as hand-calculated above.
    tx = invclose.read_transactions(SAMPLE / "transactions.parquet", dimensions=["site"])
    whole = invclose.compare(tx, "2025-01-31", dimensions=["site"])
    with rows_per_part(4):
        cut = invclose.compare(tx, "2025-01-31", dimensions=["site"])
    assert cut.equals(whole)
    paint = cut.filter(pl.col("item_id") == "PAINT")
    assert paint["cost_of_goods"].to_list() == [
        D("108.50"),
        D("119.00"),
        D("116.00"),
        D("113.75"),
        D("112.00"),
    ]


def test_compare_reports_its_progress_per_method_and_part() -> None:
    # The sample's 17 rows under two methods: 34 rows to cost, one part per method, and in
    # parts of 4 rows the items cut into parts of 9, 4 and 4 rows (C and P share an order).
    tx = invclose.read_transactions(SAMPLE / "transactions.parquet", dimensions=["site"])
    events: list[ProgressEvent] = []
    invclose.compare(tx, "2025-01-31", methods=["fifo", "lifo"], dimensions=["site"],
                     progress=events.append)  # fmt: skip
    assert [(e.stage, e.rows_done, e.rows_total, e.parts_done, e.parts_total) for e in events] == [
        ("validate", 0, 34, 0, 2),
        ("settle and cost", 17, 34, 1, 2),
        ("settle and cost", 34, 34, 2, 2),
    ]
    events.clear()
    with rows_per_part(4):
        invclose.compare(tx, "2025-01-31", methods=["fifo", "lifo"], dimensions=["site"],
                         progress=events.append)  # fmt: skip
    assert [(e.rows_done, e.parts_done, e.parts_total) for e in events[1:]] == [
        (9, 1, 6), (13, 2, 6), (17, 3, 6), (26, 4, 6), (30, 5, 6), (34, 6, 6)
    ]  # fmt: skip


def test_compare_takes_the_item_table_as_close_does() -> None:
    # R1 1 @ 10.00, R2 1 @ 30.00, then P1 a physical issue of 1 and S1 a sale of 1. Under
    # FIFO, S1 takes R1 (10.00) when physical rows are left out; when the item table says
    # A includes physical value, P1 settles first and takes R1, and S1 takes R2 (30.00).
    day = [dt.date(2025, 1, d) for d in (1, 2, 3, 4)]
    tx = pl.DataFrame(
        {
            "txn_id": ["R1", "R2", "P1", "S1"],
            "item_id": ["A"] * 4,
            "date": day,
            "qty": [D(1), D(1), D(-1), D(-1)],
            "amount": [D("10.00"), D("30.00"), D("-20.00"), D("-20.00")],
            "status": ["financial", "financial", "physical", "financial"],
        }
    )
    items = pl.DataFrame({"item_id": ["A"], "include_physical_value": [True]})
    plain = invclose.compare(tx, "2025-01-31", methods="fifo")
    assert plain["cost_of_goods"].to_list() == [D("10.00")]
    with_items = invclose.compare(tx, "2025-01-31", methods="fifo", items=items)
    assert with_items["cost_of_goods"].to_list() == [D("30.00")]
