"""The shared quantity matcher: merge two cumulative axes per group (close-semantics §16.2).

Receipts and issues are each laid on a cumulative quantity axis per group, receipts in the
order the method draws them (fifo: key order; lifo: reverse key order) and issues in key
order. Merging the two sorted lists of boundaries cuts both axes into pieces: each boundary
takes the next receipt and the next issue at or after it, and the piece is the distance to
the previous boundary. Pieces that would cross into another group are dropped. Two sorts
(receipts, issues), then one compiled linear merge of the boundaries: no per-row Python.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from numba import njit

from invclose.kernel.prepare import running_sum, sort_order


def _sorted(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """``frame`` sorted by integer ``keys`` (on a packed key when they fit one)."""
    packed = sort_order(frame, keys)
    if packed is None or packed[1]:
        return frame.sort(keys)
    return frame.rechunk()[packed[0]]


def _columns(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``gid``, ``end`` and ``pos`` of a sorted axis as ``int64`` arrays for :func:`_merge`."""
    # Always copy: zero-copy arrays are read-only, a different numba type, so mixing them with
    # writable ones (empty frames) would compile (and cache) one specialisation per mix.
    gid, end, pos = (frame[c].to_numpy().astype(np.int64) for c in ("gid", "end", "pos"))
    return gid, end, pos


@njit(cache=True)  # type: ignore[misc]
def _merge(
    r_gid: np.ndarray,
    r_end: np.ndarray,
    r_pos: np.ndarray,
    i_gid: np.ndarray,
    i_end: np.ndarray,
    i_pos: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Walk the receipt and issue boundaries, each sorted by (gid, end), in merged order.

    Event ``k`` (the ``k``-th boundary in the merged order, counting every group's) yields
    the piece ``(next issue, next receipt, end - previous end in the group)``, ranked ``k``,
    when it is non-empty and both the next receipt and the next issue are in its group.
    """
    n_r = r_gid.shape[0]
    n_i = i_gid.shape[0]
    cap = n_r + n_i
    out_i = np.empty(cap, dtype=np.int64)
    out_r = np.empty(cap, dtype=np.int64)
    out_q = np.empty(cap, dtype=np.int64)
    out_rank = np.empty(cap, dtype=np.int64)
    n = 0
    a = 0  # next receipt: the backward fill of the receipt axis
    b = 0  # next issue
    last_gid = 0
    last_end = 0
    for k in range(cap):
        # A receipt and an issue at the same (gid, end) may come in either order: the first
        # takes both as its next receipt and issue, the second is an empty piece.
        take_receipt = b == n_i or (
            a < n_r and (r_gid[a] < i_gid[b] or (r_gid[a] == i_gid[b] and r_end[a] <= i_end[b]))
        )
        if take_receipt:
            gid, end = r_gid[a], r_end[a]
        else:
            gid, end = i_gid[b], i_end[b]
        prev = last_end if k > 0 and gid == last_gid else 0
        if end > prev and a < n_r and b < n_i and r_gid[a] == gid and i_gid[b] == gid:
            out_i[n] = i_pos[b]
            out_r[n] = r_pos[a]
            out_q[n] = end - prev
            out_rank[n] = k
            n += 1
        if take_receipt:
            a += 1
        else:
            b += 1
        last_gid, last_end = gid, end
    return out_i, out_r, out_q, out_rank, n


def merge_axes(receipts: pl.DataFrame, issues: pl.DataFrame) -> pl.DataFrame:
    """Match quantities of ``receipts`` and ``issues`` unit by unit, per group.

    Parameters
    ----------
    receipts
        Columns ``gid``, ``pos``, ``rem`` (micro-units > 0), ``draw`` (the method's drawing
        order within the group: smaller draws first).
    issues
        Columns ``gid``, ``pos``, ``rem`` (micro-units > 0); drawn in ``pos`` order, or in
        ``draw`` order when the frame has that column.

    Returns
    -------
    polars.DataFrame
        ``issue_pos``, ``receipt_pos``, ``qty`` and ``rank`` (creation order along the issue
        axis), one row per piece.

    Notes
    -----
    Both sides are sorted by group and drawing order and given their cumulative ``end`` per
    group; the compiled :func:`_merge` then walks the two boundary lists once, in (gid, end)
    order. ``rank`` is a boundary's index in that merged order, counting the boundaries of
    groups that have only receipts or only issues, and the pieces come in rank order.

    Examples
    --------
    >>> import polars as pl
    >>> r = pl.DataFrame({"gid": [0, 0], "pos": [0, 1], "rem": [5, 5], "draw": [0, 1]})
    >>> i = pl.DataFrame({"gid": [0], "pos": [2], "rem": [7]})
    >>> merge_axes(r, i).select("receipt_pos", "qty").rows()
    [(0, 5), (1, 2)]
    """
    r = _sorted(receipts, ["gid", "draw"]).with_columns(end=running_sum("gid", "rem"))
    issue_order = "draw" if "draw" in issues.columns else "pos"
    i = _sorted(issues, ["gid", issue_order]).with_columns(end=running_sum("gid", "rem"))
    out_i, out_r, out_q, out_rank, n = _merge(*_columns(r), *_columns(i))
    return pl.DataFrame(
        {
            "issue_pos": out_i[:n],
            "receipt_pos": out_r[:n],
            "qty": out_q[:n],
            "rank": out_rank[:n],
        },
        schema=dict.fromkeys(["issue_pos", "receipt_pos", "qty", "rank"], pl.Int64),
    )
