"""Output hashes kept while rows are inserted, hashed in the process.

Every write keeps, per run and table, the sorted digest of the rows it inserted; ``verify()``
recomputes each run's output hash from the file. The small ledgers of the other tests digest
every table in one piece: here tables are digested two rows at a time (``BATCH = 2``).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from invclose.ledger import Ledger, digests
from invclose.ledger.core import LedgerCore
from tests.ledger.helpers import CONFIG, assert_consistent, day, dump, rows, same_dump

PERIOD = rows(
    ("A-R1", "A", day(1, 3), 10, "100.00", "purchase"),  # 10 @ 10.00
    ("A-R2", "A", day(1, 10), 10, "120.00", "purchase"),  # 10 @ 12.00
    ("A-S1", "A", day(1, 15), -12, "-132.00", "sale"),  # posted at the average 11.00
    ("B-R1", "B", day(1, 5), 4, "20.00", "purchase"),
    ("B-S1", "B", day(1, 20), -3, "-15.00", "sale"),
    ("A-R3", "A", day(2, 5), 10, "150.00", "purchase"),
    ("A-S2", "A", day(2, 8), -10, "-136.67", "sale"),
)


@pytest.fixture
def in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digests, "BATCH", 2)


@pytest.mark.usefixtures("in_pieces")
def test_every_run_of_one_transaction_keeps_its_own_output_hash(tmp_path: Path) -> None:
    books = Ledger(tmp_path / "books.duckdb", config=CONFIG)
    try:
        books.post(PERIOD)
        books.recalculate("2025-02-20")
        # The close at 31 January first cancels the recalculation dated after it: a reversal
        # run and the close run insert adjustments and vouchers in the same transaction.
        books.close("2025-01-31")
        history = books.history()
        assert history["kind"].to_list() == ["post", "recalculation", "reversal", "close"]
        assert history["status"].to_list() == ["active", "reversed", "active", "active"]
        store = books._store
        assert store._written == {}
        # verify() recomputes every run's output hash from the stored rows (hash_chain).
        assert_consistent(books)
    finally:
        books.disconnect()


@pytest.mark.usefixtures("in_pieces")
def test_a_failed_close_leaves_no_digest_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    books = Ledger(tmp_path / "books.duckdb", config=CONFIG)
    try:
        books.post(PERIOD)
        before = dump(books)

        def broken_certificate(self: LedgerCore, run_id: int) -> None:
            raise RuntimeError("certificate failed")

        # The close has stored its tables (their digests kept) when the certificate fails.
        monkeypatch.setattr(LedgerCore, "_certify", broken_certificate)
        with pytest.raises(RuntimeError, match="certificate failed"):
            books.close("2025-01-31")
        store = books._store
        assert store._written == {}
        assert same_dump(dump(books), before)
        monkeypatch.undo()
        # The same close then succeeds and its output hash verifies.
        monkeypatch.setattr(digests, "BATCH", 2)
        books.close("2025-01-31")
        assert books.history()["kind"].to_list() == ["post", "close"]
        assert_consistent(books)
    finally:
        books.disconnect()


def test_rows_without_a_run_are_refused_before_they_are_hashed(tmp_path: Path) -> None:
    books = Ledger(tmp_path / "books.duckdb", config=CONFIG)
    try:
        books.post(PERIOD)
        stored = books._store.query("SELECT * FROM transactions LIMIT 1")
        with (
            pytest.raises(AssertionError, match="without a run_id"),
            books._store.transaction("test"),
        ):
            books._store.insert(
                "transactions", stored.with_columns(run_id=pl.lit(None, pl.Int64)), CONFIG.dims
            )
        assert books._store.scalar("SELECT count(*) FROM transactions") == PERIOD.height
    finally:
        books.disconnect()
