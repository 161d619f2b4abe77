"""Scaled-integer money: the one rounding formula, its 64-bit fast path and its compiled twin.

Expected values are worked by hand in the comments, or computed with Python's unbounded
integers (which cannot overflow) as the oracle.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from invclose.kernel.money import (
    fits_narrow,
    from_cents,
    from_micro,
    mul_div_round,
    to_cents,
    to_micro,
)
from invclose.kernel.wide_int import mul_div_round_scalar


def exact(a: int, b: int, d: int) -> int:
    """round(a * b / d), half away from zero, in Python integers."""
    magnitude = (2 * abs(a * b) + d) // (2 * d)
    return -magnitude if a * b < 0 else magnitude


def polars_round(a: list[int], b: list[int], d: list[int], *, narrow: bool) -> list[int]:
    frame = pl.DataFrame({"a": a, "b": b, "d": d}, schema=dict.fromkeys("abd", pl.Int64))
    expr = mul_div_round(pl.col("a"), pl.col("b"), pl.col("d"), narrow=narrow)
    return frame.select(expr).to_series().to_list()


# (a, b, d, expected) worked by hand.
HAND = [
    (5, 3, 2, 8),  # 7.5 rounds away from zero
    (-5, 3, 2, -8),  # -7.5 too
    (7, -3, 2, -11),  # -10.5
    (1, 1, 2, 1),  # 0.5
    (-1, 1, 2, -1),  # -0.5
    (1, 1, 3, 0),  # 0.333...
    (2, 1, 3, 1),  # 0.666...
    (-2, 1, 3, -1),
    (0, 12345, 7, 0),
    (1000, 250_000, 1_000_000, 250),  # 10.00 x 0.25 units of 1 unit: 2.50
    (999, 1, 1_000_000, 0),  # 0.000999 cents
]


@pytest.mark.parametrize("narrow", [False, True])
def test_hand_worked_rounding(narrow: bool) -> None:
    a, b, d, expected = (list(column) for column in zip(*HAND, strict=True))
    assert polars_round(a, b, d, narrow=narrow) == expected


def test_products_beyond_64_bits_are_exact() -> None:
    # 10**12 cents (10 billion) x 10**12 micro-units (a million units) / 10**6 micro-units:
    # the product 10**24 overflows int64, the result 10**18 does not.
    assert polars_round([10**12], [10**12], [10**6], narrow=False) == [10**18]
    assert mul_div_round_scalar(10**12, 10**12, 10**6) == 10**18
    # (2**62 - 1) * 3 / 3 and its negative.
    big = 2**62 - 1
    assert polars_round([big, -big], [3, 3], [3, 3], narrow=False) == [big, -big]
    assert mul_div_round_scalar(-big, 3, 3) == -big


def test_the_64_bit_path_is_refused_at_its_limit() -> None:
    # 2 * 2**31 * 2**31 + 2 * 1 = 2**63 + 2: one too many.
    at_limit = pl.DataFrame({"a": [2**31], "b": [-(2**31)], "d": [1]})
    assert not fits_narrow(at_limit, pl.col("a"), pl.col("b"), pl.col("d"))
    # 2 * 2**31 * (2**31 - 1) + 2 * 1 = 2**63 - 2**32 + 2: fits, and gives the exact result.
    below = pl.DataFrame({"a": [2**31, -(2**31)], "b": [2**31 - 1, 2**31 - 1], "d": [1, 1]})
    assert fits_narrow(below, pl.col("a"), pl.col("b"), pl.col("d"))
    expected = [2**31 * (2**31 - 1), -(2**31) * (2**31 - 1)]
    assert polars_round(*(below[c].to_list() for c in "abd"), narrow=True) == expected
    # The smallest int64 has no int64 magnitude (times 0 it would be harmless).
    smallest = pl.DataFrame({"a": [-(2**63)], "b": [1], "d": [1]})
    assert not fits_narrow(smallest, pl.col("a"), pl.col("b"), pl.col("d"))


def test_nulls_and_empty_frames() -> None:
    frame = pl.DataFrame(
        {"a": [None, 4], "b": [3, None], "d": [2, 2]}, schema=dict.fromkeys("abd", pl.Int64)
    )
    assert fits_narrow(frame, pl.col("a"), pl.col("b"), pl.col("d"))
    assert fits_narrow(frame.clear(), pl.col("a"), pl.col("b"), pl.col("d"))
    for narrow in (False, True):
        expr = mul_div_round(pl.col("a"), pl.col("b"), pl.col("d"), narrow=narrow)
        assert frame.select(expr).to_series().to_list() == [None, None]


_INT64 = st.integers(-(2**63) + 1, 2**63 - 1)
_MONEY = st.integers(-(10**15), 10**15)


@given(
    st.lists(
        st.tuples(
            st.one_of(_MONEY, _INT64),
            st.one_of(_MONEY, _INT64),
            st.integers(1, 2**61),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_every_path_agrees_with_python_integers(rows: list[tuple[int, int, int]]) -> None:
    # Keep rows whose result fits int64 (the functions' contract: money in cents).
    rows = [(a, b, d) for a, b, d in rows if abs(exact(a, b, d)) < 2**63]
    if not rows:
        return
    a, b, d = (list(column) for column in zip(*rows, strict=True))
    expected = [exact(*row) for row in rows]
    assert polars_round(a, b, d, narrow=False) == expected
    assert [mul_div_round_scalar(*row) for row in rows] == expected
    frame = pl.DataFrame({"a": a, "b": b, "d": d})
    if fits_narrow(frame, pl.col("a"), pl.col("b"), pl.col("d")):
        assert polars_round(a, b, d, narrow=True) == expected


def test_conversions_by_hand() -> None:
    ints = pl.DataFrame({"x": [1234, -5, 1, None, 0]}, schema={"x": pl.Int64})
    cents = ints.select(from_cents(pl.col("x"))).to_series().to_list()
    assert cents == [Decimal("12.34"), Decimal("-0.05"), Decimal("0.01"), None, Decimal("0.00")]
    micro = ints.select(from_micro(pl.col("x"))).to_series().to_list()
    assert micro == [
        Decimal("0.001234"),
        Decimal("-0.000005"),
        Decimal("0.000001"),
        None,
        Decimal("0.000000"),
    ]
    amounts = pl.DataFrame(
        {"m": [Decimal("12.34"), Decimal("-0.05"), None]}, schema={"m": pl.Decimal(38, 2)}
    )
    assert amounts.select(to_cents(pl.col("m"))).to_series().to_list() == [1234, -5, None]
    qty = pl.DataFrame(
        {"q": [Decimal("-1.5"), Decimal("0.000001")]}, schema={"q": pl.Decimal(38, 6)}
    )
    assert qty.select(to_micro(pl.col("q"))).to_series().to_list() == [-1_500_000, 1]


@given(st.lists(st.one_of(st.none(), _INT64), max_size=40))
def test_conversions_round_trip(values: list[int | None]) -> None:
    frame = pl.DataFrame({"x": values}, schema={"x": pl.Int64})
    back = frame.select(
        to_cents(from_cents(pl.col("x"))).alias("c"), to_micro(from_micro(pl.col("x"))).alias("m")
    )
    assert back["c"].to_list() == values
    assert back["m"].to_list() == values
    as_decimal = frame.select(from_cents(pl.col("x"))).to_series().to_list()
    assert as_decimal == [None if v is None else Decimal(v).scaleb(-2) for v in values]
