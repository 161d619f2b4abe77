r"""Virtual rows the close creates: weighted-average closing pairs and perpetual on-hand rows.

Their ids are deterministic and cannot collide with input ids (contract §4):
``~wac:<date>:<item_id>:<dims joined by '|'>:issue`` / ``...:receipt`` and
``~onhand:<date>:<item_id>:<dims joined by '|'>``. They are dated on their day with ``seq``
after every real row of it, and they are financial. Within the dimensions ``\``, ``|`` and
``:`` are escaped with a backslash, a null value is empty and an empty one ``\e``: two groups
such as ("a|b", "c") and ("a", "b|c") would otherwise share their ids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from invclose.kernel.money import from_cents, from_micro

LAST_SEQ = 2**63 - 1


def _dim_text(column: str) -> pl.Expr:
    """A dimension value in an id: ``\\``, ``|`` and ``:`` escaped with a backslash, null as
    the empty string and an empty string as ``\\e``, so that distinct groups never share an
    id (values without those characters are written as they are)."""
    value = pl.col(column)
    escaped = (
        value.str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all("|", "\\|", literal=True)
        .str.replace_all(":", "\\:", literal=True)
    )
    return (
        pl.when(value.is_null())
        .then(pl.lit(""))
        .when(value == "")
        .then(pl.lit("\\e"))
        .otherwise(escaped)
    )


def dims_text(dims: Sequence[str]) -> pl.Expr:
    """The dimension values of a row in an id, escaped (:func:`_dim_text`), joined by ``|``."""
    if not dims:
        return pl.lit("")
    return pl.concat_str([_dim_text(d) for d in dims], separator="|")


#: Prefix of the ids of a weighted-average closing pair's rows (``~wac:<date>:<item>:...``);
#: on-hand rows of perpetual items are ``~onhand:...`` and pair with nothing.
CLOSING_PREFIX = "~wac"


def virtual_id(prefix: str, dims: list[str], suffix: str | None = None) -> pl.Expr:
    """The id of a virtual row from its ``date``, ``item_id`` and dimension columns."""
    parts = [
        pl.lit(prefix),
        pl.col("date").dt.to_string("%Y-%m-%d"),
        pl.col("item_id"),
        dims_text(dims),
    ]
    if suffix is not None:
        parts.append(pl.lit(suffix))
    return pl.concat_str(parts, separator=":")


def closing_rows(virtual: pl.DataFrame, working: pl.DataFrame, dims: list[str]) -> pl.DataFrame:
    """Full working rows for the closing pairs created by the averaging walk."""
    groups = working.group_by("gid").agg(
        pl.col("item_id").first(),
        *[pl.col(d).first() for d in dims],
        pl.col("method").first(),
        pl.col("incl_phys").first(),
        pl.col("item_group").first(),
    )
    sign = pl.when(pl.col("is_receipt")).then(1).otherwise(-1)
    rows = virtual.join(groups, on="gid", how="left").with_columns(
        date=pl.col("walk_day").cast(pl.Int32).cast(pl.Date),
        q0=sign * pl.col("q_total"),
        v0=sign * pl.col("v_total"),
    )
    rows = rows.with_columns(
        txn_id=pl.when(pl.col("is_receipt"))
        .then(virtual_id(CLOSING_PREFIX, dims, "receipt"))
        .otherwise(virtual_id(CLOSING_PREFIX, dims, "issue")),
        qty=from_micro(pl.col("q0")),
        amount=from_cents(pl.col("v0")),
        carried0=pl.col("v0"),
    )
    return _as_working(rows, working)


def _as_working(rows: pl.DataFrame, working: pl.DataFrame) -> pl.DataFrame:
    """Give virtual rows every column of ``working``, typed alike."""
    defaults = {
        "status": pl.lit("financial"),
        "seq": pl.lit(LAST_SEQ, pl.Int64),
        "kind": pl.lit(None, pl.String),
        "day": pl.col("date").cast(pl.Int32),
        "fin": pl.lit(True),
        "in_scope": pl.lit(True),
        "q_abs": pl.col("q0").abs(),
        "w_abs": pl.col("v0").abs(),
        "from_opening": pl.lit(False),
        "frozen": pl.lit(False),
        "is_virtual_new": pl.lit(True),
        "is_derived": pl.lit(False),
        "derived_adj": pl.lit(0, pl.Int64),
    }
    rows = rows.with_columns([v.alias(k) for k, v in defaults.items() if k not in rows.columns])
    return rows.select(
        [
            (pl.col(c) if c in rows.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in working.schema.items()
        ]
    )


def onhand_rows(
    working: pl.DataFrame, dims: list[str], closing_day_rows: pl.Expr, closing_date: dt.date
) -> pl.DataFrame:
    """One on-hand row per perpetual group (standard, moving average) at the closing date.

    ``closing_day_rows`` selects the financial in-scope rows of those groups; their summed
    quantity and value become one virtual row (a receipt, or an issue when negative); a group
    whose quantity and value are both zero gets none.
    """
    totals = (
        working.lazy()
        .filter(closing_day_rows)
        # In group order: the on-hand rows are numbered (``pos``) in the order they come.
        .group_by("gid", maintain_order=True)
        .agg(
            pl.col("item_id").first(),
            *[pl.col(d).first() for d in dims],
            pl.col("method").first(),
            pl.col("incl_phys").first(),
            pl.col("item_group").first(),
            q0=pl.col("q0").sum(),
            v0=pl.col("v0").sum(),
        )
        .filter((pl.col("q0") != 0) | (pl.col("v0") != 0))
        .collect()
    )
    rows = totals.with_columns(date=pl.lit(closing_date)).with_columns(
        txn_id=virtual_id("~onhand", dims),
        qty=from_micro(pl.col("q0")),
        amount=from_cents(pl.col("v0")),
        carried0=pl.col("v0"),
        is_receipt=(pl.col("q0") > 0) | ((pl.col("q0") == 0) & (pl.col("v0") > 0)),
        kind=pl.when(pl.col("q0") == 0).then(pl.lit("revaluation")),
        participates=pl.lit(False),
    )
    return _as_working(rows, working)
