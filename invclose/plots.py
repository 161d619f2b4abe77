"""Altair charts over a close, for notebooks: ``result.plot.adjustments_by_item()``.

Every function returns an ``altair.Chart`` whose data is inlined (``chart.to_dict()`` holds the
values, so a chart is self-contained and testable). Altair is imported inside the functions:
``import invclose`` never needs it (``pip install invclose[notebook]``).

**Money is Decimal everywhere in invclose.** The charts need JSON numbers, so
:func:`_display_records` converts ``Decimal`` to ``float`` as the very last step, for display
only: no value converted here ever flows back into a table, a sum or a posting. Every total a
chart shows is computed in ``Decimal`` first.

* :func:`adjustments_by_item` - per item, the cost the close added and removed (diverging bars).
* :func:`value_flow` - for an item, where the cost of each of its rows came from: one bar per
  receiving row (issue, or derived receipt), stacked by source row, from ``cost_flow``.
* :func:`onhand_over_time` - an item's inventory value on each date, from the transactions and
  the adjustments (the ledger's value, and the value at settled cost).
* :func:`warnings_by_code` - the close's findings per code, coloured by level.
* :func:`methods_chart`, :func:`cogs_chart` - for :func:`invclose.compare` and
  :func:`invclose.notebook.cogs_by_period` tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    import altair

    from invclose.result import CloseResult

__all__ = [
    "ResultPlots",
    "adjustments_by_item",
    "cogs_chart",
    "methods_chart",
    "onhand_over_time",
    "value_flow",
    "warnings_by_code",
]

MONEY = pl.Decimal(38, 2)
QTY = pl.Decimal(38, 6)
LEVELS = ("error", "warning", "info")
LEVEL_COLORS = ("#d62728", "#ff7f0e", "#1f77b4")
DIRECTIONS = ("more cost", "less cost")
DIRECTION_COLORS = ("#d62728", "#2ca02c")


def _display_records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts for a chart. DISPLAY ONLY: ``Decimal`` becomes ``float`` here
    and nowhere else; dates become ISO text. Never feed these values back into a computation.
    """
    out: list[dict[str, Any]] = []
    for row in frame.iter_rows(named=True):
        record: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, Decimal):
                record[key] = float(value)  # display only, see the docstring
            elif isinstance(value, dt.date):
                record[key] = value.isoformat()
            else:
                record[key] = value
        out.append(record)
    return out


def _altair() -> Any:
    try:
        import altair as alt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        msg = "invclose.plots needs altair: pip install 'invclose[notebook]'"
        raise ImportError(msg) from exc
    return alt


def _group_label(dims: Sequence[str]) -> pl.Expr:
    """The financial dimension values of a row as one label (``S1``, ``S1 | W2``; ``all``)."""
    if not dims:
        return pl.lit("all")
    return pl.concat_str([pl.col(d).fill_null("∅") for d in dims], separator=" | ")


# --------------------------------------------------------------------------- adjustments


def adjustments_by_item(result: CloseResult) -> altair.Chart:
    """Per item, the cost the close added (``more cost``) and removed (``less cost``).

    Data: one row per item and direction present, with ``cost_delta`` (the sum of the
    adjustments' ``cost_delta`` of that sign), ``rows`` (how many) and ``net`` (the item's
    total ``cost_delta``). Bars diverge from zero: up is more cost of goods / value.
    """
    alt = _altair()
    adj = result.adjustments.with_columns(
        pl.when(pl.col("cost_delta") > 0)
        .then(pl.lit(DIRECTIONS[0]))
        .otherwise(pl.lit(DIRECTIONS[1]))
        .alias("direction")
    ).filter(pl.col("cost_delta") != 0)
    net = result.adjustments.group_by("item_id").agg(pl.col("cost_delta").sum().alias("net"))
    table = (
        adj.group_by("item_id", "direction")
        .agg(pl.col("cost_delta").sum().cast(MONEY), pl.len().cast(pl.Int64).alias("rows"))
        .join(net, on="item_id", how="left")
        .with_columns(
            pl.col("direction")
            .replace_strict({d: n for n, d in enumerate(DIRECTIONS)}, return_dtype=pl.Int64)
            .alias("_order")
        )
        .sort("item_id", "_order")
        .drop("_order")
        .select("item_id", "direction", "cost_delta", "rows", "net")
    )
    chart: altair.Chart = (
        alt.Chart(alt.Data(values=_display_records(table)))
        .mark_bar()
        .encode(
            x=alt.X("item_id:N", title="item", sort=None),
            y=alt.Y("cost_delta:Q", title="cost delta", stack="zero"),
            color=alt.Color(
                "direction:N",
                title=None,
                scale=alt.Scale(domain=list(DIRECTIONS), range=list(DIRECTION_COLORS)),
            ),
            tooltip=[
                alt.Tooltip("item_id:N", title="item"),
                alt.Tooltip("direction:N"),
                alt.Tooltip("cost_delta:Q", format=",.2f"),
                alt.Tooltip("rows:Q", title="adjusted rows"),
                alt.Tooltip("net:Q", title="net cost delta", format=",.2f"),
            ],
        )
        .properties(title=f"Adjustments of the close at {result.closing_date.isoformat()}")
    )
    return chart


# --------------------------------------------------------------------------- value flow


def _item_txn_ids(result: CloseResult, item_id: str) -> pl.Series:
    """Every ``txn_id`` the result ties to ``item_id`` (real and virtual rows)."""
    item = pl.col("item_id") == item_id
    parts = [
        result.settlements.filter(item).select(pl.col("issue_txn_id").alias("txn_id")),
        result.settlements.filter(item).select(pl.col("receipt_txn_id").alias("txn_id")),
        result.adjustments.filter(item).select("txn_id"),
        result.open_items.filter(item).select("txn_id"),
        result.log.filter(item & pl.col("txn_id").is_not_null()).select("txn_id"),
    ]
    return pl.concat(parts).get_column("txn_id").unique()


def value_flow_table(result: CloseResult, item_id: str) -> pl.DataFrame:
    """The exact table behind :func:`value_flow`: the ``cost_flow`` edges into the item's rows.

    Columns ``to_txn_id``, ``from_txn_id``, ``kind``, ``principle`` (of the settlement, for
    ``settlement`` edges), ``qty``, ``amount``; sorted by ``to_txn_id``, ``from_txn_id``.
    """
    ids = _item_txn_ids(result, item_id)
    principles = result.settlements.group_by(
        pl.col("issue_txn_id").alias("to_txn_id"), pl.col("receipt_txn_id").alias("from_txn_id")
    ).agg(pl.col("principle").sort().first())
    return (
        result.cost_flow.filter(pl.col("to_txn_id").is_in(ids.implode()))
        .group_by("to_txn_id", "from_txn_id", "kind")
        .agg(pl.col("qty").sum().cast(QTY), pl.col("amount").sum().cast(MONEY))
        .join(principles, on=["to_txn_id", "from_txn_id"], how="left")
        .with_columns(
            pl.when(pl.col("kind") == "settlement").then(pl.col("principle")).alias("principle")
        )
        .select("to_txn_id", "from_txn_id", "kind", "principle", "qty", "amount")
        .sort("to_txn_id", "from_txn_id", "kind")
    )


def value_flow(result: CloseResult, item_id: str) -> altair.Chart:
    """Where the cost of each row of ``item_id`` came from, after the close.

    One horizontal bar per receiving row (an issue, or a receipt derived from a transfer or
    production order), stacked by the row the cost came from (a receipt, or the order's issue),
    from ``cost_flow`` (``amount`` is the positive cost carried; the principle is from
    ``settlements``).
    """
    alt = _altair()
    table = value_flow_table(result, item_id)
    chart: altair.Chart = (
        alt.Chart(alt.Data(values=_display_records(table)))
        .mark_bar()
        .encode(
            y=alt.Y("to_txn_id:N", title="row (issue or derived receipt)", sort=None),
            x=alt.X("amount:Q", title="cost received", stack="zero"),
            color=alt.Color("from_txn_id:N", title="from"),
            tooltip=[
                alt.Tooltip("to_txn_id:N", title="to"),
                alt.Tooltip("from_txn_id:N", title="from"),
                alt.Tooltip("kind:N"),
                alt.Tooltip("principle:N"),
                alt.Tooltip("qty:Q", format=",.6~f"),
                alt.Tooltip("amount:Q", format=",.2f"),
            ],
        )
        .properties(title=f"Where the cost of {item_id} came from")
    )
    return chart


# --------------------------------------------------------------------------- on hand


def onhand_table(
    transactions: Any,
    result: CloseResult,
    item_id: str,
    *,
    earlier: Iterable[CloseResult] = (),
    until: Any = None,
) -> pl.DataFrame:
    """The exact table behind :func:`onhand_over_time` (same meaning as ``inventory_value``).

    One row per financial-dimension group and date on which something changed (a financial
    transaction of the item, or an adjustment's date), up to ``until`` (default the closing
    date): ``group``, ``date``, ``qty``, ``posted_value`` (amounts as posted), ``value``
    (plus the adjustments posted by that date: the ledger's value) and ``settled_value``
    (plus the adjustments of the transactions dated by then: the value at settled cost).
    ``earlier`` closes of the chain add their adjustments.
    """
    from invclose.config import parse_date
    from invclose.views import _as_transactions

    dims = list(result.dimensions)
    last = parse_date(until) if until is not None else result.closing_date
    tx = _as_transactions(transactions, dims).filter(
        (pl.col("item_id") == item_id)
        & (pl.col("status").fill_null("financial") == "financial")
        & (pl.col("date") <= last)
    )
    zero_m = pl.lit(Decimal(0)).cast(MONEY)
    zero_q = pl.lit(Decimal(0)).cast(QTY)
    keys = [_group_label(dims).alias("group")]
    posted = tx.select(
        *keys,
        "date",
        pl.col("qty").cast(QTY).alias("d_qty"),
        pl.col("amount").cast(MONEY).alias("d_posted"),
        zero_m.alias("d_ledger"),
        zero_m.alias("d_restated"),
    )
    adjustments = pl.concat([r.adjustments for r in [*earlier, result]]).filter(
        (pl.col("item_id") == item_id) & (pl.col("status").fill_null("financial") == "financial")
    )
    ledger = adjustments.filter(pl.col("adjustment_date") <= last).select(
        *keys,
        pl.col("adjustment_date").alias("date"),
        zero_q.alias("d_qty"),
        zero_m.alias("d_posted"),
        pl.col("adjustment").cast(MONEY).alias("d_ledger"),
        zero_m.alias("d_restated"),
    )
    restated = adjustments.filter(pl.col("date") <= last).select(
        *keys,
        "date",
        zero_q.alias("d_qty"),
        zero_m.alias("d_posted"),
        zero_m.alias("d_ledger"),
        pl.col("adjustment").cast(MONEY).alias("d_restated"),
    )
    deltas = pl.concat([posted, ledger, restated])
    return (
        deltas.group_by("group", "date")
        .agg(pl.col(c).sum() for c in ("d_qty", "d_posted", "d_ledger", "d_restated"))
        .sort("group", "date")
        .select(
            "group",
            "date",
            pl.col("d_qty").cum_sum().over("group").cast(QTY).alias("qty"),
            pl.col("d_posted").cum_sum().over("group").cast(MONEY).alias("posted_value"),
            (pl.col("d_posted") + pl.col("d_ledger"))
            .cum_sum()
            .over("group")
            .cast(MONEY)
            .alias("value"),
            (pl.col("d_posted") + pl.col("d_restated"))
            .cum_sum()
            .over("group")
            .cast(MONEY)
            .alias("settled_value"),
        )
    )


def onhand_over_time(
    transactions: Any,
    result: CloseResult,
    item_id: str,
    *,
    earlier: Iterable[CloseResult] = (),
    until: Any = None,
) -> altair.Chart:
    """Inventory value of ``item_id`` on each date, per financial-dimension group.

    Two step lines per group (``strokeDash``): ``ledger value`` (amounts as posted, plus the
    adjustments from their ``adjustment_date``: what the inventory account showed) and
    ``settled cost`` (the close's adjustments moved back to each transaction's own date).
    They meet on the closing date. ``transactions`` is the whole history (see
    :func:`invclose.views.register_views`); ``earlier`` closes of a chain add their adjustments.
    """
    alt = _altair()
    table = onhand_table(transactions, result, item_id, earlier=earlier, until=until)
    long = pl.concat(
        [
            table.select(
                "group",
                "date",
                "qty",
                pl.lit("ledger value").alias("series"),
                pl.col("value").alias("value"),
            ),
            table.select(
                "group",
                "date",
                "qty",
                pl.lit("settled cost").alias("series"),
                pl.col("settled_value").alias("value"),
            ),
        ]
    )
    chart: altair.Chart = (
        alt.Chart(alt.Data(values=_display_records(long)))
        .mark_line(interpolate="step-after", point=True)
        .encode(
            x=alt.X("date:T", title="date"),
            y=alt.Y("value:Q", title="inventory value"),
            color=alt.Color("group:N", title=", ".join(result.dimensions) or "group"),
            strokeDash=alt.StrokeDash("series:N", title=None),
            tooltip=[
                alt.Tooltip("group:N"),
                alt.Tooltip("date:T"),
                alt.Tooltip("series:N"),
                alt.Tooltip("qty:Q", format=",.6~f"),
                alt.Tooltip("value:Q", format=",.2f"),
            ],
        )
        .properties(title=f"{item_id}: inventory value over time")
    )
    return chart


# --------------------------------------------------------------------------- findings


def warnings_by_code(result: CloseResult) -> altair.Chart:
    """The close's findings (``log``) per code: one bar per (code, level), coloured by level.

    Data: ``code``, ``level``, ``count`` (rows), sorted by count (descending) then code.
    """
    alt = _altair()
    table = (
        result.log.group_by("code", "level")
        .agg(pl.len().cast(pl.Int64).alias("count"))
        .sort(["count", "code", "level"], descending=[True, False, False])
    )
    chart: altair.Chart = (
        alt.Chart(alt.Data(values=_display_records(table)))
        .mark_bar()
        .encode(
            y=alt.Y("code:N", title="code", sort=None),
            x=alt.X("count:Q", title="rows"),
            color=alt.Color(
                "level:N", scale=alt.Scale(domain=list(LEVELS), range=list(LEVEL_COLORS))
            ),
            tooltip=[alt.Tooltip("code:N"), alt.Tooltip("level:N"), alt.Tooltip("count:Q")],
        )
        .properties(title=f"Findings of the close at {result.closing_date.isoformat()}")
    )
    return chart


# --------------------------------------------------------------------------- tables


def methods_chart(comparison: pl.DataFrame, measure: str = "cost_of_goods") -> altair.Chart:
    """Grouped bars of :func:`invclose.compare`'s ``measure`` per item and method."""
    alt = _altair()
    table = comparison.select("item_id", "method", measure).sort("item_id", "method")
    chart: altair.Chart = (
        alt.Chart(alt.Data(values=_display_records(table)))
        .mark_bar()
        .encode(
            x=alt.X("item_id:N", title="item"),
            xOffset=alt.XOffset("method:N"),
            y=alt.Y(f"{measure}:Q", title=measure.replace("_", " ")),
            color=alt.Color("method:N"),
            tooltip=[
                alt.Tooltip("item_id:N", title="item"),
                alt.Tooltip("method:N"),
                alt.Tooltip(f"{measure}:Q", format=",.2f"),
            ],
        )
        .properties(title=f"{measure.replace('_', ' ')} by valuation method")
    )
    return chart


def cogs_chart(cogs: pl.DataFrame) -> altair.Chart:
    """Bars of cost of goods sold per period from :func:`invclose.notebook.cogs_by_period`."""
    alt = _altair()
    table = cogs.select(
        pl.col("closing_date").dt.strftime("%Y-%m").alias("month"),
        "closing_date",
        "posted",
        "adjustment",
        "cogs",
    )
    chart: altair.Chart = (
        alt.Chart(alt.Data(values=_display_records(table)))
        .mark_bar()
        .encode(
            x=alt.X("month:O", title="month"),
            y=alt.Y("cogs:Q", title="cost of goods sold"),
            tooltip=[
                alt.Tooltip("closing_date:T", title="closing date"),
                alt.Tooltip("posted:Q", title="as posted", format=",.2f"),
                alt.Tooltip("adjustment:Q", title="close adjustment", format=",.2f"),
                alt.Tooltip("cogs:Q", title="cost of goods sold", format=",.2f"),
            ],
        )
        .properties(title="Cost of goods sold per month")
    )
    return chart


# --------------------------------------------------------------------------- accessor


class ResultPlots:
    """``result.plot``: the charts of one result as methods.

    >>> result.plot.adjustments_by_item()                      # doctest: +SKIP
    >>> result.plot.value_flow("BOLT")                         # doctest: +SKIP
    >>> result.plot.onhand_over_time(transactions, "BOLT")     # doctest: +SKIP
    """

    def __init__(self, result: CloseResult) -> None:
        self._result = result

    def __repr__(self) -> str:
        return f"ResultPlots({self._result.close_id!r})"

    def adjustments_by_item(self) -> altair.Chart:
        return adjustments_by_item(self._result)

    def value_flow(self, item_id: str) -> altair.Chart:
        return value_flow(self._result, item_id)

    def onhand_over_time(
        self,
        transactions: Any,
        item_id: str,
        *,
        earlier: Iterable[CloseResult] = (),
        until: Any = None,
    ) -> altair.Chart:
        return onhand_over_time(transactions, self._result, item_id, earlier=earlier, until=until)

    def warnings_by_code(self) -> altair.Chart:
        return warnings_by_code(self._result)
