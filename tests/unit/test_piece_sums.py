"""Each row's sums of its pieces (``pricing._piece_sums``, one compiled pass), by hand."""

from __future__ import annotations

import polars as pl

from invclose.kernel.pricing import _SUMS, _piece_sums


def _sums(pos: list[int], priced: pl.DataFrame) -> dict[str, list[int]]:
    return {s.name: s.to_list() for s in _piece_sums(pl.Series(pos), priced)}


def test_real_not_real_and_unknown_pieces_count_where_they_belong() -> None:
    # Rows in the order of pos [10, 20, 30, 40]: 10 and 20 are receipts, 30 and 40 issues.
    # Issue 30 draws 4 units (80.00) from receipt 10 and 1 unit (25.00) from receipt 20, both
    # real; 2 units (50.00) from receipt 20 that are not real (adjustment only); and 3 units
    # (9.00) whose realness is unknown (null). Issue 40 draws 6 units (120.00) from a receipt
    # at pos 99, which is not a row of this frame, real.
    priced = pl.DataFrame(
        {
            "issue_pos": [30, 30, 30, 30, 40],
            "receipt_pos": [10, 20, 20, 10, 99],
            "qty": [4, 1, 2, 3, 6],
            "amount": [8000, 2500, 5000, 900, 12000],
            "real": [True, True, False, None, True],
        }
    )
    sums = _sums([10, 20, 30, 40], priced)
    # Issue 30: every piece counts in s / paid: 4 + 1 + 2 + 3 = 10 units, 164.00.
    assert sums["s"] == [0, 0, 10, 6]
    assert sums["paid"] == [0, 0, 16400, 12000]
    # Real pieces only: 4 + 1 = 5 units, 105.00; issue 40's piece is real.
    assert sums["s_real_i"] == [0, 0, 5, 6]
    assert sums["paid_real_i"] == [0, 0, 10500, 12000]
    # Not real: the 2 units only (the null piece is neither).
    assert sums["adj_only_qty"] == [0, 0, 2, 0]
    # Receipts: 10 gave 4 real units (80.00), 20 gave 1 real unit (25.00); receipt 99 is not
    # a row, so nothing lands anywhere for it.
    assert sums["s_real_r"] == [4, 1, 0, 0]
    assert sums["paid_real_r"] == [8000, 2500, 0, 0]


def test_no_pieces_gives_zeros_of_the_rows_height() -> None:
    empty = pl.DataFrame(
        schema={
            "issue_pos": pl.Int64,
            "receipt_pos": pl.Int64,
            "qty": pl.Int64,
            "amount": pl.Int64,
            "real": pl.Boolean,
        }
    )
    sums = _sums([5, 6, 7], empty)
    assert sums == {name: [0, 0, 0] for name in _SUMS}
