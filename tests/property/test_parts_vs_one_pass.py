"""Property: a close in parts of whole items (invclose.parts) gives the tables of one pass.

The in-memory close cuts a frame past ``SPLIT_ABOVE`` rows into runs of consecutive items and
joins the parts' tables; here the part size is drawn small (from one row, every component
its own part where the items allow, to the whole frame) so that the cut happens on the
strategies' frames. Every table must equal one pass's: same rows and ``close_id``, and the
same order unless the run has virtual rows (a part's come after its own input rows, one
pass's after all of them); under every voucher detail, for a close, a later close from an
opening and a recalculation; and the pre-close check lists the same findings in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import invclose
from invclose.schemas import RESULT_TABLES
from invclose.testing.strategies import close_inputs, dimension_columns, two_close_inputs
from tests.helpers import ACCOUNTS, rows_per_part
from tests.property.test_batched_vs_in_memory import several_networks

pytestmark = pytest.mark.property

#: Each example closes twice: half the profile's count.
IN_PARTS = settings(max_examples=max(10, settings().max_examples // 2))

DETAILS = st.sampled_from(["transaction", "item", "item_group", "total"])


def _same_tables(run: Callable[[], Any], part_rows: int) -> None:
    one_pass = run()
    with rows_per_part(part_rows):
        mine = run()
    assert mine.close_id == one_pass.close_id
    assert (mine.lock_date, mine.run_kind) == (one_pass.lock_date, one_pass.run_kind)
    # A recalculation closes nothing: its closing pairs show in settlements and cost_flow only.
    ids = pl.concat(
        [
            one_pass.open_items["txn_id"],
            one_pass.closed_items["txn_id"],
            one_pass.adjustments["txn_id"],
            one_pass.settlements["issue_txn_id"],
            one_pass.cost_flow["from_txn_id"],
            one_pass.cost_flow["to_txn_id"],
        ]
    )
    virtual = bool(ids.str.starts_with("~").any())
    for table in RESULT_TABLES:
        theirs, ours = getattr(one_pass, table), getattr(mine, table)
        if virtual:
            theirs = theirs.sort(theirs.columns, nulls_last=True)
            ours = ours.sort(ours.columns, nulls_last=True)
        assert ours.equals(theirs), table


def _groups(frame: pl.DataFrame) -> pl.DataFrame:
    """Two item groups, alternating over the sorted items: vouchers of a group span parts."""
    items = frame["item_id"].unique().sort()
    return pl.DataFrame({"item_id": items, "item_group": [f"G{k % 2}" for k in range(items.len())]})


@IN_PARTS
@given(
    several_networks(),
    st.sampled_from(["weighted_average", "weighted_average_date", "fifo"]),
    st.integers(1, 12),
    DETAILS,
)
def test_networks_closed_in_parts_give_the_same_tables(
    frame: pl.DataFrame, method: str, part_rows: int, detail: str
) -> None:
    _same_tables(
        lambda: invclose.close(
            frame,
            "2025-01-31",
            method=method,
            dimensions=["site"],
            accounts=ACCOUNTS,
            voucher_detail=detail,
        ),
        part_rows,
    )


@IN_PARTS
@given(close_inputs(dims=None), st.integers(1, 4), DETAILS)
def test_ordinal_frames_closed_in_parts_give_the_same_tables(
    inputs: Any, part_rows: int, detail: str
) -> None:
    df, closing_date, method, include = inputs
    keywords = {
        "method": method,
        "dimensions": list(dimension_columns(df)),
        "include_physical_value": include,
        "accounts": ACCOUNTS,
        "voucher_detail": detail,
        "items": _groups(df) if detail == "item_group" else None,
    }
    _same_tables(lambda: invclose.close(df, closing_date, **keywords), part_rows)
    _same_tables(lambda: invclose.recalculate(df, closing_date, **keywords), part_rows)
    checked = invclose.check(df, closing_date, **keywords)
    with rows_per_part(part_rows):
        assert invclose.check(df, closing_date, **keywords).equals(checked)


@IN_PARTS
@given(two_close_inputs(dims=None), st.integers(1, 4))
def test_a_second_close_in_parts_from_an_opening_gives_the_same_tables(
    inputs: Any, part_rows: int
) -> None:
    history1, history2, date1, date2, method, include = inputs
    keywords = {
        "method": method,
        "dimensions": list(dimension_columns(history1)),
        "include_physical_value": include,
        "accounts": ACCOUNTS,
    }
    first = invclose.close(history1, date1, **keywords)
    after = history2.filter(pl.col("date") > date1)
    _same_tables(lambda: invclose.close(after, date2, opening=first, **keywords), part_rows)
