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
    scoped = rows.filter(pl.col("in_scope"))
    fin = pl.col("fin")
    balances = scoped.group_by("gid").agg(
        pl.col("item_id").first(),
        *[pl.col(d).first() for d in dims],
        pl.col("method").first(),
        qty=pl.col("q1").filter(fin).sum(),
        value=pl.col("v1").filter(fin).sum(),
        open_receipts=(fin & pl.col("is_receipt") & (pl.col("q1") > 0)).sum().cast(pl.Int64),
        physical_qty=pl.col("q1").filter(~fin).sum(),
        physical_value=pl.col("v1").filter(~fin).sum(),
    )
    unit_cost = pl.when(pl.col("qty") > 0).then(
        mul_div_round(pl.col("value"), pl.lit(_UNIT_COST_SCALE), pl.col("qty").clip(lower_bound=1))
    )
    return balances.with_columns(unit_cost_micro=unit_cost).sort("gid")
