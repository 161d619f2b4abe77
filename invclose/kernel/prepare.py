"""Build the kernel's working frame: dense group codes, the one total sort, scope flags.

After ``build_working`` every row has ``pos``, its rank in the total key order
(group, date, seq, txn_id). Every later step refers to rows by ``pos`` only, so the result
never depends on the order of the input rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from invclose.config import ORDINAL_METHODS, PERIODIC_METHODS

_ORDINAL = sorted(m.value for m in ORDINAL_METHODS)
_PERIODIC = sorted(m.value for m in PERIODIC_METHODS)


def group_keys(dims: Sequence[str]) -> list[str]:
    """Columns that define a settlement group: the item and its financial dimensions."""
    return ["item_id", *dims]


def build_working(frame: pl.DataFrame, dims: Sequence[str], closing_date: dt.date) -> pl.DataFrame:
    """Sort once and add the flags every later step needs.

    ``frame`` holds the canonical input columns plus the run's starting state: ``q0`` (open
    quantity, signed micro-units), ``v0`` (open value, signed cents), ``carried0`` (carried
    value, signed cents), ``method``, ``incl_phys`` and ``item_group`` per row, and optionally
    ``frozen`` (rows a recalculation limited to other items leaves alone).
    """
    keys = group_keys(dims)
    groups = frame.select(keys).unique().sort(keys, nulls_last=False).with_row_index("gid")
    if "frozen" not in frame.columns:
        frame = frame.with_columns(frozen=pl.lit(False))
    working = (
        frame.join(groups, on=keys, how="left", nulls_equal=True)
        .sort(["gid", "date", "seq", "txn_id"])
        .with_row_index("pos")
        .with_columns(
            pl.col("pos").cast(pl.Int64),
            pl.col("gid").cast(pl.Int64),
            day=pl.col("date").cast(pl.Int32),
            is_receipt=pl.col("qty") > 0,
            fin=pl.col("status") == "financial",
            in_scope=pl.col("date") <= closing_date,
            q_abs=pl.col("q0").abs(),
            w_abs=pl.col("v0").abs(),
            is_virtual_new=pl.lit(False),
        )
    )
    eligible_status = pl.col("fin") | (pl.col("incl_phys") & pl.col("method").is_in(_ORDINAL))
    return working.with_columns(
        participates=(
            pl.col("in_scope")
            & (pl.col("q0") != 0)
            & pl.col("method").is_in(_PERIODIC)
            & eligible_status
            & ~pl.col("frozen")
        )
    )
