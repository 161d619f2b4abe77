"""Manual value adjustments (close-semantics §10): ``adjust_on_hand``, ``adjust_transactions``.

Both apply to periodic items, need a close, and are dated the latest closing date. They work
on the ledger's state in force (the latest result's ``open_items``): each chosen receipt gets a
new open value; the change joins its open and carried value, posts an ``adjustments`` row and
balanced vouchers to the receipt's own accounts, and the updated tables form a new state, a
:class:`~invclose.CloseResult` that the next close (or recalculation) continues from.

* ``adjust_on_hand`` moves every open financial receipt of one group dated on or before the
  closing date (closing receipts included) to one unit cost, with cumulative rounding in key
  order (date, seq, txn_id): after ``c`` of the group's ``Q`` open units the cumulative value
  is ``round(T * c / Q)``. Open units at 10.00 and 13.00 set to 30.00 move +5.00 and +2.00.
* ``adjust_transactions`` sets the open value of chosen open receipts (``new_value``) or
  changes it (``adjustment``).

A receipt without accounts of its own takes them from the accounts mapping, and a virtual
closing receipt, which has neither, from the latest real financial receipt of its group.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

import polars as pl

from invclose.assemble import resolve_items
from invclose.config import PERIODIC_METHODS, CloseConfig, VoucherDetail
from invclose.errors import InputValidationError, MissingAccountError, first_named
from invclose.hashing import canonical_text, content_id
from invclose.io import to_polars
from invclose.kernel.accounts import fill_accounts
from invclose.kernel.money import from_cents, from_micro, mul_div_round, to_cents, to_micro
from invclose.kernel.vouchers import voucher_lines
from invclose.ledger.errors import RefusedAdjustmentError
from invclose.result import CloseResult
from invclose.schemas import FINANCIAL, MONEY, conform, empty_table
from invclose.validate import GROUP_LIMIT, normalize_items

__all__ = ["apply_changes", "on_hand_changes", "transaction_changes"]

_PERIODIC = sorted(m.value for m in PERIODIC_METHODS)


def _money(value: Any, what: str) -> Decimal:
    """An exact amount with at most 2 places (Decimal, int or text; never a float)."""
    if isinstance(value, float):
        msg = f"{what} must be exact (Decimal, int or text such as '30.00'), not a float"
        raise InputValidationError(msg)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        msg = f"{what} must be an amount such as '30.00'; got {value!r}"
        raise InputValidationError(msg) from None
    exponent = number.as_tuple().exponent
    if not number.is_finite() or (isinstance(exponent, int) and exponent < -2):
        msg = f"{what} must be a finite amount with at most 2 decimals; got {value!r}"
        raise InputValidationError(msg)
    if abs(number) * 100 > GROUP_LIMIT:
        msg = (
            f"{what} is beyond what the close computes exactly in 64-bit cents (at most "
            f"{Decimal(GROUP_LIMIT) / 100:,} in absolute value); got {value!r}"
        )
        raise InputValidationError(msg)
    return number.quantize(Decimal("0.01"))


def _with_methods(frame: pl.DataFrame, cfg: CloseConfig) -> pl.DataFrame:
    return resolve_items(frame, normalize_items(cfg.items), cfg)


def eligible(state: CloseResult, cfg: CloseConfig, lock: dt.date) -> pl.DataFrame:
    """Open financial receipts dated on or before ``lock``, with their method and group."""
    rows = state.open_items.filter(
        (pl.col("open_qty") > 0) & (pl.col("status") == FINANCIAL) & (pl.col("date") <= lock)
    )
    return _with_methods(rows.drop("close_id"), cfg)


def on_hand_changes(
    state: CloseResult,
    cfg: CloseConfig,
    lock: dt.date,
    item_id: str,
    dims: dict[str, Any] | None,
    new_value: Any,
    adjustment: Any,
) -> pl.DataFrame:
    """``txn_id``, ``new_open_value`` of every receipt ``adjust_on_hand`` moves."""
    given = dict(dims or {})
    if set(given) != set(cfg.dims):
        msg = (
            f"dims must give a value for each financial dimension {list(cfg.dims)} and nothing "
            f"else; got {sorted(given)}"
        )
        raise RefusedAdjustmentError(msg)
    if (new_value is None) == (adjustment is None):
        msg = "give exactly one of new_value (the group's new on-hand value) or adjustment"
        raise RefusedAdjustmentError(msg)
    keys = {"item_id": str(item_id), **{d: None if v is None else str(v) for d, v in given.items()}}
    label = ", ".join(f"{k}={v!r}" for k, v in keys.items())
    method = _with_methods(pl.DataFrame({"item_id": [str(item_id)]}), cfg)["method"][0]
    if method not in _PERIODIC:
        msg = f"item {item_id!r} is valued by {method}; manual adjustments need a periodic method"
        raise RefusedAdjustmentError(msg)
    match = pl.all_horizontal([pl.col(k).eq_missing(pl.lit(v)) for k, v in keys.items()])
    rows = eligible(state, cfg, lock).filter(match).sort("date", "seq", "txn_id")
    if rows.is_empty():
        msg = (
            f"the group {label} has no open financial receipt dated on or before "
            f"{lock.isoformat()} (no positive open quantity); nothing to adjust"
        )
        raise RefusedAdjustmentError(msg)
    current = int(rows.select(to_cents(pl.col("open_value")).sum()).item())
    if new_value is not None:
        target = int(_money(new_value, "new_value") * 100)
    else:
        target = current + int(_money(adjustment, "adjustment") * 100)
    if target < 0:
        msg = f"the group {label} cannot get a negative on-hand value ({target / 100:.2f})"
        raise RefusedAdjustmentError(msg)
    q = to_micro(pl.col("open_qty"))
    total = pl.lit(int(rows.select(q.sum()).item()), pl.Int64)
    cum = mul_div_round(pl.lit(target, pl.Int64), q.cum_sum(), total)
    return rows.select("txn_id", new_open_value=from_cents(cum - cum.shift(1, fill_value=0)))


def transaction_changes(
    state: CloseResult, cfg: CloseConfig, lock: dt.date, changes: Any
) -> pl.DataFrame:
    """``txn_id``, ``new_open_value`` from a table of ``txn_id``, ``new_value``/``adjustment``."""
    frame = to_polars(changes, "changes")
    if "txn_id" not in frame.columns or not ({"new_value", "adjustment"} & set(frame.columns)):
        msg = "changes need a txn_id column and a new_value or adjustment column"
        raise RefusedAdjustmentError(msg)
    if frame.is_empty():
        msg = "changes is empty: nothing to adjust"
        raise RefusedAdjustmentError(msg)
    records = frame.to_dicts()
    ids = [str(r["txn_id"]) for r in records]
    duplicated = sorted({t for t in ids if ids.count(t) > 1})
    open_rows = eligible(state, cfg, lock)
    by_id = {r["txn_id"]: r for r in open_rows.iter_rows(named=True)}
    # Every problem of every row in one refusal: a bad amount and an unknown id are named
    # together, not one correction at a time.
    problems = [f"{txn}: named more than once" for txn in duplicated]
    bad_values: list[str] = []
    out: list[tuple[str, Decimal]] = []
    for txn, record in zip(ids, records, strict=True):
        new, change = record.get("new_value"), record.get("adjustment")
        given: Decimal | None = None
        if (new is None) == (change is None):
            problems.append(f"{txn}: give exactly one of new_value or adjustment")
        else:
            what = f"new_value of {txn}" if new is not None else f"adjustment of {txn}"
            try:
                given = _money(new if new is not None else change, what)
            except InputValidationError as exc:
                bad_values.append(str(exc))
        row = by_id.get(txn)
        if row is None:
            problems.append(
                f"{txn}: not an open financial receipt dated on or before {lock.isoformat()} "
                "with positive open quantity"
            )
        elif row["method"] not in _PERIODIC:
            problems.append(f"{txn}: item {row['item_id']} is valued by {row['method']}")
        elif given is not None:
            value = given if new is not None else row["open_value"] + given
            if value < 0:
                problems.append(f"{txn}: the open value would be negative ({value})")
            out.append((txn, value))
    found = bad_values + problems
    if found:
        msg = f"adjust_transactions refused, nothing was changed: {first_named(found, '; ')}"
        # A value that is no amount is bad input; the rest are refusals of the ledger.
        raise (InputValidationError if bad_values else RefusedAdjustmentError)(msg)
    return pl.DataFrame(out, schema={"txn_id": pl.String, "new_open_value": MONEY}, orient="row")


def _accounts(
    rows: pl.DataFrame, mapping: pl.DataFrame | None, fallback: pl.DataFrame, keys: list[str]
) -> pl.DataFrame:
    filled = fill_accounts(rows, mapping)
    backup = fallback.select(
        *keys,
        pl.col("inventory_account").alias("fb_inventory"),
        pl.col("offset_account").alias("fb_offset"),
    )
    filled = filled.join(backup, on=keys, how="left", nulls_equal=True).with_columns(
        inventory_account=pl.coalesce("inventory_account", "fb_inventory"),
        offset_account=pl.coalesce("offset_account", "fb_offset"),
    )
    missing = filled.filter(
        pl.col("inventory_account").is_null() | pl.col("offset_account").is_null()
    )
    if not missing.is_empty():
        listed = first_named(missing["txn_id"])
        msg = (
            f"{missing.height} receipt(s) to adjust have no inventory or offset account, even "
            f"from the accounts mapping: {listed}. Add a mapping row for their kind and group."
        )
        raise MissingAccountError(
            msg,
            missing.select("txn_id", "kind", "item_group", "inventory_account", "offset_account"),
        )
    return filled.drop("fb_inventory", "fb_offset")


def apply_changes(
    state: CloseResult,
    changes: pl.DataFrame,
    cfg: CloseConfig,
    mapping: pl.DataFrame | None,
    group_accounts: pl.DataFrame,
    date: dt.date,
) -> CloseResult:
    """The new state after giving each receipt in ``changes`` its ``new_open_value``.

    ``group_accounts`` (group keys, ``inventory_account``, ``offset_account``) backs up the
    accounts of virtual closing receipts. The result's ``adjustments`` and ``vouchers`` are the
    manual adjustment's own; it keeps the state's closing date and lock, and its ``run_kind``
    is ``recalculation`` (it adjusts without settling).
    """
    dims = list(cfg.dims)
    keys = ["item_id", *dims]
    hashes = canonical_text(changes, ["txn_id", "new_open_value"])
    close_id = content_id(hashes, state.close_id, date.isoformat(), "adjustment", prefix="M")
    with_id = pl.lit(close_id).alias("close_id")
    opened = state.open_items.join(
        changes, on="txn_id", how="left", maintain_order="left"
    ).with_columns(delta=to_cents(pl.col("new_open_value")) - to_cents(pl.col("open_value")))
    moved = _with_methods(
        opened.filter(pl.col("delta").is_not_null() & (pl.col("delta") != 0)).drop("close_id"),
        cfg,
    )
    moved = _accounts(moved, mapping, group_accounts, keys)
    adjustments = moved.select(
        with_id,
        "txn_id",
        *keys,
        "item_group",
        "kind",
        "status",
        "date",
        "qty",
        posted_amount=pl.col("carried_value"),
        settled_amount=from_cents(to_cents(pl.col("carried_value")) + pl.col("delta")),
        adjustment=from_cents(pl.col("delta")),
        cost_delta=from_cents(pl.col("delta")),
        adjustment_date=pl.lit(date),
        inventory_account=pl.col("inventory_account"),
        offset_account=pl.col("offset_account"),
        adjusted_against=pl.lit(None, pl.List(pl.String)),
        order_id=pl.col("order_id"),
    )
    detail = VoucherDetail(str(cfg.voucher_detail))
    lines = voucher_lines(moved.with_columns(adjustment=pl.col("delta")), detail, dims, close_id)
    vouchers = lines.with_columns(
        with_id,
        posting_date=pl.lit(date),
        debit=from_cents(pl.col("debit")),
        credit=from_cents(pl.col("credit")),
    )
    delta = pl.col("delta").fill_null(0)
    open_items = opened.with_columns(
        with_id,
        open_value=from_cents(to_cents(pl.col("open_value")) + delta),
        carried_value=from_cents(to_cents(pl.col("carried_value")) + delta),
    ).drop("delta", "new_open_value")
    per_group = moved.group_by(keys).agg(pl.col("delta").sum().alias("delta"))
    value = to_cents(pl.col("value")) + pl.col("delta").fill_null(0)
    qty = to_micro(pl.col("qty"))
    balances = (
        state.balances.join(per_group, on=keys, how="left", nulls_equal=True, maintain_order="left")
        .with_columns(with_id, value=from_cents(value), _v=value)
        .with_columns(
            unit_cost=pl.when(pl.col("delta").is_null())
            .then(pl.col("unit_cost"))
            .when(qty > 0)
            .then(from_micro(mul_div_round(pl.col("_v"), pl.lit(10**10), qty, wide_result=True)))
        )
        .drop("delta", "_v")
    )
    tables = {
        "settlements": empty_table("settlements", dims),
        "adjustments": adjustments,
        "vouchers": vouchers,
        "log": empty_table("log", dims),
        "balances": balances,
        "open_items": open_items,
        "closed_items": state.closed_items.with_columns(with_id),
        "cost_flow": empty_table("cost_flow", dims),
    }
    return CloseResult(
        close_id=close_id,
        closing_date=state.closing_date,
        run_kind="adjustment",
        dimensions=tuple(dims),
        config_fingerprint=cfg.fingerprint(),
        lock_date=state.lock_date,
        **{name: conform(table, name, dims) for name, table in tables.items()},
    )
