"""How issue-cost changes reach derived receipts (close-semantics §9.1, §9.3).

A derived receipt's adjustment is its share of the adjustments of the issues feeding it: along
each transfer issue by quantity, and across a production order's outputs by weight, both with
cumulative rounding (an issue's or an order's change is cut into shares that sum to it
exactly) over the receipts in key order (date, seq, txn_id), whatever their groups. Only cost
changes flow: added cost stays as posted.
"""

from __future__ import annotations

import polars as pl

from invclose.kernel.flows import OrderLinks
from invclose.kernel.money import mul_div_round
from invclose.kernel.prepare import run_starts, running_sum


def _group_sum(by: str, part: str) -> pl.Expr:
    """Sum of ``part`` over each group of a frame sorted by ``by``, on every row."""
    last = pl.col(by).ne_missing(pl.col(by).shift(-1))
    return pl.when(last).then(running_sum(by, part)).backward_fill()


def _cut(by: str, total: str, part: str, whole: str) -> pl.Expr:
    """Cumulative rounding of ``total`` into shares ``part / whole`` in row order per ``by``.

    The frame must be sorted by ``by`` (each group's rows together, in cutting order).
    """
    cum = mul_div_round(pl.col(total), running_sum(by, part), pl.col(whole))
    return cum - pl.when(run_starts(by)).then(0).otherwise(cum.shift(1))


#: Schema of the running totals of production orders' component changes (``feed_shares``).
ORDER_TOTALS = {"order": pl.Int64, "before": pl.Int64}


def feed_shares(
    issues: pl.DataFrame, links: OrderLinks, before: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Share of each feeding issue's change and final value per derived receipt.

    ``issues`` has ``pos``, ``cost_delta`` (cents, + = more cost), ``q_abs`` and ``value``
    (the issue's final cost, positive cents). Returns edges ``issue_pos``, ``receipt_pos``,
    ``qty`` (micro-units of the issue), ``delta``, ``amount`` and ``kind``, and the running
    totals after these issues.

    A production order's components can sit at several cost levels, yet §9.3 cuts the
    order's *total* change across its outputs. ``before`` (``order``, ``before``: the sum of
    the order's component changes at earlier levels) carries that total from level to level;
    each level adds to every output ``cut(before + this level) - cut(before)``, so an output's
    additions sum to the cut of the whole total, whatever the levels. (An output inside a cost
    cycle takes the solve's rounded value instead; its gap to these additions is the cycle's
    ``cycle_residual``.)
    """
    facts = issues.select(
        issue_pos="pos", delta_total="cost_delta", issue_q="q_abs", value_total="value"
    )
    transfer = (
        links.feeds.join(facts, on="issue_pos", how="inner")
        .sort("issue_pos", "receipt_rank")
        .with_columns(
            delta=_cut("issue_pos", "delta_total", "qty", "issue_q"),
            amount=_cut("issue_pos", "value_total", "qty", "issue_q"),
            kind=pl.lit("transfer"),
        )
        .select("issue_pos", "receipt_pos", "qty", "delta", "amount", "kind")
    )
    comp = links.components.join(facts, on="issue_pos", how="inner")
    orders = (
        comp.group_by("order")
        .agg(level=pl.col("delta_total").sum())
        .join(before, on="order", how="left")
        .with_columns(pl.col("before").fill_null(0))
        .with_columns(after=pl.col("before") + pl.col("level"))
    )
    after = (
        pl.concat([before, orders.select("order", before="level")])
        .group_by("order")
        .agg(pl.col("before").sum())
        .sort("order")
    )
    outputs = (
        links.production.join(orders, on="order", how="inner")
        .sort("order", "receipt_rank")
        .with_columns(whole=_group_sum("order", "weight"))
        .with_columns(
            delta=_cut("order", "after", "weight", "whole")
            - _cut("order", "before", "weight", "whole"),
        )
    )
    # Lineage edges component -> output: each component's value cut across the outputs.
    edges = (
        comp.join(
            outputs.select("order", "receipt_pos", "receipt_rank", "weight", "whole"), on="order"
        )
        .sort("issue_pos", "receipt_rank")
        .with_columns(
            amount=_cut("issue_pos", "value_total", "weight", "whole"),
            qty=_cut("issue_pos", "issue_q", "weight", "whole"),
        )
    )
    production_deltas = outputs.select(
        issue_pos=pl.lit(None, pl.Int64),
        receipt_pos="receipt_pos",
        qty=pl.lit(None, pl.Int64),
        delta="delta",
        amount=pl.lit(None, pl.Int64),
        kind=pl.lit("production_total"),
    )
    production_edges = edges.select(
        "issue_pos",
        "receipt_pos",
        "qty",
        delta=pl.lit(0, pl.Int64),
        amount="amount",
        kind=pl.lit("production"),
    )
    shares = pl.concat([transfer, production_deltas, production_edges], how="vertical_relaxed")
    return shares, after


def derived_adjustments(shares: pl.DataFrame) -> pl.DataFrame:
    """Total adjustment per derived receipt (``pos``, ``derived_adj``)."""
    return (
        shares.filter(pl.col("kind") != "production")
        .group_by("receipt_pos")
        .agg(derived_adj=pl.col("delta").sum())
        .rename({"receipt_pos": "pos"})
    )
