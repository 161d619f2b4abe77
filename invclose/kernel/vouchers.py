"""Adjustments -> balanced general-ledger lines, in one group-by (§8).

Every adjustment posts a pair: the inventory account takes ``adjustment`` (debit when
positive), the offset account the opposite. Netting at a coarser detail level sums pairs, so
every voucher still balances exactly. Lines netting to zero are dropped.
"""

from __future__ import annotations

import polars as pl

from invclose.config import VoucherDetail

_LINE_KEYS: dict[VoucherDetail, list[str]] = {
    VoucherDetail.TRANSACTION: ["item_id", "item_group", "txn_id"],
    VoucherDetail.ITEM: ["item_id", "item_group"],
    VoucherDetail.ITEM_GROUP: ["item_group"],
    VoucherDetail.TOTAL: [],
}


def voucher_lines(
    adjustments: pl.DataFrame,
    detail: VoucherDetail,
    dims: list[str],
    voucher_prefix: str,
) -> pl.DataFrame:
    """Voucher lines (amounts in cents) for ``adjustments`` (cents, own sign).

    One voucher per item (per item group at ``item_group`` detail, one at ``total``);
    ``voucher_id`` is ``<prefix>-<n>`` with ``n`` the item's rank, so ids are deterministic.
    """
    if detail == VoucherDetail.TRANSACTION:
        return _transaction_lines(adjustments, dims, voucher_prefix)
    keys = list(_LINE_KEYS[detail])
    if detail == VoucherDetail.ITEM:
        keys = ["item_id", *dims, *[k for k in keys if k != "item_id"]]
    voucher_key = {
        VoucherDetail.TRANSACTION: "item_id",
        VoucherDetail.ITEM: "item_id",
        VoucherDetail.ITEM_GROUP: "item_group",
        VoucherDetail.TOTAL: None,
    }[detail]
    base = adjustments.select(*keys, "inventory_account", "offset_account", "adjustment")
    legs = pl.concat(
        [
            base.select(*keys, account=pl.col("inventory_account"), net=pl.col("adjustment")),
            base.select(*keys, account=pl.col("offset_account"), net=-pl.col("adjustment")),
        ]
    )
    lines = legs.group_by([*keys, "account"]).agg(pl.col("net").sum()).filter(pl.col("net") != 0)
    if voucher_key is None:
        lines = lines.with_columns(voucher_no=pl.lit(1, pl.Int64))
    else:
        lines = lines.with_columns(
            voucher_no=pl.col(voucher_key).rank("dense").cast(pl.Int64).fill_null(0)
        )
    lines = lines.sort(["voucher_no", *keys, "account"], nulls_last=False).with_columns(
        line_no=pl.int_range(1, pl.len() + 1).over("voucher_no").cast(pl.Int64),
        voucher_id=pl.format("{}-V{}", pl.lit(voucher_prefix), pl.col("voucher_no")),
        debit=pl.col("net").clip(lower_bound=0),
        credit=(-pl.col("net")).clip(lower_bound=0),
    )
    return lines.drop("voucher_no", "net")


def _transaction_lines(adjustments: pl.DataFrame, dims: list[str], prefix: str) -> pl.DataFrame:
    """One pair of lines per adjusted row, in the rows' key order: no group-by is needed.

    ``adjustments`` come in key order (item, dimensions, date, seq, txn_id), so each item's
    lines are contiguous; a row whose two accounts are the same nets to zero and posts nothing.
    """
    keys = ["item_id", *dims, "item_group", "txn_id"]
    base = adjustments.filter(
        (pl.col("adjustment") != 0) & (pl.col("inventory_account") != pl.col("offset_account"))
    ).select(*keys, "inventory_account", "offset_account", "adjustment")
    vouchers = (
        base.select("item_id").unique().sort("item_id").with_row_index("voucher_no", offset=1)
    )
    base = base.with_row_index("row").join(vouchers, on="item_id", how="left")
    legs = pl.concat(
        [
            base.select(
                *keys,
                "voucher_no",
                order=pl.col("row") * 2,
                account=pl.col("inventory_account"),
                net=pl.col("adjustment"),
            ),
            base.select(
                *keys,
                "voucher_no",
                order=pl.col("row") * 2 + 1,
                account=pl.col("offset_account"),
                net=-pl.col("adjustment"),
            ),
        ]
    ).sort("voucher_no", "order")
    return legs.with_columns(
        line_no=(pl.int_range(pl.len()) - pl.int_range(pl.len()).min().over("voucher_no") + 1).cast(
            pl.Int64
        ),
        voucher_id=pl.format("{}-V{}", pl.lit(prefix), pl.col("voucher_no")),
        debit=pl.col("net").clip(lower_bound=0),
        credit=(-pl.col("net")).clip(lower_bound=0),
    ).drop("voucher_no", "net", "order")
