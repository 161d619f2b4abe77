"""Order of costing: groups in topological order of the cost graph, cycles found (§9.4).

Cost moves between groups only through derived receipts. The group graph has an edge from the
group of every feeding issue to the group of the receipt it feeds. Its strongly connected
components are costed in topological order, by levels: a level holds the components whose
predecessors are all in earlier levels, and all groups of one level are costed together,
vectorised. A component of several groups, or a group feeding itself, is a cycle.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def group_levels(n_groups: int, edges: pl.DataFrame) -> pl.DataFrame:
    """Level, component and cycle flag of every group.

    Parameters
    ----------
    n_groups
        Number of groups (``gid`` runs from 0 to ``n_groups - 1``).
    edges
        ``src`` and ``dst`` group ids: cost flows from ``src`` to ``dst``.

    Returns
    -------
    polars.DataFrame
        ``gid``, ``component``, ``level``, ``cyclic``.

    Examples
    --------
    >>> import polars as pl
    >>> e = pl.DataFrame({"src": [0, 1, 2], "dst": [1, 2, 1]})
    >>> group_levels(4, e).rows()
    [(0, 0, 0, False), (1, 1, 1, True), (2, 1, 1, True), (3, 2, 0, False)]
    """
    src = edges["src"].to_numpy().astype(np.int64)
    dst = edges["dst"].to_numpy().astype(np.int64)
    graph = coo_matrix((np.ones(src.size), (src, dst)), shape=(n_groups, n_groups)).tocsr()
    _, raw = connected_components(graph, directed=True, connection="strong")
    # Number components by their first group so the numbering is deterministic.
    _, first = np.unique(raw, return_index=True)
    order = np.argsort(first)
    renumber = np.empty_like(order)
    renumber[order] = np.arange(order.size)
    comp = renumber[raw]
    c_src, c_dst = comp[src], comp[dst]
    sizes = np.bincount(comp, minlength=order.size)
    cyclic = sizes[comp] > 1
    self_loop = src[(src == dst)]
    cyclic[self_loop] = True
    between = c_src != c_dst
    c_src, c_dst = c_src[between], c_dst[between]
    level = np.zeros(order.size, dtype=np.int64)
    # Longest path from the sources: one vectorised relaxation per level of depth.
    for _ in range(order.size):
        proposed = level.copy()
        np.maximum.at(proposed, c_dst, level[c_src] + 1)
        if np.array_equal(proposed, level):
            break
        level = proposed
    return pl.DataFrame(
        {
            "gid": np.arange(n_groups, dtype=np.int64),
            "component": comp.astype(np.int64),
            "level": level[comp],
            "cyclic": cyclic,
        }
    )
