"""Property tests: the vectorised kernel equals the row-by-row reference close.

For fifo, lifo and lifo_date (each parametrised, 200 examples in the ``ci`` hypothesis
profile), on small tricky frames from ``invclose.testing.strategies``:

* ``invclose.close`` and ``reference_close`` agree exactly (to the cent) on settlements,
  adjustments, balances, log, open items and closed items, for one close, for two
  consecutive closes (the second opening from the first), and with an item table;
* shuffling the input rows (explicit ``seq``) gives bit-identical results;
* quantity and value are conserved per group, computed from the inputs (not from the
  kernel's intermediates), for the kernel and for the reference alike.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import invclose
from invclose.schemas import MONEY, QTY, RESULT_TABLES
from invclose.testing import assert_frames_equal_exact, reference_close
from invclose.testing.strategies import (
    DIMENSION_CHOICES,
    close_inputs,
    item_tables,
    two_close_inputs,
)

pytestmark = pytest.mark.property

METHODS = ("fifo", "lifo", "lifo_date")
#: The log codes close-rules §7 defines for these methods, and awaiting_invoice (§13; the
#: kernel may log more, at info).
RULE_LOG_CODES = (
    "insufficient_receipts",
    "receipt_not_invoiced",
    "awaiting_invoice",
    "marked_receipt_after_close_date",
    "negative_on_hand",
)
ZERO = Decimal(0)


# --------------------------------------------------------------------------------------------
# Comparison helpers
# --------------------------------------------------------------------------------------------


def _settlement_totals(frame: pl.DataFrame) -> pl.DataFrame:
    """Pieces summed per (issue, receipt, principle): robust to how pieces are split."""
    return frame.group_by("issue_txn_id", "receipt_txn_id", "principle").agg(
        pl.col("qty").sum().cast(QTY), pl.col("amount").sum().cast(MONEY)
    )


def _closed_ids(result: Any) -> pl.DataFrame:
    frame = result.closed_txn_ids if hasattr(result, "closed_txn_ids") else result.closed_items
    return frame.select("txn_id").unique()


def assert_same_close(kernel: Any, ref: Any, dims: Sequence[str], what: str = "") -> None:
    """Compare a kernel ``CloseResult`` with a ``ReferenceResult`` table by table."""
    group = ["item_id", *dims]
    names = {"left_name": f"kernel{what}", "right_name": f"reference{what}"}
    assert_frames_equal_exact(
        _settlement_totals(kernel.settlements),
        _settlement_totals(ref.settlements),
        ["issue_txn_id", "receipt_txn_id", "principle"],
        **names,
    )
    adj_cols = ["txn_id", "posted_amount", "settled_amount", "adjustment", "cost_delta"]
    assert_frames_equal_exact(
        kernel.adjustments.select(adj_cols), ref.adjustments.select(adj_cols), ["txn_id"], **names
    )
    bal_cols = [*group, "qty", "value", "open_receipts"]
    assert_frames_equal_exact(
        kernel.balances.select(bal_cols), ref.balances.select(bal_cols), group, **names
    )
    log_cols = ["code", *group, "txn_id", "qty"]
    assert_frames_equal_exact(
        kernel.log.filter(pl.col("code").is_in(RULE_LOG_CODES)).select(log_cols),
        ref.log.select(log_cols),
        ["code", *group, "txn_id"],
        **names,
    )
    open_cols = ["txn_id", "open_qty", "open_value"]
    assert_frames_equal_exact(
        kernel.open_items.select(open_cols), ref.open_items.select(open_cols), ["txn_id"], **names
    )
    assert_frames_equal_exact(_closed_ids(kernel), _closed_ids(ref), ["txn_id"], **names)


#: The main equivalence runs the profile's full count (200 per method in CI); the secondary
#: properties (two closes, item tables, row order, conservation) run a quarter of it, so the
#: whole tier stays within a few minutes on a 2-core machine.
SECONDARY = settings(max_examples=max(10, settings().max_examples // 4))


def _draw_dims(data: st.DataObject) -> tuple[str, ...]:
    return data.draw(st.sampled_from(DIMENSION_CHOICES), label="dims")


# --------------------------------------------------------------------------------------------
# Kernel == reference
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@given(data=st.data())
def test_close_matches_reference(method: str, data: st.DataObject) -> None:
    dims = _draw_dims(data)
    df, closing_date, _, include = data.draw(close_inputs(dims=dims, methods=(method,)))
    kernel = invclose.close(
        df, closing_date, method=method, dimensions=list(dims), include_physical_value=include
    )
    ref = reference_close(
        df, closing_date, method=method, dimensions=dims, include_physical_value=include
    )
    assert_same_close(kernel, ref, dims)


@pytest.mark.parametrize("method", METHODS)
@SECONDARY
@given(data=st.data())
def test_two_consecutive_closes_match_reference(method: str, data: st.DataObject) -> None:
    dims = _draw_dims(data)
    h1, h2, d1, d2, _, include = data.draw(two_close_inputs(dims=dims, methods=(method,)))
    options = {"method": method, "include_physical_value": include}
    k1 = invclose.close(h1, d1, dimensions=list(dims), **options)
    k2 = invclose.close(h2, d2, dimensions=list(dims), opening=k1, **options)
    r1 = reference_close(h1, d1, dimensions=dims, **options)
    r2 = reference_close(h2, d2, dimensions=dims, opening=r1.state, **options)
    assert_same_close(k1, r1, dims, " (first close)")
    assert_same_close(k2, r2, dims, " (second close)")


@pytest.mark.parametrize("method", METHODS)
@SECONDARY
@given(data=st.data())
def test_item_table_matches_reference(method: str, data: st.DataObject) -> None:
    dims = _draw_dims(data)
    df, closing_date, _, include = data.draw(close_inputs(dims=dims, methods=(method,)))
    items = data.draw(item_tables(methods=METHODS), label="items")
    options = {"method": method, "include_physical_value": include, "items": items}
    kernel = invclose.close(df, closing_date, dimensions=list(dims), **options)
    ref = reference_close(df, closing_date, dimensions=dims, **options)
    assert_same_close(kernel, ref, dims)


# --------------------------------------------------------------------------------------------
# Input row order
# --------------------------------------------------------------------------------------------


def _tables(result: Any) -> dict[str, pl.DataFrame]:
    return {
        name: getattr(result, name)
        for name in RESULT_TABLES
        if isinstance(getattr(result, name, None), pl.DataFrame)
    }


@pytest.mark.parametrize("method", METHODS)
@SECONDARY
@given(data=st.data())
def test_input_row_order_changes_nothing(method: str, data: st.DataObject) -> None:
    dims = _draw_dims(data)
    df, closing_date, _, include = data.draw(close_inputs(dims=dims, methods=(method,)))
    order = data.draw(st.permutations(range(df.height)), label="row order")
    shuffled = df[list(order)]
    options = {"method": method, "dimensions": list(dims), "include_physical_value": include}

    a = _tables(invclose.close(df, closing_date, **options))
    b = _tables(invclose.close(shuffled, closing_date, **options))
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].schema == b[name].schema, name
        assert a[name].equals(b[name], null_equal=True), (
            f"table {name!r} changed when the input rows were shuffled:\n{a[name]}\n{b[name]}"
        )

    ref_options = {**options, "dimensions": dims}
    ra = reference_close(df, closing_date, **ref_options)
    rb = reference_close(shuffled, closing_date, **ref_options)
    for name in ("settlements", "adjustments", "balances", "log", "open_items"):
        assert getattr(ra, name).equals(getattr(rb, name), null_equal=True), name


# --------------------------------------------------------------------------------------------
# Conservation, from the inputs
# --------------------------------------------------------------------------------------------


def check_conservation(
    df: pl.DataFrame, closing_date: dt.date, dims: Sequence[str], result: Any, who: str
) -> None:
    """Per-group invariants of a single close (no opening) computed from the input rows."""
    rows = {r["txn_id"]: r for r in df.to_dicts() if r["date"] <= closing_date}

    def group_of(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["item_id"], *(r[d] for d in dims))

    adjustments = {r["txn_id"]: r for r in result.adjustments.to_dicts()}
    for txn_id, a in adjustments.items():
        assert txn_id in rows, f"{who}: adjustment of a row not in scope: {txn_id}"
        assert rows[txn_id]["qty"] < 0, f"{who}: a receipt was adjusted: {txn_id}"
        assert a["posted_amount"] == rows[txn_id]["amount"], f"{who}: {txn_id} posted amount"
        assert a["adjustment"] == a["settled_amount"] - a["posted_amount"], f"{who}: {txn_id}"
        assert a["cost_delta"] == -a["adjustment"], f"{who}: {txn_id} cost_delta sign"
        assert a["adjustment"] != 0, f"{who}: zero adjustment row for {txn_id}"

    # Pieces: financial issue <- financial receipt of the same group, both in scope.
    settled_qty: dict[str, Decimal] = defaultdict(Decimal)
    settled_amount: dict[str, Decimal] = defaultdict(Decimal)
    for p in result.settlements.to_dicts():
        issue, receipt = rows.get(p["issue_txn_id"]), rows.get(p["receipt_txn_id"])
        assert issue is not None, f"{who}: piece for an issue not in scope: {p}"
        assert receipt is not None, f"{who}: piece from a receipt not in scope: {p}"
        assert issue["qty"] < 0 < receipt["qty"], f"{who}: piece direction: {p}"
        assert issue["status"] == receipt["status"] == "financial", f"{who}: {p}"
        assert group_of(issue) == group_of(receipt) == group_of(p), f"{who}: cross-group {p}"
        assert p["qty"] > 0, f"{who}: empty piece {p}"
        assert p["amount"] >= 0, f"{who}: negative piece {p}"
        for txn_id in (p["issue_txn_id"], p["receipt_txn_id"]):
            settled_qty[txn_id] += p["qty"]
            settled_amount[txn_id] += p["amount"]

    expected_closed = set()
    for txn_id, r in rows.items():
        q = settled_qty.get(txn_id, ZERO)
        assert q <= abs(r["qty"]), f"{who}: {txn_id} settled {q} of {r['qty']}"
        if r["status"] == "financial" and q == abs(r["qty"]):
            expected_closed.add(txn_id)
            if r["qty"] > 0:
                # A used-up receipt's pieces sum exactly to its amount.
                assert settled_amount[txn_id] == r["amount"], f"{who}: receipt {txn_id} pieces"
            else:
                final = adjustments.get(txn_id, {}).get("settled_amount", r["amount"])
                assert final == -settled_amount[txn_id], f"{who}: issue {txn_id} final value"
    closed = set(_closed_ids(result)["txn_id"].to_list())
    assert closed == expected_closed, f"{who}: closed {sorted(closed ^ expected_closed)}"

    # Balances: the financial rows' quantity, and amount plus adjustments (value); same for
    # the physical columns.
    expect: dict[tuple[Any, ...], dict[str, Decimal]] = defaultdict(
        lambda: {"qty": ZERO, "value": ZERO, "physical_qty": ZERO, "physical_value": ZERO}
    )
    for txn_id, r in rows.items():
        g = expect[group_of(r)]
        prefix = "" if r["status"] == "financial" else "physical_"
        g[prefix + "qty"] += r["qty"]
        g[prefix + "value"] += r["amount"]
        if txn_id in adjustments:
            g[prefix + "value"] += adjustments[txn_id]["adjustment"]
    balances = {(b["item_id"], *(b[d] for d in dims)): b for b in result.balances.to_dicts()}
    assert set(balances) == set(expect), f"{who}: balance groups"
    for key, e in expect.items():
        got = {c: balances[key][c] for c in e}
        assert got == e, f"{who}: balances of {key}: {got} != {e}"


@pytest.mark.parametrize("method", METHODS)
@SECONDARY
@given(data=st.data())
def test_conservation(method: str, data: st.DataObject) -> None:
    dims = _draw_dims(data)
    df, closing_date, _, include = data.draw(close_inputs(dims=dims, methods=(method,)))
    options = {"method": method, "include_physical_value": include}
    ref = reference_close(df, closing_date, dimensions=dims, **options)
    check_conservation(df, closing_date, dims, ref, "reference")
    kernel = invclose.close(df, closing_date, dimensions=list(dims), **options)
    check_conservation(df, closing_date, dims, kernel, "kernel")
