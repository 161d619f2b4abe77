"""Builders and assertions shared by the ledger tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl

import invclose
from invclose.ledger import Ledger

SCHEMA = {
    "txn_id": pl.String,
    "item_id": pl.String,
    "site": pl.String,
    "date": pl.Date,
    "qty": pl.Decimal(38, 6),
    "amount": pl.Decimal(38, 2),
    "status": pl.String,
    "kind": pl.String,
}

#: Purchases post to inventory 1400 against accounts payable 2100, sales against COGS 5000.
ACCOUNTS = pl.DataFrame(
    {
        "kind": ["purchase", "sale"],
        "item_group": [None, None],
        "inventory_account": ["1400", "1400"],
        "offset_account": ["2100", "5000"],
    },
    schema={
        "kind": pl.String,
        "item_group": pl.String,
        "inventory_account": pl.String,
        "offset_account": pl.String,
    },
)

CONFIG = invclose.CloseConfig(method="fifo", dimensions=["site"], accounts=ACCOUNTS)


def D(text: str | int) -> Decimal:
    """Decimal from text."""
    return Decimal(str(text))


def day(month: int, d: int) -> dt.date:
    """A date of 2025."""
    return dt.date(2025, month, d)


def rows(*records: tuple[Any, ...]) -> pl.DataFrame:
    """Rows of (txn_id, item_id, date, qty, amount, kind[, status]) at site S1, no ``seq``.

    Without ``seq`` the ledger numbers each batch after everything posted before.
    """
    out = []
    for txn_id, item, date, qty, amount, kind, *rest in records:
        out.append(
            {
                "txn_id": txn_id,
                "item_id": item,
                "site": "S1",
                "date": date,
                "qty": D(qty),
                "amount": None if amount is None else D(amount),
                "status": rest[0] if rest else "financial",
                "kind": kind,
            }
        )
    return pl.DataFrame(out, schema=SCHEMA)


def dump(books: Ledger) -> dict[str, pl.DataFrame]:
    """Every table of the file, sorted, without the wall-clock column of ``runs``."""
    tables = books.dump()
    tables["runs"] = tables["runs"].drop("created_at")
    return tables


def same_dump(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> bool:
    """Whether two dumps hold the same tables with the same rows."""
    return a.keys() == b.keys() and all(a[k].equals(b[k]) for k in a)


def gl_balance(books: Ledger, account: str) -> Decimal:
    """Debit minus credit of ``account`` over every voucher line of the file."""
    frame = books.gl(by_account=True).filter(pl.col("account") == account)
    return frame["balance"].item() if frame.height else D("0.00")


def assert_consistent(books: Ledger) -> None:
    """The reconciliation view shows zero difference and every ``verify`` check passes."""
    rec = books.reconciliation()
    assert rec.height > 0
    assert (rec["difference"] == 0).all(), rec
    checks = books.verify()
    failed = checks.filter(~pl.col("ok"))
    assert failed.is_empty(), failed.to_dicts()
