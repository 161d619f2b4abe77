"""The shared quantity matcher: merge two cumulative axes per group (close-semantics §16.2).

Receipts and issues are each laid on a cumulative quantity axis per group, receipts in the
order the method draws them (fifo: key order; lifo: reverse key order) and issues in key
order. Merging the two sorted lists of boundaries cuts both axes into pieces: each boundary
takes the next receipt and the next issue at or after it (a backward fill), and the piece is
the distance to the previous boundary. Pieces that would cross into another group are
dropped. No per-row or per-group Python: one sort of R + I boundaries.
"""

from __future__ import annotations

import polars as pl

from invclose.kernel.prepare import running_sum, sort_order


def _sorted(frame: pl.DataFrame, keys: list[str], *, ties: bool = False) -> pl.DataFrame:
    """``frame`` sorted by integer ``keys`` (on a packed key when they fit one)."""
    packed = sort_order(frame, keys)
    if packed is None or (packed[1] and not ties):
        return frame.sort(keys)
    return frame.rechunk()[packed[0]]


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
    events = pl.concat(
        [
            r.select(
                "gid",
                "end",
                r_pos=pl.col("pos"),
                r_gid=pl.col("gid"),
                i_pos=pl.lit(None, pl.Int64),
                i_gid=pl.lit(None, pl.Int64),
            ),
            i.select(
                "gid",
                "end",
                r_pos=pl.lit(None, pl.Int64),
                r_gid=pl.lit(None, pl.Int64),
                i_pos=pl.col("pos"),
                i_gid=pl.col("gid"),
            ),
        ]
    )
    # Ties in (gid, end) are a receipt and an issue ending together; either order gives the
    # same pieces and ranks (the second of the two is an empty piece, dropped below).
    events = _sorted(events, ["gid", "end"], ties=True)
    first = pl.col("gid").ne_missing(pl.col("gid").shift(1))
    events = events.with_columns(
        prev=pl.when(first).then(0).otherwise(pl.col("end").shift(1)),
        r_pos=pl.col("r_pos").backward_fill(),
        r_gid=pl.col("r_gid").backward_fill(),
        i_pos=pl.col("i_pos").backward_fill(),
        i_gid=pl.col("i_gid").backward_fill(),
    )
    pieces = events.with_row_index("rank").filter(
        (pl.col("end") > pl.col("prev"))
        & (pl.col("r_gid") == pl.col("gid"))
        & (pl.col("i_gid") == pl.col("gid"))
    )
    return pieces.select(
        issue_pos=pl.col("i_pos"),
        receipt_pos=pl.col("r_pos"),
        qty=pl.col("end") - pl.col("prev"),
        rank=pl.col("rank").cast(pl.Int64),
    )
