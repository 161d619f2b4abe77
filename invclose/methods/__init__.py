"""Valuation methods as a dispatch table over one signature (architecture habit 3).

Each periodic method turns the quantities left after marking into settlement pieces. fifo and
lifo share the cumulative-axes matcher and differ only in the receipts' drawing order;
lifo_date needs its stack. The weighted averages and the perpetual methods (standard, moving
average) are not settled by this table.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from invclose.config import Method
from invclose.kernel.lifo_date import match_lifo_date
from invclose.kernel.matching import merge_axes

#: A matcher takes (receipts, issues) with gid, pos, day, rem and returns pieces
#: (issue_pos, receipt_pos, qty, rank).
Matcher = Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]


def _fifo(receipts: pl.DataFrame, issues: pl.DataFrame) -> pl.DataFrame:
    return merge_axes(receipts.with_columns(draw=pl.col("pos")), issues)


def _lifo(receipts: pl.DataFrame, issues: pl.DataFrame) -> pl.DataFrame:
    return merge_axes(receipts.with_columns(draw=-pl.col("pos")), issues)


MATCHERS: dict[Method, Matcher] = {
    Method.FIFO: _fifo,
    Method.LIFO: _lifo,
    Method.LIFO_DATE: match_lifo_date,
}


def method_pieces(remaining: pl.DataFrame) -> pl.DataFrame:
    """Settle what marking left, each group by its own method.

    ``remaining`` has ``gid``, ``pos``, ``day``, ``rem``, ``is_receipt`` and ``method`` for
    every participating row with quantity left. Returns pieces with ``issue_pos``,
    ``receipt_pos``, ``qty``, ``phase`` (1), ``rank`` and ``principle``.
    """
    parts = []
    for method, matcher in MATCHERS.items():
        rows = remaining.filter(pl.col("method") == method.value)
        if rows.is_empty():
            continue
        receipts = rows.filter(pl.col("is_receipt")).select("gid", "pos", "day", "rem")
        issues = rows.filter(~pl.col("is_receipt")).select("gid", "pos", "day", "rem")
        if receipts.is_empty() or issues.is_empty():
            continue
        parts.append(
            matcher(receipts, issues).with_columns(
                phase=pl.lit(1, pl.Int64), principle=pl.lit(method.value)
            )
        )
    if not parts:
        return empty_pieces()
    return pl.concat(parts).select("issue_pos", "receipt_pos", "qty", "phase", "rank", "principle")


def empty_pieces() -> pl.DataFrame:
    """A piece frame with no rows."""
    return pl.DataFrame(
        schema={
            "issue_pos": pl.Int64,
            "receipt_pos": pl.Int64,
            "qty": pl.Int64,
            "phase": pl.Int64,
            "rank": pl.Int64,
            "principle": pl.String,
        }
    )
