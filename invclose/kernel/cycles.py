"""Cost cycles solved exactly as one linear system per strongly connected component (§9.4).

Inside a cycle, issue changes are linear in the changes of the receipts they draw on (each
piece carries ``qty / Q`` of its receipt's value), and a derived receipt's change is its share
of the changes of the issues feeding it. With ``d`` the changes that reach derived receipts
from inside the cycle, ``y0`` the issue changes computed exactly with ``d = 0``, ``M`` (issue
<- receipt) and ``F`` (receipt <- issue) the share matrices::

    d = F (y0 + M d)      so      (I - F M) d = F y0

The system is block diagonal, one block per cycle (cycles of one level never feed each other).
Blocks of up to ``DENSE_MAX`` receipts, the usual case, are solved as stacks of dense systems,
one LAPACK call per block size (no sparse bookkeeping per block); larger blocks go to one sparse
LU with a fill-reducing column order. Either way ``d`` is then rounded to cents, the cycle is
costed again exactly with it, and every equation is re-checked in integer cents: the cents by
which a rounded receipt differs from its rounded inputs stay on the order's offset account and
are logged ``cycle_residual``. A singular system (value that only circulates) is
``not_converged``: the receipts keep their carried values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix, csc_matrix, identity
from scipy.sparse.linalg import splu

#: Largest cycle (in receipts) solved as a dense block; larger ones use a sparse LU.
DENSE_MAX = 64
#: Entries per stack of dense blocks handed to LAPACK at once (bounds the memory, ~32 MB).
_STACK_ENTRIES = 1 << 22


class SingularSystemError(ValueError):
    """A block of the system has no unique solution (value that only circulates)."""


def _dense_stacks(
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    rhs: np.ndarray,
    labels: np.ndarray,
    sizes: np.ndarray,
    small: np.ndarray,
    x: np.ndarray,
) -> None:
    """Solve the blocks marked ``small`` (per label) into ``x``, one stack per block size."""
    n_labels = sizes.size
    # Blocks ordered by (size, label): each size is a contiguous run of slots.
    by_size = np.lexsort((np.arange(n_labels), sizes))
    sorted_sizes = sizes[by_size]
    slot = np.empty(n_labels, np.int64)
    slot[by_size] = np.arange(n_labels) - np.searchsorted(sorted_sizes, sorted_sizes, "left")
    by_label = np.argsort(labels, kind="stable")
    first = np.zeros(n_labels, np.int64)
    first[1:] = np.cumsum(sizes)[:-1]
    local = np.empty(labels.size, np.int64)
    local[by_label] = np.arange(labels.size) - first[labels[by_label]]

    entry_size = sizes[labels[rows]]
    keep = small[labels[rows]]
    order = np.argsort(entry_size[keep], kind="stable")
    e_rows, e_cols, e_vals = rows[keep][order], cols[keep][order], values[keep][order]
    e_size = entry_size[keep][order]
    node_size = np.where(small[labels], sizes[labels], 0)
    node_order = np.argsort(node_size, kind="stable")
    n_size = node_size[node_order]

    for size in np.unique(n_size[n_size > 0]).tolist():
        e_lo, e_hi = np.searchsorted(e_size, [size, size + 1])
        n_lo, n_hi = np.searchsorted(n_size, [size, size + 1])
        nodes = node_order[n_lo:n_hi]
        blocks = (n_hi - n_lo) // size
        er, ec, ev = e_rows[e_lo:e_hi], e_cols[e_lo:e_hi], e_vals[e_lo:e_hi]
        e_slot = slot[labels[er]]
        n_slot = slot[labels[nodes]]
        per_stack = max(1, _STACK_ENTRIES // (size * size))
        for start in range(0, blocks, per_stack):
            stop = min(blocks, start + per_stack)
            k = stop - start
            e_in = (e_slot >= start) & (e_slot < stop)
            flat = ((e_slot[e_in] - start) * size + local[er[e_in]]) * size + local[ec[e_in]]
            matrix = np.bincount(flat, weights=ev[e_in], minlength=k * size * size)
            matrix = matrix.reshape(k, size, size)
            n_in = (n_slot >= start) & (n_slot < stop)
            block_of, at = n_slot[n_in] - start, local[nodes[n_in]]
            right = np.zeros((k, size))
            right[block_of, at] = rhs[nodes[n_in]]
            try:
                solved = np.linalg.solve(matrix, right[..., None])[..., 0]
            except np.linalg.LinAlgError as exc:
                raise SingularSystemError(str(exc)) from exc
            x[nodes[n_in]] = solved[block_of, at]


def solve_block_diagonal(system: csc_matrix, rhs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Solve ``system x = rhs`` where ``system`` only links unknowns of the same label.

    Blocks of at most ``DENSE_MAX`` unknowns are solved as stacks of dense systems; the rest
    together by one sparse LU (COLAMD order). Raises :class:`SingularSystemError` when a block
    is singular, and ``ValueError`` when an entry links two labels.

    >>> import numpy as np
    >>> from scipy.sparse import csc_matrix
    >>> a = csc_matrix(np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, 4.0]]))
    >>> solve_block_diagonal(a, np.array([3.0, 4.0, 8.0]), np.array([0, 0, 1])).tolist()
    [1.0, 1.0, 2.0]
    """
    n = rhs.size
    x = np.zeros(n)
    if n == 0:
        return x
    coo = system.tocoo()
    rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
    if np.any(labels[rows] != labels[cols]):
        msg = "internal: the cycle system links two cycles"
        raise ValueError(msg)
    _, labels = np.unique(labels, return_inverse=True)
    sizes = np.bincount(labels)
    small = sizes <= DENSE_MAX
    _dense_stacks(rows, cols, coo.data, rhs, labels, sizes, small, x)
    large = np.flatnonzero(~small[labels])
    if large.size:
        sub = system[large][:, large].tocsc()
        try:
            x[large] = splu(sub, permc_spec="COLAMD").solve(rhs[large])
        except RuntimeError as exc:  # exactly singular
            raise SingularSystemError(str(exc)) from exc
    return x


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
    # Receipts ordered by cycle, so each cycle is one diagonal block.
    order = ["component", "pos"] if "component" in rows.columns else ["pos"]
    with_component = ["component"] if "component" in rows.columns else []
    receipts = (
        rows.filter(pl.col("is_receipt"))
        .sort(order)
        .select("pos", "q_abs", *with_component)
        .with_row_index("r")
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
    labels = (
        receipts["component"].to_numpy().astype(np.int64)
        if with_component
        else np.zeros(n_r, np.int64)
    )
    try:
        d = solve_block_diagonal(system, rhs, labels)
    except SingularSystemError:  # value only circulates
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
