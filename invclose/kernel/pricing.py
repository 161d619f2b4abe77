"""Settled values: piece amounts cut along each receipt, then each row's new value (§7).

Rounding happens in exactly one way: the cumulative amount drawn from a receipt after ``c``
of its ``Q`` open units is ``round(V * c / Q)`` (half away from zero, cents), and a piece's
amount is the difference of two such cumulative values. So a used-up receipt's pieces sum to
its open value exactly, and an issue's value is a sum of cents.

Rows are found by ``pos`` with a lookup and a gather (:func:`~invclose.kernel.prepare.rows_at`)
rather than joins, and sums over a receipt's pieces run on the pieces sorted by receipt.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from numba import njit

from invclose.kernel.money import fits_narrow, mul_div_round
from invclose.kernel.prepare import rows_at, run_starts, running_sum, sort_order


def _sides(pieces: pl.DataFrame, working: pl.DataFrame, extra: bool = False) -> list[pl.Series]:
    """Both sides' ids and financial flags (and the receipt's open state with ``extra``)."""
    n = pieces.height
    # One position lookup for both sides (receipts, then issues): a lookup spans every row.
    rows = rows_at(working["pos"], pl.concat([pieces["receipt_pos"], pieces["issue_pos"]]))
    both = working.select("txn_id", "fin").rechunk()[rows]
    receipt, issue = both.slice(0, n), both.slice(n)
    out = [
        receipt["txn_id"].alias("receipt_txn_id"),
        receipt["fin"].alias("r_fin"),
        issue["txn_id"].alias("issue_txn_id"),
        issue["fin"].alias("i_fin"),
    ]
    if extra:
        state = working.select("q_abs", "w_abs").rechunk()[rows.slice(0, n)]
        out += [state["q_abs"].alias("r_q"), state["w_abs"].alias("r_w")]
    return out


def attach_sides(pieces: pl.DataFrame, working: pl.DataFrame) -> pl.DataFrame:
    """Add both sides' ids and financial flags, and ``real`` (both sides financial)."""
    return pieces.with_columns(_sides(pieces, working)).with_columns(
        real=pl.col("r_fin") & pl.col("i_fin")
    )


def _by_receipt(pieces: pl.DataFrame) -> pl.DataFrame:
    """``pieces`` sorted by (receipt_pos, phase, rank)."""
    keys = ["receipt_pos", "phase", "rank"]
    packed = sort_order(pieces, keys)
    if packed is None or packed[1]:
        return pieces.sort(keys)
    return pieces.rechunk()[packed[0]]


def price_pieces(pieces: pl.DataFrame, working: pl.DataFrame) -> pl.DataFrame:
    """Give every piece its amount by cumulative rounding along its receipt.

    The drawing order along a receipt is marking pieces first (``phase`` 0, in issue key
    order), then method pieces (``phase`` 1) in the order the method created them.
    Adds ``amount``, ``real`` (both sides financial), and the two transaction ids.
    """
    ordered = _by_receipt(pieces)
    ordered = ordered.with_columns(_sides(ordered, working, extra=True)).with_columns(
        real=pl.col("r_fin") & pl.col("i_fin")
    )
    # The pieces are sorted by receipt: a receipt's running sums restart at its first piece.
    first = run_starts("receipt_pos")
    drawn = ordered.with_columns(drawn=running_sum("receipt_pos", "qty"))
    cum = (pl.col("r_w"), pl.col("drawn"), pl.col("r_q"))
    priced = drawn.with_columns(cum_amount=mul_div_round(*cum, narrow=fits_narrow(drawn, *cum)))
    priced = priced.with_columns(
        amount=pl.col("cum_amount")
        - pl.when(first).then(0).otherwise(pl.col("cum_amount").shift(1).fill_null(0)),
    )
    return priced.drop("drawn", "cum_amount", "r_q", "r_w")


#: What :func:`_scatter_sums` adds up per row, in its output's order.
_SUMS = ("s", "paid", "s_real_i", "paid_real_i", "adj_only_qty", "s_real_r", "paid_real_r")


@njit(cache=True)  # type: ignore[misc]
def _scatter_sums(
    n_rows: int,
    issue_row: np.ndarray,
    receipt_row: np.ndarray,
    qty: np.ndarray,
    amount: np.ndarray,
    real: np.ndarray,
) -> np.ndarray:
    out = np.zeros((7, n_rows), dtype=np.int64)
    for k in range(qty.shape[0]):
        i = issue_row[k]
        if i >= 0:
            out[0, i] += qty[k]
            out[1, i] += amount[k]
            if real[k] == 1:
                out[2, i] += qty[k]
                out[3, i] += amount[k]
            elif real[k] == 0:
                out[4, i] += qty[k]
        r = receipt_row[k]
        if r >= 0 and real[k] == 1:
            out[5, r] += qty[k]
            out[6, r] += amount[k]
    return out


def _piece_sums(pos: pl.Series, priced: pl.DataFrame) -> list[pl.Series]:
    """Per row (in the order of ``pos``), the sums of its pieces named in ``_SUMS``.

    ``s`` / ``paid`` are the quantity and amount of all of an issue's pieces, ``*_real_i``
    of its real pieces, ``adj_only_qty`` the quantity of its pieces that are not real (a
    null ``real`` counts as neither), ``*_real_r`` a receipt's real pieces. Rows without
    pieces get 0. One compiled pass adds every piece into its rows: no group-by and no join.

    >>> import polars as pl
    >>> priced = pl.DataFrame({"issue_pos": [7, 7], "receipt_pos": [3, 4], "qty": [2, 5],
    ...                        "amount": [10, 30], "real": [True, False]})
    >>> [s.to_list() for s in _piece_sums(pl.Series([3, 4, 7]), priced)][:5]
    [[0, 0, 7], [0, 0, 40], [0, 0, 2], [0, 0, 10], [0, 0, 5]]
    """

    # Copies, always writable: zero-copy arrays are read-only, another numba type, so a mix
    # would compile (and cache) one specialisation per combination.
    def values(expr: pl.Expr, dtype: type) -> np.ndarray:
        return priced.select(expr).to_series().to_numpy().astype(dtype)

    # Both sides' rows from one position lookup.
    sides = pl.concat([priced["issue_pos"], priced["receipt_pos"]])
    found = rows_at(pos, sides).cast(pl.Int64).fill_null(-1).to_numpy().astype(np.int64)
    real = pl.when(pl.col("real")).then(1).when(~pl.col("real")).then(0).otherwise(-1)
    out = _scatter_sums(
        pos.len(),
        found[: priced.height],
        found[priced.height :],
        values(pl.col("qty").cast(pl.Int64).fill_null(0), np.int64),
        values(pl.col("amount").cast(pl.Int64).fill_null(0), np.int64),
        values(real.cast(pl.Int8), np.int8),
    )
    return [pl.Series(name, out[k]) for k, name in enumerate(_SUMS)]


def apply_pieces(working: pl.DataFrame, priced: pl.DataFrame, *, settle: bool) -> pl.DataFrame:
    """New open quantity, open value and carried value of every row.

    Adds ``adjustment`` (cents, the row's own sign), ``cost_delta``, ``q1``, ``v1``,
    ``carried1``, ``s_real`` (quantity settled by real pieces, issues and receipts alike),
    ``adj_only_qty`` and ``adjusted_against``. With ``settle=False`` (recalculation) open
    quantities stay as they were and only values move.
    """
    sums = _piece_sums(working["pos"], priced)
    # Only pieces that are not real name a receipt here; other issues would get an empty
    # list, which becomes null below anyway.
    against = (
        priced.lazy()
        .filter(~pl.col("real"))
        .group_by("issue_pos")
        .agg(adjusted_against=pl.col("receipt_txn_id").unique().sort())
        .collect()
    )
    rows = working.with_columns(
        *sums,
        against["adjusted_against"].gather(rows_at(against["issue_pos"], working["pos"])),
    )
    # Issue: new open value = pieces + (w - round(w * s / q)); the unsettled part keeps cost.
    kept = (pl.col("w_abs"), pl.col("s"), pl.col("q_abs").clip(lower_bound=1))
    new_issue_value = (
        pl.col("paid") + pl.col("w_abs") - mul_div_round(*kept, narrow=fits_narrow(rows, *kept))
    )
    # A derived receipt moves by its share of its feeding issues' changes (its w_abs already
    # includes it, so its pieces were cut from the new value).
    derived = pl.col("derived_adj") if "derived_adj" in working.columns else pl.lit(0, pl.Int64)
    cost_delta = (
        pl.when(pl.col("is_receipt"))
        .then(derived)
        .when(pl.col("s") > 0)
        .then(new_issue_value - pl.col("w_abs"))
        .otherwise(0)
    )
    rows = rows.with_columns(cost_delta=cost_delta).with_columns(
        adjustment=pl.when(pl.col("is_receipt"))
        .then(pl.col("cost_delta"))
        .otherwise(-pl.col("cost_delta")),
        s_real=pl.when(pl.col("is_receipt")).then(pl.col("s_real_r")).otherwise(pl.col("s_real_i")),
        paid_real=pl.when(pl.col("is_receipt"))
        .then(pl.col("paid_real_r"))
        .otherwise(pl.col("paid_real_i")),
    )
    sign = pl.when(pl.col("is_receipt")).then(1).otherwise(-1)
    if settle:
        q1 = pl.col("q0") - sign * pl.col("s_real")
        v1 = pl.col("v0") + pl.col("adjustment") - sign * pl.col("paid_real")
    else:
        q1 = pl.col("q0")
        v1 = pl.col("v0") + pl.col("adjustment")
    rows = rows.with_columns(
        q1=q1,
        v1=v1,
        carried1=pl.col("carried0") + pl.col("adjustment"),
        adjusted_against=pl.when(pl.col("adjusted_against").list.len() > 0).then(
            pl.col("adjusted_against")
        ),
    )
    # One chunk, as the joins this replaces gave (the streaming engine of polars 2.1 panicked
    # on ``pl.format`` over string columns of such rows in many chunks).
    return rows.drop(
        "s", "paid", "s_real_i", "paid_real_i", "s_real_r", "paid_real_r", "paid_real"
    ).rechunk()
