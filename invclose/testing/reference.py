"""A slow, obviously correct reference close for every valuation method.

``fifo``, ``lifo`` and ``lifo_date`` (close-rules §0-§7), the averaging walk of
``weighted_average`` and ``weighted_average_date`` (§8), and ``standard`` and
``moving_average`` in a close (§9).

This is the *oracle* of the property tests: a row-by-row restatement of
``docs/close-rules.md`` in plain Python (lists of dicts, :class:`decimal.Decimal` for money
and quantities, :class:`fractions.Fraction` for the one exact ratio of the rounding rule).
It shares no code with ``invclose.kernel`` or ``invclose.close``; the only thing it takes
from the package is the dtype constants of ``invclose.schemas``. Clarity wins over speed
everywhere: it is meant for frames of a few dozen rows.

The section numbers in comments (``§1`` ...) are those of ``docs/close-rules.md``.

>>> import datetime as dt
>>> import polars as pl
>>> from decimal import Decimal as D
>>> from invclose.testing.reference import reference_close
>>> df = pl.DataFrame({
...     "txn_id": ["R1", "R2", "I1"], "item_id": ["A"] * 3,
...     "date": [dt.date(2025, 1, 2)] * 3, "qty": [D("1"), D("1"), D("-1")],
...     "amount": [D("10.00"), D("22.00"), D("-16.00")], "seq": [1, 2, 3]})
>>> res = reference_close(df, dt.date(2025, 1, 31), method="fifo")
>>> res.settlements["amount"].to_list()
[Decimal('10.00')]
>>> res.adjustments["cost_delta"].to_list()
[Decimal('-6.00')]
"""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import polars as pl

from invclose.schemas import MONEY, QTY

__all__ = [
    "AVERAGE_METHODS",
    "ORDINAL_METHODS",
    "PERPETUAL_METHODS",
    "REFERENCE_METHODS",
    "VIRTUAL_SEQ",
    "OpenEntry",
    "ReferenceResult",
    "ReferenceState",
    "reference_close",
]

#: The methods matched receipt by receipt (close-rules §2).
ORDINAL_METHODS = ("fifo", "lifo", "lifo_date")
#: The methods settled by the averaging walk (close-rules §8).
AVERAGE_METHODS = ("weighted_average", "weighted_average_date")
#: The perpetual methods: a close only carries their on-hand (close-rules §9).
PERPETUAL_METHODS = ("standard", "moving_average")
#: The methods the reference implements.
REFERENCE_METHODS = (*ORDINAL_METHODS, *AVERAGE_METHODS, *PERPETUAL_METHODS)
#: ``seq`` of the virtual rows (closing pair, on-hand row): after every real row of the date.
VIRTUAL_SEQ = 2**63 - 1

_FINANCIAL = "financial"
_PHYSICAL = "physical"
_ZERO = Decimal(0)
_CENT = Decimal("0.01")
_MICRO = Decimal("0.000001")
_UNIT_COST = pl.Decimal(38, 6)
_VIRTUAL_PREFIX = "~"

#: The log codes of close-rules §7, all at level ``warning``, and at level ``info`` §9's
#: ``marking_ignored`` and ``awaiting_invoice`` (§13: an issue left open in a group that is
#: not short, which waits for physical rows to be invoiced).
LOG_CODES = (
    "insufficient_receipts",
    "receipt_not_invoiced",
    "awaiting_invoice",
    "marked_receipt_after_close_date",
    "negative_on_hand",
    "marking_ignored",
)


# --------------------------------------------------------------------------------------------
# State carried from one close to the next
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenEntry:
    """One row still open after a close: its input row and its open state (signed)."""

    row: Mapping[str, Any]
    open_qty: Decimal
    open_value: Decimal
    carried_value: Decimal

    @property
    def status(self) -> str:
        """``financial`` or ``physical``, as the row was when the close saw it."""
        return str(self.row["status"])


@dataclass(frozen=True)
class ReferenceState:
    """What a reference close hands to the next one (``opening=``).

    ``open`` maps ``txn_id`` to the row's open state; ``closed`` holds every ``txn_id``
    closed by that close or an earlier one; ``closing_date`` is that close's date.
    """

    closing_date: dt.date
    open: Mapping[str, OpenEntry] = field(default_factory=dict)
    closed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ReferenceResult:
    """The tables of a reference close (contract column names, Decimal dtypes)."""

    settlements: pl.DataFrame
    adjustments: pl.DataFrame
    balances: pl.DataFrame
    log: pl.DataFrame
    open_items: pl.DataFrame
    closed_txn_ids: pl.DataFrame
    state: ReferenceState


# --------------------------------------------------------------------------------------------
# Exact arithmetic helpers
# --------------------------------------------------------------------------------------------


def _round_half_away(x: Fraction, places: int) -> Decimal:
    """Round an exact rational half away from zero to ``places`` decimals."""
    scale = 10**places
    magnitude = math.floor(abs(x) * scale + Fraction(1, 2))
    signed = -magnitude if x < 0 else magnitude
    return Decimal(signed).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def _round_cents(x: Fraction) -> Decimal:
    return _round_half_away(x, 2)


def _frac(d: Decimal) -> Fraction:
    return Fraction(d)


def _money(d: Decimal) -> Decimal:
    """A Decimal that is already a whole number of cents, at scale 2 (checked)."""
    q = d.quantize(_CENT)
    if q != d:
        msg = f"amount {d} has more than 2 decimals"
        raise ValueError(msg)
    return q


def _qty(d: Decimal) -> Decimal:
    q = d.quantize(_MICRO)
    if q != d:
        msg = f"quantity {d} has more than 6 decimals"
        raise ValueError(msg)
    return q


# --------------------------------------------------------------------------------------------
# Working rows
# --------------------------------------------------------------------------------------------


@dataclass
class _Row:
    """One transaction in the working set, with its open state (all signed like ``qty``)."""

    txn_id: str
    item_id: str
    group: tuple[Any, ...]  # (item_id, *dims)
    date: dt.date
    seq: int
    status: str
    qty: Decimal
    amount: Decimal
    marked_to: str | None
    raw: dict[str, Any]
    Q: Decimal  # open quantity at the start of the run
    V: Decimal  # open value at the start of the run
    carried: Decimal  # carried value at the start of the run
    participates: bool = False
    virtual: bool = False  # a closing pair row (§8) or an on-hand row (§9)

    @property
    def key(self) -> tuple[dt.date, int, str]:
        """Key order (close-rules §0): date, seq, txn_id."""
        return (self.date, self.seq, self.txn_id)

    @property
    def is_receipt(self) -> bool:
        return self.Q > 0

    @property
    def is_issue(self) -> bool:
        return self.Q < 0

    @property
    def financial(self) -> bool:
        return self.status == _FINANCIAL


@dataclass
class _Piece:
    issue: str
    receipt: str
    qty: Decimal
    amount: Decimal
    principle: str
    real: bool


class _Walk:
    """The matching state of one group: remaining quantities and the priced pieces."""

    def __init__(self, remaining: dict[str, Decimal]) -> None:
        #: Quantity still free for this close's matching (magnitudes), per participating row.
        self.remaining = remaining
        #: Per receipt: cumulative drawn quantity and cumulative rounded amount (§3).
        self.drawn: dict[str, Decimal] = {}
        self.drawn_amount: dict[str, Decimal] = {}
        self.pieces: list[_Piece] = []

    def take(self, issue: _Row, receipt: _Row, q: Decimal, principle: str) -> None:
        """Record a piece of ``q`` units and price it along the receipt (§3)."""
        rq, rw = abs(receipt.Q), abs(receipt.V)
        c = self.drawn.get(receipt.txn_id, _ZERO) + q
        cumulative = _round_cents(_frac(rw) * _frac(c) / _frac(rq))
        amount = cumulative - self.drawn_amount.get(receipt.txn_id, _ZERO)
        self.drawn[receipt.txn_id] = c
        self.drawn_amount[receipt.txn_id] = cumulative
        self.remaining[issue.txn_id] -= q
        self.remaining[receipt.txn_id] -= q
        real = issue.financial and receipt.financial
        self.pieces.append(_Piece(issue.txn_id, receipt.txn_id, q, amount, principle, real))


def _set_amount(w: _Row, amount: Decimal) -> None:
    """Give a new virtual row its amount (= its open value = its carried value)."""
    w.amount = w.V = w.carried = w.raw["amount"] = amount


def _average_walk(
    rows: Sequence[_Row],
    walk: _Walk,
    excluded: set[str],
    method: str,
    closing_date: dt.date,
    make_virtual: Callable[[str, tuple[Any, ...], dt.date, Decimal], _Row],
) -> list[_Row]:
    """§8: the averaging walk of one group, after marking. Returns the closing pairs made.

    ``weighted_average`` treats every row as dated on the closing date (one day);
    ``weighted_average_date`` keeps the rows' dates. The pool holds the open sources, the
    pending queue the issues still waiting for cost.
    """
    remaining = walk.remaining

    def day_of(w: _Row) -> dt.date:
        return closing_date if method == "weighted_average" else w.date

    receipts = [w for w in rows if w.participates and w.is_receipt and remaining[w.txn_id] > 0]
    issues = [
        w
        for w in rows
        if w.participates and w.is_issue and w.txn_id not in excluded and remaining[w.txn_id] > 0
    ]
    group = rows[0].group
    pool: list[_Row] = []
    pending: deque[_Row] = deque()
    made: list[_Row] = []

    for day in sorted({day_of(w) for w in receipts + issues}):
        # Key order is the rows' own (date, seq, txn_id), also for weighted_average, whose
        # "one day" only groups the rows: seq breaks ties within a date, never across dates.
        pool.extend(sorted((r for r in receipts if day_of(r) == day), key=lambda w: w.key))
        pending.extend(sorted((i for i in issues if day_of(i) == day), key=lambda w: w.key))
        if not pending or not pool:
            continue  # nothing to settle today

        if len(pool) >= 2:
            # The closing issue takes every source in full; the closing receipt holds it all.
            total_qty = sum((remaining[s.txn_id] for s in pool), _ZERO)
            closing_issue = make_virtual(
                _virtual_id("wac", day, group, "issue"), group, day, -total_qty
            )
            remaining[closing_issue.txn_id] = total_qty
            first_piece = len(walk.pieces)
            for source in pool:
                walk.take(closing_issue, source, remaining[source.txn_id], method)
            total_value = sum((p.amount for p in walk.pieces[first_piece:]), _ZERO)
            _set_amount(closing_issue, -total_value)
            closing_receipt = make_virtual(
                _virtual_id("wac", day, group, "receipt"), group, day, total_qty
            )
            _set_amount(closing_receipt, total_value)
            remaining[closing_receipt.txn_id] = total_qty
            made += [closing_issue, closing_receipt]
            pool = [closing_receipt]

        # Pending issues, in queue order, draw on the single source.
        source = pool[0]
        while pending and remaining[source.txn_id] > 0:
            issue = pending[0]
            walk.take(issue, source, min(remaining[issue.txn_id], remaining[source.txn_id]), method)
            if remaining[issue.txn_id] == 0:
                pending.popleft()
        if remaining[source.txn_id] == 0:
            pool = []
    return made


def _normalise_rows(df: pl.DataFrame, dims: Sequence[str]) -> list[dict[str, Any]]:
    """Input frame -> list of dicts with defaults for the optional columns."""
    missing = [c for c in ("txn_id", "item_id", "date", "qty", "amount", *dims) if c not in df]
    if missing:
        msg = f"reference_close: missing columns {missing}"
        raise ValueError(msg)
    rows = df.to_dicts()
    out = []
    for position, r in enumerate(rows):
        row = dict(r)
        status = row.get("status")
        row["status"] = _FINANCIAL if status is None else str(status)
        if row["status"] not in (_FINANCIAL, _PHYSICAL):
            msg = f"row {row['txn_id']}: unknown status {status!r}"
            raise ValueError(msg)
        if "seq" not in df.columns:
            row["seq"] = position
        elif row["seq"] is None:
            msg = f"row {row['txn_id']}: null seq"
            raise ValueError(msg)
        row.setdefault("marked_to", None)
        if row["qty"] is None or row["amount"] is None:
            msg = f"row {row['txn_id']}: qty and amount are required"
            raise ValueError(msg)
        row["qty"] = _qty(Decimal(row["qty"]))
        row["amount"] = _money(Decimal(row["amount"]))
        if row["qty"] == 0:
            msg = f"row {row['txn_id']}: qty is 0"
            raise ValueError(msg)
        if row["amount"] != 0 and (row["amount"] > 0) != (row["qty"] > 0):
            msg = f"row {row['txn_id']}: amount must have the sign of qty or be zero"
            raise ValueError(msg)
        out.append(row)
    ids = [r["txn_id"] for r in out]
    if len(set(ids)) != len(ids):
        msg = "reference_close: repeated txn_id"
        raise ValueError(msg)
    return out


def _item_settings(
    items: pl.DataFrame | None, method: str, include_physical_value: bool
) -> dict[str, tuple[str, bool]]:
    """Per-item (method, include_physical_value) overrides from the item table."""
    table: dict[str, tuple[str, bool]] = {}
    if items is None:
        return table
    for r in items.to_dicts():
        m = r.get("method")
        inc = r.get("include_physical_value")
        table[str(r["item_id"])] = (
            method if m is None else str(m),
            include_physical_value if inc is None else bool(inc),
        )
    return table


# --------------------------------------------------------------------------------------------
# The close
# --------------------------------------------------------------------------------------------


def reference_close(
    df: pl.DataFrame | pl.LazyFrame,
    closing_date: dt.date,
    *,
    method: str = "fifo",
    dimensions: Sequence[str] = (),
    include_physical_value: bool = False,
    items: pl.DataFrame | None = None,
    opening: ReferenceState | None = None,
) -> ReferenceResult:
    """Close ``df`` at ``closing_date`` by ``docs/close-rules.md``, one row at a time.

    Parameters
    ----------
    df
        Contract transactions (``txn_id``, ``item_id``, ``date``, ``qty``, ``amount``, and
        optionally ``status``, ``seq``, the dimension columns, ``marked_to``). With
        ``opening``, the full history (rows the opening closed are skipped).
    closing_date
        The closing date D.
    method
        One of :data:`REFERENCE_METHODS` (``fifo``, ``lifo``, ``lifo_date``,
        ``weighted_average``, ``weighted_average_date``, ``standard``, ``moving_average``)
        for items the ``items`` table does not list.
    dimensions
        Financial dimension columns: settlement happens within (item, dimensions).
    include_physical_value
        Default for items the ``items`` table does not list.
    items
        Optional item table with ``item_id``, ``method``, ``include_physical_value`` (other
        columns, e.g. ``standard_cost``, are ignored: a close does not need them).
    opening
        The ``state`` of an earlier reference close.

    Virtual rows (close-rules §8, §9) appear like input rows: the closing pair's pieces in
    ``settlements``, the closing issue in ``closed_txn_ids``, the closing receipt's remainder
    and the on-hand rows in ``open_items`` (``is_virtual`` true) and in ``state``, with their
    input fields, so that a later close takes them as sources.
    """
    if isinstance(df, pl.LazyFrame):
        df = df.collect()
    if isinstance(closing_date, dt.datetime):
        closing_date = closing_date.date()
    if isinstance(closing_date, str):
        closing_date = dt.date.fromisoformat(closing_date)
    dims = tuple(dimensions)
    D = closing_date
    settings = _item_settings(items, method, include_physical_value)

    def item_method(item: str) -> tuple[str, bool]:
        m, inc = settings.get(item, (method, include_physical_value))
        if m not in REFERENCE_METHODS:
            msg = f"reference_close implements {REFERENCE_METHODS}, not {m!r} (item {item})"
            raise ValueError(msg)
        return m, inc

    raw_rows = _normalise_rows(df, dims)
    closed_before: frozenset[str] = opening.closed if opening is not None else frozenset()
    open_before: Mapping[str, OpenEntry] = opening.open if opening is not None else {}

    # The invoice of a physical row open in the opening, dated after D: on D the row was
    # still physical, so it continues from the stored row and the invoice takes no part.
    for k, r in enumerate(raw_rows):
        entry = open_before.get(str(r["txn_id"]))
        late_invoice = r["status"] == _FINANCIAL and r["date"] > D
        if entry is not None and entry.status == _PHYSICAL and late_invoice:
            raw_rows[k] = dict(entry.row)

    # Rows of the opening that the df no longer holds continue from the stored row.
    present = {r["txn_id"] for r in raw_rows}
    for txn_id, carried_over in sorted(open_before.items()):
        if txn_id not in present:
            raw_rows.append(dict(carried_over.row))

    all_by_id: dict[str, dict[str, Any]] = {r["txn_id"]: r for r in raw_rows}

    # §0 Working set: skip rows closed in the opening; rows open in it continue.
    working: list[_Row] = []
    for r in raw_rows:
        txn_id = str(r["txn_id"])
        if txn_id in closed_before:
            continue
        group = (str(r["item_id"]), *(r[d] for d in dims))
        entry = open_before.get(txn_id)
        fresh = entry is None or (r["status"] == _FINANCIAL and entry.status == _PHYSICAL)
        if entry is None and opening is not None and r["date"] <= opening.closing_date:
            msg = (
                f"row {txn_id} is dated {r['date']}, on or before the opening's closing "
                f"date {opening.closing_date}, and the opening does not know it"
            )
            raise ValueError(msg)
        if fresh:
            Q, V, carried = r["qty"], r["amount"], r["amount"]
        else:
            assert entry is not None
            Q, V, carried = entry.open_qty, entry.open_value, entry.carried_value
        working.append(
            _Row(
                txn_id=txn_id,
                item_id=str(r["item_id"]),
                group=group,
                date=r["date"],
                seq=int(r["seq"]),
                status=r["status"],
                qty=r["qty"],
                amount=r["amount"],
                marked_to=r.get("marked_to"),
                raw=r,
                Q=Q,
                V=V,
                carried=carried,
                # A virtual row of an earlier close (input ids never start with "~").
                virtual=txn_id.startswith(_VIRTUAL_PREFIX),
            )
        )

    # Only rows dated on or before D take part; later rows are neither touched nor reported.
    in_scope = sorted((w for w in working if w.date <= D), key=lambda w: (_gkey(w.group), w.key))
    by_id = {w.txn_id: w for w in in_scope}
    for w in in_scope:
        m, inc = item_method(w.item_id)
        # §0: physical rows only under include physical value and an ordinal method (§8: never
        # for the averages); §9: nothing participates for the perpetual methods.
        physical_ok = inc and m in ORDINAL_METHODS
        w.participates = w.Q != 0 and m not in PERPETUAL_METHODS and (w.financial or physical_ok)

    # Validate markings (same group, names a receipt).
    for w in in_scope:
        if w.marked_to is None or not w.is_issue:
            continue
        marked = all_by_id.get(w.marked_to)
        if marked is None:
            if w.marked_to in closed_before:
                continue  # a receipt an earlier close closed and the df no longer holds
            msg = f"issue {w.txn_id} is marked to unknown receipt {w.marked_to}"
            raise ValueError(msg)
        marked_group = (str(marked["item_id"]), *(marked[d] for d in dims))
        if marked_group != w.group or marked["qty"] <= 0:
            msg = f"issue {w.txn_id} is marked to {w.marked_to}, not a receipt of its group"
            raise ValueError(msg)

    groups: dict[tuple[Any, ...], list[_Row]] = {}
    for w in in_scope:
        groups.setdefault(w.group, []).append(w)

    settlements: list[dict[str, Any]] = []
    adjustments: list[dict[str, Any]] = []
    log: list[dict[str, Any]] = []
    balances: list[dict[str, Any]] = []
    open_items: list[dict[str, Any]] = []
    closed_now: list[str] = []
    new_open: dict[str, OpenEntry] = {}

    def dim_cols(group: tuple[Any, ...]) -> dict[str, Any]:
        return {"item_id": group[0], **dict(zip(dims, group[1:], strict=True))}

    def virtual_row(txn_id: str, group: tuple[Any, ...], date: dt.date, qty: Decimal) -> _Row:
        """A virtual financial row (§8 closing pair, §9 on-hand); its amount is set later.

        Its ``raw`` holds the input fields (the df's columns, unknown ones null), so that a
        later close can take it back from the state like any carried row.
        """
        if txn_id in all_by_id or txn_id in closed_before:
            msg = f"virtual id {txn_id} collides with a row of the input or the opening"
            raise ValueError(msg)
        raw: dict[str, Any] = dict.fromkeys(df.columns)
        raw.update(dim_cols(group))
        raw.update(
            txn_id=txn_id, date=date, qty=qty, amount=_ZERO, status=_FINANCIAL, seq=VIRTUAL_SEQ
        )
        raw["marked_to"] = None
        return _Row(
            txn_id=txn_id,
            item_id=group[0],
            group=group,
            date=date,
            seq=VIRTUAL_SEQ,
            status=_FINANCIAL,
            qty=qty,
            amount=_ZERO,
            marked_to=None,
            raw=raw,
            Q=qty,
            V=_ZERO,
            carried=_ZERO,
            participates=qty != 0,
            virtual=True,
        )

    def emit_open(w: _Row, open_qty: Decimal, open_value: Decimal, carried: Decimal) -> None:
        """§5: list ``w`` in ``open_items`` and hand its open state to the next close."""
        open_items.append(
            {
                "txn_id": w.txn_id,
                **dim_cols(w.group),
                "status": w.status,
                "date": w.date,
                "open_qty": open_qty,
                "open_value": open_value,
                "carried_value": carried,
                "is_virtual": w.virtual,
            }
        )
        new_open[w.txn_id] = OpenEntry(
            row=dict(w.raw), open_qty=open_qty, open_value=open_value, carried_value=carried
        )

    for group in sorted(groups, key=_gkey):
        rows = groups[group]  # already in key order
        group_method, _ = item_method(group[0])

        if group_method in PERPETUAL_METHODS:
            # §9: no pieces, no adjustments. Financial rows are closed into one on-hand row.
            # ``qty`` is the open quantity as a magnitude, like every issue's finding.
            group_log: list[dict[str, Any]] = [
                _log_row("marking_ignored", dim_cols(group), w.txn_id, abs(w.Q), level="info")
                for w in rows
                if w.marked_to is not None
            ]
            fin = [w for w in rows if w.financial]
            phys = [w for w in rows if not w.financial]
            on_hand_qty = sum((w.Q for w in fin), _ZERO)
            on_hand_value = sum((w.V for w in fin), _ZERO)
            closed_now.extend(w.txn_id for w in fin)
            for w in phys:
                emit_open(w, w.Q, w.V, w.carried)
            if on_hand_qty != 0 or on_hand_value != 0:
                on_hand = virtual_row(_virtual_id("onhand", D, group), group, D, on_hand_qty)
                _set_amount(on_hand, on_hand_value)
                emit_open(on_hand, on_hand_qty, on_hand_value, on_hand_value)
            balances.append(
                _balance_row(
                    dim_cols(group),
                    qty=on_hand_qty,
                    value=on_hand_value,
                    open_receipts=1 if on_hand_qty > 0 else 0,
                    physical_qty=sum((w.Q for w in phys), _ZERO),
                    physical_value=sum((w.V for w in phys), _ZERO),
                )
            )
            if on_hand_qty < 0:
                group_log.append(_log_row("negative_on_hand", dim_cols(group), None, on_hand_qty))
            log.extend(group_log)
            continue

        walk = _Walk({w.txn_id: abs(w.Q) for w in rows if w.participates})
        remaining, pieces, take = walk.remaining, walk.pieces, walk.take
        excluded: set[str] = set()
        group_log = []

        # §1 Marking, first, in key order of the issues.
        for issue in rows:
            if not (issue.participates and issue.is_issue and issue.marked_to is not None):
                continue
            target_raw = all_by_id.get(issue.marked_to)
            target = by_id.get(issue.marked_to)
            if issue.marked_to in closed_before:
                # Financial, dated on/before an earlier close date <= D: the mark is valid for a
                # financial and a physical issue alike; the receipt just has nothing left.
                ok = True
            elif issue.financial:
                ok = (
                    target_raw is not None
                    and target_raw["status"] == _FINANCIAL
                    and target_raw["date"] <= D
                )
            else:
                ok = target is not None and target.participates
            if not ok:
                excluded.add(issue.txn_id)
                group_log.append(
                    _log_row(
                        "marked_receipt_after_close_date",
                        dim_cols(group),
                        issue.txn_id,
                        abs(issue.Q),
                    )
                )
                continue
            if target is None or not target.participates:
                continue  # a closed receipt: nothing left to serve, all goes to the method
            q = min(remaining[issue.txn_id], remaining[target.txn_id])
            if q > 0:
                take(issue, target, q, "marking")

        # §2 The method, on what is left.
        receipts = [w for w in rows if w.participates and w.is_receipt]
        issues = [w for w in rows if w.participates and w.is_issue and w.txn_id not in excluded]
        if group_method in ("fifo", "lifo"):
            ordered = receipts if group_method == "fifo" else list(reversed(receipts))
            for issue in issues:
                for receipt in ordered:
                    if remaining[issue.txn_id] == 0:
                        break
                    q = min(remaining[issue.txn_id], remaining[receipt.txn_id])
                    if q > 0:
                        take(issue, receipt, q, group_method)
        elif group_method in AVERAGE_METHODS:
            # §8: the averaging walk; its closing pairs join the group's rows for §4-§7.
            rows = rows + _average_walk(rows, walk, excluded, group_method, D, virtual_row)
        else:  # lifo_date
            # Dates oldest first, key descending within a date (two stable sorts).
            visit = sorted(sorted(issues, key=lambda w: w.key, reverse=True), key=lambda w: w.date)
            for issue in visit:
                while remaining[issue.txn_id] > 0:
                    eligible = [
                        r for r in receipts if r.date <= issue.date and remaining[r.txn_id] > 0
                    ]
                    if not eligible:
                        break
                    receipt = max(eligible, key=lambda r: r.key)
                    take(
                        issue,
                        receipt,
                        min(remaining[issue.txn_id], remaining[receipt.txn_id]),
                        "lifo_date",
                    )
            for issue in visit:  # leftovers: later receipts, nearest first
                while remaining[issue.txn_id] > 0:
                    later = [r for r in receipts if r.date > issue.date and remaining[r.txn_id] > 0]
                    if not later:
                        break
                    receipt = min(later, key=lambda r: r.key)
                    take(
                        issue,
                        receipt,
                        min(remaining[issue.txn_id], remaining[receipt.txn_id]),
                        "lifo_date",
                    )

        # §4 New values.
        after_Q: dict[str, Decimal] = {}
        after_V: dict[str, Decimal] = {}
        after_carried: dict[str, Decimal] = {}
        adj_only_from_financial_issue: set[str] = set()
        for w in rows:
            own = [p for p in pieces if (p.issue if w.is_issue else p.receipt) == w.txn_id]
            real_q = sum((p.qty for p in own if p.real), _ZERO)
            real_a = sum((p.amount for p in own if p.real), _ZERO)
            q, v = abs(w.Q), abs(w.V)
            if w.is_issue and own:
                s = sum((p.qty for p in own), _ZERO)
                P = sum((p.amount for p in own), _ZERO)
                new = P + (v - _round_cents(_frac(v) * _frac(s) / _frac(q)))
                delta = new - v  # more cost carried when positive
                after_Q[w.txn_id] = -(q - real_q)
                after_V[w.txn_id] = -(new - real_a)
                after_carried[w.txn_id] = w.carried - delta
                if delta != 0:
                    adj_only = sorted({p.receipt for p in own if not p.real})
                    adjustments.append(
                        {
                            "txn_id": w.txn_id,
                            **dim_cols(group),
                            "posted_amount": w.carried,
                            "settled_amount": w.carried - delta,
                            "adjustment": -delta,
                            "cost_delta": delta,
                            "adjusted_against": adj_only or None,
                        }
                    )
                if w.financial:
                    adj_only_from_financial_issue.update(p.receipt for p in own if not p.real)
            elif w.is_receipt and own:
                after_Q[w.txn_id] = q - real_q
                after_V[w.txn_id] = v - real_a
                after_carried[w.txn_id] = w.carried
            else:
                after_Q[w.txn_id], after_V[w.txn_id] = w.Q, w.V
                after_carried[w.txn_id] = w.carried

        settlements.extend(
            {
                "issue_txn_id": p.issue,
                "receipt_txn_id": p.receipt,
                **dim_cols(group),
                "qty": p.qty,
                "amount": p.amount,
                "principle": p.principle,
            }
            for p in pieces
            if p.real
        )

        # §5 Open and closed: closed when nothing is left, neither quantity nor value.
        for w in rows:
            if w.financial and after_Q[w.txn_id] == 0 and after_V[w.txn_id] == 0:
                closed_now.append(w.txn_id)
                continue
            emit_open(w, after_Q[w.txn_id], after_V[w.txn_id], after_carried[w.txn_id])

        # §6 Balances.
        fin = [w for w in rows if w.financial]
        phys = [w for w in rows if not w.financial]
        bal_qty = sum((after_Q[w.txn_id] for w in fin), _ZERO)
        bal_value = sum((after_V[w.txn_id] for w in fin), _ZERO)
        balances.append(
            _balance_row(
                dim_cols(group),
                qty=bal_qty,
                value=bal_value,
                open_receipts=sum(1 for w in fin if after_Q[w.txn_id] > 0),
                physical_qty=sum((after_Q[w.txn_id] for w in phys), _ZERO),
                physical_value=sum((after_V[w.txn_id] for w in phys), _ZERO),
            )
        )

        # §7 Log. Only a group whose financial issues exceed its financial receipts (open at
        # the start plus new) is short of receipts; an issue left open otherwise was paired
        # with a physical receipt, which receipt_not_invoiced names.
        counted = [w for w in rows if w.financial and w.participates and w.txn_id not in excluded]
        issued = sum((-w.Q for w in counted if w.is_issue), _ZERO)
        received = sum((w.Q for w in counted if not w.is_issue), _ZERO)
        insufficient = [
            w for w in counted if issued > received and w.is_issue and after_Q[w.txn_id] != 0
        ]
        group_log.extend(
            _log_row("insufficient_receipts", dim_cols(group), w.txn_id, -after_Q[w.txn_id])
            for w in insufficient
        )
        # An issue of a group that is not short left open waits for physical rows to be
        # invoiced (info): its open quantity.
        if issued <= received:
            group_log.extend(
                _log_row(
                    "awaiting_invoice", dim_cols(group), w.txn_id, -after_Q[w.txn_id], level="info"
                )
                for w in counted
                if w.is_issue and after_Q[w.txn_id] != 0
            )
        for w in rows:
            if w.financial or not w.is_receipt or after_Q[w.txn_id] <= 0:
                continue
            if insufficient or w.txn_id in adj_only_from_financial_issue:
                group_log.append(
                    _log_row("receipt_not_invoiced", dim_cols(group), w.txn_id, after_Q[w.txn_id])
                )
        if bal_qty < 0:
            group_log.append(_log_row("negative_on_hand", dim_cols(group), None, bal_qty))
        log.extend(group_log)

    closed_all = frozenset(closed_before | set(closed_now))
    state = ReferenceState(closing_date=D, open=new_open, closed=closed_all)
    return ReferenceResult(
        settlements=_frame(
            settlements,
            {
                "issue_txn_id": pl.String(),
                "receipt_txn_id": pl.String(),
                **_group_schema(dims),
                "qty": QTY,
                "amount": MONEY,
                "principle": pl.String(),
            },
        ),
        adjustments=_frame(
            adjustments,
            {
                "txn_id": pl.String(),
                **_group_schema(dims),
                "posted_amount": MONEY,
                "settled_amount": MONEY,
                "adjustment": MONEY,
                "cost_delta": MONEY,
                "adjusted_against": pl.List(pl.String()),
            },
        ),
        balances=_frame(
            balances,
            {
                **_group_schema(dims),
                "qty": QTY,
                "value": MONEY,
                "open_receipts": pl.Int64(),
                "unit_cost": _UNIT_COST,
                "physical_qty": QTY,
                "physical_value": MONEY,
            },
        ),
        log=_frame(
            log,
            {
                "level": pl.String(),
                "code": pl.String(),
                **_group_schema(dims),
                "txn_id": pl.String(),
                "qty": QTY,
            },
        ),
        open_items=_frame(
            open_items,
            {
                "txn_id": pl.String(),
                **_group_schema(dims),
                "status": pl.String(),
                "date": pl.Date(),
                "open_qty": QTY,
                "open_value": MONEY,
                "carried_value": MONEY,
                "is_virtual": pl.Boolean(),
            },
        ),
        closed_txn_ids=_frame([{"txn_id": t} for t in sorted(closed_all)], {"txn_id": pl.String()}),
        state=state,
    )


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _gkey(group: tuple[Any, ...]) -> tuple[tuple[bool, str], ...]:
    """A sort key for groups that puts null dimension values first."""
    return tuple((v is not None, "" if v is None else str(v)) for v in group)


def _log_row(
    code: str,
    group_cols: dict[str, Any],
    txn_id: str | None,
    qty: Decimal,
    *,
    level: str = "warning",
) -> dict[str, Any]:
    return {"level": level, "code": code, **group_cols, "txn_id": txn_id, "qty": qty}


def _balance_row(
    group_cols: dict[str, Any],
    *,
    qty: Decimal,
    value: Decimal,
    open_receipts: int,
    physical_qty: Decimal,
    physical_value: Decimal,
) -> dict[str, Any]:
    """§6: one ``balances`` row; ``unit_cost`` = value / qty to 6 places, null when qty <= 0."""
    return {
        **group_cols,
        "qty": qty,
        "value": value,
        "open_receipts": open_receipts,
        "unit_cost": _round_half_away(_frac(value) / _frac(qty), 6) if qty > 0 else None,
        "physical_qty": physical_qty,
        "physical_value": physical_value,
    }


def _virtual_id(kind: str, date: dt.date, group: tuple[Any, ...], suffix: str = "") -> str:
    r"""``~wac:<date>:<item>:<dims>:issue|receipt`` (§8) or ``~onhand:<date>:<item>:<dims>`` (§9).

    Dimension values are joined by ``|``; in each, ``\``, ``|`` and ``:`` are escaped with
    a backslash, a null one is written as the empty string and an empty one as ``\e``.
    """
    item, *dim_values = group

    def text(value: Any) -> str:
        if value is None:
            return ""
        if value == "":
            return "\\e"
        return str(value).replace("\\", "\\\\").replace("|", "\\|").replace(":", "\\:")

    joined = "|".join(text(v) for v in dim_values)
    out = f"~{kind}:{date.isoformat()}:{item}:{joined}"
    return f"{out}:{suffix}" if suffix else out


def _group_schema(dims: Sequence[str]) -> dict[str, pl.DataType]:
    return {"item_id": pl.String(), **{d: pl.String() for d in dims}}


def _frame(rows: list[dict[str, Any]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=schema)
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema)
