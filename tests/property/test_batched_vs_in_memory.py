"""Property: a batched close (invclose.batched) writes exactly the rows of the in-memory close.

Items only meet through orders, so closing whole connected components one batch at a time
must give the same ``close_id`` and, table by table, the same rows (compared after sorting:
inside most tables rows come batch by batch). Two kinds of input:

* several transfer networks (each its own item, acyclic or with cycles between sites), so one
  level of the in-memory run holds several cycles that the batches solve apart;
* the ordinal strategies' frames (markings, physical rows, several items and dimensions);
* a February closed from January's result, with shipments and components waiting over the
  month end (close-semantics §9.1);
* a second close of the ordinal strategies' histories from the first one's result, given only
  the rows after its closing date (marks of issues carried open name receipts the first
  close closed, which a batch must find).

Every example also draws the batch size, from one component per batch to everything at once.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import invclose
from invclose.batched import close_batched
from invclose.schemas import RESULT_TABLES
from invclose.testing.strategies import close_inputs, dimension_columns, two_close_inputs
from tests.helpers import ACCOUNTS
from tests.property.test_cost_flow_across_closes import two_month_networks
from tests.property.test_cost_flow_properties import networks

pytestmark = pytest.mark.property

#: Each example closes twice plus once per batch: a quarter of the profile's count.
BATCHED = settings(max_examples=max(10, settings().max_examples // 4))


@st.composite
def several_networks(draw: st.DrawFn) -> pl.DataFrame:
    frames = []
    for k in range(draw(st.integers(1, 3))):
        frame = draw(networks(cyclic=draw(st.booleans())))
        prefix = pl.lit(f"N{k}-")
        frames.append(
            frame.with_columns(
                item_id=pl.lit(f"X{k}"),
                txn_id=prefix + pl.col("txn_id"),
                order_id=prefix + pl.col("order_id"),
                seq=pl.col("seq") + 1000 * k,
            )
        )
    return pl.concat(frames, how="diagonal_relaxed")


def _same_rows(df: pl.DataFrame, date: object, batch_rows: int, **kwargs: object) -> None:
    in_memory = invclose.close(df, date, **kwargs)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        close_batched(df, date, out, batch_rows=batch_rows, **kwargs)  # type: ignore[arg-type]
        batched = invclose.read_result(out)
    assert batched.close_id == in_memory.close_id
    for table in RESULT_TABLES:
        mine, theirs = getattr(batched, table), getattr(in_memory, table)
        assert mine.schema == theirs.schema, table
        assert mine.sort(mine.columns, nulls_last=True).equals(
            theirs.sort(theirs.columns, nulls_last=True)
        ), table


@BATCHED
@given(
    several_networks(),
    st.sampled_from(["weighted_average", "weighted_average_date", "fifo"]),
    st.integers(1, 200),
)
def test_networks_closed_in_batches_give_the_same_rows(
    frame: pl.DataFrame, method: str, batch_rows: int
) -> None:
    _same_rows(
        frame, "2025-01-31", batch_rows, method=method, dimensions=["site"], accounts=ACCOUNTS
    )


@BATCHED
@given(close_inputs(dims=None), st.integers(1, 30))
def test_ordinal_frames_closed_in_batches_give_the_same_rows(inputs, batch_rows: int) -> None:  # type: ignore[no-untyped-def]
    df, closing_date, method, include = inputs
    _same_rows(
        df,
        closing_date,
        batch_rows,
        method=method,
        dimensions=list(dimension_columns(df)),
        include_physical_value=include,
        accounts=ACCOUNTS,
    )


@BATCHED
@given(two_month_networks(), st.integers(1, 40))
def test_a_february_batched_from_january_gives_the_same_rows(
    frame: pl.DataFrame, batch_rows: int
) -> None:
    # Shipments and components January keeps waiting (open_items with unfed quantity) must
    # reach their February receipts in whichever batch those fall.
    keywords = {"method": "fifo", "dimensions": ["site"], "accounts": ACCOUNTS}
    january = invclose.close(frame, "2025-01-31", **keywords)  # type: ignore[arg-type]
    _same_rows(frame, "2025-02-28", batch_rows, opening=january, **keywords)


@BATCHED
@given(two_close_inputs(dims=None), st.integers(1, 30))
def test_a_second_close_of_the_rows_after_the_first_in_batches_gives_the_same_rows(
    inputs,  # type: ignore[no-untyped-def]
    batch_rows: int,
) -> None:
    history1, history2, date1, date2, method, include = inputs
    keywords = {
        "method": method,
        "dimensions": list(dimension_columns(history1)),
        "include_physical_value": include,
        "accounts": ACCOUNTS,
    }
    first = invclose.close(history1, date1, **keywords)  # type: ignore[arg-type]
    after = history2.filter(pl.col("date") > date1)
    _same_rows(after, date2, batch_rows, opening=first, **keywords)
