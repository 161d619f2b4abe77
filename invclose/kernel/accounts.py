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
    """Fill null ``inventory_account`` / ``offset_account`` from ``mapping``."""
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
    candidates: dict[str, list[pl.Expr]] = {c: [pl.col(c)] for c in ACCOUNT_COLUMNS}
    out = rows
    for level, (table, keys) in enumerate(levels):
        if table.is_empty():
            continue
        renamed = table.select(*keys, *[pl.col(c).alias(f"{c}__{level}") for c in ACCOUNT_COLUMNS])
        if keys:
            out = out.join(renamed, on=keys, how="left", validate="m:1")
        else:
            out = out.join(renamed.head(1), how="cross")
        for c in ACCOUNT_COLUMNS:
            candidates[c].append(pl.col(f"{c}__{level}"))
    out = out.with_columns([pl.coalesce(exprs).alias(c) for c, exprs in candidates.items()])
    return out.drop([c for c in out.columns if "__" in c and c.split("__")[0] in ACCOUNT_COLUMNS])
