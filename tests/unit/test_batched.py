"""The batched close (invclose.batched): the in-memory close's rows, a batch of items at a time.

The small ledger, by hand (FIFO, posted costs are running averages):

* item A: receipts 2 @ 15.00 (30.00) and 1 @ 21.00; a sale of 2 posted at -34.00 settles the
  first receipt: cost 30.00, cost_delta -4.00.
* items B and C, one production order PO1 (one component): B receipt 4 @ 10.00 = 40.00; the
  consumption of 4 posted at -36.00 settles at 40.00 (cost_delta +4.00); the output, 1 C
  posted at 50.00 (36.00 of components + 14.00 own cost), gets its component's +4.00 (54.00);
  the sale of that C, posted at -50.00, settles at 54.00 (cost_delta +4.00).
* item D: receipt 7.00 and its sale at -7.00: nothing to adjust.

Components: {A}, {B, C} (linked by PO1), {D}; with ``batch_rows=1`` each is a batch.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

import invclose
from invclose.batched import close_batched
from invclose.errors import ConfigError, InputValidationError
from invclose.progress import ProgressEvent
from invclose.schemas import RESULT_TABLES
from invclose.store.duckdb import register_result
from tests.helpers import ACCOUNTS, D, components_february, components_ledger, day, tx


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def _assert_same_rows(batched: invclose.CloseResult, in_memory: invclose.CloseResult) -> None:
    assert batched.close_id == in_memory.close_id
    for table in RESULT_TABLES:
        mine, theirs = getattr(batched, table), getattr(in_memory, table)
        assert mine.schema == theirs.schema, table
        assert _sorted(mine).equals(_sorted(theirs)), table


def test_batches_of_components_give_the_in_memory_rows_and_the_hand_values(
    tmp_path: Path,
) -> None:
    df = components_ledger()
    done = close_batched(df, day(31), tmp_path / "out", batch_rows=1, accounts=ACCOUNTS)
    assert done.batches == 3  # {A}, {B, C}, {D}
    assert done.rows == df.height
    result = invclose.read_result(tmp_path / "out")
    delta = dict(result.adjustments.select("txn_id", "cost_delta").rows())
    assert delta == {"AS": D("-4.00"), "BC": D("4.00"), "CP": D("4.00"), "CS": D("4.00")}
    assert result.closing_date == day(31)
    assert result.lock_date == day(31)
    _assert_same_rows(result, invclose.close(df, day(31), accounts=ACCOUNTS))
    assert done.table_rows == {t: getattr(result, t).height for t in RESULT_TABLES}


def test_parquet_files_are_read_out_of_core(tmp_path: Path) -> None:
    df = components_ledger()
    folder = tmp_path / "input"
    folder.mkdir()
    df.head(4).write_parquet(folder / "part-1.parquet")
    df.tail(5).write_parquet(folder / "part-2.parquet")
    close_batched(folder, day(31), tmp_path / "out", batch_rows=4, accounts=ACCOUNTS)
    result = invclose.read_result(tmp_path / "out")
    _assert_same_rows(result, invclose.close(df, day(31), accounts=ACCOUNTS))


def test_folder_names_are_not_columns(tmp_path: Path) -> None:
    # The files sit in folders named like hive partitions ("site=all", and the result under
    # "site=S9"): the rows' own sites count. By hand (FIFO): S1 receives 2 @ 10.00 and sells
    # 1, keeping 1 @ 10.00; S2 keeps its 2 @ 20.00. DuckDB read every row at site "all"
    # (3 units, 50.00 in one group) and the written result's sites as "S9".
    rows = tx(
        ("R1", "A", 1, 2, "20.00"),
        ("R2", "A", 2, 2, "40.00"),
        ("S1", "A", 3, -1, "-15.00"),
        dims={"site": ["S1", "S2", "S1"]},
    )
    folder = tmp_path / "input" / "site=all"
    folder.mkdir(parents=True)
    rows.write_parquet(folder / "part.parquet")
    out = tmp_path / "site=S9" / "out"
    close_batched(tmp_path / "input", day(31), out, dimensions=["site"], accounts=ACCOUNTS)
    result = invclose.read_result(out)
    assert result.balances.select("site", "qty", "value").rows() == [
        ("S1", D(1), D("10.00")),
        ("S2", D(2), D("40.00")),
    ]
    in_memory = invclose.close(tmp_path / "input", day(31), dimensions=["site"], accounts=ACCOUNTS)
    _assert_same_rows(result, in_memory)
    # The SQL views over the written files read the same sites.
    con = duckdb.connect()
    register_result(con, out)
    assert con.sql("select site, qty from balances order by site").fetchall() == [
        ("S1", D(1)),
        ("S2", D(2)),
    ]


def test_an_out_that_cannot_take_a_result_is_refused_before_any_batch(tmp_path: Path) -> None:
    # A non-empty directory that is not a result: refused at the start (no batch reported),
    # where it used to be refused when publishing, after every batch had run.
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    events: list[ProgressEvent] = []
    with pytest.raises(invclose.InvcloseError, match="not an invclose result"):
        close_batched(components_ledger(), day(31), taken, batch_rows=1, accounts=ACCOUNTS,
                      progress=events.append)  # fmt: skip
    assert events == []
    assert (taken / "notes.txt").read_text() == "mine"
    # Under a file, nothing can be created: the error names `out`, not a hidden work folder.
    (tmp_path / "file").write_text("x")
    with pytest.raises(
        invclose.InvcloseError, match=r"cannot write an invclose result to .*file/x"
    ):
        close_batched(components_ledger(), day(31), tmp_path / "file" / "x", accounts=ACCOUNTS)
    result = invclose.close(components_ledger(), day(31), accounts=ACCOUNTS)
    with pytest.raises(invclose.InvcloseError, match="Not a directory"):
        result.write(tmp_path / "file" / "x")


def test_decimals_of_different_scales_across_files_are_never_rounded(tmp_path: Path) -> None:
    # R1's amount is Decimal(38, 4) in its file, S1's Decimal(38, 2) in the other. Read
    # together, DuckDB cut the scale to 2 (100.0060 became 100.01) and the close ran; the
    # in-memory close refuses the sub-cent value, and so must the batched one. The same
    # files with 100.0000 close as in memory (R1 100.00, sold at -100.00: nothing to adjust).
    def write(amount: str) -> Path:
        folder = tmp_path / f"in-{amount}"
        folder.mkdir()
        # (tx() holds amounts at 2 decimals: this file is written at 4 of its own.)
        first = tx(("R1", "A", 1, 1, "0.00")).with_columns(
            amount=pl.Series([Decimal(amount)], dtype=pl.Decimal(38, 4))
        )
        first.write_parquet(folder / "a.parquet")
        tx(("S1", "A", 2, -1, "-100.00")).with_columns(seq=pl.lit(1, pl.Int64)).write_parquet(
            folder / "b.parquet"
        )
        return folder

    with pytest.raises(InputValidationError, match="too_many_decimals") as err:
        close_batched(write("100.0060"), day(31), tmp_path / "out", accounts=ACCOUNTS)
    assert "'100.0060'" in str(err.value)
    assert not (tmp_path / "out").exists()
    # A float file beside a decimal one is not read as text: refused as a float, as in memory.
    floats = write("100.0000")
    first = pl.read_parquet(floats / "a.parquet")
    first.with_columns(pl.col("amount").cast(pl.Float64)).write_parquet(floats / "a.parquet")
    with pytest.raises(InputValidationError, match=r"a\.parquet holds 'amount' as Float64"):
        close_batched(floats, day(31), tmp_path / "out", accounts=ACCOUNTS)
    (floats / "a.parquet").unlink()
    first.write_parquet(floats / "a.parquet")
    exact = floats
    close_batched(exact, day(31), tmp_path / "out", accounts=ACCOUNTS)
    result = invclose.read_result(tmp_path / "out")
    assert result.adjustments.is_empty()
    _assert_same_rows(result, invclose.close(exact, day(31), accounts=ACCOUNTS))


@pytest.mark.parametrize("detail", ["transaction", "item", "item_group", "total"])
def test_vouchers_are_numbered_and_netted_over_all_batches(tmp_path: Path, detail: str) -> None:
    df = components_ledger()
    # A and C in one item group, B and D in another: groups span batches.
    groups = pl.DataFrame({"item_id": ["A", "B", "C", "D"], "item_group": ["G1", "G2", "G1", "G2"]})
    kwargs = {"accounts": ACCOUNTS, "items": groups, "voucher_detail": detail}
    close_batched(df, day(31), tmp_path / "out", batch_rows=1, **kwargs)
    result = invclose.read_result(tmp_path / "out")
    in_memory = invclose.close(df, day(31), **kwargs)
    _assert_same_rows(result, in_memory)
    # Every voucher balances, and inventory (1400) takes each adjustment in its own sign:
    # AS +4.00 (debit), BC -4.00, CP +4.00, CS -4.00 (credits): 1400 nets to 0.00.
    per_voucher = result.vouchers.group_by("voucher_id").agg(pl.col("debit", "credit").sum())
    assert all(d == c for _, d, c in per_voucher.rows())
    inventory = result.vouchers.filter(pl.col("account") == "1400")
    net = (inventory["debit"].sum() or Decimal(0)) - (inventory["credit"].sum() or Decimal(0))
    assert net == D("0.00")


def test_a_later_close_continues_from_an_opening_in_batches(tmp_path: Path) -> None:
    january = invclose.close(components_ledger(), day(31), accounts=ACCOUNTS)
    february = components_february()
    feb_end = dt.date(2025, 2, 28)
    close_batched(
        february, feb_end, tmp_path / "feb", batch_rows=1, accounts=ACCOUNTS, opening=january
    )
    result = invclose.read_result(tmp_path / "feb")
    in_memory = invclose.close(february, feb_end, accounts=ACCOUNTS, opening=january)
    _assert_same_rows(result, in_memory)
    # FIFO by hand: AS2 takes the open 21.00 receipt (A2) and 1 of A3 at 24.00 = 45.00.
    assert dict(result.adjustments.select("txn_id", "settled_amount").rows())["AS2"] == D("-45.00")
    # January's closed rows stay listed with the close that closed them.
    closed_by = dict(result.closed_items.select("txn_id", "closed_by").rows())
    assert closed_by["AS"] == january.close_id
    assert closed_by["AS2"] == result.close_id


def test_an_open_issue_marked_to_a_receipt_the_opening_closed_goes_to_the_method(
    tmp_path: Path,
) -> None:
    # January: R2 1 @ 12.00, I1 -3 marked to R2: R2 serves 1 and is closed, I1 stays open
    # for 2 units. February's rows alone: R3 5 @ 55.00. R2 was used up by the January close,
    # so I1's open 2 units go to FIFO and take 2 of R3 at 11.00 = 22.00, in batches as in
    # memory. The batch could not see that the opening closed R2 (only its own rows' marks
    # were looked up), so I1 waited as if R2 were dated after the close.
    january = invclose.close(
        tx(("R2", "A", 2, 1, "12.00"), ("I1", "A", 10, -3, "-33.00", "financial", "R2")),
        day(31),
        accounts=ACCOUNTS,
    )
    february = tx(("R3", "A", dt.date(2025, 2, 3), 5, "55.00")).with_columns(seq=pl.lit(3))
    feb_end = dt.date(2025, 2, 28)
    close_batched(
        february, feb_end, tmp_path / "feb", batch_rows=1, accounts=ACCOUNTS, opening=january
    )
    result = invclose.read_result(tmp_path / "feb")
    _assert_same_rows(result, invclose.close(february, feb_end, accounts=ACCOUNTS, opening=january))
    pieces = result.settlements.select("issue_txn_id", "receipt_txn_id", "qty", "amount")
    assert pieces.rows() == [("I1", "R3", D(2), D("22.00"))]
    assert result.log.is_empty()


def test_progress_reports_rows_and_batches(tmp_path: Path) -> None:
    events: list[ProgressEvent] = []
    out = tmp_path / "o"
    close_batched(
        components_ledger(), day(31), out, batch_rows=1, accounts=ACCOUNTS, progress=events.append
    )
    assert events[0].stage == "plan"
    assert events[-1].stage == "write"
    assert {e.parts_total for e in events} == {3}
    done = [e.rows_done for e in events]
    assert done == sorted(done)
    assert done[-1] == 9
    assert events[-1].fraction == 1.0
    assert [e.parts_done for e in events if e.stage == "assemble"] == [1, 2, 3]
    # A "batch" event as each batch's tables are written: {A} 3 rows, {B, C} 4, {D} 2.
    written = [(e.rows_done, e.parts_done) for e in events if e.stage == "batch"]
    assert written == [(3, 1), (7, 2), (9, 3)]
    # A batch's rows are not done while it is being settled (review 59: counted half done).
    settling = [e.rows_done for e in events if e.stage == "settle and cost"]
    assert settling == [0, 3, 7]


def test_progress_from_an_opening_counts_the_input_rows(tmp_path: Path) -> None:
    # January leaves I1 open (marked to R2, which serves 1 of its 3 units). February's two
    # input rows, one item each, in two batches: the batch of A also closes I1 from the
    # opening, which is no input row (review 63: "assemble, 3 of 3 rows" then "batch, 2 of 3").
    january = invclose.close(
        tx(("R2", "A", 2, 1, "12.00"), ("I1", "A", 10, -3, "-33.00", "financial", "R2")),
        day(31),
        accounts=ACCOUNTS,
    )
    february = tx(
        ("R3", "A", dt.date(2025, 2, 3), 5, "55.00"), ("B1", "B", dt.date(2025, 2, 4), 1, "9.00")
    ).with_columns(seq=pl.Series([3, 4]))
    events: list[ProgressEvent] = []
    close_batched(
        february,
        dt.date(2025, 2, 28),
        tmp_path / "feb",
        batch_rows=1,
        accounts=ACCOUNTS,
        opening=january,
        progress=events.append,
    )
    done = [e.rows_done for e in events]
    assert done == sorted(done)
    assert all(e.rows_done <= e.rows_total == 2 for e in events)
    assert [e.rows_done for e in events if e.stage == "batch"] == [1, 2]


def test_in_memory_close_reports_progress() -> None:
    events: list[ProgressEvent] = []
    invclose.close(components_ledger(), day(31), accounts=ACCOUNTS, progress=events.append)
    assert [(e.stage, e.rows_done) for e in events] == [
        ("validate", 0),
        ("settle and cost", 0),  # the rows are done when their tables are
        ("assemble", 9),
    ]
    assert events[-1].rows_done == events[-1].rows_total == 9


# --------------------------------------------------------------------------- refusals


def _nothing_written(out: Path) -> bool:
    return not out.exists() and not any(
        p.name.startswith(f".{out.name}") for p in out.parent.iterdir()
    )


def test_without_seq_it_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputValidationError, match="seq column"):
        close_batched(components_ledger().drop("seq"), day(31), tmp_path / "o", accounts=ACCOUNTS)
    assert _nothing_written(tmp_path / "o")


def test_a_txn_id_used_by_two_items_is_refused(tmp_path: Path) -> None:
    df = components_ledger().with_columns(
        txn_id=pl.when(pl.col("txn_id") == "D1").then(pl.lit("A1")).otherwise(pl.col("txn_id"))
    )
    with pytest.raises(InputValidationError, match="more than one item: A1") as err:
        close_batched(df, day(31), tmp_path / "o", batch_rows=1, accounts=ACCOUNTS)
    assert err.value.failures is not None
    assert err.value.failures["txn_id"].to_list() == ["A1"]
    assert _nothing_written(tmp_path / "o")


def test_repeated_ids_past_those_listed_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 30 ids each used by items A and B; the failures keep the first 25 (1000 in use): the
    # message still counts all 30 (review 63: "... and 5 more" counted only those kept).
    import invclose.batched

    monkeypatch.setattr(invclose.batched, "_DUPLICATES_KEPT", 25)
    ids = [f"T{k:02d}" for k in range(30)]
    df = pl.concat(
        [
            tx(*[(t, item, 2, 1, "1.00") for t in ids]).with_columns(seq=pl.lit(1))
            for item in ("A", "B")
        ]
    )
    with pytest.raises(InputValidationError) as err:
        close_batched(df, day(31), tmp_path / "o", accounts=ACCOUNTS)
    message = str(err.value)
    assert message.startswith("30 txn_id value(s) used by more than one item: T00, T01")
    assert "T19 ... and 10 more (the first 25 in .failures)" in message
    assert err.value.failures is not None
    assert err.value.failures.height == 25


def test_failures_of_every_batch_are_reported_together(tmp_path: Path) -> None:
    df = components_ledger().with_columns(
        qty=pl.when(pl.col("txn_id").is_in(["A2", "D1"]))
        .then(pl.lit(Decimal("0"), pl.Decimal(38, 6)))
        .otherwise(pl.col("qty"))
    )
    with pytest.raises(InputValidationError) as err:
        close_batched(df, day(31), tmp_path / "o", batch_rows=1, accounts=ACCOUNTS)
    failures = err.value.failures
    assert failures is not None
    assert sorted(failures["txn_id"].unique().to_list()) == ["A2", "D1"]  # batches 1 and 3
    # A batch's row numbers count its own rows (D1 is row 0 of batch 3, row 7 of the input):
    # rows are named by txn_id alone, under a header that says so.
    message = str(err.value)
    assert "txn_id 'D1', column 'qty' [qty_zero]" in message
    assert "row 0" not in message
    assert "row numbers count input rows" not in message
    assert failures["row"].null_count() == failures.height
    assert _nothing_written(tmp_path / "o")


def test_a_failed_batched_close_leaves_an_earlier_result_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "o"
    close_batched(components_ledger(), day(31), out, accounts=ACCOUNTS)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = components_ledger().with_columns(amount=pl.lit(None, pl.Decimal(38, 2)))
    with pytest.raises(InputValidationError):
        close_batched(bad, day(31), out, accounts=ACCOUNTS)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_csv_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("txn_id,item_id\nT1,A\n")
    with pytest.raises(InputValidationError, match="Parquet files only"):
        close_batched(path, day(31), tmp_path / "o")


@pytest.mark.parametrize("limit", ["lots", "1", "GB", "-1GB", "1 GB; DROP"])
def test_a_bad_memory_limit_is_refused_before_anything_is_written(
    tmp_path: Path, limit: str
) -> None:
    with pytest.raises(ConfigError, match="memory_limit must be a size such as '1GB'"):
        close_batched(
            components_ledger(), day(31), tmp_path / "o", memory_limit=limit, accounts=ACCOUNTS
        )
    assert _nothing_written(tmp_path / "o")


def test_a_small_duckdb_memory_limit_spills_and_gives_the_same_rows(tmp_path: Path) -> None:
    in_memory = invclose.close(components_ledger(), day(31), accounts=ACCOUNTS)
    close_batched(
        components_ledger(),
        day(31),
        tmp_path / "o",
        batch_rows=1,
        memory_limit="64MB",
        accounts=ACCOUNTS,
    )
    _assert_same_rows(invclose.read_result(tmp_path / "o"), in_memory)


def test_rows_without_accounts_are_named_across_every_batch(tmp_path: Path) -> None:
    # Only purchases have accounts. By hand, the adjusted rows are AS (item A's batch) and
    # BC, CP, CS (the B/C batch): the batched close must name all four and the three
    # missing keys (consumption, production, sale), as the in-memory close does, not stop
    # at the first batch's.
    purchases = ACCOUNTS.with_columns(kind=pl.lit("purchase"))
    with pytest.raises(invclose.MissingAccountError) as in_memory:
        invclose.close(components_ledger(), day(31), accounts=purchases)
    with pytest.raises(invclose.MissingAccountError) as batched:
        close_batched(
            components_ledger(), day(31), tmp_path / "out", batch_rows=1, accounts=purchases
        )
    for err in (in_memory.value, batched.value):
        assert err.failures is not None
        assert sorted(err.failures["txn_id"]) == ["AS", "BC", "CP", "CS"]
        assert "kind='consumption'" in str(err)
        assert "kind='production'" in str(err)
        assert "kind='sale'" in str(err)
    assert not (tmp_path / "out").exists()


def test_nothing_to_close_is_judged_over_the_whole_run_not_per_batch(tmp_path: Path) -> None:
    # A has a purchase on 2 January; B only one on 3 February, after the closing date. With
    # one item per batch, B's batch alone has nothing dated on or before 31 January, but the
    # run does: no warning, as in memory (a batch warned nothing_to_close of its own).
    frame = tx(
        ("A1", "A", 2, 1, "10.00"), ("B1", "B", dt.date(2025, 2, 3), 1, "5.00")
    ).with_columns(kind=pl.lit("purchase"))
    close_batched(frame, day(31), tmp_path / "some", batch_rows=1, accounts=ACCOUNTS)
    some = invclose.read_result(tmp_path / "some")
    assert some.log.is_empty()
    _assert_same_rows(some, invclose.close(frame, day(31), accounts=ACCOUNTS))
    # Both purchases after the closing date, in two batches: one warning, not one per batch.
    later = frame.with_columns(date=pl.lit(dt.date(2025, 2, 3)))
    close_batched(later, day(31), tmp_path / "none", batch_rows=1, accounts=ACCOUNTS)
    none = invclose.read_result(tmp_path / "none")
    assert none.log.select("level", "code").rows() == [("warning", "nothing_to_close")]
    _assert_same_rows(none, invclose.close(later, day(31), accounts=ACCOUNTS))


def test_out_naming_the_opening_directory_is_refused_and_the_opening_kept(
    tmp_path: Path,
) -> None:
    # close_batched(out=X, opening=X) replaced January's result with February's (review 59);
    # the command line refused it, the library did not.
    january_dir = tmp_path / "jan"
    invclose.close(components_ledger(), day(31), accounts=ACCOUNTS).write(january_dir)
    manifest = (january_dir / "manifest.json").read_bytes()
    feb_end = dt.date(2025, 2, 28)
    for out in (january_dir, tmp_path / "." / "jan"):
        with pytest.raises(ConfigError, match="is the opening directory"):
            close_batched(
                components_february(),
                feb_end,
                out,
                batch_rows=1,
                accounts=ACCOUNTS,
                opening=january_dir,
            )
    assert (january_dir / "manifest.json").read_bytes() == manifest
    assert invclose.read_result(january_dir).closing_date == day(31)


def test_a_result_written_through_a_symlink_replaces_what_it_names(tmp_path: Path) -> None:
    # out/current -> out/real: the link itself was swapped for a directory, leaving the old
    # result where it pointed and a stray link beside it (review 59).
    real, link = tmp_path / "real", tmp_path / "current"
    first = invclose.close(components_ledger(), day(31), accounts=ACCOUNTS)
    first.write(real)
    link.symlink_to(real, target_is_directory=True)
    second = invclose.close(
        components_february(), dt.date(2025, 2, 28), accounts=ACCOUNTS, opening=first
    )
    second.write(link)
    assert link.is_symlink()
    assert invclose.read_result(real).close_id == second.close_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "real"]


def test_a_link_that_loops_is_refused_as_a_target(tmp_path: Path) -> None:
    # loop -> loop: refused by name like any place that is no directory, not a traceback
    # from following it (review 61).
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    result = invclose.close(components_ledger(), day(31), accounts=ACCOUNTS)
    with pytest.raises(invclose.InvcloseError, match="exists and is not a directory"):
        result.write(loop)
    with pytest.raises(invclose.InvcloseError, match="exists and is not a directory"):
        close_batched(components_ledger(), day(31), loop, batch_rows=1, accounts=ACCOUNTS)


def test_dates_in_a_time_zone_take_their_own_day_as_in_memory(tmp_path: Path) -> None:
    # A Parquet extract with dates at local midnight in Paris (23:00 UTC the day before).
    # The in-memory close takes the Paris day; the batched close read them back as UTC and
    # refused them as dates with a time of day (review 59 #5). R1 2 for 20.00, S1 1 posted
    # at -12.00: FIFO settles it at -10.00, cost_delta -2.00, in both.
    rows = pl.DataFrame(
        {
            "txn_id": ["R1", "S1"],
            "item_id": ["A", "A"],
            "date": [dt.datetime(2025, 1, 31)] * 2,
            "qty": [D(2), D(-1)],
            "amount": [D("20.00"), D("-12.00")],
            "seq": [1, 2],
        }
    ).with_columns(pl.col("date").dt.replace_time_zone("Europe/Paris"))
    rows.write_parquet(tmp_path / "tx.parquet")
    in_memory = invclose.close(tmp_path / "tx.parquet", day(31), accounts=ACCOUNTS)
    close_batched(tmp_path / "tx.parquet", day(31), tmp_path / "o", accounts=ACCOUNTS)
    batched = invclose.read_result(tmp_path / "o")
    for result in (in_memory, batched):
        assert result.adjustments.select("txn_id", "cost_delta").rows() == [("S1", D("-2.00"))]
        assert result.settlements["amount"].to_list() == [D("10.00")]
    assert batched.close_id == in_memory.close_id


def test_files_in_different_zones_or_without_one_each_take_their_own_day(tmp_path: Path) -> None:
    # Three files: midnight in Paris, midnight in New York, plain dates (review 66: the
    # in-memory close failed with a traceback on two zones, and read plain dates as
    # New York's 19:00 the day before; the batched close read New York in Paris' zone).
    # R1 2 @ 20.00 (Paris), R2 1 @ 13.00 (New York), S1 -2 posted -30.00: FIFO 20.00.
    folder = tmp_path / "in"
    folder.mkdir()
    for name, zone, row in (
        ("a", "Europe/Paris", ("R1", 2, "20.00", 1)),
        ("b", "America/New_York", ("R2", 1, "13.00", 2)),
        ("c", None, ("S1", -2, "-30.00", 3)),
    ):
        txn, qty, amount, seq = row
        frame = pl.DataFrame(
            {
                "txn_id": [txn],
                "item_id": ["A"],
                "date": [dt.datetime(2025, 1, 31)],
                "qty": [D(qty)],
                "amount": [D(amount)],
                "seq": [seq],
            }
        )
        dated = (
            frame.with_columns(pl.col("date").dt.date())
            if zone is None
            else frame.with_columns(pl.col("date").dt.replace_time_zone(zone))
        )
        dated.write_parquet(folder / f"{name}.parquet")
    in_memory = invclose.close(folder, day(31), accounts=ACCOUNTS)
    close_batched(folder, day(31), tmp_path / "o", accounts=ACCOUNTS)
    batched = invclose.read_result(tmp_path / "o")
    for result in (in_memory, batched):
        assert result.adjustments.select("txn_id", "cost_delta").rows() == [("S1", D("-10.00"))]
    assert batched.close_id == in_memory.close_id


def test_a_failure_read_from_files_names_its_file_and_row_there(tmp_path: Path) -> None:
    # Two part files of a folder; the second file's row 1 (S2) has qty 0. The batched close
    # named it by txn_id only (review 66 #3); it names the file and the row there, as the
    # in-memory close does.
    folder = tmp_path / "in"
    folder.mkdir()
    tx(("R1", "A", 2, 5, "50.00"), ("S1", "A", 3, -1, "-10.00")).with_columns(
        seq=pl.Series([1, 2])
    ).write_parquet(folder / "a.parquet")
    tx(("R2", "B", 2, 5, "50.00"), ("S2", "B", 3, 0, "0.00")).with_columns(
        seq=pl.Series([3, 4])
    ).write_parquet(folder / "b.parquet")
    with pytest.raises(InputValidationError) as err:
        close_batched(folder, day(31), tmp_path / "o", batch_rows=1, accounts=ACCOUNTS)
    assert f"txn_id 'S2' ({folder / 'b.parquet'} row 1), column 'qty'" in str(err.value)
    failures = err.value.failures
    assert failures is not None
    assert failures.select("txn_id", "file", "file_row").rows() == [
        ("S2", str(folder / "b.parquet"), 1)
    ]
    assert _nothing_written(tmp_path / "o")
    # Valid files close as before: the columns naming the files are no input columns.
    fixed = tx(("R2", "B", 2, 5, "50.00"), ("S2", "B", 3, -1, "-10.00")).with_columns(
        seq=pl.Series([3, 4])
    )
    fixed.write_parquet(folder / "b.parquet")
    close_batched(folder, day(31), tmp_path / "o", batch_rows=1, accounts=ACCOUNTS)
    assert (
        invclose.read_result(tmp_path / "o").close_id
        == invclose.close(folder, day(31), accounts=ACCOUNTS).close_id
    )
