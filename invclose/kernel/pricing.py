"""Settled values: piece amounts cut along each receipt, then each row's new value (§7).

Rounding happens in exactly one way: the cumulative amount drawn from a receipt after ``c``
of its ``Q`` open units is ``round(V * c / Q)`` (half away from zero, cents), and a piece's
amount is the difference of two such cumulative values. So a used-up receipt's pieces sum to
its open value exactly, and an issue's value is a sum of cents.
"""

from __future__ import annotations

import polars as pl

from invclose.kernel.money import mul_div_round


def attach_sides(pieces: pl.DataFrame, working: pl.DataFrame) -> pl.DataFrame:
    """Add both sides' ids and financial flags, and ``real`` (both sides financial)."""
    receipts = working.select(
        pl.col("pos").alias("receipt_pos"),
        pl.col("txn_id").alias("receipt_txn_id"),
        pl.col("fin").alias("r_fin"),
    )
    issues = working.select(
        pl.col("pos").alias("issue_pos"),
        pl.col("txn_id").alias("issue_txn_id"),
        pl.col("fin").alias("i_fin"),
    )
    return (
        pieces.join(receipts, on="receipt_pos", how="left")
        .join(issues, on="issue_pos", how="left")
        .with_columns(real=pl.col("r_fin") & pl.col("i_fin"))
    )


def price_pieces(pieces: pl.DataFrame, working: pl.DataFrame) -> pl.DataFrame:
    """Give every piece its amount by cumulative rounding along its receipt.

    The drawing order along a receipt is marking pieces first (``phase`` 0, in issue key
    order), then method pieces (``phase`` 1) in the order the method created them.
    Adds ``amount``, ``real`` (both sides financial), and the two transaction ids.
    """
    open_state = working.select(
        pl.col("pos").alias("receipt_pos"),
        pl.col("q_abs").alias("r_q"),
        pl.col("w_abs").alias("r_w"),
    )
    priced = (
        attach_sides(pieces, working)
        .join(open_state, on="receipt_pos", how="left")
        .sort(["receipt_pos", "phase", "rank"])
        .with_columns(drawn=pl.col("qty").cum_sum().over("receipt_pos"))
        .with_columns(cum_amount=mul_div_round(pl.col("r_w"), pl.col("drawn"), pl.col("r_q")))
        .with_columns(
            amount=pl.col("cum_amount")
            - pl.col("cum_amount").shift(1).over("receipt_pos").fill_null(0),
        )
    )
    return priced.drop("drawn", "cum_amount", "r_q", "r_w")


def apply_pieces(working: pl.DataFrame, priced: pl.DataFrame, *, settle: bool) -> pl.DataFrame:
    """New open quantity, open value and carried value of every row.

    Adds ``adjustment`` (cents, the row's own sign), ``cost_delta``, ``q1``, ``v1``,
    ``carried1``, ``s_real`` (quantity settled by real pieces, issues and receipts alike),
    ``adj_only_qty`` and ``adjusted_against``. With ``settle=False`` (recalculation) open
    quantities stay as they were and only values move.
    """
    real_qty = pl.col("qty").filter(pl.col("real")).sum()
    real_amount = pl.col("amount").filter(pl.col("real")).sum()
    by_issue = priced.group_by("issue_pos").agg(
        s=pl.col("qty").sum(),
        paid=pl.col("amount").sum(),
        s_real_i=real_qty,
        paid_real_i=real_amount,
        adj_only_qty=pl.col("qty").filter(~pl.col("real")).sum(),
        adjusted_against=pl.col("receipt_txn_id").filter(~pl.col("real")).unique().sort(),
    )
    by_receipt = priced.group_by("receipt_pos").agg(s_real_r=real_qty, paid_real_r=real_amount)
    rows = (
        working.join(by_issue, left_on="pos", right_on="issue_pos", how="left")
        .join(by_receipt, left_on="pos", right_on="receipt_pos", how="left")
        .with_columns(
            pl.col(
                "s", "paid", "s_real_i", "paid_real_i", "adj_only_qty", "s_real_r", "paid_real_r"
            ).fill_null(0)
        )
    )
    # Issue: new open value = pieces + (w - round(w * s / q)); the unsettled part keeps cost.
    new_issue_value = (
        pl.col("paid")
        + pl.col("w_abs")
        - mul_div_round(pl.col("w_abs"), pl.col("s"), pl.col("q_abs").clip(lower_bound=1))
    )
    # A derived receipt moves by its share of its feeding issues' changes (its w_abs already
    # includes it, so its pieces were cut from the new value).
    derived = pl.col("derived_adj") if "derived_adj" in working.columns else pl.lit(0, pl.Int64)
    cost_delta = (
        pl.when(pl.col("is_receipt"))
        .then(derived)
        .when(pl.col("s") > 0)
        .then(new_issue_value - pl.col("w_abs"))
        .otherwise(0)
    )
    rows = rows.with_columns(cost_delta=cost_delta).with_columns(
        adjustment=pl.when(pl.col("is_receipt"))
        .then(pl.col("cost_delta"))
        .otherwise(-pl.col("cost_delta")),
        s_real=pl.when(pl.col("is_receipt")).then(pl.col("s_real_r")).otherwise(pl.col("s_real_i")),
        paid_real=pl.when(pl.col("is_receipt"))
        .then(pl.col("paid_real_r"))
        .otherwise(pl.col("paid_real_i")),
    )
    sign = pl.when(pl.col("is_receipt")).then(1).otherwise(-1)
    if settle:
        q1 = pl.col("q0") - sign * pl.col("s_real")
        v1 = pl.col("v0") + pl.col("adjustment") - sign * pl.col("paid_real")
    else:
        q1 = pl.col("q0")
        v1 = pl.col("v0") + pl.col("adjustment")
    rows = rows.with_columns(
        q1=q1,
        v1=v1,
        carried1=pl.col("carried0") + pl.col("adjustment"),
        adjusted_against=pl.when(pl.col("adjusted_against").list.len() > 0).then(
            pl.col("adjusted_against")
        ),
    )
    return rows.drop("s", "paid", "s_real_i", "paid_real_i", "s_real_r", "paid_real_r", "paid_real")
