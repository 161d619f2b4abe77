"""Items that close together: the connected components of items linked by their orders.

Items only meet through orders (a transfer links two financial dimensions of one item, a
production order links its components' items to its outputs' items), so the items linked by
shared ``order_id`` s form connected components that close independently of each other. The
batched close (:mod:`invclose.batched`) closes them a batch at a time; the in-memory close
(:mod:`invclose.parts`) closes a large frame in parts of whole components.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["component_labels", "contiguous_parts", "item_components"]


def item_components(
    items: pl.DataFrame, links: pl.DataFrame, opening_items: pl.DataFrame
) -> pl.DataFrame:
    """``item_id``, ``rows``, ``component`` (numbered in order of each component's first item),
    one row per item in ``item_id`` order (nulls first).

    ``items`` holds ``item_id`` and ``rows`` (input rows, an item may repeat), ``links`` the
    distinct ``item_id``, ``order_id`` pairs, ``opening_items`` the items the opening holds
    (with no input rows of their own they still belong somewhere).

    >>> items = pl.DataFrame(
    ...     {"item_id": ["A", "B", "C"], "rows": [2, 1, 4]}, schema_overrides={"rows": pl.UInt32}
    ... )
    >>> links = pl.DataFrame({"item_id": ["A", "C"], "order_id": ["P1", "P1"]})
    >>> item_components(items, links, items.clear().select("item_id"))["component"].to_list()
    [0, 1, 0]
    """
    counts = (
        pl.concat([items, opening_items.select("item_id", rows=pl.lit(0, pl.UInt32))])
        .group_by("item_id")
        .agg(pl.col("rows").sum())
        .sort("item_id", nulls_last=False)
        .with_row_index("i")
    )
    edges = links.join(counts.select("item_id", "i"), on="item_id")
    labels = component_labels(counts.height, edges["i"].to_numpy(), edges["order_id"])
    return counts.select("item_id", "rows").with_columns(component=pl.Series(labels))


def component_labels(n_items: int, link_items: np.ndarray, link_orders: pl.Series) -> np.ndarray:
    """The component of each of ``n_items`` items (numbered 0 up), numbered in order of
    each component's first item; items ``link_items[k]`` and orders ``link_orders[k]`` are
    linked.

    >>> component_labels(4, np.array([0, 3, 2]), pl.Series(["P", "P", "Q"])).tolist()
    [0, 1, 2, 0]
    """
    orders = link_orders.cast(pl.String).to_frame("order_id")
    numbered = orders.unique().sort("order_id").with_row_index("o")
    order_index = orders.join(numbered, on="order_id", how="left", maintain_order="left")["o"]
    n = n_items + numbered.height
    graph = coo_matrix(
        (
            np.ones(len(link_items), dtype=np.int8),
            (np.asarray(link_items, np.int64), order_index.to_numpy().astype(np.int64) + n_items),
        ),
        shape=(n, n),
    )
    _, labels = connected_components(graph, directed=False)
    item_labels = labels[:n_items]
    # Number components by their first item (items are sorted): deterministic batches.
    _, first = np.unique(item_labels, return_index=True)
    rank = np.empty(first.size, np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    result: np.ndarray = rank[np.unique(item_labels, return_inverse=True)[1]]
    return result


def contiguous_parts(labels: np.ndarray, rows: np.ndarray, part_rows: int) -> np.ndarray:
    """The part of each item: runs of consecutive items of about ``part_rows`` rows each,
    never cutting a component.

    ``labels`` are the items' components (:func:`component_labels`), ``rows`` their row
    counts, both in item order. A cut may fall after an item only when every component met
    so far ends there; each stretch between two such cuts goes to the part its first row
    falls in when rows are counted in ``part_rows`` s, so a part holds whole stretches and
    one larger than ``part_rows`` is a part of its own. Parts are numbered 0 up.

    >>> contiguous_parts(np.array([0, 1, 0, 2]), np.array([3, 3, 3, 3]), 4).tolist()
    [0, 0, 0, 1]
    """
    n = labels.size
    if n == 0:
        return np.zeros(0, np.int64)
    # Position of each component's last item; a stretch ends where the running maximum of
    # the last positions met so far is the position itself.
    last = np.zeros(int(labels.max()) + 1, np.int64)
    np.maximum.at(last, labels, np.arange(n))
    reach = np.maximum.accumulate(last[labels])
    ends = reach == np.arange(n)
    stretch = np.concatenate(([0], np.cumsum(ends)[:-1]))
    before = np.concatenate(([0], np.cumsum(rows)[:-1]))
    starts = np.concatenate(([True], ends[:-1]))
    block = before[starts][stretch] // max(part_rows, 1)
    # Dense part numbers: a large stretch can skip blocks.
    part: np.ndarray = np.unique(block, return_inverse=True)[1].astype(np.int64)
    return part
