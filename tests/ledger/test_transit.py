"""A shipment in transit over a month end on the period ledger (close-semantics §9.1).

S1 ships 10 of item X to S2 on 20 January; the receipt is posted on 3 February. Transfers
post inventory 1400 against transit 1450; purchases against payables 2100.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

import invclose
from invclose.ledger import Ledger
from tests.helpers import ORDER_SCHEMA
from tests.ledger.helpers import D, assert_consistent, day, gl_balance

ACCOUNTS = pl.DataFrame(
    {
        "kind": ["purchase", "transfer"],
        "item_group": [None, None],
        "inventory_account": ["1400", "1400"],
        "offset_account": ["2100", "1450"],
    },
    schema={
        "kind": pl.String,
        "item_group": pl.String,
        "inventory_account": pl.String,
        "offset_account": pl.String,
    },
)
CONFIG = invclose.CloseConfig(method="fifo", dimensions=["site"], accounts=ACCOUNTS)
# No seq: the ledger numbers each posted batch after everything posted before.
SCHEMA = {name: dtype for name, dtype in ORDER_SCHEMA.items() if name != "seq"}
JANUARY = pl.DataFrame(
    [
        ("P1", "X", "S1", day(1, 2), D(10), D("100.00"), "purchase", None),  # 10 @ 10.00
        ("P2", "X", "S1", day(1, 3), D(10), D("200.00"), "purchase", None),  # 10 @ 20.00
        # Posted at the running average 15.00.
        ("SHIP", "X", "S1", day(1, 20), D(-10), D("-150.00"), "transfer", "T1"),
    ],
    schema=SCHEMA,
    orient="row",
)
FEBRUARY = pl.DataFrame(
    [("REC", "X", "S2", day(2, 3), D(10), D("150.00"), "transfer", "T1")],
    schema=SCHEMA,
    orient="row",
)


def test_the_receipt_of_a_later_month_takes_the_shipments_change(tmp_path: Path) -> None:
    books = Ledger(tmp_path / "books.duckdb", config=CONFIG)
    try:
        books.post(JANUARY)
        # Posting: inventory 1400 = 100 + 200 - 150 = 150.00, transit 1450 = 150.00.
        assert gl_balance(books, "1450") == D("150.00")
        # January: FIFO prices the shipment at P1's 100.00, 50.00 less cost (adjustment
        # +50.00 on the issue): inventory 1400 = 150 + 50 = 200.00 (P2's 10 at 20.00),
        # transit 1450 = 150 - 50 = 100.00, the shipment's cost.
        jan = books.close("2025-01-31")
        ship = jan.adjustments.filter(pl.col("txn_id") == "SHIP")
        assert ship["adjustment"].to_list() == [D("50.00")]
        assert gl_balance(books, "1400") == D("200.00")
        assert gl_balance(books, "1450") == D("100.00")
        assert_consistent(books)
        # The shipment waits for its receipt: still open, quantity 0, 10 units unfed.
        state = books.state()
        assert state is not None
        waiting = state.open_items.filter(pl.col("txn_id") == "SHIP")
        assert waiting.select("open_qty", "unfed_qty", "unfed_change").rows() == [
            (D("0"), D("10"), D("-50.00"))
        ]

        books.post(FEBRUARY)
        # Posting the receipt at 150.00 clears transit to -50.00.
        assert gl_balance(books, "1450") == D("-50.00")
        feb = books.close("2025-02-28")
        rec = feb.adjustments.filter(pl.col("txn_id") == "REC")
        assert rec["adjustment"].to_list() == [D("-50.00")]
        # Transit is clear; inventory holds REC's 10 units at their FIFO cost 100.00 and
        # P2's 10 at 200.00: 200 + 150 - 50 = 300.00.
        assert gl_balance(books, "1450") == D("0.00")
        assert gl_balance(books, "1400") == D("300.00")
        assert "SHIP" in set(feb.closed_items["txn_id"])
        assert_consistent(books)
    finally:
        books.disconnect()
