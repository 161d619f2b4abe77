"""Continue from an earlier close: merge its open state with the new transactions (§6, §12).

The opening's ``open_items`` and ``closed_items`` are the state carried forward. A row of the
new frame is, by ``txn_id``: closed in the opening (skipped; an error if it changed), open in
it (continues from its open quantity and value, unless it is the invoice of an open physical
row, which replaces it), or new (an error when dated on or before the opening's lock date).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from invclose.errors import ClosedPeriodError, ConfigError, InputValidationError, first_named
from invclose.hashing import row_hashes
from invclose.kernel.money import to_cents, to_micro
from invclose.schemas import input_schema
from invclose.validate import INVOICE_EXCEEDS_HINT, dated_rows, with_closed_period

if TYPE_CHECKING:
    from invclose.result import CloseResult


@dataclass(frozen=True)
class OpeningState:
    """What an earlier close (or recalculation) hands to the next run."""

    close_id: str
    closing_date: dt.date
    lock_date: dt.date | None
    open_items: pl.DataFrame
    closed_items: pl.DataFrame
    #: Items the opening valued at moving average (close-semantics §3.8: no conversion to a
    #: periodic method).
    moving_average_items: pl.Series
    #: The method of each of the opening's groups (``item_id``, the dimensions, ``method``):
    #: a later close warns a group whose method changed (``method_changed``).
    methods: pl.DataFrame | None = None


def load_opening(
    opening: CloseResult | str | Path | None, dims: tuple[str, ...]
) -> OpeningState | None:
    """Accept a ``CloseResult`` or the directory it was written to."""
    if opening is None:
        return None
    from invclose.result import CloseResult, read_result

    if not isinstance(opening, CloseResult | str | Path):
        msg = (
            f"opening must be a CloseResult or the directory one was written to, not "
            f"{type(opening).__name__}; pass the previous close's result (or its path)"
        )
        raise ConfigError(msg)
    result = opening if isinstance(opening, CloseResult) else read_result(opening)
    if tuple(result.dimensions) != tuple(dims):
        msg = (
            f"the opening was closed with dimensions {list(result.dimensions)} but this run uses "
            f"{list(dims)}; continue with the same financial dimensions"
        )
        raise ConfigError(msg)
    return OpeningState(
        close_id=result.close_id,
        closing_date=result.closing_date,
        lock_date=result.lock_date,
        open_items=result.open_items,
        closed_items=result.closed_items,
        moving_average_items=result.balances.filter(pl.col("method") == "moving_average")[
            "item_id"
        ].unique(),
        methods=result.balances.select("item_id", *dims, "method"),
    )


def _fresh(frame: pl.DataFrame) -> pl.DataFrame:
    # unfed0 / pending0 null: nothing of the row has been fed yet (build_working fills them).
    return frame.with_columns(
        q0=to_micro(pl.col("qty")),
        v0=to_cents(pl.col("amount")),
        carried0=to_cents(pl.col("amount")),
        from_opening=pl.lit(False),
        unfed0=pl.lit(None, pl.Int64),
        pending0=pl.lit(None, pl.Int64),
    )


def _unfed_state(open_items: pl.DataFrame) -> list[pl.Series]:
    """``unfed0`` / ``pending0`` of the opening's rows (kernel units).

    Null (a row in no order, or a result written before the columns existed, which
    ``read_result`` reads as null) counts as fully fed: 0 and 0.
    """
    return open_items.select(
        unfed0=to_micro(pl.col("unfed_qty")).fill_null(0),
        pending0=to_cents(pl.col("unfed_change")).fill_null(0),
    ).get_columns()


def _failure_table(frame: pl.DataFrame, check: str, hint: str) -> pl.DataFrame:
    return frame.select(
        "txn_id",
        pl.col("date").cast(pl.String).alias("value"),
        pl.lit(check).alias("check"),
        pl.lit(hint).alias("hint"),
    )


def over_invoices(rows: pl.DataFrame, opening: OpeningState) -> tuple[pl.DataFrame, str] | None:
    """The invoices among ``rows`` of more quantity than the physical row open in
    ``opening`` that they replace, as (failures, headline); None when there are none."""
    physical = opening.open_items.filter(pl.col("status") == "physical").select(
        "txn_id", pl.col("qty").alias("open_physical_qty")
    )
    over = (
        rows.filter(pl.col("status") == "financial")
        .select("txn_id", "date", "qty")
        .join(physical, on="txn_id", how="inner")
        .filter(pl.col("qty").abs() > pl.col("open_physical_qty").abs())
    )
    if over.is_empty():
        return None
    failures = _failure_table(over, "invoice_exceeds_physical", INVOICE_EXCEEDS_HINT)
    headline = (
        f"invoices of physical rows open in {opening.close_id} carry more quantity than those rows"
    )
    return failures, headline


def over_invoice_error(over: tuple[pl.DataFrame, str]) -> InputValidationError:
    """The error for :func:`over_invoices`' rows."""
    failures, headline = over
    listed = first_named(failures["txn_id"])
    return InputValidationError(f"{headline}: {listed}. Hint: {INVOICE_EXCEEDS_HINT}.", failures)


def _raise_refused(refused: list[tuple[pl.DataFrame, str]]) -> None:
    """One ``ClosedPeriodError`` for every (failures, headline) part, if there are any."""
    if not refused:
        return
    parts = []
    for failures, headline in refused:
        parts.append(f"{headline}: {first_named(failures['txn_id'])}. {failures['hint'][0]}")
    raise ClosedPeriodError("\n".join(parts), pl.concat([f for f, _ in refused]))


def _backdated_headline(lock: dt.date) -> tuple[str, str]:
    """Hint and headline of new rows dated in the opening's closed period."""
    return (
        f"Post them with a date after {lock.isoformat()}, or close that period again with "
        "them, from the opening it started from (a Ledger: reverse the close first).",
        f"rows dated on or before the closing date {lock.isoformat()} that the opening "
        "did not know (or invoices, dated then, of its physical rows)",
    )


def refuse_invalid_and_backdated(
    raw: pl.DataFrame, opening: OpeningState | None, error: InputValidationError
) -> None:
    """Raise ``error`` (the input's validation failures), joined with the rows of ``raw`` the
    opening does not know that are dated on or before its lock date, where their ids and
    dates can be read: one ``ClosedPeriodError`` naming both, so that one correction of the
    input suffices (:func:`merge_opening` names them once the input is valid)."""
    lock = None if opening is None else opening.lock_date
    dated = dated_rows(raw)
    if opening is None or lock is None or dated is None:
        raise error
    known = pl.concat([opening.closed_items["txn_id"], opening.open_items["txn_id"]])
    rows = dated.filter((pl.col("date") <= lock) & ~pl.col("txn_id").is_in(known.implode()))
    if rows.is_empty():
        raise error
    hint, headline = _backdated_headline(lock)
    try:
        _raise_refused([(_failure_table(rows, "posting_into_closed_period", hint), headline)])
    except ClosedPeriodError as closed:
        raise with_closed_period(error, closed) from error


def _known_row_hashes(
    tx: pl.DataFrame, opening: OpeningState | None, columns: list[str]
) -> pl.Series:
    """Row hashes of the rows of ``tx`` the opening knows (closed or open); null elsewhere."""
    hashes = pl.repeat(None, tx.height, dtype=pl.String, eager=True).alias("row_hash")
    if opening is None or tx.is_empty():
        return hashes
    known_ids = pl.concat([opening.closed_items["txn_id"], opening.open_items["txn_id"]])
    rows = tx.select(pl.arg_where(pl.col("txn_id").is_in(known_ids.implode())))["txn_id"]
    if rows.is_empty():
        return hashes
    return hashes.scatter(rows, row_hashes(tx[rows], columns))


def merge_opening(
    tx: pl.DataFrame,
    opening: OpeningState | None,
    dims: tuple[str, ...],
    *,
    hash_rows: bool = True,
    as_of: dt.date | None = None,
) -> pl.DataFrame:
    """The run's working set: canonical input columns, ``row_hash`` and starting state.

    Adds ``q0``/``v0``/``carried0`` (open quantity, open value, carried value at the start,
    signed kernel units) and ``from_opening``. With ``hash_rows=False`` only the rows the
    opening knows are hashed here (their hashes find changed rows); the others keep a null
    ``row_hash`` for the caller to fill (``invclose.close`` hashes them beside the kernel).
    The invoice of a physical row open in the opening replaces it, unless it is dated after
    ``as_of`` (the closing date): the row was still physical then, so it is carried as the
    opening left it and the invoice takes no part, as when the input holds both versions.
    """
    columns = list(input_schema(dims))
    if not hash_rows:
        tx = tx.with_columns(row_hash=_known_row_hashes(tx, opening, columns))
    else:
        tx = tx.with_columns(row_hash=row_hashes(tx, columns))
    if opening is None:
        return _fresh(tx)
    open_items = (
        opening.open_items.select(*columns, "open_qty", "open_value", "carried_value")
        .with_columns(_unfed_state(opening.open_items))
        .with_columns(row_hash=row_hashes(opening.open_items, columns))
    )
    closed = opening.closed_items.select("txn_id", pl.col("row_hash").alias("closed_hash"))
    tagged = tx.join(closed, on="txn_id", how="left").join(
        open_items.select(
            "txn_id",
            pl.col("row_hash").alias("open_hash"),
            pl.col("status").alias("open_status"),
        ),
        on="txn_id",
        how="left",
    )
    lock = opening.lock_date
    # Every refusal at once (rows closed and changed, rows open and changed, rows new in the
    # closed period), so that one correction of the input suffices.
    refused: list[tuple[pl.DataFrame, str]] = []
    changed_closed = tagged.filter(
        pl.col("closed_hash").is_not_null() & (pl.col("closed_hash") != pl.col("row_hash"))
    )
    refused.append(
        (
            _failure_table(
                changed_closed,
                "closed_row_changed",
                "These rows were closed by an earlier close and may not change; reverse that "
                "close first or post a correcting row after its closing date.",
            ),
            f"rows closed by {opening.close_id} were changed",
        )
    )
    is_open = pl.col("open_hash").is_not_null()
    invoice = (
        is_open
        & (pl.col("open_hash") != pl.col("row_hash"))
        & (pl.col("open_status") == "physical")
        & (pl.col("status") == "financial")
    )
    changed_open = tagged.filter(is_open & (pl.col("open_hash") != pl.col("row_hash")) & ~invoice)
    refused.append(
        (
            _failure_table(
                changed_open,
                "open_row_changed",
                "Only the invoice of a physical row may replace a row the opening knows; post "
                "corrections as new rows dated after the closing date.",
            ),
            f"rows known to {opening.close_id} were changed",
        )
    )
    new = tagged.filter(pl.col("closed_hash").is_null() & ~is_open)
    invoices = tagged.filter(invoice)
    if lock is not None:
        # An invoice posts on its financial date: into a closed period no more than a new row.
        backdated = pl.concat([new, invoices]).filter(pl.col("date") <= lock)
        hint, headline = _backdated_headline(lock)
        refused.append((_failure_table(backdated, "posting_into_closed_period", hint), headline))
    refused = [(f, h) for f, h in refused if not f.is_empty()]
    over = over_invoices(invoices, opening)
    if refused and over is not None:
        refused.append(over)  # named with the rest, so that one correction suffices
    _raise_refused(refused)
    if over is not None:
        raise over_invoice_error(over)
    if as_of is not None:
        invoices = invoices.filter(pl.col("date") <= as_of)
    carried = open_items.filter(~pl.col("txn_id").is_in(invoices["txn_id"].implode())).with_columns(
        q0=to_micro(pl.col("open_qty")),
        v0=to_cents(pl.col("open_value")),
        carried0=to_cents(pl.col("carried_value")),
        from_opening=pl.lit(True),
    )
    fresh = _fresh(pl.concat([new, invoices]).select(*columns, "row_hash"))
    merged = pl.concat([carried.select(fresh.columns), fresh], how="vertical")
    return merged.with_columns(mark_unknown=_mark_unknown(merged, opening))


def known_to_opening(open_items: pl.DataFrame, closed_items: pl.DataFrame) -> pl.Expr:
    """True for the rows an opening knows: closed or open in it, costed before it.

    The invoice of a physical row open in it is new: it replaces that row.
    """
    open_physical = open_items.filter(pl.col("status") == "physical")["txn_id"]
    known = pl.col("txn_id").is_in(
        pl.concat([closed_items["txn_id"], open_items["txn_id"]]).implode()
    )
    invoice = pl.col("txn_id").is_in(open_physical.implode()) & (pl.col("status") == "financial")
    return known & ~invoice


def _mark_unknown(merged: pl.DataFrame, opening: OpeningState) -> pl.Expr:
    """Issues marked to a receipt that is neither in the run nor closed by the opening.

    Validation finds every ``marked_to`` in the input or the opening when the issue comes in,
    but an issue carried open may outlive its receipt's presence: an input cut at the
    closing date leaves out a receipt dated after it. Such a receipt is not financial on or
    before the closing date as far as this run knows, so the issue waits (close-semantics
    §4) instead of going to the method as if its receipt had been used up.
    """
    known = pl.concat([merged["txn_id"], opening.closed_items["txn_id"]]).implode()
    return pl.col("marked_to").is_not_null() & ~pl.col("marked_to").is_in(known)
