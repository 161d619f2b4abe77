"""Every refusal says why and leaves the file exactly as it was (a full dump before/after)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest

import invclose
from invclose.ledger import (
    Ledger,
    LedgerBusyError,
    LedgerDateError,
    LedgerError,
    LedgerStateError,
    NothingToReverseError,
)
from tests.ledger.helpers import CONFIG, D, assert_consistent, day, dump, rows, same_dump

JANUARY = rows(
    ("R1", "A", day(1, 3), 10, "100.00", "purchase"),
    ("S1", "A", day(1, 15), -4, "-44.00", "sale"),
)


@pytest.fixture
def books(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger(tmp_path / "books.duckdb", config=CONFIG)
    try:
        yield ledger
    finally:
        ledger.disconnect()


@pytest.fixture
def closed(books: Ledger) -> Ledger:
    books.post(JANUARY)
    books.close("2025-01-31")
    return books


def test_backdated_post_is_refused(closed: Ledger) -> None:
    before = dump(closed)
    batch = rows(
        ("R2", "A", day(2, 2), 1, "10.00", "purchase"),
        ("R3", "A", day(1, 31), 1, "10.00", "purchase"),  # the closing date itself is locked
    )
    with pytest.raises(invclose.ClosedPeriodError) as err:
        closed.post(batch)
    message = str(err.value)
    assert "R3 (2025-01-31)" in message
    assert "closing date 2025-01-31" in message
    assert "nothing was posted" in message
    assert "R2" not in err.value.failures["txn_id"].to_list()  # type: ignore[index]
    assert same_dump(before, dump(closed))


def test_reversing_with_nothing_closed_is_refused(books: Ledger) -> None:
    before = dump(books)
    with pytest.raises(NothingToReverseError, match="nothing to reverse: no close or manual"):
        books.reverse()
    assert same_dump(before, dump(books))
    books.post(JANUARY)
    books.recalculate("2025-01-20")
    before = dump(books)
    with pytest.raises(NothingToReverseError, match=r"reverse_recalculations\(from_date\)"):
        books.reverse()
    assert same_dump(before, dump(books))


def test_closing_before_the_last_close_is_refused(closed: Ledger) -> None:
    before = dump(closed)
    for date in ("2025-01-31", "2025-01-15"):
        with pytest.raises(LedgerDateError, match="after the latest closing date 2025-01-31"):
            closed.close(date)
    with pytest.raises(LedgerDateError, match="after the latest closing date"):
        closed.recalculate("2025-01-20")
    with pytest.raises(invclose.ConfigError):  # LedgerDateError is also a ConfigError
        closed.check("2025-01-31")
    assert same_dump(before, dump(closed))


def test_a_second_writer_in_another_process_is_refused(closed: Ledger) -> None:
    before = dump(closed)
    script = textwrap.dedent(
        f"""
        from invclose.ledger import Ledger, LedgerBusyError
        try:
            Ledger({str(closed.path)!r})
        except LedgerBusyError as exc:
            print("refused:", exc)
        else:
            print("opened")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.startswith("refused:"), out
    assert "is in use by another process; only one writer at a time" in out
    assert same_dump(before, dump(closed))


def test_a_second_writer_in_this_process_is_refused(closed: Ledger) -> None:
    before = dump(closed)
    with pytest.raises(LedgerBusyError, match="already open in this process"):
        Ledger(closed.path)
    assert same_dump(before, dump(closed))
    closed.disconnect()
    with Ledger(closed.path) as again:  # free once the first one has disconnected
        assert again.lock_date == day(1, 31)


def test_one_operation_at_a_time(closed: Ledger) -> None:
    assert closed._busy.acquire(blocking=False)  # as if another thread were closing
    try:
        with pytest.raises(LedgerBusyError, match="another operation is running"):
            closed.close("2025-02-28")
    finally:
        closed._busy.release()


def test_a_failure_inside_a_verb_rolls_everything_back(
    closed: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed.post(rows(("S2", "A", day(2, 3), -1, "-11.00", "sale")))
    closed.recalculate("2025-03-01")  # the close below first cancels it, then fails
    before = dump(closed)

    def boom(*args: object, **kwargs: object) -> None:
        msg = "disk full"
        raise OSError(msg)

    monkeypatch.setattr(type(closed), "_certify", boom)
    with pytest.raises(OSError, match="disk full"):
        closed.close("2025-02-28")
    assert same_dump(before, dump(closed))
    monkeypatch.undo()
    closed.close("2025-02-28")
    assert_consistent(closed)


def test_repeated_txn_id_and_missing_amount_are_refused(closed: Ledger) -> None:
    before = dump(closed)
    with pytest.raises(invclose.InputValidationError, match="repeat a txn_id"):
        closed.post(rows(("R1", "A", day(2, 2), 1, "10.00", "purchase")))
    if getattr(invclose, "post_costs", None) is None:
        with pytest.raises(invclose.InputValidationError, match=r"invclose\.post_costs"):
            closed.post(rows(("S9", "A", day(2, 2), -1, None, "sale")))
    assert same_dump(before, dump(closed))


def test_a_batch_both_backdated_and_repeating_an_id_names_every_refused_row(
    closed: Ledger,
) -> None:
    """R3 is dated in the closed January and R1 was posted in January (as a purchase, so the
    new R1 is no invoice): one error names both, so one correction of the batch suffices."""
    before = dump(closed)
    batch = rows(
        ("R1", "A", day(2, 2), 1, "10.00", "purchase"),
        ("R2", "A", day(2, 3), 1, "10.00", "purchase"),
        ("R3", "A", day(1, 20), 1, "10.00", "purchase"),
    )
    with pytest.raises(invclose.ClosedPeriodError) as err:
        closed.post(batch)
    message = str(err.value)
    assert "R3 (2025-01-20)" in message
    assert "repeat a txn_id the ledger already holds" in message
    failures = err.value.failures
    assert failures is not None
    assert sorted(zip(failures["txn_id"], failures["check"], strict=True)) == [
        ("R1", "txn_id_posted"),
        ("R3", "posting_into_closed_period"),
    ]
    assert same_dump(before, dump(closed))


def test_a_pair_reusing_a_posted_id_is_named_with_the_backdated_rows(closed: Ledger) -> None:
    # R1 was posted (financial) in January; a batch with a backdated B1 and a new physical R1
    # with its invoice repeats R1: one error names both, not B1 now and R1 on the next post.
    before = dump(closed)
    batch = rows(
        ("B1", "A", day(1, 30), 1, "10.00", "purchase"),
        ("R1", "A", day(2, 2), 2, "20.00", "purchase", "physical"),
        ("R1", "A", day(2, 5), 2, "22.00", "purchase"),
    )
    with pytest.raises(invclose.ClosedPeriodError) as err:
        closed.post(batch)
    failures = err.value.failures
    assert failures is not None
    assert sorted(set(zip(failures["txn_id"], failures["check"], strict=True))) == [
        ("B1", "posting_into_closed_period"),
        ("R1", "txn_id_posted"),
    ]
    assert same_dump(before, dump(closed))


def test_a_batch_both_backdated_and_invalid_names_every_refused_row(closed: Ledger) -> None:
    # P2's invoice in the batch carries 3 units for its physical row's 2 (validation), and B1
    # is dated in the closed January: one error names both, not the invoice now and B1 on
    # the next post (B1 was found only once the batch passed validation).
    before = dump(closed)
    batch = rows(
        ("P2", "A", day(2, 3), 2, "20.00", "purchase", "physical"),
        ("P2", "A", day(2, 4), 3, "30.00", "purchase"),
        ("B1", "A", day(1, 20), 1, "10.00", "purchase"),
    )
    with pytest.raises(invclose.ClosedPeriodError) as err:
        closed.post(batch)
    assert "B1 (2025-01-20)" in str(err.value)
    assert "an invoice carries at most the quantity of the physical row" in str(err.value)
    failures = err.value.failures
    assert failures is not None
    assert sorted(set(zip(failures["txn_id"], failures["check"], strict=True))) == [
        ("B1", "posting_into_closed_period"),
        ("P2", "invoice_exceeds_physical"),
    ]
    assert same_dump(before, dump(closed))
    # Without a backdated row the validation error stands alone, as it was.
    with pytest.raises(invclose.InputValidationError, match="invoice_exceeds_physical"):
        closed.post(batch.head(2))
    assert same_dump(before, dump(closed))


def test_an_invoice_of_more_than_its_physical_row_is_refused(books: Ledger) -> None:
    books.post(rows(("P1", "A", day(1, 3), 5, "50.00", "purchase", "physical")))
    before = dump(books)
    with pytest.raises(invclose.InputValidationError, match="carry more quantity") as err:
        books.post(rows(("P1", "A", day(1, 9), 7, "70.00", "purchase")))
    assert err.value.failures.select("txn_id", "check").rows() == [  # type: ignore[union-attr]
        ("P1", "invoice_exceeds_physical")
    ]
    assert same_dump(before, dump(books))


def test_an_invoice_dated_before_its_physical_row_is_refused(books: Ledger) -> None:
    # P1 received physically on 20 January; an invoice dated the 10th made the reconciliation
    # at the 15th differ by 20.00 (the invoice in force, its voucher only the difference) and
    # a close on the 15th count stock not yet received (review 64). In a later batch or in
    # the same one.
    books.post(rows(("P1", "A", day(1, 20), 2, "20.00", "purchase", "physical")))
    before = dump(books)
    with pytest.raises(invclose.InputValidationError, match="dated before the physical") as err:
        books.post(rows(("P1", "A", day(1, 10), 2, "26.00", "purchase")))
    assert err.value.failures.select("txn_id", "check").rows() == [  # type: ignore[union-attr]
        ("P1", "invoice_before_physical")
    ]
    with pytest.raises(invclose.InputValidationError, match="invoice_before_physical"):
        books.post(
            rows(
                ("P2", "A", day(1, 20), 2, "20.00", "purchase", "physical"),
                ("P2", "A", day(1, 10), 2, "26.00", "purchase"),
            )
        )
    assert same_dump(before, dump(books))
    books.post(rows(("P1", "A", day(1, 20), 2, "26.00", "purchase")))  # the same day is fine
    assert books.reconciliation(as_of="2025-01-20")["difference"].to_list() == [D("0.00")]


def test_a_row_without_accounts_is_refused(closed: Ledger) -> None:
    before = dump(closed)
    with pytest.raises(invclose.MissingAccountError, match="T1"):
        closed.post(rows(("T1", "A", day(2, 2), 1, "10.00", "transfer")))
    assert same_dump(before, dump(closed))


def test_recalculating_before_a_recalculation_in_force_is_refused(closed: Ledger) -> None:
    closed.recalculate("2025-02-15")
    before = dump(closed)
    with pytest.raises(LedgerDateError, match="reverse_recalculations"):
        closed.recalculate("2025-02-10")
    assert same_dump(before, dump(closed))
    assert len(closed.reverse_recalculations("2025-02-01")) == 1
    assert closed.recalculate("2025-02-10").closing_date == day(2, 10)


def test_a_recalculation_of_an_unknown_item_is_refused_and_stores_nothing(
    closed: Ledger,
) -> None:
    # books.recalculate(date, items=["NOPE"]) used to record an empty recalculation, in force
    # and blocking earlier ones; the library must refuse it as the command line does.
    before = dump(closed)
    with pytest.raises(invclose.ConfigError, match="hold: 'NOPE'"):
        closed.recalculate("2025-02-15", items=["NOPE"])
    assert same_dump(before, dump(closed))


def test_a_recalculation_under_a_manual_adjustment_blocks_an_earlier_close(
    closed: Ledger,
) -> None:
    closed.recalculate("2025-02-15")
    closed.adjust_on_hand("A", {"site": "S1"}, adjustment="6.00", comment="count")
    before = dump(closed)
    with pytest.raises(LedgerStateError, match=r"adjustment run \d+ was made on top of it"):
        closed.close("2025-02-10")
    with pytest.raises(LedgerStateError, match="reverse that run first"):
        closed.reverse_recalculations("2025-02-01")
    assert same_dump(before, dump(closed))
    closed.close("2025-02-28")  # on or after the recalculation: nothing to cancel
    assert_consistent(closed)


def test_a_different_configuration_is_refused(closed: Ledger) -> None:
    path = closed.path
    closed.disconnect()
    other = invclose.CloseConfig(method="lifo", dimensions=["site"], accounts=CONFIG.accounts)
    with pytest.raises(invclose.ConfigError, match="reconfigure"):
        Ledger(path, config=other)
    with Ledger(path) as books:  # without config= the stored one is used
        assert books.config.fingerprint() == CONFIG.fingerprint()
        run = books.reconfigure(other, comment="switch to lifo")
        assert books.history().filter(pl.col("run_id") == run)["kind"].item() == "config"
        assert_consistent(books)
    with Ledger(path, config=other) as books:
        assert str(books.config.method) == "lifo"


def test_tampering_is_detected(closed: Ledger) -> None:
    path = closed.path
    closed.disconnect()
    con = duckdb.connect(str(path))
    con.execute("UPDATE transactions SET amount = amount + 1 WHERE txn_id = 'R1'")
    con.close()
    with Ledger(path, read_only=True) as books:
        checks = dict(books.verify().select("check", "ok").iter_rows())
        assert checks["hash_chain"] is False
        assert checks["subledger_equals_gl"] is False
        with pytest.raises(LedgerError, match="read-only"):
            books.close("2025-02-28")
    con = duckdb.connect(str(path))
    con.execute("UPDATE transactions SET amount = amount - 1 WHERE txn_id = 'R1'")
    con.execute("UPDATE ledger_config SET accounts = NULL")  # the mapping, silently dropped
    con.close()
    with Ledger(path, read_only=True) as books:
        chain = books.verify().filter(pl.col("check") == "hash_chain").row(0, named=True)
        assert chain["ok"] is False
        assert "configuration of run 0 does not match its fingerprint" in chain["detail"]


def test_a_ledger_file_of_another_format_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "books.duckdb"
    Ledger(path, config=CONFIG).disconnect()
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE ledger_meta SET value = '1' WHERE key = 'format_version'")
    with pytest.raises(LedgerError, match=r"unsupported ledger format '1' .*format '2'"):
        Ledger(path)


def test_a_damaged_ledger_file_is_named_not_a_traceback(closed: Ledger, tmp_path: Path) -> None:
    # Half of the file cut off (a failed copy): opening it must say the file is damaged,
    # as a LedgerError (exit 2 on the command line), not leak DuckDB's IOException.
    closed.disconnect()
    damaged = tmp_path / "damaged.duckdb"
    data = closed.path.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    with pytest.raises(LedgerError, match="may be damaged: restore it from a backup"):
        Ledger(damaged)
    proc = subprocess.run(
        [sys.executable, "-m", "invclose", "ledger", "history", "--db", str(damaged)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "may be damaged" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_file_whose_configuration_is_now_refused_is_named(tmp_path: Path) -> None:
    # A file written when a dimension could be named "day" (since refused: the close's own
    # "day" column overwrote it). Opening it must say so, not raise a bare ConfigError, and
    # leave the file as it was.
    path = tmp_path / "old.duckdb"
    with Ledger(path, config=CONFIG) as books:
        books.post(rows(("R1", "A", day(1, 2), "1", "10.00", "purchase")))
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE ledger_config SET settings = replace(settings, '\"site\"', '\"day\"')")
    before = path.read_bytes()
    with pytest.raises(LedgerError, match=r"holds a configuration this version refuses.*'day'"):
        Ledger(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("name", ["transactions.csv", "transactions.parquet"])
def test_a_data_file_is_refused_as_a_ledger_and_left_as_it_was(tmp_path: Path, name: str) -> None:
    # DuckDB opens a CSV or Parquet path as a read-only view of it: a Ledger there accepted
    # posts and kept none of them once disconnected.
    path = tmp_path / name
    if name.endswith(".csv"):
        JANUARY.write_csv(path)
    else:
        JANUARY.write_parquet(path)
    before = path.read_bytes()
    with pytest.raises(LedgerError, match="is not a DuckDB database"):
        Ledger(path, config=CONFIG)
    assert path.read_bytes() == before


def _legs(*records: tuple[str, str, str, int, str, str, str]) -> pl.DataFrame:
    """Rows of (txn_id, item_id, site, qty, amount, kind, order_id) on 20 January."""
    base = rows(*[(t, i, day(1, 20), q, a, k) for t, i, _, q, a, k, _ in records])
    return base.with_columns(
        site=pl.Series([r[2] for r in records]), order_id=pl.Series([r[6] for r in records])
    )


def test_an_order_broken_across_two_batches_is_refused_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    # Batch 1 ships 2 of A from S1 in transfer order O1; each later batch alone keeps the
    # order rules, only with the posted leg do they break them (close-semantics §9.1,
    # contract §1).
    catch_all = pl.DataFrame({"inventory_account": ["1400"], "offset_account": ["1410"]})
    config = invclose.CloseConfig(method="fifo", dimensions=["site"], accounts=catch_all)
    books = Ledger(tmp_path / "orders.duckdb", config=config)
    try:
        _broken_orders(books)
    finally:
        books.disconnect()


def _broken_orders(books: Ledger) -> None:
    books.post(JANUARY.head(1))
    books.post(_legs(("T1", "A", "S1", -2, "-20.00", "transfer", "O1")))
    before = dump(books)
    production = _legs(("T2", "A", "S2", 2, "20.00", "production", "O1"))
    with pytest.raises(invclose.InputValidationError) as mixed:
        books.post(production)
    failures = mixed.value.failures
    assert failures is not None
    assert failures.select("txn_id", "check").rows() == [("T2", "order_kind_mixed")]
    other_item = _legs(("T2", "B", "S2", 2, "20.00", "transfer", "O1"))
    with pytest.raises(invclose.InputValidationError) as items:
        books.post(other_item)
    failures = items.value.failures
    assert failures is not None
    assert failures.select("txn_id", "check").rows() == [("T2", "transfer_other_item")]
    # A repeated id (R1, posted in the first batch) and the broken order, named together.
    repeated = pl.concat(
        [JANUARY.head(1).with_columns(order_id=pl.lit(None, pl.String)), production]
    )
    with pytest.raises(invclose.InputValidationError) as both:
        books.post(repeated)
    failures = both.value.failures
    assert failures is not None
    assert sorted(failures.select("txn_id", "check").rows()) == [
        ("R1", "txn_id_posted"),
        ("T2", "order_kind_mixed"),
    ]
    assert same_dump(dump(books), before)
    # The receipt of the same item, as a transfer, completes the order.
    books.post(_legs(("T2", "A", "S2", 2, "20.00", "transfer", "O1")))
    assert_consistent(books)


def test_a_batch_both_invalid_and_repeating_a_posted_id_names_both(books: Ledger) -> None:
    # R1 was posted (financial) in January; the new batch repeats it and holds S2 with qty 0
    # (validation). One error names both, not S2 now and R1 on the next post.
    books.post(JANUARY)
    before = dump(books)
    batch = rows(
        ("R1", "A", day(1, 3), 10, "100.00", "purchase"),
        ("S2", "A", day(1, 20), 0, "0.00", "sale"),
    )
    with pytest.raises(invclose.InputValidationError) as err:
        books.post(batch)
    failures = err.value.failures
    assert failures is not None
    assert sorted(set(zip(failures["txn_id"], failures["check"], strict=True))) == [
        ("R1", "txn_id_posted"),
        ("S2", "qty_zero"),
    ]
    assert "repeat a txn_id the ledger already holds" in str(err.value)
    assert same_dump(before, dump(books))


def test_a_post_that_would_make_a_group_too_large_to_close_is_refused(books: Ledger) -> None:
    # A group (item and site) may add up to 2**62 cents (46,116,860,184,273,879.04) and
    # 2**62 micro-units (4,611,686,018,427.387904) in absolute value; every close refuses a
    # larger one (too_large), so a post must not store one. R1 alone holds 30,000,000,000,000,000.00
    # (3.0e18 cents); with R2's as much again the group holds 6.0e18 > 4.61e18.
    big = "30000000000000000.00"
    books.post(rows(("R1", "A", day(1, 2), 1, big, "purchase")))
    before = dump(books)
    with pytest.raises(invclose.InputValidationError, match=r"R2") as refused:
        books.post(
            rows(
                ("R2", "A", day(1, 3), 1, big, "purchase"),
                ("R3", "B", day(1, 3), 1, "5.00", "purchase"),
            )
        )
    failures = refused.value.failures
    assert failures is not None
    assert failures.select("txn_id", "column", "check").rows() == [("R2", "amount", "too_large")]
    assert same_dump(dump(books), before)
    # Quantities too: 3,000,000,000,000 units are 3.0e18 micro-units, twice is 6.0e18.
    books.post(rows(("Q1", "C", day(1, 2), 3_000_000_000_000, "1.00", "purchase")))
    with pytest.raises(invclose.InputValidationError) as by_qty:
        books.post(rows(("Q2", "C", day(1, 3), 3_000_000_000_000, "1.00", "purchase")))
    failures = by_qty.value.failures
    assert failures is not None
    assert failures.select("txn_id", "column", "check").rows() == [("Q2", "qty", "too_large")]
    # The same receipt of A at another site is a group of its own (3.0e18 cents): posted, and
    # the period closes.
    other_site = rows(("R2", "A", day(1, 3), 1, big, "purchase")).with_columns(site=pl.lit("S2"))
    books.post(other_site)
    result = books.close("2025-01-31")
    assert result.balances.filter(pl.col("item_id") == "A")["value"].to_list() == [
        D(big),
        D(big),
    ]
    assert_consistent(books)


def test_an_invoice_is_counted_instead_of_its_physical_row(books: Ledger) -> None:
    # P1 is posted physical at 40,000,000,000,000,000.00 (4.0e18 cents, inside the bound);
    # its invoice replaces it rather than adding to it, so the group stays at 4.0e18.
    big = "40000000000000000.00"
    books.post(rows(("P1", "A", day(1, 2), 1, big, "purchase", "physical")))
    books.post(rows(("P1", "A", day(1, 5), 1, big, "purchase", "financial")))
    result = books.close("2025-01-31")
    assert result.balances["value"].to_list() == [D(big)]


@pytest.mark.parametrize(
    "query",
    [
        "commit; delete from vouchers",
        "select 1; commit; begin; delete from vouchers; commit; begin",
        "delete from vouchers",
        "update runs set comment = 'x'",
        "select 1; select 2",
    ],
)
def test_sql_runs_one_select_and_cannot_change_the_file(closed: Ledger, query: str) -> None:
    # A read runs in a transaction that is rolled back; a COMMIT inside the query ended it,
    # and the DELETE after it stayed (review 58).
    before = dump(closed)
    with pytest.raises(LedgerError, match=r"one SELECT statement"):
        closed.sql(query)
    assert same_dump(dump(closed), before)
    assert closed.verify()["ok"].all()
    # One SELECT (a WITH query is one) still reads: January's close leaves 6 of A at 10.00.
    on_hand = closed.sql(
        "with b as (select qty, value from balances) select sum(qty) as q, sum(value) as v from b"
    )
    assert on_hand.rows() == [(D("6.000000"), D("60.00"))]


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("selec * from balances", "syntax error"),
        ("select no_such_column from balances", "no_such_column"),
        ("select * from no_such_table", "no_such_table"),
        ("select union_value(k := 1) as u", "Union"),  # DuckDB runs it, Polars cannot hold it
    ],
)
def test_sql_that_duckdb_cannot_run_is_a_ledger_error(
    closed: Ledger, query: str, said: str
) -> None:
    # Every failure of Ledger.sql is the library's error, with DuckDB's reason (review 60 #10:
    # a syntax error came out as duckdb.ParserException).
    with pytest.raises(LedgerError, match=rf"SQL query failed: .*{said}"):
        closed.sql(query)
    assert closed.verify()["ok"].all()


def test_views_of_what_is_in_force_count_a_reversed_close_once(books: Ledger) -> None:
    # January: R1 10 @ 10.00, S1 4 sold: one piece of 4 for 40.00. February is closed,
    # reversed and closed again: S2 (2 sold) settles against R1 for 20.00 in each of the two
    # February closes. The settlements table keeps the reversed close's rows for the record
    # (sum 40 + 20 + 20 = 80.00); the in-force view counts 40 + 20 = 60.00 (review 58).
    books.post(JANUARY)
    books.close("2025-01-31")
    books.post(rows(("S2", "A", day(2, 10), -2, "-22.00", "sale")))
    books.close("2025-02-28")
    books.reverse(comment="late invoice")
    books.close("2025-02-28")
    every = books.sql("select sum(amount) as a from settlements")["a"].item()
    in_force = books.sql("select sum(amount) as a from settlements_in_force")["a"].item()
    assert (every, in_force) == (D("80.00"), D("60.00"))
    assert books.sql("select count(*) as n from cost_flow_in_force")["n"].item() == 2
    # The state in force is one run's snapshot: A at S1, 4 left at 10.00.
    state = books.sql("select item_id, site, qty, value from state_balances")
    assert state.rows() == [("A", "S1", D("4.000000"), D("40.00"))]
    opened = books.sql("select txn_id, open_qty, open_value from state_open_items")
    assert opened.rows() == [("R1", D("4.000000"), D("40.00"))]
    state_closed = books.sql("select txn_id from state_closed_items order by txn_id")
    assert state_closed["txn_id"].to_list() == ["S1", "S2"]


def test_a_file_written_before_the_in_force_views_gains_them(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    Ledger(path, config=CONFIG).disconnect()
    with duckdb.connect(str(path)) as con:
        for view in ("settlements_in_force", "state_balances"):
            con.execute(f"DROP VIEW {view}")
    # A refused open (another configuration) changes nothing, the views included.
    other = invclose.CloseConfig(method="lifo", dimensions=["site"])
    with pytest.raises(invclose.ConfigError):
        Ledger(path, config=other)
    with duckdb.connect(str(path), read_only=True) as con:
        views = {row[0] for row in con.sql("select view_name from duckdb_views()").fetchall()}
    assert "state_balances" not in views
    books = Ledger(path)
    try:
        assert books.sql("select count(*) as n from state_balances")["n"].item() == 0
        assert books.verify()["ok"].all()
    finally:
        books.disconnect()
