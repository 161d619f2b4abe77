"""Property: ``invclose.compare`` under several methods ends each item where a close under
that method alone leaves it (its ``balances`` summed per item).

Transfers and production orders (the networks strategy, cycles included) must feed only their
own method's copy of the items: when every method's copy closed in one run, an order fed
every copy's outputs with the components of all of them.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import invclose
from invclose.testing.strategies import close_inputs, dimension_columns
from tests.helpers import ACCOUNTS
from tests.property.test_batched_vs_in_memory import several_networks

pytestmark = pytest.mark.property

#: Each example closes three times: a third of the profile's count.
THREE_RUNS = settings(max_examples=max(10, settings().max_examples // 3))

METHODS = ["fifo", "lifo", "lifo_date", "weighted_average", "weighted_average_date"]


def _ending_per_item(result: invclose.CloseResult) -> list[tuple[Any, ...]]:
    return (
        result.balances.group_by("item_id")
        .agg(pl.col("qty").sum(), pl.col("value").sum())
        .sort("item_id")
        .rows()
    )


def _agrees_with_close(df: pl.DataFrame, date: Any, methods: list[str], **keywords: Any) -> None:
    table = invclose.compare(df, date, methods=methods, **keywords)
    for method in methods:
        alone = invclose.close(df, date, method=method, accounts=ACCOUNTS, **keywords)
        mine = (
            table.filter(pl.col("method") == method)
            .filter((pl.col("ending_qty") != 0) | (pl.col("ending_value") != 0))
            .select("item_id", "ending_qty", "ending_value")
            .rows()
        )
        theirs = [row for row in _ending_per_item(alone) if row[1] != 0 or row[2] != 0]
        assert mine == theirs, method


@THREE_RUNS
@given(several_networks(), st.lists(st.sampled_from(METHODS), min_size=2, max_size=2, unique=True))
def test_networks_compared_end_where_each_method_closes_them(
    frame: pl.DataFrame, methods: list[str]
) -> None:
    _agrees_with_close(frame, "2025-01-31", methods, dimensions=["site"])


@THREE_RUNS
@given(close_inputs(dims=None), st.sampled_from(METHODS))
def test_ordinal_frames_compared_end_where_each_method_closes_them(inputs: Any, other: str) -> None:
    df, closing_date, method, include = inputs
    methods = list(dict.fromkeys([method, other]))
    _agrees_with_close(
        df,
        closing_date,
        methods,
        dimensions=list(dimension_columns(df)),
        include_physical_value=include,
    )
