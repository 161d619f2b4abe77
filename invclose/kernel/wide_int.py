"""Exact ``round(a * b / d)`` for compiled loops, through 128-bit integers built from 64-bit.

numba has no 128-bit integer type, and cents x micro-units overflow 64 bits. This is the
compiled twin of :func:`invclose.kernel.money.mul_div_round` (half away from zero); the tests
check that the two agree on random and extreme inputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_MASK32 = np.uint64(0xFFFFFFFF)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_S32 = np.uint64(32)
_S63 = np.uint64(63)


@njit(cache=True)  # type: ignore[misc]
def _mul_u64(a: np.uint64, b: np.uint64) -> tuple[np.uint64, np.uint64]:
    """Full 128-bit product of two unsigned 64-bit integers as (high, low)."""
    a_lo = a & _MASK32
    a_hi = a >> _S32
    b_lo = b & _MASK32
    b_hi = b >> _S32
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    p3 = a_hi * b_hi
    mid = (p0 >> _S32) + (p1 & _MASK32) + (p2 & _MASK32)
    low = (p0 & _MASK32) | (mid << _S32)
    high = p3 + (p1 >> _S32) + (p2 >> _S32) + (mid >> _S32)
    return high, low


@njit(cache=True)  # type: ignore[misc]
def _div_u128(high: np.uint64, low: np.uint64, d: np.uint64) -> np.uint64:
    """floor((high * 2**64 + low) / d) for a quotient that fits 64 bits and d < 2**63."""
    if high == _ZERO:
        return low // d
    rem = high % d
    quot = _ZERO
    for i in range(63, -1, -1):
        bit = (low >> np.uint64(i)) & _ONE
        rem = (rem << _ONE) | bit
        quot = quot << _ONE
        if rem >= d:
            rem = rem - d
            quot = quot | _ONE
    return quot


@njit(cache=True)  # type: ignore[misc]
def mul_div_round_scalar(a: int, b: int, d: int) -> int:
    """round(a * b / d), half away from zero; ``d`` > 0 and below 2**62."""
    negative = (a < 0) != (b < 0)
    ua = np.uint64(-a) if a < 0 else np.uint64(a)
    ub = np.uint64(-b) if b < 0 else np.uint64(b)
    high, low = _mul_u64(ua, ub)
    # 2 * product + d, then divide by 2 * d: rounds half up on the magnitude.
    high = (high << _ONE) | (low >> _S63)
    low = low << _ONE
    ud = np.uint64(d)
    new_low = low + ud
    if new_low < low:
        high = high + _ONE
    quot = _div_u128(high, new_low, ud << _ONE)
    result = int(np.int64(quot))
    return -result if negative and result != 0 else result


@njit(cache=True)  # type: ignore[misc]
def mul_div_within(a: int, b: int, d: int, limit: int) -> bool:
    """Whether ``|a * b / d| <= limit`` (so ``mul_div_round_scalar`` cannot wrap around).

    Exact, in 128-bit integers: ``|a| * |b| <= limit * |d|``. ``a``, ``b``, ``d`` and ``limit``
    are above -2**63; ``d`` is not 0.
    """
    ua = np.uint64(-a) if a < 0 else np.uint64(a)
    ub = np.uint64(-b) if b < 0 else np.uint64(b)
    ud = np.uint64(-d) if d < 0 else np.uint64(d)
    p_high, p_low = _mul_u64(ua, ub)
    l_high, l_low = _mul_u64(ud, np.uint64(limit))
    return bool(p_high < l_high or (p_high == l_high and p_low <= l_low))
