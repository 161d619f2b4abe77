"""rows_at: the row of each wanted position, against a dict written here."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from invclose.kernel.prepare import rows_at


def _expected(pos: list[int], at: list[int | None]) -> list[int | None]:
    row_of = {p: i for i, p in enumerate(pos)}
    return [row_of.get(a) if a is not None else None for a in at]


@st.composite
def positions(draw: st.DrawFn, lowest: int, highest: int) -> tuple[list[int], list[int | None]]:
    pos = draw(st.lists(st.integers(lowest, highest), min_size=1, max_size=40, unique=True))
    wanted = st.one_of(st.none(), st.sampled_from(pos), st.integers(lowest - 5, highest + 5))
    return pos, draw(st.lists(wanted, max_size=60))


@given(positions(0, 60))
def test_positions_close_together_are_looked_up(case: tuple[list[int], list[int | None]]) -> None:
    # 0 <= pos < 8 x rows + 1024: a lookup array indexed by position. ``at`` is Int32 here.
    pos, at = case
    got = rows_at(pl.Series(pos, dtype=pl.Int64), pl.Series(at, dtype=pl.Int32))
    assert got.to_list() == _expected(pos, at)


@given(positions(-5, 10**6))
def test_positions_far_apart_or_negative_are_joined(
    case: tuple[list[int], list[int | None]],
) -> None:
    # One position beyond any lookup array (or a negative one): a join, same rows.
    pos, at = case
    pos = [*pos, 10**12] if 10**12 not in pos else pos
    at = [*at, 10**12]
    got = rows_at(pl.Series(pos, dtype=pl.Int64), pl.Series(at, dtype=pl.Int64))
    assert got.to_list() == _expected(pos, at)
