"""A large in-memory close, run a part of whole items at a time.

The kernel's working columns and its output hold most of a close's memory: one pass over
1e7 rows peaks at 11.4 GB, so a frame of twice that would not close in memory on a 24 GB
machine. Items only meet through their orders (:mod:`invclose.components`), so past
:data:`SPLIT_ABOVE` rows :func:`invclose.close` (and :func:`invclose.check`, whose
findings are joined by :func:`joined_log`) runs the kernel and drafts the tables
for one run of consecutive items at a time (:func:`working_parts`: slices of the rows sorted
once), frees the kernel's columns, and joins the drafts (:func:`joined_draft`). Validation,
the row hashes and the run's id still cover the whole frame at once.

The joined tables hold the rows of one pass over all rows, and in the same order but for
virtual rows (weighted-average closing pairs, on-hand rows of perpetual items): the kernel
numbers them after every input row of its run, so a part's come after that part's input
rows where one pass lists them all after every input row. (Renumbering them into their
groups made a weighted-average close of 1e7 rows 5 s slower.) Otherwise:

* ``settlements``, ``adjustments``, ``balances`` and ``open_items`` follow the rows'
  settlement groups (item, then financial dimensions): parts of consecutive items, in item
  order, are consecutive stretches of them.
* ``cost_flow`` is three runs (settlement edges, order feeds, closing pairs), each in that
  group order: the parts' runs are joined run by run.
* Voucher numbers count items (one voucher per item at ``transaction`` and ``item`` detail):
  a part's are offset by the vouchers of the parts before it. Item-group and total vouchers
  span parts: their lines are netted again over all parts (integer sums do not depend on how
  the rows were grouped first).
* ``log`` and ``closed_items`` are sorted over the whole run; a run-wide warning
  (``nothing_to_close``) is kept only when every part gives it.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np
import polars as pl

from invclose.assemble import Draft, closed_items_draft, log_order
from invclose.components import component_labels, contiguous_parts
from invclose.config import CloseConfig, VoucherDetail
from invclose.kernel.money import from_cents, wide_cents
from invclose.kernel.vouchers import merge_voucher_lines
from invclose.opening import OpeningState

__all__ = [
    "PART_ROWS",
    "RUN_WARNINGS",
    "SPLIT_ABOVE",
    "joined_draft",
    "joined_log",
    "warned_by_every_part",
    "working_parts",
]

#: A frame of at most this many rows closes in one pass. Parts cost time (at 1e7 rows, in
#: parts of 2**20 rows: 34.0 s at an 8.8 GB peak against 30.5 s and 11.4 GB in one pass, since
#: each part pays the fixed costs of some 400 steps and closed_items is sorted after the last
#: part instead of beside the other tables), so they are kept for frames whose one pass would
#: take most of a 24 GB machine's memory.
SPLIT_ABOVE = 1 << 24
#: Rows of a part of a larger frame.
PART_ROWS = 1 << 23

#: Judged over the whole run (a part of items dated after the closing date alone has
#: nothing to close while the run does): kept only when every part gives them.
RUN_WARNINGS = ("nothing_to_close",)

#: Tables whose rows follow the settlement groups: the parts' tables follow each other.
_GROUP_ORDERED = ("settlements", "adjustments", "balances", "open_items")


def working_parts(
    working: pl.DataFrame, part_rows: int | None = None, split_above: int | None = None
) -> list[pl.DataFrame]:
    """The kernel's sorted rows (:func:`invclose.kernel.prepare.build_working`) cut into parts
    of about ``part_rows`` rows (default :data:`PART_ROWS`): runs of consecutive items that
    share no order with another part, each a slice of ``working`` (no copy) with ``pos`` and
    ``gid`` renumbered from 0, as if the part had been sorted alone. ``[working]`` when it has
    at most ``split_above`` rows (default :data:`SPLIT_ABOVE`, or ``part_rows`` when that is
    given) or its items cannot be cut apart.

    >>> import datetime as dt, polars as pl
    >>> from invclose.kernel.prepare import build_working
    >>> rows = pl.DataFrame({
    ...     "txn_id": ["b", "a1", "c", "a2"], "item_id": ["B", "A", "C", "A"],
    ...     "order_id": ["P", None, "P", None], "date": [dt.date(2025, 1, 1)] * 4,
    ...     "seq": [1, 2, 3, 4], "qty": [1, 1, -1, -1], "status": ["financial"] * 4,
    ...     "kind": ["production", "purchase", "consumption", "sale"],
    ...     "q0": [1, 1, -1, -1], "v0": [1, 1, -1, -1], "method": ["fifo"] * 4,
    ...     "incl_phys": [False] * 4})
    >>> working = build_working(rows, [], dt.date(2025, 1, 31))
    >>> [p.select("item_id", "pos", "gid").rows() for p in working_parts(working, part_rows=2)]
    [[('A', 0, 0), ('A', 1, 0)], [('B', 0, 0), ('C', 1, 1)]]
    """
    if split_above is None:
        split_above = SPLIT_ABOVE if part_rows is None else part_rows
    part_rows = PART_ROWS if part_rows is None else part_rows
    n = working.height
    if n <= split_above:
        return [working]
    gid = working["gid"].to_numpy()
    group_starts = np.concatenate(([0], np.flatnonzero(np.diff(gid)) + 1))
    # Groups are sorted by item first: an item starts where its first group does.
    group_items = working["item_id"].gather(group_starts)
    new_item = group_items.ne_missing(group_items.shift(1)).fill_null(True).to_numpy()
    new_item[0] = True
    item_of_group = np.cumsum(new_item) - 1
    item_starts = group_starts[new_item]
    rows = np.diff(np.append(item_starts, n))
    if "order_id" in working.columns:
        linked = working.select(pl.arg_where(pl.col("order_id").is_not_null())).to_series()
        at = linked.to_numpy()
        items = item_of_group[np.searchsorted(group_starts, at, side="right") - 1]
        pairs = pl.DataFrame({"item": items, "order_id": working["order_id"].gather(linked)})
        pairs = pairs.unique()
    else:
        pairs = pl.DataFrame(schema={"item": pl.Int64, "order_id": pl.String})
    labels = component_labels(item_starts.size, pairs["item"].to_numpy(), pairs["order_id"])
    part_of_item = contiguous_parts(labels, rows, part_rows)
    if part_of_item[-1] == 0:
        return [working]
    first_items = np.concatenate(([0], np.flatnonzero(np.diff(part_of_item)) + 1))
    starts = np.append(item_starts[first_items], n).tolist()
    parts = []
    for start, end in itertools.pairwise(starts):  # one step per part
        part = working.slice(start, end - start)
        parts.append(
            part.with_columns(
                (pl.col("pos") - start).set_sorted(),
                (pl.col("gid") - int(gid[start])).set_sorted(),
            )
        )
    return parts


def warned_by_every_part(logs: Sequence[pl.DataFrame]) -> set[str]:
    """The :data:`RUN_WARNINGS` codes every one of ``logs`` holds."""
    held = [set(log.filter(pl.col("code").is_in(RUN_WARNINGS))["code"]) for log in logs]
    return set.intersection(*held) if held else set()


def joined_draft(drafts: Sequence[Draft], cfg: CloseConfig, state: OpeningState | None) -> Draft:
    """The draft of a whole run from the drafts of its parts, in item order (module
    docstring); the parts' drafts were made with ``assemble_draft(..., whole=False)``."""
    dims = list(cfg.dims)
    tables = {name: _stacked([d.tables[name] for d in drafts]) for name in _GROUP_ORDERED}
    runs = [
        d.tables["cost_flow"].slice(sum(d.flow_sections[:run]), d.flow_sections[run])
        for run in range(3)
        for d in drafts
    ]
    tables["cost_flow"] = _stacked(runs)
    sections = tuple(sum(d.flow_sections[run] for d in drafts) for run in range(3))
    tables["vouchers"] = _joined_vouchers(drafts, cfg)
    tables["log"] = joined_log([d.tables["log"] for d in drafts], log_order(dims))
    tables["closed_items"] = closed_items_draft(
        _stacked([d.tables["closed_items"] for d in drafts]), state
    )
    return dataclasses.replace(
        drafts[0],
        tables=tables,
        flow_sections=(sections[0], sections[1], sections[2]),
    )


def joined_log(logs: Sequence[pl.DataFrame], order: Sequence[str]) -> pl.DataFrame:
    """The parts' ``logs`` as one, sorted by ``order`` (nulls last): a run-wide warning
    (:data:`RUN_WARNINGS`) only when every part gives it, and then once."""
    common = warned_by_every_part(logs)
    run_wide = pl.col("code").is_in(RUN_WARNINGS)
    kept = [log.filter(~run_wide) for log in logs]
    kept.append(logs[0].filter(pl.col("code").is_in(sorted(common))))
    return _stacked(kept).sort(list(order), nulls_last=True, maintain_order=True)


def _stacked(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """``frames`` one after the other; their chunks are kept, not copied. Parts of different
    methods can give a table different optional columns or a null-typed one: those are
    stacked by name."""
    try:
        return pl.concat(frames, how="vertical", rechunk=False)
    except (pl.exceptions.SchemaError, pl.exceptions.ShapeError):
        return pl.concat(frames, how="diagonal_relaxed", rechunk=False)


def _joined_vouchers(drafts: Sequence[Draft], cfg: CloseConfig) -> pl.DataFrame:
    detail = VoucherDetail(cfg.voucher_detail)
    parts = [d.tables["vouchers"] for d in drafts]
    if detail in (VoucherDetail.ITEM_GROUP, VoucherDetail.TOTAL):
        lines = _stacked(parts)
        keys = ["item_group"] if detail == VoucherDetail.ITEM_GROUP else []
        merged = merge_voucher_lines(
            lines.select(
                *keys, "account", net=wide_cents(pl.col("debit")) - wide_cents(pl.col("credit"))
            ),
            detail,
            None,
        )
        return merged.with_columns(
            posting_date=pl.lit(drafts[0].closing_date),
            debit=from_cents(pl.col("debit")),
            credit=from_cents(pl.col("credit")),
        )
    # One voucher per item, numbered from 1 in item order within each part.
    offset = 0
    numbered = []
    for part in parts:  # one step per part
        numbered.append(part.with_columns(pl.col("voucher_no") + offset))
        top = part["voucher_no"].max()
        offset += int(top) if top is not None else 0  # type: ignore[arg-type]
    return _stacked(numbered)
