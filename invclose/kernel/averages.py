"""Weighted average and weighted average date (close-semantics §3.5, §3.6), in one loop.

Both methods settle the same way on a "settling day": when the pool of open sources holds one
receipt, pending issues draw on it directly; with two or more, a virtual *closing issue* takes
every source in full and a virtual *closing receipt* holding their total serves the issues.
``weighted_average_date`` visits each day with issues (or with receipts while issues are
pending); ``weighted_average`` is the same walk with every row moved to the closing date, so
the whole period is one day.

The walk is inherently sequential: a day's closing receipt is valued from the previous day's
remainder, rounded. It runs once over the sorted arrays of every averaging group, compiled
with numba, and prices its pieces with the same cumulative rounding as
:mod:`invclose.kernel.pricing` (through :func:`mul_div_round_scalar`).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from numba import njit

from invclose.kernel.wide_int import mul_div_round_scalar


@njit(cache=True)  # type: ignore[misc]
def _average_walk(
    g_off: np.ndarray,
    day: np.ndarray,
    is_receipt: np.ndarray,
    rem: np.ndarray,
    q_open: np.ndarray,
    w_open: np.ndarray,
    used: np.ndarray,
) -> tuple[
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    int,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    int,
]:
    n = rem.shape[0]
    cap_r = 2 * n + 1
    # Receipt slots: 0..n-1 are real rows, n.. are closing receipts created by the walk.
    r_q = np.zeros(cap_r, dtype=np.int64)
    r_w = np.zeros(cap_r, dtype=np.int64)
    r_drawn = np.zeros(cap_r, dtype=np.int64)
    r_cum = np.zeros(cap_r, dtype=np.int64)
    r_rem = np.zeros(cap_r, dtype=np.int64)
    i_rem = rem.copy()
    for k in range(n):
        if is_receipt[k]:
            r_q[k] = q_open[k]
            r_w[k] = w_open[k]
            r_drawn[k] = used[k]
            r_cum[k] = mul_div_round_scalar(w_open[k], used[k], q_open[k]) if used[k] > 0 else 0
            r_rem[k] = rem[k]
    cap_p = 4 * n + 1
    p_issue = np.empty(cap_p, dtype=np.int64)
    p_receipt = np.empty(cap_p, dtype=np.int64)
    p_qty = np.empty(cap_p, dtype=np.int64)
    p_amount = np.empty(cap_p, dtype=np.int64)
    p_group = np.empty(cap_p, dtype=np.int64)
    n_p = 0
    v_group = np.empty(n + 1, dtype=np.int64)
    v_day = np.empty(n + 1, dtype=np.int64)
    v_qty = np.empty(n + 1, dtype=np.int64)
    v_value = np.empty(n + 1, dtype=np.int64)
    n_v = 0
    pool = np.empty(n + 1, dtype=np.int64)
    pending = np.empty(n + 1, dtype=np.int64)
    for g in range(g_off.shape[0] - 1):
        lo, hi = g_off[g], g_off[g + 1]
        n_pool = 0
        head = 0
        tail = 0
        k = lo
        while k < hi:
            d = day[k]
            has_issue = False
            has_receipt = False
            while k < hi and day[k] == d:
                if is_receipt[k]:
                    pool[n_pool] = k
                    n_pool += 1
                    has_receipt = True
                else:
                    pending[tail] = k
                    tail += 1
                    has_issue = True
                k += 1
            if head == tail or n_pool == 0 or not (has_issue or has_receipt):
                continue
            if n_pool >= 2:
                slot = n + n_v
                issue_ref = -(2 * n_v + 1)  # virtual closing issue, decoded by the caller
                total_q = 0
                total_w = 0
                for j in range(n_pool):
                    src = pool[j]
                    take = r_rem[src]
                    amount = r_w[src] - r_cum[src]
                    p_issue[n_p] = issue_ref
                    p_receipt[n_p] = src
                    p_qty[n_p] = take
                    p_amount[n_p] = amount
                    p_group[n_p] = g
                    n_p += 1
                    total_q += take
                    total_w += amount
                    r_drawn[src] = r_q[src]
                    r_cum[src] = r_w[src]
                    r_rem[src] = 0
                r_q[slot] = total_q
                r_w[slot] = total_w
                r_rem[slot] = total_q
                v_group[n_v] = g
                v_day[n_v] = d
                v_qty[n_v] = total_q
                v_value[n_v] = total_w
                n_v += 1
                pool[0] = slot
                n_pool = 1
            src = pool[0]
            while head < tail and r_rem[src] > 0:
                iss = pending[head]
                take = min(i_rem[iss], r_rem[src])
                r_drawn[src] += take
                cum = mul_div_round_scalar(r_w[src], r_drawn[src], r_q[src])
                p_issue[n_p] = iss
                p_receipt[n_p] = src
                p_qty[n_p] = take
                p_amount[n_p] = cum - r_cum[src]
                p_group[n_p] = g
                n_p += 1
                r_cum[src] = cum
                r_rem[src] -= take
                i_rem[iss] -= take
                if i_rem[iss] == 0:
                    head += 1
            if r_rem[src] == 0:
                n_pool = 0
    return p_issue, p_receipt, p_qty, p_amount, p_group, n_p, v_group, v_day, v_qty, v_value, n_v


def average_pieces(rows: pl.DataFrame, next_pos: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Settle averaging groups.

    Parameters
    ----------
    rows
        Participating rows of averaging groups with quantity left after marking: ``gid``,
        ``pos``, ``walk_day`` (the row's day, or the closing date's for ``weighted_average``),
        ``is_receipt``, ``rem``, ``q_abs``, ``w_abs``, ``used`` (quantity marking drew from a
        receipt).
    next_pos
        First free ``pos`` for the virtual rows the walk creates.

    Returns
    -------
    tuple of polars.DataFrame
        Priced pieces (``gid``, ``issue_pos``, ``receipt_pos``, ``qty``, ``amount``,
        ``rank``) and the virtual closing rows (``pos``, ``gid``, ``walk_day``, ``q_total``,
        ``v_total``, ``is_receipt``): closing issue ``k`` has ``pos = next_pos + 2k``, its
        closing receipt ``next_pos + 2k + 1``.
    """
    ordered = rows.sort(["gid", "pos"])
    gids = ordered["gid"].to_numpy().astype(np.int64)
    pos = ordered["pos"].to_numpy().astype(np.int64)
    n = pos.size
    starts = np.flatnonzero(np.r_[True, gids[1:] != gids[:-1]]) if n else np.zeros(0, np.int64)
    g_off = np.append(starts, n).astype(np.int64)
    (p_issue, p_receipt, p_qty, p_amount, p_group, n_p, v_group, v_day, v_qty, v_value, n_v) = (
        _average_walk(
            g_off,
            ordered["walk_day"].to_numpy().astype(np.int64),
            ordered["is_receipt"].to_numpy(),
            ordered["rem"].to_numpy().astype(np.int64),
            ordered["q_abs"].to_numpy().astype(np.int64),
            ordered["w_abs"].to_numpy().astype(np.int64),
            ordered["used"].to_numpy().astype(np.int64),
        )
    )
    p_issue, p_receipt = p_issue[:n_p], p_receipt[:n_p]
    real_pos = np.append(pos, 0)  # index n is a harmless placeholder for virtual refs
    virtual_issue = p_issue < 0
    issue_pos = np.where(
        virtual_issue, next_pos + 2 * ((-p_issue - 1) // 2), real_pos[np.clip(p_issue, 0, n)]
    )
    virtual_receipt = p_receipt >= n
    receipt_pos = np.where(
        virtual_receipt, next_pos + 2 * (p_receipt - n) + 1, real_pos[np.clip(p_receipt, 0, n)]
    )
    group_gid = gids[starts] if n else np.zeros(0, np.int64)
    i64 = pl.Int64
    pieces = pl.DataFrame(
        {
            "gid": group_gid[p_group[:n_p]] if n_p else np.zeros(0, np.int64),
            "issue_pos": issue_pos.astype(np.int64),
            "receipt_pos": receipt_pos.astype(np.int64),
            "qty": p_qty[:n_p],
            "amount": p_amount[:n_p],
            "rank": np.arange(n_p, dtype=np.int64),
        },
        schema={c: i64 for c in ("gid", "issue_pos", "receipt_pos", "qty", "amount", "rank")},
    )
    k = np.arange(n_v, dtype=np.int64)
    virtual = pl.concat(
        [
            pl.DataFrame(
                {
                    "pos": next_pos + 2 * k + offset,
                    "gid": group_gid[v_group[:n_v]] if n_v else np.zeros(0, np.int64),
                    "walk_day": v_day[:n_v],
                    "q_total": v_qty[:n_v],
                    "v_total": v_value[:n_v],
                    "is_receipt": np.full(n_v, bool(offset)),
                },
                schema={
                    "pos": i64,
                    "gid": i64,
                    "walk_day": i64,
                    "q_total": i64,
                    "v_total": i64,
                    "is_receipt": pl.Boolean,
                },
            )
            for offset in (0, 1)
        ]
    )
    return pieces, virtual
