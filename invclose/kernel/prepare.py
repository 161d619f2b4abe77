"""Build the kernel's working frame: dense group codes, the one total sort, scope flags.

After ``build_working`` every row has ``pos``, its rank in the total key order
(group, date, seq, txn_id). Every later step refers to rows by ``pos`` only, so the result
never depends on the order of the input rows.

Two helpers let later steps use ``pos`` without joins: :func:`rows_at` turns positions into
row numbers of a frame (a lookup by position, then a gather), and :func:`sort_order` sorts on
integer keys packed into one ``Int64``. On a frame sorted by a key, :func:`run_starts` and
:func:`running_sum` give per-group running sums without a window per group.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from invclose.config import ORDINAL_METHODS, PERIODIC_METHODS
from invclose.kernel.group_codes import group_codes
from invclose.schemas import joins_order

_ORDINAL = sorted(m.value for m in ORDINAL_METHODS)
#: Names of the periodic methods (those the close settles), as ``method`` holds them.
PERIODIC = sorted(m.value for m in PERIODIC_METHODS)

#: Bits a packed sort key may use (it is an Int64 and stays non-negative).
_KEY_BITS = 62
#: A position lookup array may be this many times the frame's height (plus a margin).
_LOOKUP_SPREAD = 8


def group_keys(dims: Sequence[str]) -> list[str]:
    """Columns that define a settlement group: the item and its financial dimensions."""
    return ["item_id", *dims]


def rows_at(pos: pl.Series, at: pl.Series) -> pl.Series:
    """For each value of ``at``, the row number where the unique column ``pos`` holds it.

    Null where no row has that position (and where ``at`` is null). ``frame[rows_at(...)]``
    is then the left join of ``at`` on ``pos``, in ``at``'s order, without joining.

    >>> import polars as pl
    >>> rows_at(pl.Series([5, 2, 9]), pl.Series([9, 5, 4, None])).to_list()
    [2, 0, None, None]
    """
    idx = pl.get_index_type()
    n = pos.len()
    if n == 0 or at.len() == 0:
        return pl.repeat(None, at.len(), dtype=idx, eager=True).alias("row")
    lo, hi = pos.min(), pos.max()
    if (
        not isinstance(lo, int)
        or not isinstance(hi, int)
        or pos.null_count()
        or lo < 0
        or hi >= _LOOKUP_SPREAD * n + 1024
    ):
        # Positions that do not index a compact lookup: join instead.
        keyed = pl.DataFrame({"at": pos, "row": pl.int_range(n, dtype=idx, eager=True)})
        return (
            at.cast(pos.dtype)
            .alias("at")
            .to_frame()
            .join(keyed, on="at", how="left", maintain_order="left")["row"]
        )
    lookup = pl.repeat(None, hi + 1, dtype=idx, eager=True)
    lookup.scatter(pos, pl.int_range(n, dtype=idx, eager=True))
    inside = at.to_frame("at").select(
        pl.when((pl.col("at") >= 0) & (pl.col("at") <= hi)).then(pl.col("at"))
    )
    return lookup.gather(inside.to_series()).alias("row")


def run_starts(by: str) -> pl.Expr:
    """True on the first row of each run of equal ``by`` (the frame is sorted by ``by``)."""
    return pl.col(by).ne_missing(pl.col(by).shift(1))


def running_sum(by: str, value: str) -> pl.Expr:
    """Cumulative sum of ``value`` within runs of ``by`` (the frame is sorted by ``by``).

    One cumulative sum over the column, less its value before the run's first row: no
    ``over`` window (a group-by per call).

    >>> import polars as pl
    >>> f = pl.DataFrame({"g": [1, 1, 2, 2, 2], "v": [3, 4, 1, 1, 5]})
    >>> f.select(running_sum("g", "v"))["v"].to_list()
    [3, 7, 1, 2, 7]
    """
    total = pl.col(value).cum_sum()
    # Wrapping int64 arithmetic: the difference is exact whenever the run's own sum fits.
    return total - pl.when(run_starts(by)).then(total - pl.col(value)).forward_fill()


def packed_key(frame: pl.DataFrame, columns: Sequence[str]) -> pl.Series | None:
    """One non-negative ``Int64`` per row that orders like the integer (or date) ``columns``.

    Each column is offset by its minimum and given just the bits its range needs. ``None``
    when a column has nulls or the columns need more than 62 bits together.
    """
    if frame.height == 0:
        return None
    stats = frame.select(
        *[
            expr
            for c in columns
            for expr in (
                pl.col(c).cast(pl.Int64).min().alias(f"lo_{c}"),
                pl.col(c).cast(pl.Int64).max().alias(f"hi_{c}"),
                pl.col(c).null_count().alias(f"nulls_{c}"),
            )
        ]
    ).row(0, named=True)
    if any(stats[f"nulls_{c}"] for c in columns):
        return None
    widths = [(stats[f"hi_{c}"] - stats[f"lo_{c}"]).bit_length() for c in columns]
    if sum(widths) > _KEY_BITS:
        return None
    parts = []
    shift = sum(widths)
    for c, width in zip(columns, widths, strict=True):
        shift -= width
        part = pl.col(c).cast(pl.Int64) - stats[f"lo_{c}"]
        parts.append(part * (1 << shift) if shift else part)
    return frame.select(pl.sum_horizontal(parts).alias("key")).to_series()


def sort_order(frame: pl.DataFrame, columns: Sequence[str]) -> tuple[pl.Series, bool] | None:
    """The permutation sorting ``frame`` by integer (or date) ``columns``, ascending.

    Sorts the :func:`packed_key` instead of the columns. Returns the permutation and whether
    two rows share a key (ties, whose order is then arbitrary), or ``None`` when the columns
    cannot be packed: sort the columns themselves then.
    """
    key = packed_key(frame, columns)
    if key is None:
        return None
    order = key.arg_sort()
    return order, bool(key.gather(order).diff().eq(0).any())


def _gathered(frame: pl.DataFrame, order: pl.Series) -> pl.DataFrame:
    """``frame[order]``, leaving out the gather of columns that are null on every row.

    A random gather costs about as much per column as the sort itself (the columns no longer
    fit the cache); optional columns nobody filled (accounts, markings, order ids, the row
    hashes of a first close) need none. The other columns are gathered from one chunk each:
    much cheaper than from the many chunks of a read.
    """
    empty = [c for c in frame.columns if frame[c].null_count() == frame.height]
    gathered = frame.drop(empty).rechunk()[order]
    return gathered.with_columns(
        pl.repeat(None, order.len(), dtype=frame.schema[c], eager=True).alias(c) for c in empty
    ).select(frame.columns)


def _order_state(frame: pl.DataFrame) -> list[pl.Expr]:
    """``unfed0`` and ``pending0`` of the rows of orders (null on every other row).

    ``unfed0`` is the quantity (micro-units) not yet fed: a new row's whole open quantity, an
    opening row's stored ``unfed_qty``; ``pending0`` the issue's change not yet passed on.
    """
    linked = joins_order()
    fresh_unfed = pl.col("q0").abs()
    unfed = pl.col("unfed0").fill_null(fresh_unfed) if "unfed0" in frame.columns else fresh_unfed
    pending = (
        pl.col("pending0").fill_null(0) if "pending0" in frame.columns else pl.lit(0, pl.Int64)
    )
    return [
        pl.when(linked).then(unfed).alias("unfed0"),
        pl.when(linked).then(pending).alias("pending0"),
    ]


def build_working(frame: pl.DataFrame, dims: Sequence[str], closing_date: dt.date) -> pl.DataFrame:
    """Sort once and add the flags every later step needs.

    ``frame`` holds the canonical input columns plus the run's starting state: ``q0`` (open
    quantity, signed micro-units), ``v0`` (open value, signed cents), ``carried0`` (carried
    value, signed cents), ``method``, ``incl_phys`` and ``item_group`` per row, and optionally
    ``frozen`` (rows a recalculation limited to other items leaves alone) and ``unfed0`` /
    ``pending0`` (an opening's order state, see :func:`_order_state`).
    """
    if "frozen" not in frame.columns:
        frame = frame.with_columns(frozen=pl.lit(False))
    frame = frame.with_columns(_order_state(frame))
    frame = frame.with_columns(group_codes(frame, group_keys(dims)))
    key_order = ["gid", "date", "seq", "txn_id"]
    # The key from three one-chunk columns, not from the wide frame of a read's many chunks.
    key = packed_key(frame.select(key_order[:-1]).rechunk(), key_order[:-1])
    if key is None:
        ordered = frame.sort(key_order)
    else:
        order = key.arg_sort()
        if key.gather(order).diff().eq(0).any():
            # (gid, date, seq) repeats: txn_id breaks the ties, as in the full key order.
            order = (
                pl.DataFrame({"key": key, "txn_id": frame["txn_id"]})
                .with_row_index("row")
                .sort(["key", "txn_id"])["row"]
            )
        ordered = _gathered(frame, order)
    working = ordered.with_row_index("pos").with_columns(
        pl.col("pos").cast(pl.Int64).set_sorted(),
        pl.col("gid").cast(pl.Int64).set_sorted(),
        day=pl.col("date").cast(pl.Int32),
        is_receipt=pl.col("qty") > 0,
        fin=pl.col("status") == "financial",
        in_scope=pl.col("date") <= closing_date,
        q_abs=pl.col("q0").abs(),
        w_abs=pl.col("v0").abs(),
        is_virtual_new=pl.lit(False),
    )
    return working.with_columns(_participates())


def _participates() -> pl.Expr:
    """Rows the settlement reads: in scope, open, of a periodic method, financial (or
    physical under an ordinal method with physical value), not frozen."""
    eligible_status = pl.col("fin") | (pl.col("incl_phys") & pl.col("method").is_in(_ORDINAL))
    return (
        pl.col("in_scope")
        & (pl.col("q0") != 0)
        & pl.col("method").is_in(PERIODIC)
        & eligible_status
        & ~pl.col("frozen")
    ).alias("participates")


def with_method(working: pl.DataFrame, method: str) -> pl.DataFrame:
    """Rows of :func:`build_working` (or a part of them) with every row under ``method``, as
    if they had been built so: the sort does not depend on the method, only ``participates``.

    >>> import datetime as dt, polars as pl
    >>> rows = pl.DataFrame({
    ...     "txn_id": ["r", "s"], "item_id": ["A", "A"], "date": [dt.date(2025, 1, 1)] * 2,
    ...     "seq": [1, 2], "qty": [1, -1], "status": ["financial"] * 2, "order_id": [None] * 2,
    ...     "kind": [None] * 2, "q0": [1, -1], "v0": [5, -5], "method": ["standard"] * 2,
    ...     "incl_phys": [False] * 2}, schema_overrides={"order_id": pl.String, "kind": pl.String})
    >>> working = build_working(rows, [], dt.date(2025, 1, 31))
    >>> working["participates"].to_list(), with_method(working, "fifo")["participates"].to_list()
    ([False, False], [True, True])
    """
    column = pl.lit(method, dtype=working.schema["method"]).alias("method")
    return working.with_columns(column).with_columns(_participates())
