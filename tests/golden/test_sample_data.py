"""End to end on sample_data/: the close must equal the hand-calculated tables in expected/."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import invclose

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def _expected(name: str) -> pl.DataFrame:
    return pl.read_csv(SAMPLE / "expected" / f"{name}.csv", infer_schema=False)


def _typed_like(expected: pl.DataFrame, actual: pl.DataFrame) -> pl.DataFrame:
    """Cast the expected text columns to the actual table's dtypes (exact for Decimals)."""
    return expected.with_columns([pl.col(c).cast(actual.schema[c]) for c in expected.columns]).sort(
        expected.columns, nulls_last=True
    )


@pytest.fixture(scope="module")
def january() -> invclose.CloseResult:
    return invclose.close(
        invclose.read_transactions(SAMPLE / "transactions.parquet", dimensions=["site"]),
        "2025-01-31",
        dimensions=["site"],
        items=pl.read_csv(SAMPLE / "items.csv"),
        accounts=pl.read_csv(SAMPLE / "accounts.csv", infer_schema=False),
    )


@pytest.mark.parametrize("table", ["settlements", "adjustments", "balances", "log"])
def test_sample_close_matches_the_hand_calculation(
    january: invclose.CloseResult, table: str
) -> None:
    actual = getattr(january, table)
    expected = _typed_like(_expected(table), actual)
    got = actual.select(expected.columns).sort(expected.columns, nulls_last=True)
    assert got.rows() == expected.rows()


def test_csv_and_parquet_give_the_same_close(january: invclose.CloseResult) -> None:
    from_csv = invclose.close(
        invclose.read_transactions(SAMPLE / "transactions.csv", dimensions=["site"]),
        "2025-01-31",
        dimensions=["site"],
        items=pl.read_csv(SAMPLE / "items.csv"),
        accounts=pl.read_csv(SAMPLE / "accounts.csv", infer_schema=False),
    )
    assert from_csv.close_id == january.close_id
    for name, table in january.tables().items():
        assert table.equals(from_csv.tables()[name]), name


def test_february_row_is_outside_the_january_close(january: invclose.CloseResult) -> None:
    assert "S-004" not in set(january.open_items["txn_id"])
    assert "S-004" not in set(january.adjustments["txn_id"])
