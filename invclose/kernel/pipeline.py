"""run_kernel: prepare -> links -> marking -> methods -> cost by levels -> findings -> balances.

A pure function from one frame holding any number of groups to the run's tables in kernel
units (int64 micro-units and cents). It knows nothing about files, engines or Decimal output;
``invclose.close`` converts. Quantities are settled once, for every group at once; values are
then costed level by level through the cost graph (one level when nothing links groups), with
each cycle solved as one linear system. Because groups only meet through order links, the
function can run on any partition made of whole connected components.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace

import polars as pl

from invclose.config import Method
from invclose.kernel import flow_findings
from invclose.kernel.averages import average_pieces
from invclose.kernel.balances import group_balances
from invclose.kernel.cycles import solve_cycle
from invclose.kernel.findings import close_findings, marking_ignored
from invclose.kernel.flows import OrderLinks, order_links
from invclose.kernel.levels import group_levels
from invclose.kernel.marking import settle_marked
from invclose.kernel.prepare import build_working, rows_at, run_starts
from invclose.kernel.pricing import apply_pieces, attach_sides, price_pieces
from invclose.kernel.propagate import (
    ORDER_TOTALS,
    UNTAKEN,
    carry_unfed,
    derived_adjustments,
    feed_shares,
    issue_passing,
    provisional,
)
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
    flows: pl.DataFrame  # lineage edges issue -> derived receipt (transfer, production)


@dataclass(frozen=True)
class _Plan:
    """Everything decided before values: quantities, links and the costing order."""

    working: pl.DataFrame
    links: OrderLinks
    unpriced: pl.DataFrame  # marking, transfer and method pieces (quantities only)
    averaging: pl.DataFrame  # rows for the weighted-average walk
    levels: pl.DataFrame  # gid, component, level, cyclic
    excluded: pl.DataFrame
    n_groups: int
    unpriced_gid: pl.Series  # the group of each unpriced piece's receipt
    # The feeds and components of issues with nothing open (an earlier close settled them
    # whole; None when there are none): their value is fixed, so they are shared out before
    # any level (_fixed_shares) and are no edge of the cost graph. ``level_links`` are the
    # others, costed level by level.
    fixed: OrderLinks | None
    level_links: OrderLinks


@dataclass(frozen=True)
class _Groups:
    """The plan's rows of some whole groups: everything costing them reads.

    Unpriced pieces belong to the group of their receipt (they price it). ``links`` keeps only
    the transfer feeds and production components whose *issue* is in these groups, with the
    outputs of every production order: an issue's change is shared out when its own level is
    costed, and reaches receipts of later levels through the running adjustments. So each
    level's work is in proportion to its own rows.
    """

    working: pl.DataFrame
    averaging: pl.DataFrame
    unpriced: pl.DataFrame
    unpriced_gid: pl.Series
    links: OrderLinks
    n_groups: int


def _max_of(frame: pl.DataFrame, column: str) -> int:
    """Largest value of an integer column (0 for an empty frame)."""
    value = frame.select(pl.col(column).max()).item()
    return int(value) if value is not None else 0


#: Columns of the remaining rows that the methods and the averaging walk read.
_REMAINING = ("gid", "pos", "day", "is_receipt", "method", "q_abs", "w_abs")


def _remaining(working: pl.DataFrame, used: pl.DataFrame, excluded: pl.DataFrame) -> pl.DataFrame:
    """Participating rows with quantity left after marking (only the columns read later)."""
    keep = pl.col("participates")
    if excluded.height:
        keep = keep & ~pl.col("pos").is_in(excluded["pos"].implode())
    return (
        working.select(*_REMAINING, "participates")
        .filter(keep)
        .drop("participates")
        .join(used, on="pos", how="left")
        .with_columns(used=pl.col("used").fill_null(0))
        .with_columns(rem=pl.col("q_abs") - pl.col("used"))
        .filter(pl.col("rem") > 0)
    )


def _plan(working: pl.DataFrame, dims: list[str], closing_date: dt.date) -> _Plan:
    links = order_links(working)
    working = working.with_columns(
        is_derived=pl.col("pos").is_in(links.derived["pos"].implode()),
        derived_adj=pl.lit(0, pl.Int64),
    )
    marking = settle_marked(working)
    # Quantity settled before the method: marked pairs, and transfer pairs (a transit issue
    # larger than its transit receipts takes only the rest from the method).
    transferred = links.prepaired.group_by("issue_pos").agg(pl.col("qty").sum())
    used = (
        pl.concat(
            [marking.used, transferred.select(pos="issue_pos", used="qty")], how="vertical_relaxed"
        )
        .group_by("pos")
        .agg(pl.col("used").sum())
    )
    remaining = _remaining(working, used, marking.excluded)
    if links.dropped.height:
        remaining = remaining.filter(~pl.col("pos").is_in(links.dropped["pos"].implode()))
    ordinal = method_pieces(remaining.select("gid", "pos", "day", "rem", "is_receipt", "method"))
    averaging = remaining.filter(pl.col("method").is_in(AVERAGING)).with_columns(
        walk_day=pl.when(pl.col("method") == Method.WEIGHTED_AVERAGE.value)
        .then(pl.lit(closing_date).cast(pl.Int32))
        .otherwise(pl.col("day"))
    )
    gid_of = working.select("pos", "gid")
    # An issue an earlier close settled whole feeds a receipt of its own group without
    # depending on it (a move received after the close that settled its issue): as an edge
    # it made a self-loop, solved as a cycle that rounded each receipt on its own.
    linked = pl.concat([links.feeds["issue_pos"], links.components["issue_pos"]]).implode()
    fixed_issues = (
        working.lazy()
        .filter(~pl.col("is_receipt") & (pl.col("q_abs") == 0) & pl.col("pos").is_in(linked))
        .select("pos")
        .collect()["pos"]
    )
    fixed, level_links = _split_links(links, fixed_issues)
    edges = pl.concat(
        [
            level_links.feeds.select("issue_pos", "receipt_pos"),
            level_links.components.join(links.production, on="order").select(
                "issue_pos", "receipt_pos"
            ),
        ]
    )
    edges = (
        edges.join(gid_of.rename({"pos": "issue_pos", "gid": "src"}), on="issue_pos")
        .join(gid_of.rename({"pos": "receipt_pos", "gid": "dst"}), on="receipt_pos")
        .select("src", "dst")
        .unique()
    )
    n_groups = _max_of(working, "gid") + 1 if working.height else 0
    levels = group_levels(n_groups, edges)
    unpriced = pl.concat([marking.pieces, links.prepaired, ordinal])
    unpriced_gid = working["gid"].gather(rows_at(working["pos"], unpriced["receipt_pos"]))
    return _Plan(
        working,
        links,
        unpriced,
        averaging,
        levels,
        marking.excluded,
        n_groups,
        unpriced_gid,
        fixed,
        level_links,
    )


def _cost_groups(
    groups: _Groups,
    gids: pl.Series,
    adjust: pl.DataFrame,
    next_pos: int,
    dims: list[str],
    closing_date: dt.date,
    settle: bool,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Value the rows of ``gids`` with derived receipts moved by ``adjust`` (pos, derived_adj)."""
    if gids.n_unique() == groups.n_groups:
        # Every group of ``groups`` at once (a whole level): nothing to select.
        base, averaging, unpriced = groups.working, groups.averaging, groups.unpriced
    else:
        wanted = gids.implode()
        base = groups.working.filter(pl.col("gid").is_in(wanted))
        averaging = groups.averaging.filter(pl.col("gid").is_in(wanted))
        unpriced = groups.unpriced.filter(groups.unpriced_gid.is_in(wanted))
    # adjust has one row per pos: a gather by position is its left join.
    derived_adj = adjust["derived_adj"].gather(rows_at(adjust["pos"], base["pos"])).fill_null(0)
    moved = (
        base.drop("derived_adj")
        .with_columns(derived_adj)
        .with_columns(
            w_abs=pl.when(pl.col("is_receipt"))
            .then(pl.col("w_abs") + pl.col("derived_adj"))
            .otherwise(pl.col("w_abs"))
        )
    )
    walk_rows = averaging.drop("w_abs").with_columns(
        moved["w_abs"].gather(rows_at(moved["pos"], averaging["pos"]))
    )
    pieces, virtual = average_pieces(walk_rows, next_pos=next_pos)
    if pieces.height:
        # The method of each group: its first row's (moved is in pos order, so by group).
        methods = moved.select("gid", "method").filter(run_starts("gid"))
        principle = methods["method"].gather(rows_at(methods["gid"], pieces["gid"]))
    else:
        principle = pl.Series(dtype=pl.String)
    pieces = pieces.with_columns(principle.alias("principle"), phase=pl.lit(1, pl.Int64))
    # Closing rows only read the groups that have one.
    owners = moved.filter(pl.col("gid").is_in(virtual["gid"].unique().implode()))
    closing = closing_rows(virtual, owners, dims)
    everything = pl.concat([moved, closing]) if closing.height else moved
    priced = pl.concat(
        [
            price_pieces(unpriced, everything),
            attach_sides(pieces.drop("gid"), everything),
        ],
        how="diagonal_relaxed",
    )
    return apply_pieces(everything, priced, settle=settle), priced


def _issue_facts(rows: pl.DataFrame, groups: _Groups) -> pl.DataFrame:
    """What ``feed_shares`` reads of the issues; only issues that feed something matter."""
    linked = pl.concat(
        [groups.links.feeds.select("issue_pos"), groups.links.components.select("issue_pos")]
    )["issue_pos"]
    return (
        rows.lazy()
        .filter(~pl.col("is_receipt") & pl.col("pos").is_in(linked.implode()))
        .select(
            "pos",
            "unfed0",
            *issue_passing(),
            value=(-pl.col("carried1")).clip(lower_bound=0),
        )
        .collect()
    )


def _split_links(links: OrderLinks, issues: pl.Series) -> tuple[OrderLinks | None, OrderLinks]:
    """The transfer feeds and production components of ``issues`` (None when there are
    none), and ``links`` without them."""
    if not issues.len():
        return None, links
    of = pl.col("issue_pos").is_in(issues.implode())
    fixed = replace(links, feeds=links.feeds.filter(of), components=links.components.filter(of))
    rest = replace(links, feeds=links.feeds.filter(~of), components=links.components.filter(~of))
    return fixed, rest


def _fixed_shares(working: pl.DataFrame, fixed: OrderLinks) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The shares of the issues an earlier close settled whole (``fixed``: their feeds and
    components), and their production orders' totals (``feed_shares``).

    The method takes nothing of such an issue, so this run changes nothing of it: it passes
    on what waits (``pending0``) and its value is its carried value, as costing would leave
    them. Cut like any issue's, as a level before the others.
    """
    issues = pl.concat([fixed.feeds["issue_pos"], fixed.components["issue_pos"]]).implode()
    facts = (
        working.lazy()
        .filter(pl.col("pos").is_in(issues))
        .with_columns(cost_delta=pl.lit(0, pl.Int64), carried1=pl.col("carried0"))
        .select("pos", "unfed0", *issue_passing(), value=(-pl.col("carried1")).clip(lower_bound=0))
        .collect()
    )
    return feed_shares(facts, fixed, pl.DataFrame(schema=ORDER_TOTALS))


def _cycle_feeds(groups: _Groups, rows: pl.DataFrame) -> pl.DataFrame:
    """Float shares receipt <- issue inside one cycle (for the linear system)."""
    # A feed of qty passes qty / unfed0 of the issue's change less its late part, which is
    # (q_abs - unfed0) / q_abs of it when positive (issue_passing): qty * min(q_abs, unfed0)
    # / (q_abs * unfed0) of the change (qty / q_full for an issue new in the run).
    facts = rows.select("pos", "q_abs", "unfed0")
    transfer = groups.links.feeds.join(facts.rename({"pos": "issue_pos"}), on="issue_pos").select(
        "issue_pos",
        "receipt_pos",
        # (An issue with nothing open changes by nothing here: its feeds are shared out
        # before the levels and never reach a cycle; 0 keeps the system finite regardless.)
        share=pl.when(pl.col("q_abs") > 0)
        .then(
            pl.col("qty").cast(pl.Float64)
            * pl.min_horizontal("q_abs", "unfed0").cast(pl.Float64)
            / (pl.col("q_abs").cast(pl.Float64) * pl.col("unfed0").cast(pl.Float64))
        )
        .otherwise(0.0),
    )
    # Outputs that take nothing (standard co-products) still weigh in the whole.
    production = (
        groups.links.components.join(groups.links.weighed_outputs(), on="order")
        .with_columns(whole=pl.col("weight").sum().over("order", "issue_pos"))
        .filter(pl.col("takes"))
        .select(
            "issue_pos",
            "receipt_pos",
            share=pl.col("weight").cast(pl.Float64) / pl.col("whole").cast(pl.Float64),
        )
    )
    closing = (
        rows.lazy()
        .filter(pl.col("is_virtual_new") & ~pl.col("is_receipt"))
        .select(issue_pos="pos", receipt_pos=pl.col("pos") + 1, share=pl.lit(1.0))
        .collect()
    )
    inside = rows["pos"].implode()
    return pl.concat([transfer, production, closing]).filter(
        pl.col("issue_pos").is_in(inside)
        & pl.col("receipt_pos").is_in(inside)
        & ~pl.col("receipt_pos").is_in(groups.links.frozen["pos"].implode())
    )


def _cycle_waiting(groups: _Groups, rows: pl.DataFrame) -> pl.DataFrame:
    """What the cycle's issues pass on besides their own change (``pos``, ``extra``).

    An issue passes ``pending0`` cut over its unfed quantity (``issue_passing``), while the
    solve shares a transfer issue's change by ``qty * min(q_abs, unfed0) / (q_abs * unfed0)``
    (``_cycle_feeds``) and a component's by weight: so a transfer issue's waiting change
    counts ``q_abs / min(q_abs, unfed0)`` times, a component's once.
    """
    waiting = rows.filter(~pl.col("is_receipt") & (pl.col("pending0").fill_null(0) != 0))
    if waiting.is_empty():
        return pl.DataFrame(schema={"pos": pl.Int64, "extra": pl.Float64})
    transfer = pl.col("pos").is_in(groups.links.feeds["issue_pos"].implode()) & (
        pl.col("q_abs") > 0
    )
    scale = pl.col("q_abs").cast(pl.Float64) / pl.min_horizontal("q_abs", "unfed0").cast(pl.Float64)
    return waiting.select(
        "pos",
        extra=pl.col("pending0").cast(pl.Float64)
        * pl.when(transfer).then(scale).otherwise(pl.lit(1.0)),
    )


def _by_level(plan: _Plan) -> Iterator[tuple[int, _Groups]]:
    """The plan's rows split by the level of their group, levels in costing order.

    Filtering the whole plan for every level costs the plan's size once per level (22 levels
    on the benchmark's ``flows`` shape), so the pieces and links are split in one pass. The
    working rows, the one wide frame, are still taken level by level: splitting them at once
    would hold a second copy of them for the whole walk.
    """
    # An empty run still goes through one (empty) level, so every table keeps its schema.
    levels = sorted(plan.levels["level"].unique().to_list()) or [0]
    level_links = plan.level_links
    if len(levels) == 1:
        yield (
            levels[0],
            _Groups(
                plan.working,
                plan.averaging,
                plan.unpriced,
                plan.unpriced_gid,
                level_links,
                plan.n_groups,
            ),
        )
        return
    level_of = plan.levels["level"]  # one row per gid, in gid order
    gid_of = plan.working.select("pos", "gid")

    def split(frame: pl.DataFrame, gid: pl.Series) -> dict[int, pl.DataFrame]:
        parts = frame.with_columns(level_of.gather(gid).alias("_level")).partition_by(
            "_level", as_dict=True, include_key=False
        )
        return {key[0]: part for key, part in parts.items()}

    def issue_gid(links: pl.DataFrame) -> pl.Series:
        return gid_of["gid"].gather(rows_at(gid_of["pos"], links["issue_pos"]))

    working_level = level_of.gather(plan.working["gid"])
    averaging = split(plan.averaging, plan.averaging["gid"])
    unpriced = split(plan.unpriced.with_columns(_gid=plan.unpriced_gid), plan.unpriced_gid)
    feeds = split(level_links.feeds, issue_gid(level_links.feeds))
    components = split(level_links.components, issue_gid(level_links.components))
    counts = plan.levels.group_by("level").len()
    groups_at = dict(zip(counts["level"].to_list(), counts["len"].to_list(), strict=True))
    no_pieces = plan.unpriced.clear().with_columns(_gid=plan.unpriced_gid.clear())
    # Popped, so each level's parts are freed once the walk has costed it.
    for level in levels:
        priced = unpriced.pop(level, no_pieces)
        links = replace(
            level_links,
            feeds=feeds.pop(level, level_links.feeds.clear()),
            components=components.pop(level, level_links.components.clear()),
        )
        yield (
            level,
            _Groups(
                plan.working.filter(working_level == level),
                averaging.pop(level, plan.averaging.clear()),
                priced.drop("_gid"),
                priced["_gid"],
                links,
                groups_at[level],
            ),
        )


def _cost_by_levels(
    plan: _Plan, dims: list[str], closing_date: dt.date, settle: bool
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Rows, priced pieces, lineage shares and cycle log rows, costed level by level."""
    all_rows, all_pieces, all_shares, cycle_log = [], [], [], []
    # A recalculation's provisional changes are taken back: the run passes whole shares.
    adjust = provisional(plan.working, plan.links, settle=settle)
    # Production orders' component changes summed over the levels costed so far.
    totals = pl.DataFrame(schema=ORDER_TOTALS)
    if plan.fixed is not None:
        fixed, totals = _fixed_shares(plan.working, plan.fixed)
        adjust = (
            pl.concat([adjust, derived_adjustments(fixed)])
            .group_by("pos")
            .agg(pl.col("derived_adj").sum())
        )
        all_shares.append(fixed)
    next_pos = plan.working.height
    for level, groups in _by_level(plan):
        at = plan.levels.filter(pl.col("level") == level)
        rows, pieces = _cost_groups(groups, at["gid"], adjust, next_pos, dims, closing_date, settle)
        cyclic = at.filter(pl.col("cyclic")).select("gid", "component")
        if cyclic.height:
            # All cycles of a level in one block-diagonal system (cycles of a level never
            # feed each other); a cycle without a solution keeps this first pass's values.
            rows, pieces, adjust, log = _solve_cycles(
                groups, cyclic, rows, pieces, adjust, totals, next_pos, dims, closing_date, settle
            )
            cycle_log.append(log)
        # Virtual rows of later levels must not reuse a position: keep a running maximum.
        next_pos = max(next_pos, _max_of(rows, "pos") + 1) if rows.height else next_pos
        shares, totals = feed_shares(_issue_facts(rows, groups), groups.links, totals)
        downstream = derived_adjustments(shares).filter(~pl.col("pos").is_in(rows["pos"].implode()))
        adjust = pl.concat([adjust, downstream]).group_by("pos").agg(pl.col("derived_adj").sum())
        all_rows.append(rows)
        all_pieces.append(pieces)
        all_shares.append(shares)
    log = pl.concat(cycle_log, how="vertical_relaxed") if cycle_log else pl.DataFrame()
    # One chunk per column: every later step filters or gathers these whole frames, and on a
    # chunk per level (and per cycle pass) that costs several times a single copy here.
    return (
        pl.concat(all_rows, how="vertical_relaxed").rechunk(),
        pl.concat(all_pieces, how="diagonal_relaxed").rechunk(),
        pl.concat(all_shares, how="vertical_relaxed"),
        log,
    )


#: Columns of a cycle's rows that the solve (``solve_cycle``, ``_cycle_feeds``) and the cycle
#: log rows read, besides the financial dimensions.
_CYCLE_COLUMNS = (
    "pos",
    "gid",
    "is_receipt",
    "is_derived",
    "is_virtual_new",
    "q_abs",
    "w_abs",
    "cost_delta",
    "item_id",
    "txn_id",
    "order_id",
    "qty",
    "unfed0",
    "pending0",
)


def _cycle_rows(rows: pl.DataFrame, cycles: pl.DataFrame, dims: list[str]) -> pl.DataFrame:
    """The rows of the groups in ``cycles`` (gid, component) with their ``component``.

    Only what the solve and its log read: a cycle's rows are most of a level's rows, and
    copying every input column through the join costs more than the solve. In row order,
    since the solve numbers issues and receipts in the order they come.
    """
    return (
        rows.lazy()
        .select(*_CYCLE_COLUMNS, *dims)
        .join(cycles.lazy(), on="gid", maintain_order="left")
        .collect()
    )


def _solve_cycles(
    groups: _Groups,
    cyclic: pl.DataFrame,
    rows: pl.DataFrame,
    pieces: pl.DataFrame,
    adjust: pl.DataFrame,
    totals: pl.DataFrame,
    next_pos: int,
    dims: list[str],
    closing_date: dt.date,
    settle: bool,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Solve the cycles of ``cyclic`` (gid, component) and cost their groups again.

    Returns the rows, pieces and derived-receipt adjustments with the solved cycles costed
    again, and their log: ``cycle_residual`` per solved cycle, ``not_converged`` per cycle
    without a unique solution (whose rows stay as they were). ``totals`` are the production
    orders' component changes of the earlier levels (``feed_shares``).
    """
    base_rows = _cycle_rows(rows, cyclic, dims)
    base_pieces = pieces.filter(pl.col("receipt_pos").is_in(base_rows["pos"].implode()))
    solution = solve_cycle(
        base_rows, base_pieces, _cycle_feeds(groups, base_rows), _cycle_waiting(groups, base_rows)
    )
    logs = [flow_findings.not_converged(base_rows, cyclic, solution.failed, dims)]
    solved = cyclic.filter(~pl.col("component").is_in(solution.failed["component"].implode()))
    if not solved.height:
        return rows, pieces, adjust, logs[0]
    inner = (
        pl.concat([adjust, solution.adjustments]).group_by("pos").agg(pl.col("derived_adj").sum())
    )
    again_rows, again_pieces = _cost_groups(
        groups, solved["gid"], inner, next_pos + 2 * rows.height, dims, closing_date, settle
    )
    # Re-check in integer cents: what this level's rounded issues pass to each derived receipt
    # against the solve's change of it (earlier levels' shares are in ``adjust`` on both sides).
    level_shares, _ = feed_shares(_issue_facts(again_rows, groups), groups.links, totals)
    shares = derived_adjustments(level_shares)
    derived_inside = again_rows.lazy().filter(pl.col("is_derived")).select("pos", "gid").collect()
    gap = (
        derived_inside.join(shares, on="pos", how="left")
        .join(solution.adjustments.rename({"derived_adj": "given"}), on="pos", how="left")
        .join(solved, on="gid")
        .group_by("component")
        .agg(cents=(pl.col("derived_adj").fill_null(0) - pl.col("given").fill_null(0)).abs().sum())
    )
    logs.append(
        flow_findings.cycle_residuals(_cycle_rows(again_rows, solved, dims), solved, gap, dims)
    )
    redone = pl.col("gid").is_in(solved["gid"].implode())
    moved = rows.lazy().filter(redone).select("pos").collect()["pos"].implode()
    rows = pl.concat([rows.filter(~redone), again_rows], how="vertical_relaxed")
    pieces = pl.concat(
        [pieces.filter(~pl.col("receipt_pos").is_in(moved)), again_pieces],
        how="diagonal_relaxed",
    )
    return rows, pieces, inner, pl.concat(logs, how="vertical_relaxed")


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
    return run_kernel_on(
        build_working(frame, dims, closing_date), dims, closing_date, settle=settle
    )


def run_kernel_on(
    working: pl.DataFrame, dims: list[str], closing_date: dt.date, *, settle: bool = True
) -> KernelOutput:
    """:func:`run_kernel` over rows already sorted and flagged by
    :func:`invclose.kernel.prepare.build_working` (or a part of them, renumbered from 0 by
    :func:`invclose.parts.working_parts`)."""
    plan = _plan(working, dims, closing_date)
    rows, priced, shares, cycle_log = _cost_by_levels(plan, dims, closing_date, settle)
    rows, unpassed = carry_unfed(rows, plan.links, shares, settle=settle)
    if settle:
        rows = _close_perpetual(rows, dims, closing_date)
    rows = rows.with_columns(holds_transit=_holding_transit(rows, plan.links))
    balances = group_balances(rows, dims)
    logs = [
        close_findings(rows, priced, plan.excluded, balances, dims, _held(plan.links)),
        marking_ignored(rows, dims, PERPETUAL),
        flow_findings.not_costed(rows, plan.links.not_costed, dims),
        flow_findings.late_cost(rows, unpassed.late, dims),
        flow_findings.cost_not_taken(rows, unpassed.not_taken, dims),
        flow_findings.added_cost_below_zero(rows, shares, dims),
    ]
    if settle:
        # A recalculation's change still waits for the close; a close's stays where it is.
        untaken = shares.filter(pl.col("kind") == UNTAKEN).select(
            pos="receipt_pos", not_taken="delta"
        )
        logs.append(flow_findings.share_not_taken(rows, untaken, dims))
    if cycle_log.height:
        logs.append(cycle_log)
    log = pl.concat(logs, how="vertical_relaxed")
    return KernelOutput(rows=rows, pieces=priced, log=log, balances=balances, flows=shares)


def _holding_transit(rows: pl.DataFrame, links: OrderLinks) -> pl.Expr:
    """True on the issues of a transit group whose receipts still hold units after the run.

    They stay open (quantity 0) with those receipts: the next close needs a receipt and a
    later issue of the order in the group to know the receipts' rest waits for the order
    (§9.2), which the receipts alone do not say.
    """
    transit = links.transit
    if transit.is_empty():
        return pl.lit(False)
    left = rows.select("pos", "q1").join(transit.filter(pl.col("is_receipt")), on="pos")
    holding = left.filter(pl.col("q1") != 0).select("code").unique()
    issues = transit.filter(~pl.col("is_receipt")).join(holding, on="code", how="semi")
    return pl.col("pos").is_in(issues["pos"].implode())


def _held(links: OrderLinks) -> pl.DataFrame:
    """Rows that left the method, with the quantity their pairs used (``usable``): the rest
    of a transit receipt waits for its order's later issues, that of a move's issue for its
    receipts."""
    paired = (
        pl.concat(
            [
                links.prepaired.select(pos="issue_pos", usable="qty"),
                links.prepaired.select(pos="receipt_pos", usable="qty"),
            ]
        )
        .group_by("pos")
        .agg(pl.col("usable").sum())
    )
    return links.dropped.join(paired, on="pos", how="left").select(
        "pos", pl.col("usable").fill_null(0).cast(pl.Int64)
    )


def _close_perpetual(rows: pl.DataFrame, dims: list[str], closing_date: dt.date) -> pl.DataFrame:
    """Standard and moving-average groups: close their financial rows, carry one on-hand row."""
    perpetual = pl.col("method").is_in(PERPETUAL) & pl.col("in_scope") & pl.col("fin")
    onhand = onhand_rows(rows, dims, perpetual, closing_date)
    closed = rows.with_columns(
        q1=pl.when(perpetual).then(0).otherwise(pl.col("q1")),
        v1=pl.when(perpetual).then(0).otherwise(pl.col("v1")),
    )
    extra = onhand.with_columns(
        pos=pl.int_range(pl.len()).cast(pl.Int64) + _max_of(rows, "pos") + 1,
        q1=pl.col("q0"),
        v1=pl.col("v0"),
        carried1=pl.col("carried0"),
        adjustment=pl.lit(0, pl.Int64),
        cost_delta=pl.lit(0, pl.Int64),
        s_real=pl.lit(0, pl.Int64),
        adj_only_qty=pl.lit(0, pl.Int64),
    )
    return pl.concat([closed, extra.select(closed.columns)], how="vertical_relaxed")
