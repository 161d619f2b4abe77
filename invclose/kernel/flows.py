"""Order links: which issues feed which derived receipts (close-semantics §9).

Rows sharing an ``order_id`` (never purchases or sales) form an order: a transfer order when
their ``kind`` is ``transfer``, else a production order. A receipt is **derived** when its
order has at least one issue. In a transfer order, issued quantity feeds received quantity in
key order, unit by unit (the same cumulative-axes merge the methods use, keyed by order); in a
production order every component issue feeds every output, shared by ``cost_share`` (else the
outputs' posted amounts, else their quantities).

Two kinds of transfer pairs are settled before any method, with principle ``transfer``:

* a **non-financial move**: an issue feeding a receipt of its own group (and none of
  another group). Both drop out of costing, and the receipt is not derived;
* a **transit** pair: in a group where the order's first row is a receipt, the order's later
  issues settle against its receipts in key order, and the method never pairs them with other
  rows of the group. The receipts' rest waits for the order's later issues, across closes
  too (``transit``: the order's issues there stay open while its receipts hold units).

Only financial rows dated on or before the closing date take part in the links, and feeding
runs on each row's ``unfed0`` (the quantity no earlier close has fed, close-semantics §9.1): a
shipment closed before its receipt was dated feeds that receipt in the close that covers it,
and a receipt an earlier close fed is not fed again.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from invclose.kernel.matching import merge_axes
from invclose.kernel.money import to_cents, to_micro
from invclose.kernel.prepare import PERIODIC

TRANSFER = "transfer"
PRODUCTION = "production"


@dataclass(frozen=True)
class OrderLinks:
    """The order structure of one run."""

    # receipt_rank: the receipt's place in key order (date, seq, txn_id) across groups, the
    # order in which an issue's or an order's change is cut across the receipts it feeds.
    feeds: pl.DataFrame  # issue_pos, receipt_pos, qty (transfer feeding), receipt_rank
    production: pl.DataFrame  # order, receipt_pos, weight, receipt_rank (costed outputs)
    # The same for outputs of standard / moving-average items of those orders: they weigh in
    # the order's split but take nothing (the close adjusts no such row).
    untaken: pl.DataFrame
    components: pl.DataFrame  # order, issue_pos (components of costed production orders)
    prepaired: pl.DataFrame  # pieces settled before the method (principle transfer)
    # pos of rows that leave the method (move pairs, transit receipts, transit issues their
    # pairs cover); an issue partly covered takes the rest from the method.
    dropped: pl.DataFrame
    derived: pl.DataFrame  # pos of derived receipts
    not_costed: pl.DataFrame  # pos and order_id of outputs whose components are not financial
    fed: pl.DataFrame  # pos, fed: quantity of the row fed in this run (issues and receipts)
    late: pl.DataFrame  # pos of components whose order's outputs an earlier close costed
    frozen: pl.DataFrame  # pos of receipts a recalculation limited to other items leaves alone
    # Rows of transit groups (pos, code: one per order and group, is_receipt), issues an
    # earlier close settled included: while a receipt there holds units, its order's issues
    # there stay open, so that the next close sees the group as a transit one (§9.2).
    transit: pl.DataFrame

    def weighed_outputs(self) -> pl.DataFrame:
        """Every output that weighs in its order's split: ``production`` and ``untaken``, with
        ``takes`` (whether the output takes its share)."""
        return pl.concat(
            [
                self.production.with_columns(takes=pl.lit(True)),
                self.untaken.with_columns(takes=pl.lit(False)),
            ]
        )


def _empty_links() -> OrderLinks:
    i64 = pl.Int64
    return OrderLinks(
        feeds=pl.DataFrame(
            schema={"issue_pos": i64, "receipt_pos": i64, "qty": i64, "receipt_rank": i64}
        ),
        production=pl.DataFrame(
            schema={"order": i64, "receipt_pos": i64, "weight": i64, "receipt_rank": i64}
        ),
        untaken=pl.DataFrame(
            schema={"order": i64, "receipt_pos": i64, "weight": i64, "receipt_rank": i64}
        ),
        components=pl.DataFrame(schema={"order": i64, "issue_pos": i64}),
        prepaired=pl.DataFrame(
            schema={
                "issue_pos": i64,
                "receipt_pos": i64,
                "qty": i64,
                "phase": i64,
                "rank": i64,
                "principle": pl.String,
            }
        ),
        dropped=pl.DataFrame(schema={"pos": i64}),
        derived=pl.DataFrame(schema={"pos": i64}),
        not_costed=pl.DataFrame(schema={"pos": i64, "order_id": pl.String}),
        fed=pl.DataFrame(schema={"pos": i64, "fed": i64}),
        late=pl.DataFrame(schema={"pos": i64}),
        frozen=pl.DataFrame(schema={"pos": i64}),
        transit=pl.DataFrame(schema={"pos": i64, "code": i64, "is_receipt": pl.Boolean}),
    )


#: Columns of the working frame that ``order_links`` reads.
_READ = (
    "pos",
    "gid",
    "order_id",
    "kind",
    "in_scope",
    "method",
    "date",
    "seq",
    "txn_id",
    "fin",
    "is_receipt",
    "q_abs",
    "w_abs",
    "v0",
    "cost_share",
    "amount",
    "qty",
    "unfed0",
    "frozen",
)


def order_links(working: pl.DataFrame) -> OrderLinks:
    """Find feeding, transit and move pairs, and production shares."""
    # Only the columns read here: every later filter, sort and join copies what it is given.
    # Rows of orders have ``unfed0`` (``prepare.build_working``). Rows of every method use up
    # unfed quantity; only the periodic methods' rows take part in pairs and cost shares
    # (a standard-cost receipt takes no cost from the close: its share stays on the offset).
    linked = (
        working.select(*_READ)
        .filter(pl.col("unfed0").is_not_null() & pl.col("in_scope"))
        .with_columns(periodic=pl.col("method").is_in(PERIODIC))
    )
    if linked.is_empty():
        return _empty_links()
    # Order legs follow the key order across groups (date, seq, txn_id), not ``pos``.
    linked = linked.sort("date", "seq", "txn_id").with_columns(
        key_rank=pl.int_range(pl.len()).cast(pl.Int64)
    )
    orders = linked.select("order_id").unique().sort("order_id").with_row_index("order")
    linked = linked.join(orders, on="order_id").with_columns(pl.col("order").cast(pl.Int64))
    kinds = linked.group_by("order").agg(is_transfer=(pl.col("kind") == TRANSFER).all())
    linked = linked.join(kinds, on="order")
    fin = linked.filter(pl.col("fin"))
    unfed = pl.col("unfed0") > 0
    periodic = pl.col("periodic")
    # Periodic issues with quantity still to feed: a receipt is derived when its order has one.
    has_issue = linked.filter(~pl.col("is_receipt") & unfed & periodic).select("order").unique()

    # Transfer orders: unit-by-unit feeding in key order, of what no earlier run has fed.
    # Rows a recalculation limited to other items leaves alone pair with nothing.
    # Issues with nothing open (an earlier close settled them) pair with nothing, but still
    # make their group a transit one.
    transfer = fin.filter(pl.col("is_transfer") & periodic & ~pl.col("frozen"))
    # A transit transfer is two legs (§9.2): in an order with a transit group (a group whose
    # first row of the order is a receipt, with an issue of the order after it), shipments
    # feed the transit group's receipts and its issues the receipts elsewhere; each leg unit
    # by unit in key order. (One key-order merge of the whole order fed the forwarded unit's
    # receipt from the shipment, and the transit issue from a later transit receipt.)
    per_order_group = transfer.group_by("order", "gid").agg(
        in_transit=pl.col("is_receipt").sort_by("key_rank").first() & (~pl.col("is_receipt")).any()
    )
    feeding = (
        fin.filter(pl.col("is_transfer") & unfed)
        .join(per_order_group, on=["order", "gid"], how="left")
        .with_columns(pl.col("in_transit").fill_null(False))
        .with_columns(has_transit=pl.col("in_transit").any().over("order"))
        .with_columns(
            leg=pl.when(pl.col("has_transit") & (pl.col("in_transit") != pl.col("is_receipt")))
            .then(1)
            .otherwise(0)
        )
    )
    leg_gid = (2 * pl.col("order") + pl.col("leg")).cast(pl.Int64)
    t_receipts = feeding.filter(pl.col("is_receipt")).select(
        gid=leg_gid, pos="pos", rem="unfed0", draw="key_rank"
    )
    t_issues = feeding.filter(~pl.col("is_receipt")).select(
        gid=leg_gid, pos="pos", rem="unfed0", draw="key_rank"
    )
    feeds = (
        merge_axes(t_receipts, t_issues)
        if not t_receipts.is_empty() and not t_issues.is_empty()
        else _empty_links().feeds
    ).select("issue_pos", "receipt_pos", "qty")
    gid_of = linked.select("pos", "gid", "key_rank", "periodic", "q_abs", "unfed0")
    all_feeds = feeds.join(
        gid_of.select(
            issue_pos="pos",
            i_gid="gid",
            i_periodic="periodic",
            i_open="q_abs",
            i_unfed="unfed0",
        ),
        on="issue_pos",
        maintain_order="left",
    ).join(
        gid_of.select(
            receipt_pos="pos", r_gid="gid", receipt_rank="key_rank", r_periodic="periodic"
        ),
        on="receipt_pos",
        maintain_order="left",
    )
    # A move stays in its group, so both sides have the group's method. It pairs an issue
    # whose quantity still to feed is all open: once an earlier close settled some of it (the
    # issue was short of receipts, or its receipts came after that close), its receipts take
    # the issue's cost like any transfer receipt (pairing them again would settle the issue
    # twice), and what it holds open goes to the method.
    # An issue that also feeds a receipt in another group is no move: its goods do not stay
    # in the group, so the method settles it like any shipment and all its receipts take its
    # cost (as a move, its unpaired units waited for a receipt in the group that had come
    # elsewhere).
    same_group = pl.col("i_gid") == pl.col("r_gid")
    leaves = pl.col("issue_pos").is_in(
        all_feeds.filter(~same_group)["issue_pos"].unique().implode()
    )
    settled_before = pl.col("i_open") < pl.col("i_unfed")
    moves = all_feeds.filter(same_group & ~settled_before & ~leaves & pl.col("i_periodic")).join(
        linked.filter(pl.col("frozen")).select(issue_pos="pos"), on="issue_pos", how="anti"
    )
    feeds = all_feeds.filter(
        (~same_group | settled_before | leaves) & pl.col("i_periodic") & pl.col("r_periodic")
    ).select("issue_pos", "receipt_pos", "qty", "receipt_rank")

    # Transit: in a group where the order's first row is a receipt, later issues settle
    # against its receipts in key order.
    in_moves = pl.col("pos").is_in(pl.concat([moves["issue_pos"], moves["receipt_pos"]]).implode())
    per_group = (
        transfer.filter(~in_moves)
        .with_columns(
            first_is_receipt=pl.col("is_receipt").sort_by("pos").first().over("order", "gid"),
            key=pl.struct("order", "gid"),
        )
        .filter(pl.col("first_is_receipt"))
    )
    group_code = (
        per_group.select("order", "gid").unique().sort("order", "gid").with_row_index("code")
    )
    per_group = per_group.join(group_code, on=["order", "gid"]).with_columns(
        pl.col("code").cast(pl.Int64)
    )
    open_rows = per_group.filter(pl.col("q_abs") > 0)
    tr_r = open_rows.filter(pl.col("is_receipt")).select(
        gid="code", pos="pos", rem="q_abs", draw="pos"
    )
    tr_i = open_rows.filter(~pl.col("is_receipt")).select(gid="code", pos="pos", rem="q_abs")
    transit = (
        merge_axes(tr_r, tr_i).select("issue_pos", "receipt_pos", "qty", "rank")
        if not tr_r.is_empty() and not tr_i.is_empty()
        else pl.DataFrame(
            schema={
                "issue_pos": pl.Int64,
                "receipt_pos": pl.Int64,
                "qty": pl.Int64,
                "rank": pl.Int64,
            }
        )
    )
    prepaired = pl.concat(
        [
            moves.select("issue_pos", "receipt_pos", "qty", rank=pl.col("issue_pos")),
            transit.select("issue_pos", "receipt_pos", "qty", rank=pl.col("issue_pos")),
        ]
    ).with_columns(phase=pl.lit(0, pl.Int64), principle=pl.lit(TRANSFER))
    # A transit issue larger than its group's transit receipts settles against them first and
    # its rest by the method (§9.2 "first"): only issues the pairs cover in full leave it, as
    # do the transit receipts (their rest waits for the order's later issues).
    paired = transit.group_by("issue_pos").agg(paired=pl.col("qty").sum())
    in_transit = per_group.filter((~pl.col("is_receipt")).any().over("code"))
    covered = (
        in_transit.filter(~pl.col("is_receipt"))
        .join(paired, left_on="pos", right_on="issue_pos", how="left")
        .filter(pl.col("paired").fill_null(0) >= pl.col("q_abs"))
    )
    # A move's issue leaves the method whole: what its receipts in scope do not take yet is
    # on its way within its financial dimension, not issued from it, so it waits for its
    # receipts (logged awaiting_transfer_receipt) rather than taking receipts from the
    # group's stock; so does a move's receipt (its rest waits for the order's later issues).
    dropped = pl.concat(
        [
            moves.select(pos="issue_pos"),
            moves.select(pos="receipt_pos"),
            in_transit.filter(pl.col("is_receipt")).select("pos"),
            covered.select("pos"),
        ]
    ).unique()

    # Production orders: every component feeds every output, shared by weight.
    production_rows = linked.filter(~pl.col("is_transfer"))
    all_components = production_rows.filter(~pl.col("is_receipt") & unfed)
    # An order is fed once its outputs are financial and none of its components is physical.
    fed_orders = (
        production_rows.filter(pl.col("is_receipt") & pl.col("fin") & unfed)
        .select("order")
        .join(all_components.select("order"), on="order", how="semi")
        .join(all_components.filter(~pl.col("fin")).select("order"), on="order", how="anti")
        .unique()
    )
    # Components issued after every output in scope was costed by an earlier close (a late
    # material issue), and no output of the order waits to be fed (dated later, or not yet
    # invoiced): nothing is left to feed, so their change is late cost.
    waiting_outputs = (
        working.lazy()
        .filter(pl.col("is_receipt") & (pl.col("unfed0") > 0))
        .select("order_id")
        .unique()
        .collect()
    )
    # (An order with an output in scope and none waiting has all its outputs fed.)
    late = (
        all_components.filter(pl.col("fin"))
        .join(waiting_outputs, on="order_id", how="anti")
        .join(
            production_rows.filter(pl.col("is_receipt") & pl.col("fin")).select("order"),
            on="order",
            how="semi",
        )
        .select("pos")
    )
    components = all_components.filter(periodic).select(
        "order", issue_pos="pos", fin="fin", unfed0="unfed0"
    )
    uncosted_orders = components.filter(~pl.col("fin")).select("order").unique()
    outputs = production_rows.filter(
        pl.col("is_receipt")
        & pl.col("fin")
        & unfed
        & pl.col("order").is_in(has_issue["order"].implode())
    )
    not_costed = outputs.filter(
        periodic & pl.col("order").is_in(uncosted_orders["order"].implode())
    ).select("pos", "order_id")
    outputs = outputs.filter(~pl.col("order").is_in(uncosted_orders["order"].implode()))
    # Shares that are all 0 (or empty) weigh nothing: posted amounts, else quantities, decide.
    # Posted, not carried: an output an earlier run adjusted or consumed keeps its weight.
    # Every output of the order weighs (§9.3), a standard co-product's share included.
    any_share = (pl.col("cost_share").fill_null(0) > 0).any().over("order")
    posted = to_cents(pl.col("amount")).abs()
    any_amount = (posted != 0).any().over("order")
    all_weights = outputs.with_columns(
        weight=pl.when(any_share)
        .then(to_micro(pl.col("cost_share").fill_null(0)))
        .when(any_amount)
        .then(posted)
        .otherwise(to_micro(pl.col("qty")).abs())
    ).select("order", "periodic", receipt_pos="pos", weight="weight", receipt_rank="key_rank")
    weights = all_weights.filter(pl.col("periodic")).drop("periodic")
    # Only orders with a periodic output share out their change (with none, the components'
    # change stays on the offset whole, logged on the components: cost_not_taken).
    untaken = all_weights.filter(
        ~pl.col("periodic") & pl.col("order").is_in(weights["order"].implode())
    ).drop("periodic")
    costed_components = components.filter(
        ~pl.col("order").is_in(uncosted_orders["order"].implode())
        & pl.col("order").is_in(weights["order"].implode())
    )
    # What each row has fed (or been fed) in this run: its part of the transfer feeds (moves
    # included), and the whole unfed quantity of the rows of a fed production order.
    fed_rows = production_rows.filter(
        unfed
        & pl.col("order").is_in(fed_orders["order"].implode())
        & (~pl.col("is_receipt") | pl.col("fin"))
    )
    fed = (
        pl.concat(
            [
                all_feeds.select(pos="issue_pos", fed="qty"),
                all_feeds.select(pos="receipt_pos", fed="qty"),
                fed_rows.select(pos="pos", fed="unfed0"),
                all_components.join(late, on="pos", how="semi").select(pos="pos", fed="unfed0"),
            ]
        )
        .group_by("pos")
        .agg(pl.col("fed").sum())
        .sort("pos")
    )
    frozen = linked.filter(pl.col("is_receipt") & pl.col("frozen")).select("pos")
    derived = (
        pl.concat(
            [
                feeds.select(pos="receipt_pos"),
                weights.select(pos="receipt_pos"),
            ]
        )
        .unique()
        .join(frozen, on="pos", how="anti")
    )
    return OrderLinks(
        feeds=feeds,
        production=weights,
        untaken=untaken,
        components=costed_components.select("order", "issue_pos"),
        prepaired=prepaired.select("issue_pos", "receipt_pos", "qty", "phase", "rank", "principle"),
        dropped=dropped,
        derived=derived,
        not_costed=not_costed,
        fed=fed,
        late=late,
        frozen=frozen,
        transit=in_transit.select("pos", "code", "is_receipt"),
    )
