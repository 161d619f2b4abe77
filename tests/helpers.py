"""Compact builders for hand-written transaction frames in tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import polars as pl

TX_SCHEMA = {
    "txn_id": pl.String,
    "item_id": pl.String,
    "date": pl.Date,
    "qty": pl.Decimal(38, 6),
    "amount": pl.Decimal(38, 2),
    "status": pl.String,
    "seq": pl.Int64,
    "marked_to": pl.String,
    "kind": pl.String,
    "inventory_account": pl.String,
    "offset_account": pl.String,
}

ACCOUNTS = pl.DataFrame(
    {
        "kind": [None],
        "item_group": [None],
        "inventory_account": ["1400"],
        "offset_account": ["5000"],
    },
    schema={
        "kind": pl.String,
        "item_group": pl.String,
        "inventory_account": pl.String,
        "offset_account": pl.String,
    },
)


def day(n: int) -> dt.date:
    """Day ``n`` of January 2025."""
    return dt.date(2025, 1, n)


def tx(
    *rows: tuple[Any, ...], dims: dict[str, list[str]] | None = None, **columns: list[Any]
) -> pl.DataFrame:
    """Rows of (txn_id, item_id, day, qty, amount[, status[, marked_to]]); seq = row order.

    Extra per-row columns (e.g. ``site=[...]``) can be given as keyword lists.
    """
    records = []
    for seq, row in enumerate(rows):
        txn_id, item, d, qty, amount, *rest = row
        status = rest[0] if rest else "financial"
        marked = rest[1] if len(rest) > 1 else None
        records.append(
            {
                "txn_id": txn_id,
                "item_id": item,
                "date": day(d) if isinstance(d, int) else d,
                "qty": Decimal(str(qty)),
                "amount": Decimal(str(amount)),
                "status": status,
                "seq": seq,
                "marked_to": marked,
                "kind": None,
                "inventory_account": None,
                "offset_account": None,
            }
        )
    frame = pl.DataFrame(records, schema=TX_SCHEMA)
    extra = {**(dims or {}), **columns}
    if extra:
        frame = frame.with_columns([pl.Series(k, v) for k, v in extra.items()])
    return frame


def D(x: str | int) -> Decimal:
    """Decimal from text."""
    return Decimal(str(x))


#: Columns of the hand-written transfer and production rows of the cost-flow tests.
ORDER_SCHEMA = {
    "txn_id": pl.String,
    "item_id": pl.String,
    "site": pl.String,
    "date": pl.Date,
    "qty": pl.Decimal(38, 6),
    "amount": pl.Decimal(38, 2),
    "seq": pl.Int64,
    "kind": pl.String,
    "order_id": pl.String,
}


def components_ledger() -> pl.DataFrame:
    """Four items in three components, FIFO by hand (posted costs are running averages).

    * item A: receipts 2 @ 15.00 (30.00) and 1 @ 21.00; a sale of 2 posted at -34.00 settles
      the first receipt: cost 30.00, cost_delta -4.00.
    * items B and C, one production order PO1 (one component): B receipt 4 @ 10.00; the
      consumption of 4 posted at -36.00 settles at 40.00 (+4.00); the output, 1 C posted at
      50.00 (36.00 of components + 14.00 own cost), gets its component's +4.00 (54.00); the
      sale of that C, posted at -50.00, settles at 54.00 (+4.00).
    * item D: receipt 7.00 and its sale at -7.00: nothing to adjust.

    Components: {A}, {B, C} (linked by PO1), {D}.
    """
    frame = tx(
        ("A1", "A", 1, 2, "30.00"),
        ("A2", "A", 2, 1, "21.00"),
        ("AS", "A", 3, -2, "-34.00"),
        ("B1", "B", 1, 4, "40.00"),
        ("BC", "B", 5, -4, "-36.00"),
        ("CP", "C", 5, 1, "50.00"),
        ("CS", "C", 6, -1, "-50.00"),
        ("D1", "D", 1, 1, "7.00"),
        ("DS", "D", 2, -1, "-7.00"),
    )
    kinds = ["purchase", "purchase", "sale", "purchase", "consumption", "production", "sale"]
    return frame.with_columns(
        kind=pl.Series([*kinds, "purchase", "sale"]),
        order_id=pl.Series([None, None, None, None, "PO1", "PO1", None, None, None]),
    )


def components_february() -> pl.DataFrame:
    """February after :func:`components_ledger`'s January, by hand: A has 1 unit left at
    21.00 and buys 1 at 24.00; the sale of 2 posted at -40.00 settles at 45.00 (cost_delta
    +5.00). D buys 2 for 16.00, nothing to adjust."""
    return tx(
        ("A3", "A", dt.date(2025, 2, 3), 1, "24.00"),
        ("AS2", "A", dt.date(2025, 2, 4), -2, "-40.00"),
        ("D2", "D", dt.date(2025, 2, 3), 2, "16.00"),
    ).with_columns(kind=pl.Series(["purchase", "sale", "purchase"]))


@contextmanager
def rows_per_part(rows: int) -> Iterator[None]:
    """Close any frame of more than ``rows`` rows in parts of about ``rows`` rows
    (:mod:`invclose.parts`; the defaults cut only frames past 2**24 rows)."""
    from invclose import parts

    before = parts.PART_ROWS, parts.SPLIT_ABOVE
    parts.PART_ROWS = parts.SPLIT_ABOVE = rows
    try:
        yield
    finally:
        parts.PART_ROWS, parts.SPLIT_ABOVE = before
