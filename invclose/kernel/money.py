"""Exact money and quantity arithmetic in scaled integers.

The kernel works in int64 **micro-units** (quantities, 6 decimals) and int64 **cents**
(money, 2 decimals). Products of the two overflow 64 bits, so every multiply-then-divide goes
through 128-bit integers. ``mul_div_round`` is the one place where the kernel rounds money:
half away from zero, as close-semantics §7.3 requires.
"""

from __future__ import annotations

import polars as pl

from invclose.schemas import MONEY, QTY

MICRO = 1_000_000
CENTS = 100


def to_micro(expr: pl.Expr) -> pl.Expr:
    """Exact Decimal quantity -> int64 micro-units."""
    return (expr.cast(QTY) * MICRO).cast(pl.Int64)


def to_cents(expr: pl.Expr) -> pl.Expr:
    """Exact Decimal amount -> int64 cents."""
    return (expr.cast(MONEY) * CENTS).cast(pl.Int64)


def from_micro(expr: pl.Expr) -> pl.Expr:
    """int64 micro-units -> Decimal(38, 6), exactly."""
    return expr.cast(QTY) / MICRO


def from_cents(expr: pl.Expr) -> pl.Expr:
    """int64 cents -> Decimal(38, 2), exactly."""
    return expr.cast(MONEY) / CENTS


def mul_div_round(a: pl.Expr, b: pl.Expr, d: pl.Expr) -> pl.Expr:
    """``round(a * b / d)`` half away from zero, computed exactly in 128-bit integers.

    ``d`` must be positive. The result must fit int64 (it is money in cents).
    """
    prod = a.cast(pl.Int128) * b.cast(pl.Int128)
    den = d.cast(pl.Int128)
    magnitude = ((prod.abs() * 2 + den) // (den * 2)).cast(pl.Int64)
    return pl.when(prod < 0).then(-magnitude).otherwise(magnitude)
