"""LIFO date: a per-group stack, run as one compiled loop over sorted arrays (§3.4, §16.3).

Issue dates are visited oldest first, and within a date the last issue first. Each issue
draws on the latest receipt dated on or before its date that still has quantity (a stack).
Quantity still unsettled after all dates draws on later receipts, nearest first. The loop is
inherently sequential, so it is compiled with numba and runs once over every lifo_date group.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from numba import njit


@njit(cache=True)  # type: ignore[misc]
def _stack_match(
    r_off: np.ndarray,
    r_day: np.ndarray,
    r_rem: np.ndarray,
    i_off: np.ndarray,
    i_day: np.ndarray,
    i_rem: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    n_groups = r_off.shape[0] - 1
    cap = r_rem.shape[0] + i_rem.shape[0] + 1
    out_i = np.empty(cap, dtype=np.int64)
    out_r = np.empty(cap, dtype=np.int64)
    out_q = np.empty(cap, dtype=np.int64)
    n = 0
    stack = np.empty(r_rem.shape[0] + 1, dtype=np.int64)
    for g in range(n_groups):
        r_lo, r_hi = r_off[g], r_off[g + 1]
        i_lo, i_hi = i_off[g], i_off[g + 1]
        sp = 0
        nxt = r_lo
        for k in range(i_lo, i_hi):
            d = i_day[k]
            while nxt < r_hi and r_day[nxt] <= d:
                stack[sp] = nxt
                sp += 1
                nxt += 1
            need = i_rem[k]
            while need > 0 and sp > 0:
                top = stack[sp - 1]
                take = min(need, r_rem[top])
                if take > 0:
                    out_i[n] = k
                    out_r[n] = top
                    out_q[n] = take
                    n += 1
                    r_rem[top] -= take
                    need -= take
                if r_rem[top] == 0:
                    sp -= 1
            i_rem[k] = need
        # Leftovers: later receipts, nearest first, issues in the same visiting order.
        after = r_lo
        cursor = r_lo
        for k in range(i_lo, i_hi):
            need = i_rem[k]
            if need == 0:
                continue
            d = i_day[k]
            while after < r_hi and r_day[after] <= d:
                after += 1
            cursor = max(cursor, after)
            while need > 0 and cursor < r_hi:
                if r_rem[cursor] == 0:
                    cursor += 1
                    continue
                take = min(need, r_rem[cursor])
                out_i[n] = k
                out_r[n] = cursor
                out_q[n] = take
                n += 1
                r_rem[cursor] -= take
                need -= take
            i_rem[k] = need
    return out_i, out_r, out_q, n


def _offsets(gids: np.ndarray, group_ids: np.ndarray) -> np.ndarray:
    """Start offset of each group in ``group_ids`` within the sorted ``gids`` array."""
    return np.searchsorted(gids, group_ids, side="left").astype(np.int64)


def match_lifo_date(receipts: pl.DataFrame, issues: pl.DataFrame) -> pl.DataFrame:
    """Match quantities of lifo_date groups.

    Parameters
    ----------
    receipts
        ``gid``, ``pos``, ``day``, ``rem`` (micro-units > 0).
    issues
        ``gid``, ``pos``, ``day``, ``rem`` (micro-units > 0).

    Returns
    -------
    polars.DataFrame
        ``issue_pos``, ``receipt_pos``, ``qty``, ``rank`` (the order pieces were drawn).
    """
    r = receipts.sort(["gid", "pos"])
    i = issues.sort(["gid", "day", "pos"], descending=[False, False, True])
    group_ids = np.unique(np.concatenate([r["gid"].to_numpy(), i["gid"].to_numpy()]))
    bounds = np.append(group_ids, np.iinfo(np.int64).max)
    r_gid = r["gid"].to_numpy()
    i_gid = i["gid"].to_numpy()
    out_i, out_r, out_q, n = _stack_match(
        _offsets(r_gid, bounds),
        r["day"].to_numpy().astype(np.int64),
        r["rem"].to_numpy().astype(np.int64).copy(),
        _offsets(i_gid, bounds),
        i["day"].to_numpy().astype(np.int64),
        i["rem"].to_numpy().astype(np.int64).copy(),
    )
    r_pos = r["pos"].to_numpy()
    i_pos = i["pos"].to_numpy()
    return pl.DataFrame(
        {
            "issue_pos": i_pos[out_i[:n]],
            "receipt_pos": r_pos[out_r[:n]],
            "qty": out_q[:n],
            "rank": np.arange(n, dtype=np.int64),
        },
        schema={"issue_pos": pl.Int64, "receipt_pos": pl.Int64, "qty": pl.Int64, "rank": pl.Int64},
    )
