"""run_kernel: prepare -> marking -> method -> price -> adjust -> findings -> balances.

A pure function from one frame holding any number of groups to the run's tables in kernel
units (int64 micro-units and cents). It knows nothing about files, engines or Decimal output;
``invclose.close`` converts. Because every group is independent, the same function can run on
any partition of whole groups.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from invclose.kernel.balances import group_balances
from invclose.kernel.findings import close_findings
from invclose.kernel.marking import settle_marked
from invclose.kernel.prepare import build_working
from invclose.kernel.pricing import apply_pieces, price_pieces
from invclose.methods import method_pieces


@dataclass(frozen=True)
class KernelOutput:
    """The run's rows and tables, in kernel units."""

    rows: pl.DataFrame  # every row with q0/v0/carried0 -> q1/v1/carried1, adjustment, cost_delta
    pieces: pl.DataFrame  # every piece, real and adjustment-only, priced
    log: pl.DataFrame
    balances: pl.DataFrame


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
        ``False`` for a recalculation: values move, open quantities do not.
    """
    working = build_working(frame, dims, closing_date)
    marking = settle_marked(working)
    remaining = (
        working.filter(pl.col("participates"))
        .filter(~pl.col("pos").is_in(marking.excluded["pos"].implode()))
        .join(marking.used, on="pos", how="left")
        .with_columns(rem=pl.col("q_abs") - pl.col("used").fill_null(0))
        .filter(pl.col("rem") > 0)
        .select("gid", "pos", "day", "rem", "is_receipt", "method")
    )
    pieces = pl.concat([marking.pieces, method_pieces(remaining)])
    priced = price_pieces(pieces, working)
    rows = apply_pieces(working, priced, settle=settle)
    balances = group_balances(rows, dims)
    log = close_findings(rows, priced, marking.excluded, balances, dims)
    return KernelOutput(rows=rows, pieces=priced, log=log, balances=balances)
