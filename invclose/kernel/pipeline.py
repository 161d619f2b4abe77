"""run_kernel: prepare -> marking -> methods -> price -> adjust -> findings -> balances.

A pure function from one frame holding any number of groups to the run's tables in kernel
units (int64 micro-units and cents). It knows nothing about files, engines or Decimal output;
``invclose.close`` converts. Because every group is independent, the same function can run on
any partition of whole groups.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from invclose.config import Method
from invclose.kernel.averages import average_pieces
from invclose.kernel.balances import group_balances
from invclose.kernel.findings import close_findings, marking_ignored
from invclose.kernel.marking import settle_marked
from invclose.kernel.prepare import build_working
from invclose.kernel.pricing import apply_pieces, attach_sides, price_pieces
from invclose.kernel.virtual import closing_rows, onhand_rows
from invclose.methods import method_pieces

AVERAGING = (Method.WEIGHTED_AVERAGE.value, Method.WEIGHTED_AVERAGE_DATE.value)
PERPETUAL = (Method.STANDARD.value, Method.MOVING_AVERAGE.value)


@dataclass(frozen=True)
class KernelOutput:
    """The run's rows and tables, in kernel units."""

    rows: pl.DataFrame  # every row with q0/v0/carried0 -> q1/v1/carried1, adjustment, cost_delta
    pieces: pl.DataFrame  # every piece, real and adjustment-only, priced
    log: pl.DataFrame
    balances: pl.DataFrame


def _remaining(
    working: pl.DataFrame, marking_used: pl.DataFrame, excluded: pl.DataFrame
) -> pl.DataFrame:
    """Participating rows with quantity left after marking."""
    return (
        working.filter(pl.col("participates"))
        .filter(~pl.col("pos").is_in(excluded["pos"].implode()))
        .join(marking_used, on="pos", how="left")
        .with_columns(used=pl.col("used").fill_null(0))
        .with_columns(rem=pl.col("q_abs") - pl.col("used"))
        .filter(pl.col("rem") > 0)
    )


def _averages(
    remaining: pl.DataFrame, working: pl.DataFrame, dims: list[str], closing_date: dt.date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Priced pieces and closing-pair rows of the weighted-average groups."""
    rows = remaining.filter(pl.col("method").is_in(AVERAGING)).with_columns(
        walk_day=pl.when(pl.col("method") == Method.WEIGHTED_AVERAGE.value)
        .then(pl.lit(closing_date).cast(pl.Int32))
        .otherwise(pl.col("day"))
    )
    pieces, virtual = average_pieces(rows, next_pos=working.height)
    methods = working.group_by("gid").agg(pl.col("method").first().alias("principle"))
    pieces = pieces.join(methods, on="gid", how="left").with_columns(phase=pl.lit(1, pl.Int64))
    return pieces.drop("gid"), closing_rows(virtual, working, dims)


def run_kernel(
    frame: pl.DataFrame, dims: list[str], closing_date: dt.date, *, settle: bool = True
) -> KernelOutput:
    """Settle and value one run.

    Parameters
    ----------
    frame
        Canonical input columns plus ``q0``, ``v0``, ``carried0`` (open quantity, open value
        and carried value at the start of the run, signed kernel units), ``method``,
        ``incl_phys`` and ``item_group``.
    dims
        Financial dimension columns.
    closing_date
        Last day covered.
    settle
        ``False`` for a recalculation: values move, open quantities do not, and perpetual
        items are left alone.
    """
    working = build_working(frame, dims, closing_date)
    marking = settle_marked(working)
    remaining = _remaining(working, marking.used, marking.excluded)
    ordinal = method_pieces(remaining.select("gid", "pos", "day", "rem", "is_receipt", "method"))
    average, closing = _averages(remaining, working, dims, closing_date)
    working = pl.concat([working, closing])
    priced = pl.concat(
        [
            price_pieces(pl.concat([marking.pieces, ordinal]), working),
            attach_sides(average, working),
        ],
        how="diagonal_relaxed",
    )
    rows = apply_pieces(working, priced, settle=settle)
    if settle:
        rows = _close_perpetual(rows, dims, closing_date)
    balances = group_balances(rows, dims)
    log = pl.concat(
        [
            close_findings(rows, priced, marking.excluded, balances, dims),
            marking_ignored(rows, dims, PERPETUAL),
        ],
        how="vertical_relaxed",
    )
    return KernelOutput(rows=rows, pieces=priced, log=log, balances=balances)


def _close_perpetual(rows: pl.DataFrame, dims: list[str], closing_date: dt.date) -> pl.DataFrame:
    """Standard and moving-average groups: close their financial rows, carry one on-hand row."""
    perpetual = pl.col("method").is_in(PERPETUAL) & pl.col("in_scope") & pl.col("fin")
    onhand = onhand_rows(rows, dims, perpetual, closing_date)
    closed = rows.with_columns(
        q1=pl.when(perpetual).then(0).otherwise(pl.col("q1")),
        v1=pl.when(perpetual).then(0).otherwise(pl.col("v1")),
    )
    extra = onhand.with_columns(
        pos=pl.int_range(pl.len()).cast(pl.Int64) + rows.height,
        q1=pl.col("q0"),
        v1=pl.col("v0"),
        carried1=pl.col("carried0"),
        adjustment=pl.lit(0, pl.Int64),
        cost_delta=pl.lit(0, pl.Int64),
        s_real=pl.lit(0, pl.Int64),
        adj_only_qty=pl.lit(0, pl.Int64),
    )
    return pl.concat([closed, extra.select(closed.columns)], how="vertical_relaxed")
