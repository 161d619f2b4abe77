"""Hypothesis strategies for contract transaction frames (small, schema-valid, tricky).

The frames have the canonical columns and dtypes of ``invclose.schemas.input_schema(dims)``
and are built to hit the corners of the close: several items and dimension values (null
included), many rows on the same date (ties broken by an explicit, unique ``seq`` that is a
shuffle of the row order), issues before any receipt, partial issues, physical rows,
markings (to financial, physical, or after-closing-date receipts of the same group), integer
and fractional quantities (down to 6 decimals), zero amounts, and dates a few days either
side of the closing date.

>>> from invclose.testing.strategies import close_inputs
>>> strategy = close_inputs(dims=("site",), methods=("fifo",))

``close_inputs`` draws ``(df, closing_date, method, include_physical_value)``;
``two_close_inputs`` draws the inputs of two consecutive closes over one history;
``item_tables`` draws item tables mixing methods per item. Every method of the package can be
drawn (``methods=ALL_METHODS``). No ``revaluation`` rows are drawn: the rows are purchases
and sales, which is also valid input for ``standard`` and ``moving_average`` items.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

import polars as pl
from hypothesis import strategies as st

from invclose.schemas import input_schema

__all__ = [
    "ALL_METHODS",
    "AVERAGE_METHODS",
    "BASE_CLOSING_DATE",
    "DIMENSION_CHOICES",
    "PERIODIC_ORDINAL_METHODS",
    "PERPETUAL_METHODS",
    "CloseInputs",
    "TwoCloseInputs",
    "close_inputs",
    "dimension_columns",
    "item_tables",
    "transactions",
    "two_close_inputs",
]

#: The closing date the strategies centre their dates on.
BASE_CLOSING_DATE = dt.date(2025, 1, 31)
#: Dimension layouts drawn when ``dims`` is not given.
DIMENSION_CHOICES: tuple[tuple[str, ...], ...] = ((), ("site",), ("site", "warehouse"))
ITEM_IDS = ("A", "B", "C")
DIM_VALUES = ("S1", "S2")
PERIODIC_ORDINAL_METHODS = ("fifo", "lifo", "lifo_date")
AVERAGE_METHODS = ("weighted_average", "weighted_average_date")
PERPETUAL_METHODS = ("standard", "moving_average")
ALL_METHODS = (*PERIODIC_ORDINAL_METHODS, *AVERAGE_METHODS, *PERPETUAL_METHODS)

# Quantity grids: (unit, largest multiple). Integers, halves, quarters, and fine fractions.
_QTY_GRIDS = (
    (Decimal(1), 5),
    (Decimal("0.5"), 10),
    (Decimal("0.25"), 20),
    (Decimal("0.001"), 5_000),
    (Decimal("0.000001"), 5_000_000),
)
_CENT = Decimal("0.01")


class CloseInputs(NamedTuple):
    """What :func:`close_inputs` draws (unpacks as a 4-tuple)."""

    df: pl.DataFrame
    closing_date: dt.date
    method: str
    include_physical_value: bool


class TwoCloseInputs(NamedTuple):
    """What :func:`two_close_inputs` draws (unpacks as a 6-tuple).

    ``history1`` is the history as the first close sees it, ``history2`` as the second
    sees it: the same rows, except that some physical rows dated on or before
    ``closing_date1`` may have been invoiced since (status ``financial``, a financial date
    after ``closing_date1``, the invoiced amount) when ``invoice_updates`` is on.
    """

    history1: pl.DataFrame
    history2: pl.DataFrame
    closing_date1: dt.date
    closing_date2: dt.date
    method: str
    include_physical_value: bool


def dimension_columns(df: pl.DataFrame) -> tuple[str, ...]:
    """The financial dimension columns of a frame drawn by these strategies."""
    fixed = set(input_schema(()))
    return tuple(c for c in df.columns if c not in fixed)


@st.composite
def _quantity(draw: st.DrawFn, /, fractional: bool) -> Decimal:
    if not fractional:
        return Decimal(draw(st.integers(1, 5)))
    unit, most = draw(st.sampled_from(_QTY_GRIDS))
    return (unit * draw(st.integers(1, most))).quantize(Decimal("0.000001"))


@st.composite
def _amount(draw: st.DrawFn, /, qty: Decimal) -> Decimal:
    """A posted amount with the sign of ``qty``, or zero."""
    kind = draw(st.sampled_from(("price", "price", "price", "zero", "free")))
    if kind == "zero":
        magnitude = Decimal(0)
    elif kind == "free":  # any posted value, e.g. a running average far from the receipts
        magnitude = Decimal(draw(st.integers(0, 20_000))) * _CENT
    else:
        price = Decimal(draw(st.integers(0, 4_000))) * _CENT
        magnitude = (abs(qty) * price).quantize(_CENT, rounding=ROUND_HALF_UP)
    return magnitude if qty > 0 else -magnitude


@st.composite
def transactions(
    draw: st.DrawFn,
    /,
    dims: Sequence[str] | None = (),
    *,
    closing_date: dt.date = BASE_CLOSING_DATE,
    date_range: tuple[int, int] = (-4, 2),
    min_size: int = 1,
    max_size: int = 30,
    item_ids: Sequence[str] = ITEM_IDS,
    physical: bool = True,
    marking: bool = True,
    fractional: bool = True,
    null_dims: bool = True,
    with_accounts: bool = True,
) -> pl.DataFrame:
    """Schema-valid contract transaction frames.

    Parameters
    ----------
    dims
        Dimension column names, or ``None`` to draw one layout of :data:`DIMENSION_CHOICES`.
    closing_date, date_range
        Row dates are ``closing_date + k`` days with ``k`` in ``date_range`` (inclusive), so
        a few rows fall after the closing date.
    min_size, max_size
        Number of rows.
    item_ids
        The items drawn from (each frame uses a non-empty subset).
    physical, marking, fractional, null_dims
        Allow physical rows, ``marked_to`` markings, quantities with decimals, null
        dimension values.
    with_accounts
        Fill ``kind`` (``purchase``/``sale``) and both accounts, so that a close that
        posts vouchers finds its accounts.
    """
    if dims is None:
        dims = draw(st.sampled_from(DIMENSION_CHOICES))
    dims = tuple(dims)
    n = draw(st.integers(min_size, max_size))
    items = draw(st.lists(st.sampled_from(item_ids), min_size=1, unique=True))
    dim_values: tuple[str | None, ...] = (*DIM_VALUES, None) if null_dims else DIM_VALUES
    seqs = draw(st.permutations(range(1, n + 1)))
    lo, hi = date_range

    rows: list[dict[str, Any]] = []
    for i in range(n):
        is_receipt = draw(st.booleans())
        magnitude = draw(_quantity(fractional))
        qty = magnitude if is_receipt else -magnitude
        status = "financial"
        if physical and draw(st.integers(0, 3)) == 0:
            status = "physical"
        row: dict[str, Any] = {
            "txn_id": f"T{i:03d}",
            "item_id": draw(st.sampled_from(items)),
            "date": closing_date + dt.timedelta(days=draw(st.integers(lo, hi))),
            "qty": qty,
            "amount": draw(_amount(qty)),
            "status": status,
            "seq": seqs[i],
            "marked_to": None,
            "order_id": None,
            "cost_share": None,
            "kind": None,
            "inventory_account": None,
            "offset_account": None,
        }
        for d in dims:
            row[d] = draw(st.sampled_from(dim_values))
        if with_accounts:
            row["kind"] = "purchase" if is_receipt else "sale"
            row["inventory_account"] = "1400"
            row["offset_account"] = "2100" if is_receipt else "5000"
        rows.append(row)

    if marking:
        for row in rows:
            if row["qty"] > 0 or draw(st.integers(0, 3)) != 0:
                continue
            candidates = [
                r["txn_id"]
                for r in rows
                if r["qty"] > 0
                and r["item_id"] == row["item_id"]
                and all(r[d] == row[d] for d in dims)
            ]
            if candidates:
                row["marked_to"] = draw(st.sampled_from(candidates))

    return pl.DataFrame(rows, schema=input_schema(dims))


@st.composite
def close_inputs(
    draw: st.DrawFn,
    /,
    dims: Sequence[str] | None = None,
    *,
    methods: Sequence[str] = PERIODIC_ORDINAL_METHODS,
    include_physical_value: bool | None = None,
    closing_date: dt.date = BASE_CLOSING_DATE,
    **transaction_options: Any,
) -> CloseInputs:
    """``(df, closing_date, method, include_physical_value)`` for one close.

    ``dims=None`` draws a dimension layout (read it back with :func:`dimension_columns`);
    ``include_physical_value=None`` draws the flag. Other keywords go to
    :func:`transactions`.
    """
    df = draw(transactions(dims, closing_date=closing_date, **transaction_options))
    method = draw(st.sampled_from(tuple(methods)))
    include = draw(st.booleans()) if include_physical_value is None else include_physical_value
    return CloseInputs(df, closing_date, method, include)


@st.composite
def two_close_inputs(
    draw: st.DrawFn,
    /,
    dims: Sequence[str] | None = None,
    *,
    methods: Sequence[str] = PERIODIC_ORDINAL_METHODS,
    include_physical_value: bool | None = None,
    closing_date: dt.date = BASE_CLOSING_DATE,
    invoice_updates: bool = True,
    **transaction_options: Any,
) -> TwoCloseInputs:
    """Inputs of two consecutive closes at ``closing_date1 < closing_date2`` over one history.

    Dates spread from a few days before the first closing date to a few days after the
    second. With ``invoice_updates``, some physical rows dated on or before the first
    closing date are invoiced in ``history2`` (same ``txn_id``, quantity, item and
    dimensions; financial status, a date after the first closing date, a new amount).
    """
    gap = draw(st.integers(1, 3))
    d1 = closing_date
    d2 = d1 + dt.timedelta(days=gap)
    transaction_options.setdefault("date_range", (-3, gap + 2))
    history1 = draw(transactions(dims, closing_date=d1, **transaction_options))
    history2 = history1
    if invoice_updates:
        updated = []
        for row in history1.to_dicts():
            if row["status"] == "physical" and row["date"] <= d1 and draw(st.booleans()):
                row["status"] = "financial"
                row["date"] = d1 + dt.timedelta(days=draw(st.integers(1, gap + 1)))
                row["amount"] = draw(_amount(row["qty"]))
            updated.append(row)
        history2 = pl.DataFrame(updated, schema=history1.schema)
    method = draw(st.sampled_from(tuple(methods)))
    include = draw(st.booleans()) if include_physical_value is None else include_physical_value
    return TwoCloseInputs(history1, history2, d1, d2, method, include)


@st.composite
def item_tables(
    draw: st.DrawFn,
    /,
    item_ids: Sequence[str] = ITEM_IDS,
    methods: Sequence[str] = PERIODIC_ORDINAL_METHODS,
    *,
    min_size: int = 0,
) -> pl.DataFrame:
    """Item tables (``item_id``, ``method``, ``include_physical_value``, ``standard_cost``).

    At least ``min_size`` of ``item_ids`` are listed, each with a method of ``methods``.
    ``standard`` items get a ``standard_cost`` (what ``post_costs`` needs; a close does not
    read it); the column is null for the others.
    """
    chosen = draw(st.lists(st.sampled_from(tuple(item_ids)), unique=True, min_size=min_size))
    rows = []
    for item in sorted(chosen):
        method = draw(st.sampled_from(tuple(methods)))
        cost = None
        if method == "standard":
            cost = Decimal(draw(st.integers(0, 4_000))) * _CENT
        rows.append(
            {
                "item_id": item,
                "method": method,
                "include_physical_value": draw(st.booleans()),
                "standard_cost": cost,
            }
        )
    schema = {
        "item_id": pl.String(),
        "method": pl.String(),
        "include_physical_value": pl.Boolean(),
        "standard_cost": pl.Decimal(38, 2),
    }
    return pl.DataFrame(rows, schema=schema)
