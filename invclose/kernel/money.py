"""Exact money and quantity arithmetic in scaled integers.

The kernel works in int64 **micro-units** (quantities, 6 decimals) and int64 **cents**
(money, 2 decimals). Products of the two overflow 64 bits, so every multiply-then-divide goes
through 128-bit integers. ``mul_div_round`` is the one place where the kernel rounds money:
half away from zero, as close-semantics §7.3 requires.
"""

from __future__ import annotations

import polars as pl

from invclose.schemas import MONEY, QTY


def to_micro(expr: pl.Expr) -> pl.Expr:
    """Exact Decimal quantity -> int64 micro-units (the Int128 a Decimal(38, 6) is stored as).

    >>> import decimal
    >>> pl.select(to_micro(pl.lit(decimal.Decimal("-1.5")))).item()
    -1500000
    """
    return expr.cast(QTY).reinterpret(dtype=pl.Int128).cast(pl.Int64)


def to_cents(expr: pl.Expr) -> pl.Expr:
    """Exact Decimal amount -> int64 cents (as :func:`to_micro`, at two decimals).

    >>> import decimal
    >>> pl.select(to_cents(pl.lit(decimal.Decimal("12.34")))).item()
    1234
    """
    return expr.cast(MONEY).reinterpret(dtype=pl.Int128).cast(pl.Int64)


def wide_cents(expr: pl.Expr) -> pl.Expr:
    """Decimal money -> Int128 cents, exactly: for totals over many settlement groups (a
    voucher of an item group or of the run), which an int64 of cents may not hold.

    >>> import decimal
    >>> pl.select(wide_cents(pl.lit(decimal.Decimal("-1.25")))).item()
    -125
    """
    return expr.cast(MONEY).reinterpret(dtype=pl.Int128)


def wide_micro(expr: pl.Expr) -> pl.Expr:
    """Decimal quantity -> Int128 micro-units, exactly (as :func:`wide_cents` for money).

    >>> import decimal
    >>> pl.select(wide_micro(pl.lit(decimal.Decimal("-1.5")))).item()
    -1500000
    """
    return expr.cast(QTY).reinterpret(dtype=pl.Int128)


def from_micro(expr: pl.Expr) -> pl.Expr:
    """int64 micro-units -> Decimal(38, 6), exactly.

    A Decimal(38, 6) is stored as its value in micro-units (an Int128), so the integers are
    taken as they are: no division, several times faster than a cast and a division by 10**6.

    >>> pl.select(from_micro(pl.lit(-1_500_000))).item()
    Decimal('-1.500000')
    """
    return expr.cast(pl.Int128).reinterpret(dtype=QTY)


def from_cents(expr: pl.Expr) -> pl.Expr:
    """int64 cents -> Decimal(38, 2), exactly (the Int128 of cents, as for :func:`from_micro`).

    >>> pl.select(from_cents(pl.lit(1234))).item()
    Decimal('12.34')
    """
    return expr.cast(pl.Int128).reinterpret(dtype=MONEY)


def mul_div_round(
    a: pl.Expr, b: pl.Expr, d: pl.Expr, *, narrow: bool = False, wide_result: bool = False
) -> pl.Expr:
    """``round(a * b / d)`` half away from zero, computed exactly in 128-bit integers.

    ``d`` must be positive. The result must fit int64 (it is money in cents), unless
    ``wide_result``: then it is an Int128 (a unit cost, which a tiny quantity can make larger
    than any amount). With ``narrow=True`` the same formula runs in 64-bit integers, several
    times faster; only for inputs where :func:`fits_narrow` holds, so that nothing overflows
    and the result is the same.

    >>> pl.select(mul_div_round(pl.lit(5), pl.lit(3), pl.lit(2))).item()  # 7.5
    8
    >>> pl.select(mul_div_round(pl.lit(-5), pl.lit(3), pl.lit(2), narrow=True)).item()
    -8
    """
    wide = pl.Int64 if narrow else pl.Int128
    prod = a.cast(wide) * b.cast(wide)
    den = d.cast(wide)
    magnitude = (prod.abs() * 2 + den) // (den * 2)
    if wide_result:
        # (Polars has no unary minus for Int128.)
        return pl.when(prod < 0).then(pl.lit(0, pl.Int128) - magnitude).otherwise(magnitude)
    magnitude = magnitude.cast(pl.Int64)
    return pl.when(prod < 0).then(-magnitude).otherwise(magnitude)


#: :func:`mul_div_round` in 64 bits needs 2 * |a * b| + 2 * d below this.
_NARROW_LIMIT = 2**63


def fits_narrow(frame: pl.DataFrame, a: pl.Expr, b: pl.Expr, d: pl.Expr) -> bool:
    """Whether ``mul_div_round(a, b, d)`` can run in 64 bits on every row of ``frame``.

    True when 2 * max|a| * max|b| + 2 * max(d), computed in Python integers, is below
    2**63: then no intermediate of the formula overflows int64.

    >>> f = pl.DataFrame({"a": [10**9, -(10**9)], "b": [10**9, 3], "d": [7, 1]})
    >>> fits_narrow(f, pl.col("a"), pl.col("b"), pl.col("d"))
    True
    >>> fits_narrow(f, pl.col("a") * 10, pl.col("b"), pl.col("d"))
    False
    """
    bounds = frame.select(
        a.min().alias("a_lo"),
        a.max().alias("a_hi"),
        b.min().alias("b_lo"),
        b.max().alias("b_hi"),
        d.max().alias("d_hi"),
    ).row(0)
    a_lo, a_hi, b_lo, b_hi, d_hi = (int(v or 0) for v in bounds)
    biggest_a = max(abs(a_lo), abs(a_hi))
    biggest_b = max(abs(b_lo), abs(b_hi))
    return 2 * biggest_a * biggest_b + 2 * max(d_hi, 0) < _NARROW_LIMIT
