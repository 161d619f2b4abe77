"""Turn a case of ``tests/data/worked_examples.json`` into contract input (close-semantics §17).

``qty`` is negated for issues; ``amount`` = signed qty x ``unit_cost_posted`` rounded to cents;
JSON numbers are read through ``Decimal(str(x))``, never as binary floats.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import polars as pl

CASES_FILE = Path(__file__).resolve().parents[1] / "data" / "worked_examples.json"

METHODS = {
    "FIFO": "fifo",
    "LIFO": "lifo",
    "LIFO_DATE": "lifo_date",
    "WEIGHTED_AVERAGE": "weighted_average",
    "WEIGHTED_AVERAGE_DATE": "weighted_average_date",
}

#: Every adjusted row posts to these accounts (the cases give none).
ACCOUNTS = pl.DataFrame(
    {
        "kind": [None],
        "item_group": [None],
        "inventory_account": ["1400 Inventory"],
        "offset_account": ["5000 Cost of goods sold"],
    },
    schema={
        "kind": pl.String,
        "item_group": pl.String,
        "inventory_account": pl.String,
        "offset_account": pl.String,
    },
)


def dec(x: Any) -> Decimal:
    """A JSON number as an exact Decimal."""
    return Decimal(str(x))


def load_cases() -> list[dict[str, Any]]:
    """All worked cases."""
    data = json.loads(CASES_FILE.read_text(encoding="utf-8"))
    cases: list[dict[str, Any]] = data["cases"]
    return cases


def cases_for(*methods: str) -> list[dict[str, Any]]:
    """Cases whose ``method`` is one of ``methods`` (the JSON's upper-case names)."""
    return [c for c in load_cases() if c["method"] in methods]


def to_frame(case: dict[str, Any]) -> pl.DataFrame:
    """The case's transactions as a contract frame."""
    rows = []
    for t in case["transactions"]:
        sign = 1 if t["type"] == "receipt" else -1
        qty = dec(t["qty"]) * sign
        amount = (qty * dec(t["unit_cost_posted"])).quantize(Decimal("0.01"), ROUND_HALF_UP)
        rows.append(
            {
                "txn_id": t["id"],
                "item_id": t.get("item", "ITEM"),
                "date": dt.date.fromisoformat(t["date"]),
                "qty": qty,
                "amount": amount,
                "status": t["status"],
                "seq": int(t["seq"]),
                "marked_to": t.get("marked_to"),
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "txn_id": pl.String,
            "item_id": pl.String,
            "date": pl.Date,
            "qty": pl.Decimal(38, 6),
            "amount": pl.Decimal(38, 2),
            "status": pl.String,
            "seq": pl.Int64,
            "marked_to": pl.String,
        },
    )


def close_kwargs(case: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``invclose.close`` for the case."""
    options = case.get("options", {})
    return {
        "method": METHODS[case["method"]],
        "include_physical_value": bool(options.get("include_physical_value", False)),
        "accounts": ACCOUNTS,
    }


def txn_qty(case: dict[str, Any], txn_id: str) -> Decimal:
    """The unsigned quantity of a case's transaction."""
    for t in case["transactions"]:
        if t["id"] == txn_id:
            return dec(t["qty"])
    msg = f"{case['name']}: no transaction {txn_id}"
    raise KeyError(msg)
