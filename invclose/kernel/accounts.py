"""Ledger accounts of each row: its own, else the accounts mapping (contract §1).

A row keeps the accounts it was posted to, even if the mapping changed since (§8). Missing
ones come from the mapping by ``kind`` and ``item_group``; a null key in the mapping matches
any value, and the most specific row wins: kind and group, then kind, then group, then
neither.
"""

from __future__ import annotations

import polars as pl

ACCOUNT_COLUMNS = ("inventory_account", "offset_account")


def fill_accounts(rows: pl.DataFrame, mapping: pl.DataFrame | None) -> pl.DataFrame:
    """Fill null ``inventory_account`` / ``offset_account`` from ``mapping``.

    Parameters
    ----------
    rows
        Frame with ``kind``, ``item_group`` and the two account columns.
    mapping
        Accounts mapping (``kind``, ``item_group``, ``inventory_account``,
        ``offset_account``); ``None`` or empty leaves ``rows`` as they are.

    Returns
    -------
    pl.DataFrame
        ``rows`` in the same row and column order, with the account columns filled.
    """
    if mapping is None or mapping.is_empty():
        return rows
    has_kind = pl.col("kind").is_not_null()
    has_group = pl.col("item_group").is_not_null()
    levels = [
        (mapping.filter(has_kind & has_group), ["kind", "item_group"]),
        (mapping.filter(has_kind & ~has_group), ["kind"]),
        (mapping.filter(~has_kind & has_group), ["item_group"]),
        (mapping.filter(~has_kind & ~has_group), []),
    ]
    candidates: dict[str, list[pl.Expr | pl.Series]] = {c: [pl.col(c)] for c in ACCOUNT_COLUMNS}
    for table, keys in levels:
        if table.is_empty():
            continue
        if not keys:
            # The catch-all row is the same for every row: a literal, not a cross join.
            for c in ACCOUNT_COLUMNS:
                candidates[c].append(pl.lit(table[c][0], dtype=table.schema[c]))
            continue
        # Join only the key columns: the rows' other (often many) columns are not copied.
        found = rows.select(keys).join(
            table.select(*keys, *ACCOUNT_COLUMNS),
            on=keys,
            how="left",
            validate="m:1",
            maintain_order="left",
        )
        for c in ACCOUNT_COLUMNS:
            candidates[c].append(found[c])
    return rows.with_columns([pl.coalesce(exprs).alias(c) for c, exprs in candidates.items()])
