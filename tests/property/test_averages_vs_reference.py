"""Property tests: the kernel equals the reference close for the averages (close-rules §8-§9).

For weighted_average and weighted_average_date (each parametrised; the main equivalence runs
the profile's full count, 200 examples in ``ci``, the others a quarter of it, as in
``test_kernel_vs_reference``), on the small tricky frames of ``invclose.testing.strategies``:

* ``invclose.close`` and ``reference_close`` agree exactly on settlements (summed per issue,
  receipt and principle; the virtual ``~wac:`` ids are deterministic and compared as they
  are), adjustments, balances, log (``marking_ignored`` included), open items (with
  ``is_virtual``) and closed items, for one close, two consecutive closes (the closing
  receipt's remainder carried as a source) and item tables mixing all seven methods
  (standard and moving average included);
* the same for standard and moving_average on their own (two closes; half the examples add
  a row that brings one group's quantity to 0, so that its on-hand is 0 units with a value);
* every closing pair is whole, from the kernel's tables alone: the closing issue takes its
  sources in full (each source's pieces sum exactly to its value at the start of the close,
  and the source is closed), and the closing receipt's pieces plus its open remainder give
  back exactly what the closing issue took, to the cent and to the micro-unit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import invclose
from invclose.testing import assert_frames_equal_exact, reference_close
from invclose.testing.strategies import (
    ALL_METHODS,
    AVERAGE_METHODS,
    PERPETUAL_METHODS,
    close_inputs,
    item_tables,
    two_close_inputs,
)
from tests.property.test_kernel_vs_reference import (
    RULE_LOG_CODES,
    SECONDARY,
    _draw_dims,
    assert_same_close,
)

pytestmark = pytest.mark.property

METHODS = AVERAGE_METHODS
ZERO = Decimal(0)
WAC_PREFIX = "~wac:"


def assert_same_average_close(kernel: Any, ref: Any, dims: Sequence[str], what: str = "") -> None:
    """``assert_same_close``, plus what §8-§9 add and a few more columns.

    Also compared: ``marking_ignored`` log rows (with their level), the open items' date,
    status, ``is_virtual`` and ``carried_value``, and the balances' ``unit_cost`` and
    physical columns.
    """
    rule_log = ref.log.filter(pl.col("code").is_in(RULE_LOG_CODES))
    assert_same_close(kernel, dataclasses.replace(ref, log=rule_log), dims, what)
    group = ["item_id", *dims]
    names = {"left_name": f"kernel{what}", "right_name": f"reference{what}"}
    log_cols = ["level", "code", *group, "txn_id", "qty"]
    assert_frames_equal_exact(
        kernel.log.filter(pl.col("code") == "marking_ignored").select(log_cols),
        ref.log.filter(pl.col("code") == "marking_ignored").select(log_cols),
        ["code", *group, "txn_id"],
        **names,
    )
    open_cols = ["txn_id", "date", "status", "is_virtual", "carried_value"]
    assert_frames_equal_exact(
        kernel.open_items.select(open_cols), ref.open_items.select(open_cols), ["txn_id"], **names
    )
    bal_cols = [*group, "unit_cost", "physical_qty", "physical_value"]
    assert_frames_equal_exact(
        kernel.balances.select(bal_cols), ref.balances.select(bal_cols), group, **names
    )


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
    assert_same_average_close(kernel, ref, dims)


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
    assert_same_average_close(k1, r1, dims, " (first close)")
    assert_same_average_close(k2, r2, dims, " (second close)")


@pytest.mark.parametrize("method", METHODS)
@SECONDARY
@given(data=st.data())
def test_item_table_mixing_all_methods_matches_reference(method: str, data: st.DataObject) -> None:
    dims = _draw_dims(data)
    h1, h2, d1, d2, _, include = data.draw(two_close_inputs(dims=dims, methods=(method,)))
    items = data.draw(item_tables(methods=ALL_METHODS, min_size=1), label="items")
    options = {"method": method, "include_physical_value": include, "items": items}
    k1 = invclose.close(h1, d1, dimensions=list(dims), **options)
    r1 = reference_close(h1, d1, dimensions=dims, **options)
    assert_same_average_close(k1, r1, dims, " (first close)")
    if data.draw(st.booleans(), label="second close"):
        k2 = invclose.close(h2, d2, dimensions=list(dims), opening=k1, **options)
        r2 = reference_close(h2, d2, dimensions=dims, opening=r1.state, **options)
        assert_same_average_close(k2, r2, dims, " (second close)")


@pytest.mark.parametrize("method", PERPETUAL_METHODS)
@SECONDARY
@given(data=st.data())
def test_perpetual_methods_match_reference(method: str, data: st.DataObject) -> None:
    # §9 on its own: every financial row closed into one on-hand row per group, carried to
    # the next close (two closes, so that what the first carries is checked by the second).
    dims = _draw_dims(data)
    h1, h2, d1, d2, _, include = data.draw(two_close_inputs(dims=dims, methods=(method,)))
    if data.draw(st.booleans(), label="zero one group's quantity"):
        extra = _zeroing_row(data, h1, d1, dims)
        h1, h2 = pl.concat([h1, extra]), pl.concat([h2, extra])
    options = {"method": method, "include_physical_value": include}
    k1 = invclose.close(h1, d1, dimensions=list(dims), **options)
    r1 = reference_close(h1, d1, dimensions=dims, **options)
    assert_same_average_close(k1, r1, dims, " (first close)")
    k2 = invclose.close(h2, d2, dimensions=list(dims), opening=k1, **options)
    r2 = reference_close(h2, d2, dimensions=dims, opening=r1.state, **options)
    assert_same_average_close(k2, r2, dims, " (second close)")


def _zeroing_row(
    data: st.DataObject, df: pl.DataFrame, closing_date: dt.date, dims: Sequence[str]
) -> pl.DataFrame:
    """A financial row dated ``closing_date`` that brings one group's quantity to 0.

    Its amount is drawn, so the group's on-hand is usually 0 units with a value: the case
    close-rules §9 still carries ("none when quantity and value are both zero").
    """
    group = ["item_id", *dims]
    sums = (
        df.filter((pl.col("status") == "financial") & (pl.col("date") <= closing_date))
        .group_by(group)
        .agg(pl.col("qty").sum())
        .filter(pl.col("qty") != 0)
        .sort(group, nulls_last=False)
    )
    if sums.is_empty():
        return df.clear()
    target = sums.row(data.draw(st.integers(0, sums.height - 1), label="group"), named=True)
    qty = -target["qty"]
    amount = Decimal(data.draw(st.integers(0, 5_000), label="cents")) * Decimal("0.01")
    row = dict.fromkeys(df.columns) | {c: target[c] for c in group}
    row |= {
        "txn_id": "Z999",
        "date": closing_date,
        "qty": qty,
        "amount": amount if qty > 0 else -amount,
        "status": "financial",
        "seq": int(df["seq"].max() or 0) + 1,
        "kind": "purchase" if qty > 0 else "sale",
        "inventory_account": "1400",
        "offset_account": "2100" if qty > 0 else "5000",
    }
    return pl.DataFrame([row], schema=df.schema)


# --------------------------------------------------------------------------------------------
# Closing pairs are whole (from the kernel's tables)
# --------------------------------------------------------------------------------------------


def check_closing_pairs(
    result: Any, start_values: Mapping[str, tuple[Decimal, Decimal]], who: str
) -> int:
    """Every closing pair of ``result`` takes its sources whole and gives it all back.

    Computed from the kernel's ``settlements``, ``open_items``, ``closed_items`` and the
    closing issue -> closing receipt ``transfer`` edge of ``cost_flow``.

    ``start_values`` maps each row of the close that is not a closing pair of this close to its
    open (quantity, value) at the start of the close (the input row, or the opening's open
    item). Returns the number of pairs checked.
    """
    pieces = result.settlements.select("issue_txn_id", "receipt_txn_id", "qty", "amount").to_dicts()
    closed = set(result.closed_items["txn_id"].to_list())
    open_rows = {r["txn_id"]: r for r in result.open_items.to_dicts()}
    by_receipt: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_issue: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in pieces:
        by_receipt[p["receipt_txn_id"]].append(p)
        by_issue[p["issue_txn_id"]].append(p)

    closing_issues = sorted(
        t for t in by_issue if t.startswith(WAC_PREFIX) and t.endswith(":issue")
    )
    transfers = {
        (r["from_txn_id"], r["to_txn_id"]): (r["qty"], r["amount"])
        for r in result.cost_flow.filter(pl.col("kind") == "transfer").iter_rows(named=True)
    }
    taken: dict[str, tuple[Decimal, Decimal]] = {}
    for ci in closing_issues:
        cr = ci.removesuffix(":issue") + ":receipt"
        ci_qty = sum((p["qty"] for p in by_issue[ci]), ZERO)
        ci_amount = sum((p["amount"] for p in by_issue[ci]), ZERO)
        taken[cr] = (ci_qty, ci_amount)
        assert ci in closed, f"{who}: closing issue {ci} is not closed"
        assert ci not in open_rows, f"{who}: closing issue {ci} is open"
        # The closing issue hands exactly its pieces' total to the closing receipt.
        assert transfers.get((ci, cr)) == (ci_qty, ci_amount), (
            f"{who}: cost_flow {ci} -> {cr}: {transfers.get((ci, cr))} != {(ci_qty, ci_amount)}"
        )

    for ci in closing_issues:
        # The closing issue's amount is the sum of the receipts it settles: each source is
        # taken in full, so all its pieces of this close sum to its value at the start.
        for p in by_issue[ci]:
            source = p["receipt_txn_id"]
            if source in taken:  # an earlier closing receipt of this close
                start_qty, start_value = taken[source]
            else:
                assert source in start_values, f"{who}: {ci} settles unknown {source}"
                start_qty, start_value = start_values[source]
            got_qty = sum((q["qty"] for q in by_receipt[source]), ZERO)
            got_amount = sum((q["amount"] for q in by_receipt[source]), ZERO)
            assert (got_qty, got_amount) == (start_qty, start_value), (
                f"{who}: source {source} of {ci}: pieces {got_qty} / {got_amount}, "
                f"start {start_qty} / {start_value}"
            )
            assert source in closed, f"{who}: source {source} of {ci} is not closed"

    for cr, (ci_qty, ci_amount) in taken.items():
        # The closing receipt holds what the closing issue took: settled pieces + remainder.
        settled_qty = sum((p["qty"] for p in by_receipt.get(cr, [])), ZERO)
        settled_amount = sum((p["amount"] for p in by_receipt.get(cr, [])), ZERO)
        if cr in open_rows:
            row = open_rows[cr]
            assert row["is_virtual"], f"{who}: {cr} open but not virtual"
            assert (row["qty"], row["amount"]) == (ci_qty, ci_amount), f"{who}: {cr} {row}"
            rest_qty, rest_value = row["open_qty"], row["open_value"]
        else:
            assert cr in closed, f"{who}: closing receipt {cr} neither open nor closed"
            rest_qty, rest_value = ZERO, ZERO
        assert settled_qty + rest_qty == ci_qty, f"{who}: {cr} quantity"
        assert settled_amount + rest_value == ci_amount, (
            f"{who}: {cr}: pieces {settled_amount} + open {rest_value} != {ci_amount}"
        )
    return len(closing_issues)


def _input_start_values(df: pl.DataFrame, closing_date: dt.date) -> dict[str, tuple[Any, Any]]:
    return {
        r["txn_id"]: (r["qty"], r["amount"])
        for r in df.filter(pl.col("date") <= closing_date).iter_rows(named=True)
    }


@pytest.mark.parametrize("method", METHODS)
@SECONDARY
@given(data=st.data())
def test_closing_pairs_are_whole(method: str, data: st.DataObject) -> None:
    # Fewer groups than the other properties draw, so that most examples make closing pairs.
    dims = data.draw(st.sampled_from(((), ("site",))), label="dims")
    h1, h2, d1, d2, _, include = data.draw(
        two_close_inputs(dims=dims, methods=(method,), item_ids=("A", "B"), min_size=4)
    )
    options = {"method": method, "include_physical_value": include}
    k1 = invclose.close(h1, d1, dimensions=list(dims), **options)
    pairs = check_closing_pairs(k1, _input_start_values(h1, d1), "first close")

    k2 = invclose.close(h2, d2, dimensions=list(dims), opening=k1, **options)
    # Rows open after the first close continue from there; rows dated after it (new ones, and
    # physical rows invoiced since, which start afresh from their invoice) from the input.
    start = {
        r["txn_id"]: (r["open_qty"], r["open_value"]) for r in k1.open_items.iter_rows(named=True)
    }
    start.update(_input_start_values(h2.filter(pl.col("date") > d1), d2))
    pairs += check_closing_pairs(k2, start, "second close")
    event(f"closing pairs: {min(pairs, 3)}{'+' if pairs >= 3 else ''}")
