"""Posting-time costing: ``post_costs`` fills the amounts the ERP posts before any close.

Periodic items (fifo, lifo, lifo_date, the weighted averages) post issues, and receipts
without a price, at the **running average** of their group (close-semantics §1.3);
``standard`` items post every row at the standard cost active on its date, the rest of a given
amount being purchase price variance (§3.7); ``moving_average`` items follow §3.8. Rows are
replayed in posting order (``seq``, then ``txn_id``) in one compiled pass.

Choices where the specification is silent (also in the README):

* an invoice is recognised against ``opening``: a financial row whose ``txn_id`` is an open
  physical row of the opening. Within one frame, an invoice pair has already been collapsed to
  its financial row by validation;
* a backdated ``moving_average`` row takes the current average like any other row; its gap is
  not split out (``variance`` 0);
* issues never carry a ``variance``: their cost is the average, whatever amount was given.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from invclose.assemble import resolve_items
from invclose.config import CloseConfig, Method
from invclose.errors import InputValidationError
from invclose.kernel.money import from_cents, mul_div_round, to_cents, to_micro
from invclose.kernel.posting_walk import MOVING, PERIODIC, STANDARD, posting_walk
from invclose.kernel.prepare import group_keys
from invclose.opening import load_opening
from invclose.schemas import MICRO_PER_UNIT, MONEY, input_schema
from invclose.validate import normalize_items, normalize_transactions

_NO_INVOICE = np.iinfo(np.int64).min
_EARLIEST = dt.date(1, 1, 1)


def _unit_costs(frame: pl.DataFrame, items: pl.DataFrame | None) -> pl.DataFrame:
    """Standard cost active on each row's date, and the fallback cost (cents per unit)."""
    if items is None or items.is_empty():
        return frame.with_columns(
            std_cents=pl.lit(None, pl.Int64), fallback_cents=pl.lit(0, pl.Int64)
        )
    dated = (
        items.filter(pl.col("standard_cost").is_not_null())
        .select(
            "item_id",
            valid_from=pl.col("valid_from").fill_null(_EARLIEST),
            std_cents=to_cents(pl.col("standard_cost")),
        )
        .sort("item_id", "valid_from")
    )
    defaults = items.group_by("item_id").agg(
        default_cents=to_cents(pl.col("default_cost")).drop_nulls().first()
    )
    with_std = (
        frame.with_row_index("__row")
        .sort("date")
        .join_asof(
            dated.sort("valid_from"),
            left_on="date",
            right_on="valid_from",
            by="item_id",
            check_sortedness=False,
        )
        .sort("__row")
        .drop("__row", "valid_from")
    )
    return (
        with_std.join(defaults, on="item_id", how="left")
        .with_columns(fallback_cents=pl.coalesce("std_cents", "default_cents", pl.lit(0, pl.Int64)))
        .drop("default_cents")
    )


def _missing_standard(frame: pl.DataFrame) -> None:
    missing = frame.filter(
        (pl.col("method") == Method.STANDARD.value) & pl.col("std_cents").is_null()
    )
    if missing.is_empty():
        return
    items = sorted(set(missing["item_id"].to_list()))
    failures = missing.select(
        pl.lit(None, pl.Int64).alias("row"),
        "txn_id",
        pl.lit("standard_cost").alias("column"),
        pl.lit("standard_cost_missing").alias("check"),
        pl.col("date").cast(pl.String).alias("value"),
        pl.lit("give the item a standard_cost valid on or before this date").alias("hint"),
    )
    msg = (
        f"standard-cost item(s) without a standard cost for the row's date: {', '.join(items)}. "
        "Add standard_cost (and valid_from for dated costs) to the item table."
    )
    raise InputValidationError(msg, failures)


def _opening_state(
    opening: Any, dims: tuple[str, ...], keys: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-group opening quantities and values, and open physical rows (for invoices)."""
    state = load_opening(opening, dims)
    empty_groups = pl.DataFrame(
        schema={
            **{k: pl.String for k in keys},
            "fq": pl.Int64,
            "fv": pl.Int64,
            "pq": pl.Int64,
            "pv": pl.Int64,
        }
    )
    empty_phys = pl.DataFrame(schema={"txn_id": pl.String, "invoice_of": pl.Int64})
    if state is None:
        return empty_groups, empty_phys
    items = state.open_items.with_columns(
        q=to_micro(pl.col("open_qty")),
        v=to_cents(pl.col("open_value")),
        fin=pl.col("status") == "financial",
    )
    groups = items.group_by(keys).agg(
        fq=pl.col("q").filter(pl.col("fin")).sum(),
        fv=pl.col("v").filter(pl.col("fin")).sum(),
        pq=pl.col("q").filter(~pl.col("fin")).sum(),
        pv=pl.col("v").filter(~pl.col("fin")).sum(),
    )
    physical = items.filter(~pl.col("fin")).select(
        "txn_id", invoice_of=to_cents(pl.col("carried_value"))
    )
    return groups, physical


def _revaluations(
    frame: pl.DataFrame, items: pl.DataFrame | None, dims: tuple[str, ...]
) -> pl.DataFrame:
    """A ``revaluation`` row per standard group and new standard cost, for its on-hand."""
    if items is None:
        return frame.clear()
    changes = (
        items.filter(pl.col("standard_cost").is_not_null())
        .with_columns(pl.col("valid_from").fill_null(_EARLIEST))
        .sort("item_id", "valid_from")
        .with_columns(
            new_cents=to_cents(pl.col("standard_cost")),
            old_cents=to_cents(pl.col("standard_cost")).shift(1).over("item_id"),
        )
        .filter(pl.col("old_cents").is_not_null() & (pl.col("old_cents") != pl.col("new_cents")))
        .select("item_id", "valid_from", "new_cents", "old_cents")
    )
    standard = frame.filter(pl.col("method") == Method.STANDARD.value)
    keys = group_keys(dims)
    onhand = (
        standard.join(changes, on="item_id", how="inner")
        .filter(pl.col("date") < pl.col("valid_from"))
        .group_by([*keys, "valid_from", "new_cents", "old_cents"])
        .agg(q=to_micro(pl.col("qty")).sum())
        .filter(pl.col("q") != 0)
    )
    dims_text = (
        pl.concat_str([pl.col(d).fill_null("") for d in dims], separator="|")
        if dims
        else pl.lit("")
    )
    rows = onhand.select(
        *keys,
        txn_id=pl.concat_str(
            [
                pl.lit("REVAL"),
                pl.col("valid_from").dt.to_string("%Y-%m-%d"),
                pl.col("item_id"),
                dims_text,
            ],
            separator=":",
        ),
        date=pl.col("valid_from"),
        qty=pl.lit(0).cast(pl.Decimal(38, 6)),
        amount=from_cents(
            mul_div_round(
                pl.col("new_cents") - pl.col("old_cents"), pl.col("q"), pl.lit(MICRO_PER_UNIT)
            )
        ),
        status=pl.lit("financial"),
        seq=pl.lit(-(2**63), pl.Int64),
        kind=pl.lit("revaluation"),
        variance=from_cents(
            -mul_div_round(
                pl.col("new_cents") - pl.col("old_cents"), pl.col("q"), pl.lit(MICRO_PER_UNIT)
            )
        ),
    )
    schema = {**input_schema(dims), "variance": MONEY}
    return rows.select(
        [
            (pl.col(c) if c in rows.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in schema.items()
        ]
    )


def post_costs(
    df: Any,
    *,
    items: Any = None,
    dimensions: list[str] | tuple[str, ...] = (),
    method: str = "fifo",
    include_physical_value: bool = False,
    opening: Any = None,
) -> pl.DataFrame:
    """Fill the amounts the ERP posts: running average, standard cost, moving average.

    Parameters
    ----------
    df
        Transactions; ``amount`` may be null where the cost is to be computed.
    items
        Item table: ``method``, ``include_physical_value``, ``standard_cost`` (optionally
        dated by ``valid_from``), ``default_cost``.
    dimensions
        Financial dimension columns (the running average is per group).
    method, include_physical_value
        Defaults for items the table does not list.
    opening
        An earlier ``CloseResult`` (or its directory) whose open items start the replay.

    Returns
    -------
    polars.DataFrame
        The canonical transaction columns with ``amount`` filled, plus ``variance``: the part
        of a row's given amount that does not enter inventory. Standard items get a
        ``revaluation`` row (``qty`` 0) per new standard cost for their on-hand at that date.

    Examples
    --------
    >>> import datetime as dt
    >>> from decimal import Decimal as D
    >>> import polars as pl, invclose
    >>> tx = pl.DataFrame({
    ...     "txn_id": ["r1", "r2", "s1"], "item_id": ["A"] * 3,
    ...     "date": [dt.date(2025, 1, 1)] * 3,
    ...     "qty": [D("2"), D("3"), D("-1")], "amount": [D("20.00"), D("36.00"), None]})
    >>> invclose.post_costs(tx)["amount"].to_list()[-1]
    Decimal('-11.20')
    """
    cfg = CloseConfig(
        method=method, dimensions=dimensions, include_physical_value=include_physical_value
    )
    dims = cfg.dims
    keys = group_keys(dims)
    tx = normalize_transactions(df, dimensions=dims, require_amount=False)
    item_table = normalize_items(items)
    frame = _unit_costs(resolve_items(tx, item_table, cfg), item_table)
    _missing_standard(frame)
    start, physical = _opening_state(opening, dims, keys)
    frame = frame.join(physical, on="txn_id", how="left").with_columns(
        invoice_of=pl.when(pl.col("status") == "financial").then(pl.col("invoice_of"))
    )
    groups = frame.select(keys).unique().sort(keys, nulls_last=False).with_row_index("gid")
    groups = groups.join(start, on=keys, how="left", nulls_equal=True).with_columns(
        pl.col("fq", "fv", "pq", "pv").fill_null(0)
    )
    ordered = (
        frame.join(groups.select(*keys, "gid"), on=keys, how="left", nulls_equal=True)
        .with_row_index("__row")
        .sort("gid", "seq", "txn_id")
    )
    code = (
        pl.when(pl.col("method") == Method.STANDARD.value)
        .then(STANDARD)
        .when(pl.col("method") == Method.MOVING_AVERAGE.value)
        .then(MOVING)
        .otherwise(PERIODIC)
    )
    arrays = ordered.select(
        code=code.cast(pl.Int64),
        fin=pl.col("status") == "financial",
        phys=pl.col("incl_phys").fill_null(False),
        q=to_micro(pl.col("qty")),
        v=to_cents(pl.col("amount")).fill_null(0),
        has=pl.col("amount").is_not_null(),
        unit=pl.coalesce("std_cents", "fallback_cents").fill_null(0),
        inv=pl.col("invoice_of").fill_null(_NO_INVOICE),
    )
    gids = ordered["gid"].to_numpy()
    g_off = np.searchsorted(gids, np.arange(groups.height + 1)).astype(np.int64)
    amount, variance = posting_walk(
        g_off,
        arrays["code"].to_numpy(),
        arrays["fin"].to_numpy(),
        arrays["phys"].to_numpy(),
        arrays["q"].to_numpy(),
        arrays["v"].to_numpy(),
        arrays["has"].to_numpy(),
        arrays["unit"].to_numpy(),
        arrays["inv"].to_numpy(),
        *(groups[c].to_numpy().astype(np.int64) for c in ("fq", "fv", "pq", "pv")),
    )
    costed = (
        ordered.with_columns(amount=pl.Series(amount), variance=pl.Series(variance))
        .with_columns(amount=from_cents(pl.col("amount")), variance=from_cents(pl.col("variance")))
        .sort("__row")
        .select(*input_schema(dims), "variance")
    )
    revaluations = _revaluations(frame, item_table, dims)
    return pl.concat([costed, revaluations]) if not revaluations.is_empty() else costed
