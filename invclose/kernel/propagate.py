"""How issue-cost changes reach derived receipts (close-semantics §9.1, §9.3).

A derived receipt's adjustment is its share of the adjustments of the issues feeding it: along
each transfer issue by quantity, and across a production order's outputs by weight, both with
cumulative rounding (an issue's or an order's change is cut into shares that sum to it
exactly) over the receipts in key order (date, seq, txn_id), whatever their groups. Only cost
changes flow: added cost stays as posted.
"""

from __future__ import annotations

from typing import NamedTuple

import polars as pl

from invclose.kernel.flows import OrderLinks
from invclose.kernel.money import mul_div_round, to_micro
from invclose.kernel.prepare import PERIODIC, rows_at, run_starts, running_sum


def _group_sum(by: str, part: str) -> pl.Expr:
    """Sum of ``part`` over each group of a frame sorted by ``by``, on every row."""
    last = pl.col(by).ne_missing(pl.col(by).shift(-1))
    return pl.when(last).then(running_sum(by, part)).backward_fill()


def _cut(by: str, total: str, part: str, whole: str, offset: str | None = None) -> pl.Expr:
    """Cumulative rounding of ``total`` into shares ``part / whole`` in row order per ``by``.

    The frame must be sorted by ``by`` (each group's rows together, in cutting order). With
    ``offset``, the cut goes on from that much of ``whole`` already cut (by earlier runs).
    """
    if offset is None:
        cum = mul_div_round(pl.col(total), running_sum(by, part), pl.col(whole))
        return cum - pl.when(run_starts(by)).then(0).otherwise(cum.shift(1))
    cum = mul_div_round(pl.col(total), pl.col(offset) + running_sum(by, part), pl.col(whole))
    start = mul_div_round(pl.col(total), pl.col(offset), pl.col(whole))
    return cum - pl.when(run_starts(by)).then(start).otherwise(cum.shift(1))


#: Kind of the shares of outputs that take nothing (``feed_shares``): their receipt's share of
#: its order's change, left on the order's offset account.
UNTAKEN = "production_untaken"

#: Schema of the running totals of production orders' component changes (``feed_shares``).
ORDER_TOTALS = {"order": pl.Int64, "before": pl.Int64}


def feed_shares(
    issues: pl.DataFrame, links: OrderLinks, before: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Share of each feeding issue's change and final value per derived receipt.

    ``issues`` has ``pos``, ``to_pass`` (cents, + = more cost: the change this run passes on,
    see :func:`issue_passing`), ``unfed0`` (the quantity it is cut over), ``q_full`` (the
    issue's whole quantity), ``fed_before`` (what earlier runs fed of it) and ``value`` (the
    issue's final cost, positive cents). Returns edges ``issue_pos``, ``receipt_pos``,
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
        issue_pos="pos",
        delta_total="to_pass",
        issue_u="unfed0",
        issue_q="q_full",
        offset="fed_before",
        value_total="value",
    )
    # A receipt a recalculation limited to other items leaves alone takes nothing; the others
    # keep the cuts of a full run.
    untouched = pl.col("receipt_pos").is_in(links.frozen["pos"].implode())
    transfer = (
        links.feeds.join(facts, on="issue_pos", how="inner")
        .sort("issue_pos", "receipt_rank")
        .with_columns(
            delta=pl.when(untouched)
            .then(0)
            .otherwise(_cut("issue_pos", "delta_total", "qty", "issue_u")),
            amount=_cut("issue_pos", "value_total", "qty", "issue_q", offset="offset"),
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
    # Outputs of standard / moving-average items weigh in the cut but take nothing: their
    # shares stay on the order's offset account (``untaken``, logged cost_not_taken).
    cut = (
        links.weighed_outputs()
        .join(orders, on="order", how="inner")
        .sort("order", "receipt_rank")
        .with_columns(whole=_group_sum("order", "weight"))
        .with_columns(
            delta=pl.when(untouched)
            .then(0)
            .otherwise(
                _cut("order", "after", "weight", "whole")
                - _cut("order", "before", "weight", "whole")
            ),
        )
    )
    outputs = cut.filter(pl.col("takes"))
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
    untaken = cut.filter(~pl.col("takes") & (pl.col("delta") != 0)).select(
        issue_pos=pl.lit(None, pl.Int64),
        receipt_pos="receipt_pos",
        qty=pl.lit(None, pl.Int64),
        delta="delta",
        amount=pl.lit(None, pl.Int64),
        kind=pl.lit(UNTAKEN),
    )
    shares = pl.concat(
        [transfer, production_deltas, production_edges, untaken], how="vertical_relaxed"
    )
    return shares, after


def derived_adjustments(shares: pl.DataFrame) -> pl.DataFrame:
    """Total adjustment per derived receipt (``pos``, ``derived_adj``)."""
    return (
        shares.filter(pl.col("kind").is_in(["transfer", "production_total"]))
        .group_by("receipt_pos")
        .agg(derived_adj=pl.col("delta").sum())
        .rename({"receipt_pos": "pos"})
    )


def issue_passing() -> list[pl.Expr]:
    """What an order's issue passes on in this run (close-semantics §9.1), as columns.

    Reads ``qty``, ``q_abs``, ``unfed0``, ``pending0`` and ``cost_delta``. ``q_full`` is the
    issue's whole quantity and ``fed_before`` what earlier closes fed of it for good. This
    run's change re-prices the units open at its start (``q_abs``); those of them already
    fed (an issue short of receipts whose receipts came: ``q_abs - unfed0`` when positive)
    belong to receipts an earlier close costed, so their share is ``late`` (it stays on the
    order's offset account, logged ``late_cost``). ``to_pass`` is what the quantity not yet
    fed carries, cut over ``unfed0`` to the receipts fed now: the rest of this run's change
    and what earlier runs could not pass on for good. (Units fed for good before and no
    longer open, a move paired in an earlier close, take no part of this run's change.)
    """
    q_full = to_micro(pl.col("qty")).abs()
    fed_before = q_full - pl.col("unfed0")
    fed_open = (pl.col("q_abs") - pl.col("unfed0")).clip(lower_bound=0)
    late = (
        pl.when(pl.col("q_abs") > 0)
        .then(mul_div_round(pl.col("cost_delta"), fed_open, pl.col("q_abs")))
        .otherwise(0)
    )
    return [
        q_full.alias("q_full"),
        fed_before.alias("fed_before"),
        late.alias("late"),
        (pl.col("cost_delta") - late + pl.col("pending0")).alias("to_pass"),
    ]


def provisional(working: pl.DataFrame, links: OrderLinks, *, settle: bool) -> pl.DataFrame:
    """Receipts' changes taken provisionally by recalculations, taken back (``pos``,
    ``derived_adj`` = minus that change).

    A run that feeds the receipt passes it its whole share again. A close takes the change
    back from every receipt it does not feed too (its order cannot be costed now): the
    feeding issues still hold that change as waiting, so the receipt must not keep it. A
    receipt of an item now ``standard`` or ``moving_average`` is left as it is (the close
    adjusts no such row): it keeps the change, and its order's issues let it go when fed.
    """
    taken_back = pl.lit(True) if settle else pl.col("pos").is_in(links.derived["pos"].implode())
    return (
        working.lazy()
        .filter(
            pl.col("is_receipt")
            & (pl.col("pending0").fill_null(0) != 0)
            & ~pl.col("frozen")
            & pl.col("method").is_in(PERIODIC)
            & taken_back
        )
        .select("pos", derived_adj=-pl.col("pending0"))
        .collect()
    )


class Unpassed(NamedTuple):
    """Issues' changes a run passes to no receipt, for the log (all ``pos`` and cents)."""

    late: pl.DataFrame  # pos, late, late_qty: for quantity an earlier close fed (late cost)
    not_taken: pl.DataFrame  # pos, not_taken, fed_qty: fed to receipts the close won't adjust


def _no_unpassed() -> Unpassed:
    i64 = pl.Int64
    return Unpassed(
        late=pl.DataFrame(schema={"pos": i64, "late": i64, "late_qty": i64}),
        not_taken=pl.DataFrame(schema={"pos": i64, "not_taken": i64, "fed_qty": i64}),
    )


def carry_unfed(
    rows: pl.DataFrame, links: OrderLinks, shares: pl.DataFrame, *, settle: bool
) -> tuple[pl.DataFrame, Unpassed]:
    """Add ``unfed1`` and ``pending1`` (the order state after the run) to ``rows``.

    Returns the rows and the changes of issues that no receipt takes (:class:`Unpassed`).
    A close feeds for good: ``unfed1`` is ``unfed0`` less what it fed, a receipt's
    ``pending1`` is 0, and an issue's ``pending1`` what it did not pass on while quantity
    remains to feed. Once nothing remains, what it did not pass on is late cost or went to
    receipts of standard or moving-average items (``not_taken``): it stays on the order's
    offset account, and ``pending1`` is 0. A recalculation feeds provisionally: quantities
    stay unfed, an issue keeps all its change not passed on for good as ``pending1``, and a
    fed receipt records the change it took (the next run passes it the whole share again,
    less that).
    """
    linked = rows.filter(pl.col("unfed0").is_not_null())
    if linked.is_empty():
        return rows.with_columns(
            unfed1=pl.lit(None, pl.Int64), pending1=pl.lit(None, pl.Int64)
        ), _no_unpassed()
    passed = (
        shares.filter(pl.col("kind") == "transfer")
        .group_by("issue_pos")
        .agg(passed=pl.col("delta").sum())
        .rename({"issue_pos": "pos"})
    )
    kept = pl.col("pending0") + pl.col("cost_delta") - pl.col("late")
    facts = (
        linked.select(
            "pos", "is_receipt", "qty", "q_abs", "unfed0", "pending0", "cost_delta", "frozen"
        )
        .with_columns(issue_passing())
        .join(links.fed, on="pos", how="left")
        .join(passed, on="pos", how="left")
        .with_columns(
            fed=pl.col("fed").fill_null(0),
            passed=pl.when(pl.col("pos").is_in(links.components["issue_pos"].implode()))
            .then(pl.col("to_pass"))
            .otherwise(pl.col("passed").fill_null(0)),
        )
        # A close hands a late component's whole change to the offset account (late cost);
        # a recalculation leaves it waiting for the close.
        .with_columns(
            late_all=pl.col("pos").is_in(links.late["pos"].implode()) & pl.lit(settle),
            # An issue paired with its receipts (a move, a transit leg) takes their cost: its
            # change this run re-prices the units it moves now, none fed earlier, and what it
            # held back is superseded by that cost, not passed on nor left on the offset.
            paired=pl.col("pos").is_in(links.dropped["pos"].implode()) & ~pl.col("is_receipt"),
        )
        .with_columns(
            late=pl.when("late_all")
            .then(pl.col("late") + pl.col("to_pass"))
            .when("paired")
            .then(0)
            .otherwise("late"),
        )
        .with_columns(
            unfed1=(pl.col("unfed0") - pl.col("fed")) if settle else pl.col("unfed0"),
            # An issue's change kept back (not passed on, not late).
            left=pl.when(pl.col("is_receipt")).then(0).otherwise(kept - pl.col("passed")),
            late=pl.when(pl.col("is_receipt")).then(0).otherwise(pl.col("late")),
        )
        .with_columns(
            # Kept back with nothing left to feed: no later run can pass it on.
            not_taken=pl.when(pl.lit(settle) & (pl.col("unfed1") == 0))
            .then(pl.col("left"))
            .otherwise(0),
        )
        .with_columns(
            # A receipt's provisional change: what its derived changes add up to since the last
            # close (a cycle's receipt takes the solve's change, not the cut of its feeds); a
            # close settles it for good (fed) or takes it back (``provisional``).
            pending1=pl.when(pl.col("is_receipt") & pl.col("frozen"))
            .then(pl.col("pending0"))
            .when(pl.col("is_receipt"))
            .then(0 if settle else pl.col("pending0") + pl.col("cost_delta"))
            .otherwise((pl.col("left") - pl.col("not_taken")) if settle else kept),
        )
    )
    at = rows_at(facts["pos"], rows["pos"])
    rows = rows.with_columns(facts["unfed1"].gather(at), facts["pending1"].gather(at))
    late = facts.filter(pl.col("late") != 0).select(
        "pos",
        "late",
        late_qty=pl.when("late_all").then(pl.col("q_full")).otherwise(pl.col("fed_before")),
    )
    not_taken = facts.filter(pl.col("not_taken") != 0).select("pos", "not_taken", fed_qty="fed")
    return rows, Unpassed(late=late, not_taken=not_taken)
