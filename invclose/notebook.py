"""Small helpers for notebooks and month-end work: exact tables, no charts (see ``plots``).

* :func:`summary_html` - a result's own HTML summary (``CloseResult._repr_html_``) followed by
  the first rows of some of its tables, for ``IPython.display.HTML``.
* :func:`month_ends`, :func:`known_at`, :func:`close_months` - close a history month by month,
  each close continuing from the previous one (``opening=``) and seeing only what was posted
  by its closing date (a late invoice replaces its physical row in the month it is dated).
* :func:`cogs_by_period` - cost of goods sold per close of a chain: what the sales posted, plus
  what each close adjusted on them.
* :func:`lifo_reserve` - from :func:`invclose.compare`: ending value under FIFO and LIFO per
  item and their difference.

Every number returned is an exact ``Decimal`` (money ``Decimal(38, 2)``); nothing here rounds.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl

from invclose.config import parse_date
from invclose.schemas import MONEY, QTY

if TYPE_CHECKING:
    from invclose.result import CloseResult

__all__ = [
    "close_months",
    "cogs_by_period",
    "known_at",
    "lifo_reserve",
    "month_ends",
    "summary_html",
]


def summary_html(
    result: CloseResult, tables: Sequence[str] = ("balances", "log"), max_rows: int = 10
) -> str:
    """The result's HTML summary (its ``_repr_html_``) plus the head of ``tables``.

    >>> from IPython.display import HTML                       # doctest: +SKIP
    >>> HTML(summary_html(result, tables=["adjustments"]))     # doctest: +SKIP
    """
    import html

    parts = [result._repr_html_()]
    for table in tables:
        frame: pl.DataFrame = getattr(result, table)
        shown = frame.drop("close_id", strict=False).head(max_rows)
        more = f" (first {max_rows} of {frame.height})" if frame.height > max_rows else ""
        parts.append(f"<h4>{html.escape(table)}{html.escape(more)}</h4>{shown._repr_html_()}")
    return "\n".join(parts)


def month_ends(year: int, months: Iterable[int] = range(1, 13)) -> list[dt.date]:
    """The last day of each month of ``year``.

    >>> month_ends(2025, [1, 2])
    [datetime.date(2025, 1, 31), datetime.date(2025, 2, 28)]
    """
    return [dt.date(year, m, calendar.monthrange(year, m)[1]) for m in months]


def known_at(transactions: pl.DataFrame | pl.LazyFrame, date: Any) -> pl.DataFrame:
    """The rows posted by ``date``: every row dated on or before it.

    A physical row whose invoice (the financial row with the same ``txn_id``) is dated later
    stays physical here; once both are in, the close keeps the invoice.
    """
    frame = transactions.lazy().filter(pl.col("date") <= parse_date(date))
    return frame.collect()


def close_months(
    transactions: pl.DataFrame | pl.LazyFrame,
    dates: Iterable[Any],
    *,
    opening: CloseResult | None = None,
    **settings: Any,
) -> list[CloseResult]:
    """Close at each date in turn, each close the ``opening`` of the next.

    Each close gets :func:`known_at` its date (the whole history up to it; rows an earlier
    close closed are skipped by the close itself). ``settings`` are :func:`invclose.close`'s
    keywords (``dimensions``, ``items``, ``accounts``, ...).
    """
    from invclose.close import close

    frame = transactions.collect() if isinstance(transactions, pl.LazyFrame) else transactions
    results: list[CloseResult] = []
    previous = opening
    for date in dates:
        result = close(known_at(frame, date), date, opening=previous, **settings)
        results.append(result)
        previous = result
    return results


def cogs_by_period(
    transactions: pl.DataFrame | pl.LazyFrame,
    results: Sequence[CloseResult],
    *,
    kinds: Sequence[str] = ("sale",),
) -> pl.DataFrame:
    """Cost of goods sold per close of a chain, in exact money.

    One row per result (in the order given): ``period_start`` (the day after the previous
    closing date, or the first transaction's date), ``closing_date``, ``issued_qty`` and
    ``posted`` (the quantity issued by rows of ``kinds`` in the period and the cost they were
    posted at, positive), ``adjustment`` (the ``cost_delta`` the close put on rows of
    ``kinds``, of any date) and ``cogs = posted + adjustment``: what the cost of goods
    accounts of the period ledger show for the period.

    As the ledger posts them, a physical row (shipped, not invoiced) counts on its date, and
    its invoice (the same ``txn_id``, financial) on the invoice's date takes the physical
    amount back and counts its own: a sale shipped on 30 January and invoiced on 5 February
    is January's cost of goods. (With include physical value, the ledger also takes back a
    physical row's adjustment at its invoice; ``adjustment`` counts each close's own.)

    Examples
    --------
    >>> import datetime as dt
    >>> from decimal import Decimal as D
    >>> import polars as pl
    >>> import invclose
    >>> rows = pl.DataFrame({
    ...     "txn_id": ["P1", "S1", "S1"], "item_id": ["A"] * 3,
    ...     "date": [dt.date(2025, 1, 2), dt.date(2025, 1, 30), dt.date(2025, 2, 5)],
    ...     "qty": [D("2"), D("-1"), D("-1")], "amount": [D("20.00"), D("-10.00"), D("-10.00")],
    ...     "status": ["financial", "physical", "financial"],
    ...     "kind": ["purchase", "sale", "sale"], "seq": [0, 1, 2],
    ...     "inventory_account": ["1400"] * 3, "offset_account": ["2100", "5000", "5000"],
    ... }, schema_overrides={"qty": pl.Decimal(38, 6), "amount": pl.Decimal(38, 2)})
    >>> jan = invclose.close(rows, "2025-01-31")
    >>> feb = invclose.close(rows, "2025-02-28", opening=jan)
    >>> cogs_by_period(rows, [jan, feb])["cogs"].to_list()
    [Decimal('10.00'), Decimal('0.00')]
    """
    frame = transactions.collect() if isinstance(transactions, pl.LazyFrame) else transactions
    if "status" not in frame.columns:
        frame = frame.with_columns(status=pl.lit("financial"))
    issues = frame.filter(pl.col("kind").is_in(list(kinds)) & (pl.col("qty") < 0)).with_columns(
        pl.col("status").fill_null("financial")
    )
    invoices = issues.filter(pl.col("status") == "financial")
    physical = issues.filter(pl.col("status") == "physical")
    # Each physical row again on its invoice's date, with the opposite sign: taken back.
    taken_back = physical.join(
        invoices.select("txn_id", invoiced=pl.col("date")), on="txn_id", how="inner"
    ).select(
        date=pl.col("invoiced"),
        qty=-pl.col("qty").cast(QTY),
        amount=-pl.col("amount").cast(MONEY),
    )
    posted = pl.concat(
        [
            part.select("date", pl.col("qty").cast(QTY), pl.col("amount").cast(MONEY))
            for part in (invoices, physical)
        ]
        + [taken_back]
    )
    first = frame.get_column("date").min() if frame.height else None
    rows: list[dict[str, Any]] = []
    previous: dt.date | None = None
    for result in results:
        start = previous + dt.timedelta(days=1) if previous is not None else first
        in_period = posted.filter(pl.col("date") <= result.closing_date)
        if previous is not None:
            in_period = in_period.filter(pl.col("date") > previous)
        adjusted = result.adjustments.filter(pl.col("kind").is_in(list(kinds)))
        rows.append(
            {
                "period_start": start,
                "closing_date": result.closing_date,
                "issued_qty": -_total(in_period, "qty", QTY),
                "posted": -_total(in_period, "amount", MONEY),
                "adjustment": _total(adjusted, "cost_delta", MONEY),
            }
        )
        previous = result.closing_date
    schema: dict[str, Any] = {
        "period_start": pl.Date,
        "closing_date": pl.Date,
        "issued_qty": QTY,
        "posted": MONEY,
        "adjustment": MONEY,
    }
    table = pl.DataFrame(rows, schema=schema)
    return table.with_columns((pl.col("posted") + pl.col("adjustment")).cast(MONEY).alias("cogs"))


def _total(frame: pl.DataFrame, column: str, dtype: pl.DataType) -> Decimal:
    """The exact sum of ``column`` (zero for no rows)."""
    value = frame.get_column(column).cast(dtype).sum()
    return Decimal(0) if value is None else Decimal(value)


def lifo_reserve(comparison: pl.DataFrame) -> pl.DataFrame:
    """Ending value under FIFO and LIFO per item, and the LIFO reserve (FIFO - LIFO).

    ``comparison`` is :func:`invclose.compare`'s output with both ``fifo`` and ``lifo``
    among its methods; a last ``total`` row adds them up.
    """
    wide = (
        comparison.filter(pl.col("method").is_in(["fifo", "lifo"]))
        .pivot(on="method", index="item_id", values="ending_value")
        .select(
            "item_id",
            pl.col("fifo").cast(MONEY).alias("fifo_value"),
            pl.col("lifo").cast(MONEY).alias("lifo_value"),
        )
        .with_columns(
            (pl.col("fifo_value") - pl.col("lifo_value")).cast(MONEY).alias("lifo_reserve")
        )
        .sort("item_id")
    )
    total = wide.select(
        pl.lit("total").alias("item_id"),
        *(pl.col(c).sum().cast(MONEY) for c in ("fifo_value", "lifo_value", "lifo_reserve")),
    )
    return pl.concat([wide, total])
