"""Per-group balances after the run (close-semantics §6)."""

from __future__ import annotations

import polars as pl

from invclose.kernel.money import mul_div_round

#: unit_cost in micro-currency = cents * 10**10 / micro-units (value/qty, 6 decimals).
_UNIT_COST_SCALE = 10**10


def group_balances(rows: pl.DataFrame, dims: list[str]) -> pl.DataFrame:
    """Financial quantity and value, open receipts and physical stock per group.

    ``rows`` are the run's rows after ``apply_pieces``; only rows dated on or before the
    closing date count. Amounts stay in kernel units (micro-units, cents).
    """
    fin = pl.col("fin")
    # Filtered sums as sums of plain columns (0 where a row does not count), on the narrow
    # in-scope rows only: the same totals on the fast path.
    balances = (
        rows.lazy()
        .filter(pl.col("in_scope"))
        .select(
            "gid",
            "item_id",
            *dims,
            "method",
            fin_q=pl.when(fin).then(pl.col("q1")).otherwise(0),
            fin_v=pl.when(fin).then(pl.col("v1")).otherwise(0),
            phys_q=pl.when(~fin).then(pl.col("q1")).otherwise(0),
            phys_v=pl.when(~fin).then(pl.col("v1")).otherwise(0),
            open_receipt=(fin & pl.col("is_receipt") & (pl.col("q1") > 0)),
        )
        .group_by("gid")
        .agg(
            pl.col("item_id").first(),
            *[pl.col(d).first() for d in dims],
            pl.col("method").first(),
            qty=pl.col("fin_q").sum(),
            value=pl.col("fin_v").sum(),
            open_receipts=pl.col("open_receipt").sum().cast(pl.Int64),
            physical_qty=pl.col("phys_q").sum(),
            physical_value=pl.col("phys_v").sum(),
        )
        .collect()
        # One chunk: string columns straight from the streaming engine of polars 2.1 made
        # pl.format panic downstream.
        .rechunk()
    )
    unit_cost = pl.when(pl.col("qty") > 0).then(
        mul_div_round(
            pl.col("value"),
            pl.lit(_UNIT_COST_SCALE),
            pl.col("qty").clip(lower_bound=1),
            wide_result=True,
        )
    )
    return balances.with_columns(unit_cost_micro=unit_cost).sort("gid")
