"""Posting-time costing replayed in posting order (close-semantics §1.3, §3.7, §3.8).

One compiled pass over every group's rows in posting order (``seq``, then ``txn_id``). Each
row either keeps its given amount or takes a cost computed from the state the rows before it
left, so the pass is inherently sequential. Codes of ``method_code``: 0 a periodic method
(running average), 1 ``standard``, 2 ``moving_average``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from invclose.kernel.wide_int import mul_div_round_scalar, mul_div_within
from invclose.schemas import MICRO_PER_UNIT

PERIODIC, STANDARD, MOVING = 0, 1, 2


@njit(cache=True)  # type: ignore[misc]
def _scaled(a: int, b: int, d: int, limit: int) -> tuple[int, bool]:
    """round(a * b / d), and whether it is within ``limit`` (else 0: it is not computed)."""
    if not mul_div_within(a, b, d, limit):
        return 0, False
    return mul_div_round_scalar(a, b, d), True


@njit(cache=True)  # type: ignore[misc]
def _at_cost(unit_cents: int, qty: int, limit: int) -> tuple[int, bool]:
    return _scaled(unit_cents, qty, MICRO_PER_UNIT, limit)


@njit(cache=True)  # type: ignore[misc]
def _average(value: int, qty: int, moved: int, limit: int) -> tuple[int, bool]:
    """value * moved / qty, the running average applied to ``moved``.

    ``qty`` may be negative (an issue's invoice prices its part of the physical issue): the
    signs move to the numerator, since the rounding helper divides by a positive number.
    """
    if qty < 0:
        return _scaled(-value, moved, -qty, limit)
    return _scaled(value, moved, qty, limit)


@njit(cache=True)  # type: ignore[misc]
def _within(value: int, limit: int) -> bool:
    # Also catches the one wrap-around a sum of two values within the limit can make
    # (2 * 2**62 = 2**63 reads as -2**63).
    return -limit <= value <= limit


@njit(cache=True)  # type: ignore[misc]
def posting_walk(
    g_off: np.ndarray,
    limit: int,
    method_code: np.ndarray,
    fin: np.ndarray,
    incl_phys: np.ndarray,
    qty: np.ndarray,
    amount: np.ndarray,
    has_amount: np.ndarray,
    fixed: np.ndarray,
    fixed_variance: np.ndarray,
    unit_cost: np.ndarray,
    invoice_row: np.ndarray,
    replaced_qty: np.ndarray,
    replaced_value: np.ndarray,
    replaced_price: np.ndarray,
    start_fq: np.ndarray,
    start_fv: np.ndarray,
    start_pq: np.ndarray,
    start_pv: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Amount and variance (cents) of every row, and the groups too large to compute.

    Parameters
    ----------
    g_off
        Offsets of each group's rows; within a group rows are in posting order.
    limit
        Bound on every value of a group (``validate.GROUP_LIMIT``): the sum of its rows'
        absolute amounts, its running quantities and values, each amount and variance. A
        group that would pass it is not computed further (nothing wraps around silently).
    method_code
        ``PERIODIC``, ``STANDARD`` or ``MOVING`` per row.
    fin, incl_phys
        Whether the row is financial; whether its item counts physical stock (periodic).
    qty, amount, has_amount
        Quantity (micro-units), given amount (cents; 0 where none) and whether one is given.
    fixed
        The row was posted already: its amount is final and only moves the state.
    fixed_variance
        A posted row's variance (cents; 0 where none is known): with its amount it gives a
        physical row's own price, which its invoice is compared with.
    unit_cost
        The row's standard cost, else its fallback cost (cents per unit).
    invoice_row, replaced_qty, replaced_value, replaced_price
        An invoice replaces a physical row. If that row is in the walk, ``invoice_row`` is
        its index (always earlier in the same group); else -1, and ``replaced_qty`` /
        ``replaced_value`` / ``replaced_price`` are the opening's open physical quantity,
        value and own price (value plus the variance it posted; 0 quantity: the row is no
        invoice).
    start_fq, start_fv, start_pq, start_pv
        Each group's opening financial and physical quantity (micro-units) and value (cents).

    Returns
    -------
    tuple of numpy.ndarray
        Amount and variance per row, in cents, and per group whether it passed ``limit``
        (its amounts are then meaningless).
    """
    n = qty.shape[0]
    out_amount = np.zeros(n, dtype=np.int64)
    out_variance = np.zeros(n, dtype=np.int64)
    too_large = np.zeros(g_off.shape[0] - 1, dtype=np.bool_)
    for g in range(g_off.shape[0] - 1):
        fq, fv, pq, pv = start_fq[g], start_fv[g], start_pq[g], start_pv[g]
        # The sum of the group's absolute amounts, which the close bounds the same way.
        total = 0
        ok = _within(fq, limit) and _within(fv, limit) and _within(pq, limit)
        ok = ok and _within(pv, limit)
        for k in range(g_off[g], g_off[g + 1]):
            if not ok:
                break
            q = qty[k]
            code = method_code[k]
            # The physical row an invoice replaces: its quantity, the value it posted (what
            # leaves stock) and its own price (what the invoice's price is compared with: a
            # receipt that crossed zero posted its gap to negative stock as variance, which
            # the invoice must not undo). Its price is what it posted plus its variance.
            rq = replaced_qty[k]
            rv = replaced_value[k]
            rp = replaced_price[k]
            if invoice_row[k] >= 0:
                rq = qty[invoice_row[k]]
                rv = out_amount[invoice_row[k]]
                rp = rv + out_variance[invoice_row[k]]
            if fixed[k]:
                out_amount[k] = amount[k]
                out_variance[k] = fixed_variance[k]
            elif code == STANDARD:
                own, ok = _at_cost(unit_cost[k], q, limit)
                out_amount[k] = own
                if has_amount[k] and q > 0:
                    # Purchase price variance: only a receipt has a price of its own; an
                    # issue leaves at standard whatever amount it was given.
                    out_variance[k] = amount[k] - own
                elif has_amount[k] and q == 0:
                    out_amount[k] = amount[k]  # a revaluation row keeps its amount
            elif code == MOVING:
                tq = fq + pq
                tv = fv + pv
                ok = _within(tq, limit) and _within(tv, limit)
                if not ok:
                    pass
                elif rq != 0:
                    # The invoiced part of the physical row, pro rata (all of it when the
                    # invoice is for the row's whole quantity): what it posted, and at its
                    # own price, which the invoice's price difference is measured against.
                    part, ok = _average(rv, rq, q, limit)
                    priced, fine = _average(rp, rq, q, limit)
                    ok = ok and fine and _within(rp, limit)
                    diff = amount[k] - priced if has_amount[k] and q > 0 else 0
                    # Only what is still on hand takes the price difference (§3.8); an
                    # issue's invoice keeps the cost it left at.
                    held = min(max(tq, 0), q) if q > 0 else 0
                    kept = 0
                    if q > 0 and ok:
                        kept, ok = _average(diff, q, held, limit)
                    out_amount[k] = part + kept
                    out_variance[k] = diff - kept
                    ok = ok and _within(diff, limit)
                elif q == 0:
                    out_amount[k] = amount[k]
                elif q > 0 and has_amount[k]:
                    if tq < 0:
                        to_zero = min(q, -tq)
                        if tv < 0:
                            at_avg, ok = _average(-tv, -tq, to_zero, limit)
                        else:
                            at_avg, ok = _at_cost(unit_cost[k], to_zero, limit)
                        above, fine = _average(amount[k], q, q - to_zero, limit)
                        ok = ok and fine
                        out_amount[k] = at_avg + above
                        out_variance[k] = amount[k] - out_amount[k]
                    else:
                        out_amount[k] = amount[k]
                elif tq > 0 and tv > 0:
                    out_amount[k], ok = _average(tv, tq, q, limit)
                elif tq < 0 and tv < 0:
                    out_amount[k], ok = _average(-tv, -tq, q, limit)
                else:
                    out_amount[k], ok = _at_cost(unit_cost[k], q, limit)
            if rq != 0:
                # The invoice replaces the whole physical row (a partial invoice's rest comes
                # back as a physical row of its own), so the row leaves physical stock before
                # a periodic invoice is priced on what remains.
                pq -= rq
                pv -= rv
            if code == PERIODIC and not fixed[k]:
                num = fv + (pv if incl_phys[k] else 0)
                den = fq + (pq if incl_phys[k] else 0)
                if has_amount[k]:
                    out_amount[k] = amount[k]
                elif not (_within(num, limit) and _within(den, limit)):
                    ok = False
                elif num > 0 and den > 0:
                    out_amount[k], ok = _average(num, den, q, limit)
                else:
                    out_amount[k], ok = _at_cost(unit_cost[k], q, limit)
            if fin[k]:
                fq += q
                fv += out_amount[k]
            else:
                pq += q
                pv += out_amount[k]
            total += abs(out_amount[k])
            ok = ok and _within(out_amount[k], limit) and _within(out_variance[k], limit)
            ok = ok and _within(fq, limit) and _within(fv, limit)
            ok = ok and _within(pq, limit) and _within(pv, limit)
            ok = ok and 0 <= total <= limit
        too_large[g] = not ok
    return out_amount, out_variance, too_large
