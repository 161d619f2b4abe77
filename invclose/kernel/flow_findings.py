"""Log rows of cost flow: uncosted production, late cost, changes no receipt takes, added
cost below zero, cycle residuals, cycles without a solution."""

from __future__ import annotations

import polars as pl

from invclose.kernel.money import from_cents, to_micro
from invclose.kernel.prepare import PERIODIC
from invclose.schemas import MICRO_PER_UNIT, joins_order

#: Columns of a cycle's rows that its log row reads (with the financial dimensions); the
#: cycle solve selects them too (``pipeline._CYCLE_COLUMNS``).
_LOGGED = ("pos", "component", "item_id", "txn_id", "order_id")


def _row(
    frame: pl.DataFrame,
    level: str,
    code: str,
    qty: pl.Expr,
    amount: pl.Expr,
    message: pl.Expr,
    dims: list[str],
) -> pl.DataFrame:
    return frame.select(
        pl.lit(level).alias("level"),
        pl.lit(code).alias("code"),
        "item_id",
        *dims,
        "txn_id",
        qty.cast(pl.Int64).alias("qty"),
        amount.cast(pl.Int64).alias("amount"),
        "order_id",
        message.alias("message"),
    )


def not_costed(rows: pl.DataFrame, outputs: pl.DataFrame, dims: list[str]) -> pl.DataFrame:
    """``production_not_costed``: outputs whose components are not financially posted by D."""
    hit = rows.filter(pl.col("pos").is_in(outputs["pos"].implode()))
    return _row(
        hit,
        "warning",
        "production_not_costed",
        pl.col("q_abs"),
        pl.lit(None),
        pl.format(
            "output {} of production order {}: components are not financially posted by the "
            "closing date (sub-production not costed); the output keeps its carried value",
            pl.col("txn_id"),
            pl.col("order_id"),
        ),
        dims,
    )


def _rows_with(rows: pl.DataFrame, facts: pl.DataFrame) -> pl.DataFrame:
    """The rows named by ``facts`` (one per ``pos``: issues or outputs), with its columns."""
    if facts.is_empty():
        rows = rows.clear()
    return rows.filter(pl.col("pos").is_in(facts["pos"].implode())).join(
        facts, on="pos", maintain_order="left"
    )


def late_cost(rows: pl.DataFrame, late: pl.DataFrame, dims: list[str]) -> pl.DataFrame:
    """``late_cost`` (info): an issue's change for quantity whose receipts an earlier close
    costed (``late``: pos, late cents, late_qty). The stateless close keeps no earlier pieces,
    so the change stays on the order's offset account (close-semantics §9.1)."""
    return _row(
        _rows_with(rows, late),
        "info",
        "late_cost",
        pl.col("late_qty"),
        pl.col("late"),
        pl.format(
            "issue {} of order {} changed by {} (+ = more cost) for quantity whose receipts an "
            "earlier close costed; that change stays on the order's offset account",
            pl.col("txn_id"),
            pl.col("order_id"),
            _money(pl.col("late")),
        ),
        dims,
    )


def cost_not_taken(rows: pl.DataFrame, not_taken: pl.DataFrame, dims: list[str]) -> pl.DataFrame:
    """``cost_not_taken`` (info): an order's issue whose change, or part of it, went with
    quantity fed to receipts of ``standard`` or ``moving_average`` items (``not_taken``: pos,
    not_taken cents, fed_qty). The close does not adjust such receipts, so the change stays on
    the order's offset account (at standard cost, a variance); without this row nothing
    would explain that balance on transit or WIP."""
    return _row(
        _rows_with(rows, not_taken),
        "info",
        "cost_not_taken",
        pl.col("fed_qty"),
        pl.col("not_taken"),
        pl.format(
            "issue {} of order {} changed by {} (+ = more cost) that no receipt takes: the "
            "quantity it fed went to receipts of standard or moving-average items, which the "
            "close does not adjust; that change stays on the order's offset account",
            pl.col("txn_id"),
            pl.col("order_id"),
            _money(pl.col("not_taken")),
        ),
        dims,
    )


def share_not_taken(rows: pl.DataFrame, untaken: pl.DataFrame, dims: list[str]) -> pl.DataFrame:
    """``cost_not_taken`` (info) on an output of a ``standard`` or ``moving_average`` item of a
    production order whose other outputs are periodic (``untaken``: pos, not_taken cents).
    Its share of the order's change (by the order's weights, §9.3) is not adjusted (§7.4)
    and stays on the order's offset account."""
    return _row(
        _rows_with(rows, untaken),
        "info",
        "cost_not_taken",
        to_micro(pl.col("qty")).abs(),
        pl.col("not_taken"),
        pl.format(
            "output {} of order {} is an item the close does not adjust: its share of the "
            "order's cost change, {} (+ = more cost), stays on the order's offset account",
            pl.col("txn_id"),
            pl.col("order_id"),
            _money(pl.col("not_taken")),
        ),
        dims,
    )


def added_cost_below_zero(
    rows: pl.DataFrame, shares: pl.DataFrame, dims: list[str]
) -> pl.DataFrame:
    """``added_cost_below_zero`` (warning): a transfer order whose receipts hold less after
    the close than the issues that fed them.

    A derived receipt's value is its issues' value plus its own added cost (close-semantics
    §9.1), which the close leaves as posted. A transfer receipt posted for less than its
    issues' cost (without a price it takes the running average of its empty group at
    posting, §1.3) has a negative added cost, and the difference stays on the order's
    offset account (transit) for good. Only orders whole in the run are judged: every issue
    feeds all of its quantity now (nothing fed by an earlier close, nothing left), every
    receipt is fed all of its quantity now, all dated on or before the closing date, and
    all of periodic items. Then the receipts' carried values less the issue values cut to
    them is exactly their posted amounts less the issues' (a cent per receipt is allowed for
    the posting's own rounding). Production orders are not judged: an output in a later
    period takes its share later, so a run cannot tell an output's added cost.
    """
    fed = (
        shares.filter(pl.col("kind") == "transfer")
        .group_by("receipt_pos")
        .agg(pl.col("amount").sum().alias("fed"), pl.col("qty").sum().alias("fed_qty"))
    )
    linked = rows.filter(joins_order()).join(fed, left_on="pos", right_on="receipt_pos", how="left")
    # Against the row's whole quantity: an opening's row enters with what is still open.
    whole_issue = (
        ~pl.col("is_receipt")
        & (pl.col("unfed0") == to_micro(pl.col("qty")).abs())
        & (pl.col("unfed1") == 0)
    )
    whole_receipt = (
        pl.col("is_receipt")
        & (pl.col("fed_qty") == to_micro(pl.col("qty")))
        & pl.col("method").is_in(PERIODIC)
    )
    whole = (
        pl.col("in_scope") & (pl.col("kind") == "transfer") & (whole_issue | whole_receipt)
    ).fill_null(False)
    receipt = pl.col("is_receipt")
    orders = (
        linked.sort("pos")
        .group_by("order_id", maintain_order=True)
        .agg(
            whole.all().alias("whole"),
            pl.col("pos").filter(receipt).first(),
            pl.col("carried1").filter(receipt).sum().alias("held"),
            pl.col("fed").filter(receipt).sum(),
            pl.col("q_abs").filter(receipt).sum().alias("received"),
            receipt.sum().cast(pl.Int64).alias("receipts"),
        )
        .filter(pl.col("whole") & (pl.col("receipts") > 0))
        .with_columns(added=pl.col("held") - pl.col("fed"))
        .filter(pl.col("added") < -pl.col("receipts"))
        .drop("whole")
    )
    first = rows.filter(pl.col("pos").is_in(orders["pos"].implode())).join(
        orders.drop("order_id"), on="pos", maintain_order="left"
    )
    return _row(
        first,
        "warning",
        "added_cost_below_zero",
        pl.col("received"),
        pl.col("added"),
        pl.format(
            "order {}: its receipts hold {} after the close, the issues that feed them {}; the "
            "added cost {} (routing, labour, overhead: rarely below zero) stays on the order's "
            "offset account. A receipt posted without a price takes the running average of its "
            "group at posting: post it at the cost of its issues",
            pl.col("order_id"),
            _money(pl.col("held")),
            _money(pl.col("fed")),
            _money(pl.col("added")),
        ),
        dims,
    )


def cycle_residuals(
    rows: pl.DataFrame, cyclic: pl.DataFrame, gap: pl.DataFrame, dims: list[str]
) -> pl.DataFrame:
    """``cycle_residual`` (info), one per solved cycle: the cents its rounding leaves on the
    orders' offset accounts, with the cycle's size in groups (``qty``)."""
    sizes = cyclic.group_by("component").agg(size=pl.len())
    first = (
        rows.select(*_LOGGED, *dims)
        .sort("pos")
        .group_by("component", maintain_order=True)
        .first()
        .join(sizes, on="component", maintain_order="left")
        .join(gap, on="component", how="left", maintain_order="left")
        .with_columns(pl.col("cents").fill_null(0))
    )
    return _row(
        first,
        "info",
        "cycle_residual",
        # qty: the number of groups, stored like any qty in micro-units.
        pl.col("size").cast(pl.Int64) * MICRO_PER_UNIT,
        pl.col("cents"),
        pl.format(
            "cost cycle of {} group(s) through item {} solved exactly as a linear system; "
            "{} left by rounding stays on the orders' offset accounts",
            pl.col("size"),
            pl.col("item_id"),
            _money(pl.col("cents")),
        ),
        dims,
    ).with_columns(txn_id=pl.lit(None, pl.String))


def not_converged(
    rows: pl.DataFrame, cyclic: pl.DataFrame, failed: pl.DataFrame, dims: list[str]
) -> pl.DataFrame:
    """``not_converged``, one per cycle in ``failed`` (component, residual): a cycle without a
    unique solution, whose receipts keep their values; its size in groups is ``qty``."""
    sizes = cyclic.group_by("component").agg(size=pl.len())
    first = (
        rows.select(*_LOGGED, *dims)
        .filter(pl.col("component").is_in(failed["component"].implode()))
        .sort("pos")
        .group_by("component", maintain_order=True)
        .first()
        .join(sizes, on="component", maintain_order="left")
        .join(failed, on="component", maintain_order="left")
    )
    detail = (
        pl.when(pl.col("residual").is_infinite())
        .then(pl.lit("singular: value only circulates"))
        .otherwise(pl.lit("tolerance missed"))
    )
    return _row(
        first,
        "warning",
        "not_converged",
        pl.col("size").cast(pl.Int64) * MICRO_PER_UNIT,
        pl.lit(None),
        pl.format(
            "cost cycle of {} group(s) has no unique solution ({}); its derived receipts keep "
            "their carried values",
            pl.col("size"),
            detail,
        ),
        dims,
    ).with_columns(txn_id=pl.lit(None, pl.String))


def _money(cents: pl.Expr) -> pl.Expr:
    """Cents as the text of an amount (``800`` -> ``8.00``), as the ``amount`` column shows it."""
    return from_cents(cents).cast(pl.String)
