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
def positions(draw: st.DrawFn, spread: int) -> tuple[list[int], list[int | None]]:
    pos = draw(st.lists(st.integers(-5, spread), min_size=1, max_size=40, unique=True))
    wanted = st.one_of(st.none(), st.sampled_from(pos), st.integers(-10, spread + 10))
    return pos, draw(st.lists(wanted, max_size=60))


# Positions close together take the lookup array; spread far apart (or negative) they are
# joined: both ways give the same rows.
@given(positions(spread=60))
def test_compact_positions(case: tuple[list[int], list[int | None]]) -> None:
    pos, at = case
    got = rows_at(pl.Series(pos, dtype=pl.Int64), pl.Series(at, dtype=pl.Int64))
    assert got.to_list() == _expected(pos, at)


@given(positions(spread=10**9))
def test_spread_positions(case: tuple[list[int], list[int | None]]) -> None:
    pos, at = case
    got = rows_at(pl.Series(pos, dtype=pl.Int64), pl.Series(at, dtype=pl.Int64))
    assert got.to_list() == _expected(pos, at)
