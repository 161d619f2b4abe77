"""End to end on sample_data/: the close must equal the hand-calculated tables in expected/."""

from __future__ import annotations

from decimal import Decimal
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


def test_each_inventory_account_holds_the_stock_of_its_item_group(tmp_path: Path) -> None:
    # The sample mapping books a group's purchases and sales on one inventory account, so the
    # ledger's GL balance of each account after January is its group's on-hand value in the
    # hand-checked expected/balances.csv, financial plus physical: 1400 holds HW (BOLT:
    # 6.00 - 11.00 + 65.00 = 60.00), 1410 holds CHEM (GLUE 30.00 + PAINT 56.00 = 86.00). With
    # CHEM purchases on 1400 and CHEM sales on 1410, 1410 showed -179.00.
    config = invclose.CloseConfig(
        dimensions=["site"],
        items=pl.read_csv(SAMPLE / "items.csv"),
        accounts=pl.read_csv(SAMPLE / "accounts.csv", infer_schema=False),
    )
    rows = invclose.read_transactions(SAMPLE / "transactions.parquet", dimensions=["site"])
    books = invclose.Ledger(tmp_path / "books.duckdb", config=config)
    try:
        books.post(rows.filter(pl.col("date") <= pl.date(2025, 1, 31)))
        books.close("2025-01-31")
        gl = dict(books.sql("select account, balance from gl_by_account").rows())
    finally:
        books.disconnect()
    on_hand = (
        _expected("balances")
        .join(pl.read_csv(SAMPLE / "items.csv"), on="item_id")
        .group_by("item_group")
        .agg(
            (
                pl.col("value").cast(pl.Decimal(38, 2))
                + pl.col("physical_value").cast(pl.Decimal(38, 2))
            ).sum()
        )
    )
    expected = dict(on_hand.rows())
    assert {"HW": gl["1400"], "CHEM": gl["1410"]} == expected
    assert expected == {"HW": Decimal("60.00"), "CHEM": Decimal("86.00")}
