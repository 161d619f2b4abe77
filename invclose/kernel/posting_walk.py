"""Posting-time costing replayed in posting order (close-semantics §1.3, §3.7, §3.8).

One compiled pass over every group's rows in posting order (``seq``, then ``txn_id``). Each
row either keeps its given amount or takes a cost computed from the state the rows before it
left, so the pass is inherently sequential. Codes of ``method_code``: 0 a periodic method
(running average), 1 ``standard``, 2 ``moving_average``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from invclose.kernel.wide_int import mul_div_round_scalar
from invclose.schemas import MICRO_PER_UNIT

PERIODIC, STANDARD, MOVING = 0, 1, 2


@njit(cache=True)  # type: ignore[misc]
def _at_cost(unit_cents: int, qty: int) -> int:
    return mul_div_round_scalar(unit_cents, qty, MICRO_PER_UNIT)


@njit(cache=True)  # type: ignore[misc]
def _average(value: int, qty: int, moved: int) -> int:
    """value * moved / qty, the running average applied to ``moved``."""
    return mul_div_round_scalar(value, moved, qty)


@njit(cache=True)  # type: ignore[misc]
def posting_walk(
    g_off: np.ndarray,
    method_code: np.ndarray,
    fin: np.ndarray,
    incl_phys: np.ndarray,
    qty: np.ndarray,
    amount: np.ndarray,
    has_amount: np.ndarray,
    unit_cost: np.ndarray,
    invoice_of: np.ndarray,
    start_fq: np.ndarray,
    start_fv: np.ndarray,
    start_pq: np.ndarray,
    start_pv: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Amount and variance (cents) of every row.

    ``unit_cost`` is the row's fallback or standard cost in cents per unit;
    ``invoice_of`` is the physical amount (cents) an invoice row replaces, or the minimum
    int64 when the row is no invoice. ``start_*`` are each group's opening financial and
    physical quantity (micro-units) and value (cents).
    """
    n = qty.shape[0]
    out_amount = np.zeros(n, dtype=np.int64)
    out_variance = np.zeros(n, dtype=np.int64)
    no_invoice = np.iinfo(np.int64).min
    for g in range(g_off.shape[0] - 1):
        fq, fv, pq, pv = start_fq[g], start_fv[g], start_pq[g], start_pv[g]
        for k in range(g_off[g], g_off[g + 1]):
            q = qty[k]
            code = method_code[k]
            if code == STANDARD:
                own = _at_cost(unit_cost[k], q)
                out_amount[k] = own
                if has_amount[k] and q != 0:
                    out_variance[k] = amount[k] - own
                elif has_amount[k]:
                    out_amount[k] = amount[k]  # a revaluation row keeps its amount
            elif code == MOVING:
                tq = fq + pq
                tv = fv + pv
                if invoice_of[k] != no_invoice:
                    diff = amount[k] - invoice_of[k]
                    held = min(max(tq, 0), abs(q))
                    kept = _average(diff, abs(q), held) if q != 0 else 0
                    out_amount[k] = invoice_of[k] + kept
                    out_variance[k] = diff - kept
                    # The physical row is already on hand: move it to financial.
                    pq -= q
                    pv -= invoice_of[k]
                    fq += q
                    fv += invoice_of[k] + kept
                    continue
                if q == 0:
                    out_amount[k] = amount[k]
                elif q > 0 and has_amount[k]:
                    if tq < 0:
                        to_zero = min(q, -tq)
                        at_avg = (
                            _average(-tv, -tq, to_zero)
                            if tv < 0
                            else _at_cost(unit_cost[k], to_zero)
                        )
                        above = _average(amount[k], q, q - to_zero)
                        out_amount[k] = at_avg + above
                        out_variance[k] = amount[k] - out_amount[k]
                    else:
                        out_amount[k] = amount[k]
                elif tq > 0 and tv > 0:
                    out_amount[k] = _average(tv, tq, q)
                elif tq < 0 and tv < 0:
                    out_amount[k] = _average(-tv, -tq, q)
                else:
                    out_amount[k] = _at_cost(unit_cost[k], q)
            else:
                num = fv + (pv if incl_phys[k] else 0)
                den = fq + (pq if incl_phys[k] else 0)
                if has_amount[k]:
                    out_amount[k] = amount[k]
                elif num > 0 and den > 0:
                    out_amount[k] = _average(num, den, q)
                else:
                    out_amount[k] = _at_cost(unit_cost[k], q)
            if fin[k]:
                fq += q
                fv += out_amount[k]
            else:
                pq += q
                pv += out_amount[k]
    return out_amount, out_variance
