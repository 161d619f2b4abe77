"""What the run could not settle, as ``log`` rows with reason codes (§13).

Domain problems are rows, never exceptions. Quantities here are kernel micro-units, money
cents; the caller converts.
"""

from __future__ import annotations

import polars as pl

WARNING = "warning"


def _rows(
    rows: pl.DataFrame,
    where: pl.Expr,
    code: str,
    qty: pl.Expr,
    message: pl.Expr,
    dims: list[str],
) -> pl.DataFrame:
    """Log rows for the ``rows`` where ``where`` holds.

    Only the columns read here are filtered (a narrow select first), not every column.
    """
    read = {"item_id", *dims, "txn_id", "order_id", *qty.meta.root_names()}
    read.update(message.meta.root_names(), where.meta.root_names())
    return (
        rows.select([c for c in rows.columns if c in read])
        .filter(where)
        .select(
            pl.lit(WARNING).alias("level"),
            pl.lit(code).alias("code"),
            "item_id",
            *dims,
            "txn_id",
            qty.alias("qty"),
            pl.lit(None, pl.Int64).alias("amount"),
            "order_id",
            message.alias("message"),
        )
    )


def close_findings(
    rows: pl.DataFrame,
    priced: pl.DataFrame,
    excluded: pl.DataFrame,
    balances: pl.DataFrame,
    dims: list[str],
    held: pl.DataFrame,
) -> pl.DataFrame:
    """Log rows: marked receipts out of reach, unsettled issues, uninvoiced receipts, negative
    stock.

    ``held`` (``pos``, ``usable``): rows that left the method with only ``usable`` of
    their quantity paired: the rest of a transit receipt waits for its order's later issues
    (no receipt the group's issues could have had), that of a move's issue for its receipts
    (no issue short of receipts: logged ``awaiting_transfer_receipt``).
    """
    is_excluded = pl.col("pos").is_in(excluded["pos"].implode())
    marked = _rows(
        rows,
        is_excluded,
        "marked_receipt_after_close_date",
        pl.col("q_abs"),
        pl.format(
            "issue {} is marked to receipt {}, which is not financially posted on or before the "
            "closing date: not settled, keeps its posted cost",
            pl.col("txn_id"),
            pl.col("marked_to"),
        ),
        dims,
    )
    # §13: a group is short when its financial issues exceed its financial receipts (open at
    # the start plus new, after marking). An issue left open in a group that is not short
    # waits for something else (a physical receipt it was adjusted against: logged
    # receipt_not_invoiced, and itself awaiting_invoice), not for receipts.
    counted = pl.col("participates") & pl.col("fin") & ~is_excluded
    available = pl.coalesce("usable", "q_abs")
    net_issued = pl.when(pl.col("is_receipt")).then(-available).otherwise(available)
    in_transfer = pl.col("pos").is_in(held["pos"].implode()) & ~pl.col("is_receipt")
    counted_rows = rows.lazy().filter(counted).select("gid", "pos", "is_receipt", "q_abs")
    if held.is_empty():  # the usual case: no order pairs, nothing to join
        counted_rows = counted_rows.with_columns(usable=pl.lit(None, pl.Int64))
    else:
        counted_rows = counted_rows.join(held.lazy(), on="pos", how="left")
    short = (
        counted_rows.group_by("gid")
        .agg(net=net_issued.sum())
        .filter(pl.col("net") > 0)
        .select("gid")
        .collect()
    )
    open_issue = counted & ~pl.col("is_receipt") & (pl.col("q_abs") > pl.col("s_real"))
    moving = _rows(
        rows,
        open_issue & in_transfer,
        "awaiting_transfer_receipt",
        pl.col("q_abs") - pl.col("s_real"),
        pl.format(
            "issue {} of transfer order {} moves stock within its financial dimension and this "
            "quantity is not received by the closing date: it keeps its cost and waits for "
            "its receipts",
            pl.col("txn_id"),
            pl.col("order_id"),
        ),
        dims,
    ).with_columns(level=pl.lit("info"))
    left_open = open_issue & ~in_transfer
    in_short = pl.col("gid").is_in(short["gid"].implode())
    unsettled = left_open & in_short
    insufficient = _rows(
        rows,
        unsettled,
        "insufficient_receipts",
        pl.col("q_abs") - pl.col("s_real"),
        pl.format(
            "issue {}: issues exceed the financial receipts up to the closing date in its "
            "financial dimension; the unsettled part keeps its carried cost (posted, or "
            "adjusted against physical receipts) and stays open (invoice pending receipts, "
            "cost sub-productions, or close at a later date)",
            pl.col("txn_id"),
        ),
        dims,
    )
    # §13 lists every issue that stays unsettled with its reason. In a group that is not
    # short, an issue stays open only because of physical rows (include physical value): it
    # was adjusted against physical receipts (logged receipt_not_invoiced, named here), or the
    # financial receipts that would cover it went to physical issues. Either way it is
    # settled once those rows are invoiced.
    waiting = left_open & ~in_short
    against = pl.col("adjusted_against").list.join(", ")
    awaiting = _rows(
        rows,
        waiting,
        "awaiting_invoice",
        pl.col("q_abs") - pl.col("s_real"),
        pl.format(
            "issue {}: its group's financial receipts cover its financial issues, but {}; the "
            "unsettled part keeps its cost and stays open until the physical rows are invoiced",
            pl.col("txn_id"),
            pl.when(pl.col("adjusted_against").is_not_null())
            .then(
                pl.format(
                    "it was adjusted against physical receipt(s) {}, and financial receipts "
                    "may have gone to physical issues",
                    against,
                )
            )
            .otherwise(
                pl.lit("the financial receipts that would settle it went to physical issues")
            ),
        ),
        dims,
    ).with_columns(level=pl.lit("info"))
    short_groups = (
        rows.select(["gid", *{c: None for c in unsettled.meta.root_names() if c != "gid"}])
        .filter(unsettled)
        .select("gid")
        .unique()
    )
    adjusted_from = (
        priced.select("receipt_pos", "r_fin", "i_fin")
        .filter(~pl.col("r_fin") & pl.col("i_fin"))
        .select(pl.col("receipt_pos").alias("pos"))
    )
    # Both conditions at once: a row passes two filters in a row exactly when it passes both.
    physical = (pl.col("in_scope") & ~pl.col("fin") & pl.col("is_receipt") & (pl.col("q0") > 0)) & (
        pl.col("gid").is_in(short_groups["gid"].implode())
        | pl.col("pos").is_in(adjusted_from["pos"].implode())
    )
    not_invoiced = _rows(
        rows,
        physical,
        "receipt_not_invoiced",
        pl.col("q0"),
        pl.format(
            "receipt {} is physically posted but not invoiced; it is settled once invoiced",
            pl.col("txn_id"),
        ),
        dims,
    )
    negative = balances.filter(pl.col("qty") < 0)
    negative_rows = negative.select(
        pl.lit(WARNING).alias("level"),
        pl.lit("negative_on_hand").alias("code"),
        "item_id",
        *dims,
        pl.lit(None, pl.String).alias("txn_id"),
        pl.col("qty"),
        pl.lit(None, pl.Int64).alias("amount"),
        pl.lit(None, pl.String).alias("order_id"),
        pl.lit(
            "financial on-hand quantity is negative after the close; held as unsettled issues"
        ).alias("message"),
    )
    log = pl.concat(
        [marked, insufficient, awaiting, moving, not_invoiced, negative_rows],
        how="vertical_relaxed",
    )
    return log


def marking_ignored(
    rows: pl.DataFrame, dims: list[str], perpetual: tuple[str, ...]
) -> pl.DataFrame:
    """Info rows for markings on standard and moving-average items, which have no cost effect."""
    marked = (
        pl.col("in_scope") & pl.col("marked_to").is_not_null() & pl.col("method").is_in(perpetual)
    )
    return _rows(
        rows,
        marked,
        "marking_ignored",
        pl.col("q_abs"),
        pl.format(
            "issue {} is marked to {}, but its item is costed by {}: marking has no cost effect",
            pl.col("txn_id"),
            pl.col("marked_to"),
            pl.col("method"),
        ),
        dims,
    ).with_columns(level=pl.lit("info"))
