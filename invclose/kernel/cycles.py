"""Cost cycles solved exactly as one linear system per strongly connected component (§9.4).

Inside a cycle, issue changes are linear in the changes of the receipts they draw on (each
piece carries ``qty / Q`` of its receipt's value), and a derived receipt's change is its share
of the changes of the issues feeding it. With ``d`` the changes that reach derived receipts
from inside the cycle, ``y0`` the issue changes computed exactly with ``d = 0``, ``M`` (issue
<- receipt) and ``F`` (receipt <- issue) the share matrices::

    d = F (y0 + M d)      so      (I - F M) d = F y0

A sparse LU gives ``d``; it is rounded to cents, the cycle is costed again exactly with it, and
every equation is re-checked in integer cents: the cents by which a rounded receipt differs from
its rounded inputs stay on the order's offset account and are logged ``cycle_residual``. A
singular system (value that only circulates) is ``not_converged``: the receipts keep their
carried values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix, identity
from scipy.sparse.linalg import splu


@dataclass(frozen=True)
class CycleSolution:
    """Rounded changes of the cycle's derived receipts, or ``None`` when not solvable."""

    adjustments: pl.DataFrame | None  # pos, derived_adj (cents)
    residual: float  # max |(I - F M) d - F y0| of the float solve, in cents


def solve_cycle(rows: pl.DataFrame, pieces: pl.DataFrame, feeds: pl.DataFrame) -> CycleSolution:
    """Solve one cycle.

    Parameters
    ----------
    rows
        The cycle's rows after an exact pass with ``d = 0``: ``pos``, ``is_receipt``,
        ``q_abs``, ``cost_delta`` (issues), ``is_derived``.
    pieces
        The cycle's pieces: ``issue_pos``, ``receipt_pos``, ``qty``.
    feeds
        Receipt <- issue shares inside the cycle: ``issue_pos``, ``receipt_pos``, ``share``
        (a float fraction of the issue's change).
    """
    # Receipts ordered by cycle: each cycle is one diagonal block, so the LU keeps its fill-in
    # inside the blocks with the natural order (no global reordering needed).
    order = ["component", "pos"] if "component" in rows.columns else ["pos"]
    receipts = (
        rows.filter(pl.col("is_receipt")).sort(order).select("pos", "q_abs").with_row_index("r")
    )
    issues = rows.filter(~pl.col("is_receipt")).select("pos", "cost_delta").with_row_index("i")
    n_r, n_i = receipts.height, issues.height
    m = (
        pieces.join(receipts.rename({"pos": "receipt_pos"}), on="receipt_pos")
        .join(issues.select("i", issue_pos="pos"), on="issue_pos")
        .with_columns(frac=pl.col("qty").cast(pl.Float64) / pl.col("q_abs").cast(pl.Float64))
    )
    f = feeds.join(receipts.select("r", receipt_pos="pos"), on="receipt_pos").join(
        issues.select("i", issue_pos="pos"), on="issue_pos"
    )
    mat_m = coo_matrix(
        (m["frac"].to_numpy(), (m["i"].to_numpy(), m["r"].to_numpy())), shape=(n_i, n_r)
    ).tocsr()
    mat_f = coo_matrix(
        (f["share"].to_numpy(), (f["r"].to_numpy(), f["i"].to_numpy())), shape=(n_r, n_i)
    ).tocsr()
    y0 = issues["cost_delta"].to_numpy().astype(np.float64)
    system = (identity(n_r, format="csc") - (mat_f @ mat_m)).tocsc()
    rhs = mat_f @ y0
    try:
        d = splu(system, permc_spec="NATURAL" if "component" in rows.columns else "COLAMD").solve(
            rhs
        )
    except RuntimeError:  # exactly singular: value only circulates
        return CycleSolution(adjustments=None, residual=float("inf"))
    residual = float(np.max(np.abs(system @ d - rhs))) if n_r else 0.0
    scale = max(1.0, float(np.max(np.abs(rhs))) if n_r else 1.0)
    if not np.all(np.isfinite(d)) or residual > 1e-6 * scale:
        return CycleSolution(adjustments=None, residual=residual)
    rounded = np.sign(d) * np.floor(np.abs(d) + 0.5)
    derived = rows.filter(pl.col("is_receipt") & pl.col("is_derived"))["pos"].implode()
    out = receipts.select("pos").with_columns(derived_adj=pl.Series(rounded.astype(np.int64)))
    return CycleSolution(
        adjustments=out.filter(pl.col("pos").is_in(derived) & (pl.col("derived_adj") != 0)),
        residual=residual,
    )
