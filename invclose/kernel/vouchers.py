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
    voucher_prefix: str | None,
) -> pl.DataFrame:
    """Voucher lines (amounts in cents) for ``adjustments`` (cents, own sign).

    One voucher per item (per item group at ``item_group`` detail, one at ``total``);
    ``voucher_id`` is ``<prefix>-V<n>`` with ``n`` the item's rank, so ids are deterministic.
    With ``voucher_prefix=None`` the lines keep ``voucher_no`` (``n``) instead, for
    :func:`voucher_ids` once the prefix is known.
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
    lines = legs.group_by([*keys, "account"]).agg(_wide_sum("net")).filter(pl.col("net") != 0)
    return _numbered(lines, keys, voucher_key, voucher_prefix)


def _wide_sum(column: str) -> pl.Expr:
    """The sum of int64 cents ``column`` in 128 bits.

    The close bounds the amounts of each settlement group (item and financial dimensions) so
    that its int64 sums cannot overflow; a voucher of an item group or of the whole run nets
    many groups, whose sum can pass 2**63 cents.
    """
    return pl.col(column).cast(pl.Int128).sum()


def _numbered(
    lines: pl.DataFrame, keys: list[str], voucher_key: str | None, prefix: str | None
) -> pl.DataFrame:
    """Voucher ids, line numbers and debit / credit for netted lines (``net`` in cents)."""
    if voucher_key is None:
        lines = lines.with_columns(voucher_no=pl.lit(1, pl.Int64))
    else:
        lines = lines.with_columns(
            voucher_no=pl.col(voucher_key).rank("dense").cast(pl.Int64).fill_null(0)
        )
    lines = lines.sort(["voucher_no", *keys, "account"], nulls_last=False).with_columns(
        line_no=pl.int_range(1, pl.len() + 1).over("voucher_no").cast(pl.Int64),
        debit=pl.col("net").clip(lower_bound=0),
        credit=(0 - pl.col("net")).clip(lower_bound=0),  # (no negation of an Int128)
    )
    ordered = lines.select(*keys, "account", "line_no", "voucher_no", "debit", "credit")
    return _with_ids(ordered, prefix)


def _with_ids(lines: pl.DataFrame, prefix: str | None) -> pl.DataFrame:
    """``voucher_no`` replaced by ``voucher_id`` in its place, unless ``prefix`` is None."""
    if prefix is None:
        return lines
    ids = voucher_ids(lines["voucher_no"], prefix)
    return lines.with_columns(ids).select(
        [("voucher_id" if c == "voucher_no" else c) for c in lines.columns]
    )


def voucher_ids(numbers: pl.Series, prefix: str) -> pl.Series:
    """``<prefix>-V<n>`` for voucher numbers ``n`` (null stays null), each text made once.

    Numbers are dense ranks (0 up to the number of vouchers), so the texts of every number
    up to the largest are formatted and then looked up by position.

    >>> voucher_ids(pl.Series([1, 1, 2, None]), "C9").to_list()
    ['C9-V1', 'C9-V1', 'C9-V2', None]
    """
    top = numbers.max()
    if not isinstance(top, int):  # no number at all
        return pl.repeat(None, numbers.len(), dtype=pl.String, eager=True).alias("voucher_id")
    texts = pl.select(voucher_id(prefix, pl.int_range(top + 1))).to_series()
    return texts.gather(numbers).alias("voucher_id")


def voucher_id(prefix: str, number: pl.Expr) -> pl.Expr:
    """The id of voucher ``number`` of a run: ``<prefix>-V<number>``.

    >>> pl.select(voucher_id("C9", pl.lit(12))).item()
    'C9-V12'
    """
    return pl.format("{}-V{}", pl.lit(prefix), number)


def merge_voucher_lines(
    lines: pl.DataFrame, detail: VoucherDetail, prefix: str | None
) -> pl.DataFrame:
    """Lines of several batches at ``item_group`` or ``total`` detail, netted again.

    ``lines`` holds ``item_group`` (at ``item_group`` detail), ``account`` and ``net`` (cents,
    debit positive). The result is what :func:`voucher_lines` gives for all the batches'
    adjustments at once: integer sums do not depend on how rows were grouped first. With
    ``prefix=None`` the lines keep ``voucher_no``, as :func:`voucher_lines` does.

    >>> import polars as pl
    >>> parts = pl.DataFrame({"account": ["1400", "5000", "1400", "5000"], "net": [5, -5, -5, 5]})
    >>> merge_voucher_lines(parts, VoucherDetail.TOTAL, "C1").height
    0
    """
    if detail not in (VoucherDetail.ITEM_GROUP, VoucherDetail.TOTAL):
        msg = f"merge_voucher_lines nets item-group or total vouchers, not {detail}"
        raise ValueError(msg)
    keys = list(_LINE_KEYS[detail])
    voucher_key = "item_group" if detail == VoucherDetail.ITEM_GROUP else None
    netted = lines.group_by([*keys, "account"]).agg(_wide_sum("net")).filter(pl.col("net") != 0)
    return _numbered(netted, keys, voucher_key, prefix)


def _transaction_lines(
    adjustments: pl.DataFrame, dims: list[str], prefix: str | None
) -> pl.DataFrame:
    """One pair of lines per adjusted row, grouped by item: no group-by is needed.

    Vouchers are numbered by item in ``item_id`` order; inside one, the lines follow the
    rows' order (the close passes them in key order: item, dimensions, date, seq, txn_id),
    the inventory leg before the offset leg. A row whose two accounts are the same nets to
    zero and posts nothing.
    """
    keys = ["item_id", *dims, "item_group", "txn_id"]
    base = adjustments.select(*keys, "inventory_account", "offset_account", "adjustment").filter(
        (pl.col("adjustment") != 0) & (pl.col("inventory_account") != pl.col("offset_account"))
    )
    base = _grouped_by_item(base)
    n = base.height
    # Voucher numbers: 1 + the number of item changes so far. A null item (first after the
    # stable sort) forms no voucher, and the items after it count from 2, as a join of the
    # sorted distinct items (null among them) numbered from 1 gives.
    at = pl.int_range(pl.len(), dtype=pl.Int64)
    starts = pl.col("item_id").ne_missing(pl.col("item_id").shift()) | (at == 0)
    base = base.with_columns(
        voucher_no=pl.when(pl.col("item_id").is_not_null()).then(starts.cum_sum()),
        first=pl.when(starts).then(at).forward_fill(),
    ).with_columns(
        # Legs 2i and 2i + 1 belong to row i; a voucher's first leg is 2 * its first row.
        line_no=(at - pl.col("first")) * 2 + 1,
    )
    # Legs 2i and 2i + 1 are row i's inventory and offset legs: one gather of each row twice
    # (from one chunk per column, several times faster than from many), then the side.
    k = pl.int_range(2 * n, dtype=pl.get_index_type(), eager=True)
    offset = pl.Series("offset", (k % 2).cast(pl.Boolean))
    legs = base.select(
        *keys, "inventory_account", "offset_account", "adjustment", "line_no", "voucher_no"
    ).rechunk()[k // 2]
    net = pl.when("offset").then(-pl.col("adjustment")).otherwise("adjustment")
    lines = legs.with_columns(offset).select(
        *keys,
        account=pl.when("offset").then("offset_account").otherwise("inventory_account"),
        line_no=pl.col("line_no") + pl.col("offset").cast(pl.Int64),
        voucher_no="voucher_no",
        debit=net.clip(lower_bound=0),
        credit=(-net).clip(lower_bound=0),
    )
    return _with_ids(lines, prefix)


def _grouped_by_item(base: pl.DataFrame) -> pl.DataFrame:
    """``base`` stably sorted by ``item_id`` (nulls first); as it is when already sorted."""
    items = base["item_id"]
    if items.null_count() == 0 and items.is_sorted():
        return base
    return base.sort("item_id", nulls_last=False, maintain_order=True)
