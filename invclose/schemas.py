"""The one place where column names and dtypes are defined.

Input columns follow contract §1; output tables follow contract §4. Financial dimension
columns are configured by the user, so every schema here is a function of ``dims``.
Money is ``Decimal(38, 2)`` and quantities ``Decimal(38, 6)`` in every output, whatever the
kernel uses inside (it works in int64 cents and micro-units).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

MONEY = pl.Decimal(38, 2)
QTY = pl.Decimal(38, 6)
#: Scale factors of the kernel's integer units.
CENTS_PER_UNIT = 100
MICRO_PER_UNIT = 1_000_000

FINANCIAL = "financial"
PHYSICAL = "physical"


def joins_order() -> pl.Expr:
    """Rows that join their order's links (close-semantics §9.1): an ``order_id``, and a kind
    other than ``purchase`` or ``sale`` (which never link, whatever their ``order_id``)."""
    return pl.col("order_id").is_not_null() & ~pl.col("kind").fill_null("").is_in(
        ["purchase", "sale"]
    )


STATUSES = (FINANCIAL, PHYSICAL)

#: Prefix reserved for virtual rows (weighted-average closing pair, on-hand rows).
VIRTUAL_PREFIX = "~"

# Input columns before the dimension columns, then after them (contract §1).
_INPUT_HEAD: dict[str, pl.DataType] = {
    "txn_id": pl.String(),
    "item_id": pl.String(),
    "date": pl.Date(),
    "qty": QTY,
    "amount": MONEY,
    "status": pl.String(),
    "seq": pl.Int64(),
}
_INPUT_TAIL: dict[str, pl.DataType] = {
    "marked_to": pl.String(),
    "order_id": pl.String(),
    "cost_share": QTY,
    "kind": pl.String(),
    "inventory_account": pl.String(),
    "offset_account": pl.String(),
}
REQUIRED_INPUT = ("txn_id", "item_id", "date", "qty", "amount")


def required_input(dims: Sequence[str], require_amount: bool = True) -> list[str]:
    """The input columns every transaction table must hold: :data:`REQUIRED_INPUT` (without
    ``amount`` when posting-time costing may fill it) and the financial dimensions."""
    return [*(c for c in REQUIRED_INPUT if require_amount or c != "amount"), *dims]


OPTIONAL_INPUT = tuple(c for c in (*_INPUT_HEAD, *_INPUT_TAIL) if c not in REQUIRED_INPUT)


def _with_dims(
    head: dict[str, pl.DataType], dims: Sequence[str], tail: dict[str, pl.DataType]
) -> dict[str, pl.DataType]:
    out = dict(head)
    out.update({d: pl.String() for d in dims})
    out.update(tail)
    return out


def input_schema(dims: Sequence[str]) -> dict[str, pl.DataType]:
    """Canonical transaction columns, in order, for the given financial dimensions."""
    return _with_dims(_INPUT_HEAD, dims, _INPUT_TAIL)


def item_schema() -> dict[str, pl.DataType]:
    """Canonical item-table columns (contract §2)."""
    return {
        "item_id": pl.String(),
        "method": pl.String(),
        "include_physical_value": pl.Boolean(),
        "item_group": pl.String(),
        "standard_cost": MONEY,
        "default_cost": MONEY,
        "valid_from": pl.Date(),
    }


def accounts_schema() -> dict[str, pl.DataType]:
    """Canonical accounts-mapping columns (contract §1)."""
    return {
        "kind": pl.String(),
        "item_group": pl.String(),
        "inventory_account": pl.String(),
        "offset_account": pl.String(),
        "variance_account": pl.String(),
    }


def settlements_schema(dims: Sequence[str]) -> dict[str, pl.DataType]:
    """One row per settled piece (issue, receipt, qty)."""
    return _with_dims(
        {
            "close_id": pl.String(),
            "settlement_date": pl.Date(),
            "issue_txn_id": pl.String(),
            "receipt_txn_id": pl.String(),
            "item_id": pl.String(),
        },
        dims,
        {"qty": QTY, "amount": MONEY, "principle": pl.String()},
    )


def adjustments_schema(dims: Sequence[str]) -> dict[str, pl.DataType]:
    """One row per adjusted transaction."""
    return _with_dims(
        {"close_id": pl.String(), "txn_id": pl.String(), "item_id": pl.String()},
        dims,
        {
            "item_group": pl.String(),
            "kind": pl.String(),
            "status": pl.String(),
            "date": pl.Date(),
            "qty": QTY,
            "posted_amount": MONEY,
            "settled_amount": MONEY,
            "adjustment": MONEY,
            "cost_delta": MONEY,
            "adjustment_date": pl.Date(),
            "inventory_account": pl.String(),
            "offset_account": pl.String(),
            "adjusted_against": pl.List(pl.String()),
            "order_id": pl.String(),
        },
    )


def vouchers_schema(dims: Sequence[str]) -> dict[str, pl.DataType]:
    """One row per general-ledger line."""
    return _with_dims(
        {
            "close_id": pl.String(),
            "voucher_id": pl.String(),
            "line_no": pl.Int64(),
            "posting_date": pl.Date(),
            "account": pl.String(),
            "debit": MONEY,
            "credit": MONEY,
            "item_id": pl.String(),
            "item_group": pl.String(),
        },
        dims,
        {"txn_id": pl.String()},
    )


def log_schema(dims: Sequence[str]) -> dict[str, pl.DataType]:
    """One row per finding of the close or of the pre-close check."""
    return _with_dims(
        {
            "close_id": pl.String(),
            "level": pl.String(),
            "code": pl.String(),
            "item_id": pl.String(),
        },
        dims,
        {
            "txn_id": pl.String(),
            "qty": QTY,
            "amount": MONEY,
            "order_id": pl.String(),
            "message": pl.String(),
        },
    )


def balances_schema(dims: Sequence[str]) -> dict[str, pl.DataType]:
    """One row per item and financial dimensions after the close."""
    return _with_dims(
        {"close_id": pl.String(), "item_id": pl.String()},
        dims,
        {
            "method": pl.String(),
            "qty": QTY,
            "value": MONEY,
            "open_receipts": pl.Int64(),
            "unit_cost": pl.Decimal(38, 6),
            "physical_qty": QTY,
            "physical_value": MONEY,
        },
    )


def open_items_schema(dims: Sequence[str]) -> dict[str, pl.DataType]:
    """Every transaction dated on or before the closing date still open after the close."""
    out: dict[str, pl.DataType] = {"close_id": pl.String()}
    out.update(input_schema(dims))
    out.update(
        {
            "open_qty": QTY,
            "open_value": MONEY,
            "carried_value": MONEY,
            "is_virtual": pl.Boolean(),
            # Rows of transfer and production orders (null elsewhere), close-semantics §9.1:
            # quantity its order has not yet fed (an issue: passed on; a receipt: received),
            # and an issue's cost change not yet passed on (it sits on the offset account).
            "unfed_qty": QTY,
            "unfed_change": MONEY,
        }
    )
    return out


def closed_items_schema() -> dict[str, pl.DataType]:
    """Every transaction closed by this or an earlier close."""
    return {
        "close_id": pl.String(),
        "txn_id": pl.String(),
        "row_hash": pl.String(),
        "closed_by": pl.String(),
    }


def cost_flow_schema() -> dict[str, pl.DataType]:
    """One row per edge of cost lineage (cost moves ``from`` -> ``to``)."""
    return {
        "close_id": pl.String(),
        "from_txn_id": pl.String(),
        "to_txn_id": pl.String(),
        "qty": QTY,
        "amount": MONEY,
        "kind": pl.String(),
    }


RESULT_TABLES = (
    "settlements",
    "adjustments",
    "vouchers",
    "log",
    "balances",
    "open_items",
    "closed_items",
    "cost_flow",
)


def table_schema(table: str, dims: Sequence[str]) -> dict[str, pl.DataType]:
    """The schema of result table ``table`` for dimensions ``dims``."""
    builders = {
        "settlements": settlements_schema,
        "adjustments": adjustments_schema,
        "vouchers": vouchers_schema,
        "log": log_schema,
        "balances": balances_schema,
        "open_items": open_items_schema,
    }
    if table in builders:
        return builders[table](dims)
    if table == "closed_items":
        return closed_items_schema()
    if table == "cost_flow":
        return cost_flow_schema()
    msg = f"unknown result table {table!r}; expected one of {RESULT_TABLES}"
    raise KeyError(msg)


def empty_table(table: str, dims: Sequence[str]) -> pl.DataFrame:
    """An empty frame with the schema of result table ``table``."""
    return pl.DataFrame(schema=table_schema(table, dims))


def conform(frame: pl.DataFrame, table: str, dims: Sequence[str]) -> pl.DataFrame:
    """Select and cast ``frame`` to the exact column order and dtypes of ``table``.

    Missing columns become typed nulls; extra columns are an error (a bug, not user input).
    """
    schema = table_schema(table, dims)
    extra = [c for c in frame.columns if c not in schema]
    if extra:
        msg = f"internal: table {table!r} got unexpected columns {extra}"
        raise AssertionError(msg)
    return frame.select(
        [
            (pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in schema.items()
        ]
    )
