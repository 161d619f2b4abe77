"""Compact builders for hand-written transaction frames in tests."""

from __future__ import annotations

import datetime as dt
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
