"""Continuing from an earlier close (contract §3, close-semantics §6, §10, §12)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

import invclose
from invclose.batched import close_batched
from invclose.testing.reference import reference_close
from tests.helpers import ACCOUNTS, ORDER_SCHEMA, D, day, tx

FEB = dt.date(2025, 2, 28)


def history() -> pl.DataFrame:
    # January: R1 2 @ 10.00, issue J1 of 3 posted at 33.00 (short by 1), physical receipt P.
    # February: R2 2 @ 14.00, issue F1 of 1 posted at 12.00, and P's invoice at 2 @ 13.00.
    jan = tx(
        ("R1", "A", 5, 2, "20.00"),
        ("J1", "A", 10, -3, "-33.00"),
        ("P", "A", 20, 2, "24.00", "physical"),
    )
    feb = tx(
        ("R2", "A", dt.date(2025, 2, 3), 2, "28.00"),
        ("F1", "A", dt.date(2025, 2, 4), -1, "-12.00"),
    ).with_columns(pl.col("seq") + 10)
    return pl.concat([jan, feb])


def invoice() -> pl.DataFrame:
    return tx(("P", "A", dt.date(2025, 2, 10), 2, "26.00")).with_columns(seq=pl.lit(20, pl.Int64))


def test_first_close_leaves_the_short_issue_open() -> None:
    jan = invclose.close(history(), day(31), accounts=ACCOUNTS)
    # J1: 2 of 3 units settle against R1 for 20.00; the open unit keeps 33.00 - 22.00 = 11.00.
    j1 = jan.open_items.filter(pl.col("txn_id") == "J1").row(0, named=True)
    assert (j1["open_qty"], j1["open_value"], j1["carried_value"]) == (
        D(-1),
        D("-11.00"),
        D("-31.00"),
    )
    assert set(jan.closed_items["txn_id"]) == {"R1"}
    assert jan.lock_date == day(31)


def test_second_close_continues_from_the_open_state() -> None:
    jan = invclose.close(history(), day(31), accounts=ACCOUNTS)
    feb = invclose.close(
        pl.concat([history(), invoice()]).filter(
            ~((pl.col("txn_id") == "P") & (pl.col("status") == "physical"))
        ),
        FEB,
        accounts=ACCOUNTS,
        opening=jan,
    )
    # FIFO over J1 (open 1 unit @ 11.00), F1 (1 unit @ 12.00) vs R2 (2 @ 14.00), P (2 @ 13.00):
    # J1 <- R2 1 unit 14.00 (+3.00 cost), F1 <- R2 1 unit 14.00 (+2.00 cost).
    assert sorted(feb.settlements.select("issue_txn_id", "receipt_txn_id", "amount").rows()) == [
        ("F1", "R2", D("14.00")),
        ("J1", "R2", D("14.00")),
    ]
    adj = dict(feb.adjustments.select("txn_id", "cost_delta").rows())
    assert adj == {"J1": D("3.00"), "F1": D("2.00")}
    # J1's carried value: 31.00 + 3.00 = 34.00 of cost (20.00 January + 14.00 February).
    j1 = feb.adjustments.filter(pl.col("txn_id") == "J1").row(0, named=True)
    assert (j1["posted_amount"], j1["settled_amount"]) == (D("-31.00"), D("-34.00"))
    # On hand: P (invoiced) 2 @ 26.00.
    assert feb.balances.select("qty", "value").rows() == [(D(2), D("26.00"))]
    assert set(feb.closed_items["txn_id"]) == {"R1", "R2", "J1", "F1"}
    assert dict(feb.closed_items.select("txn_id", "closed_by").rows())["R1"] == jan.close_id


def test_the_run_id_and_row_hashes_reach_every_table() -> None:
    # The tables are built before the run's id and the new rows' hashes are known (those are
    # computed on another thread), and stamped last: every table must carry the id, every
    # voucher id must start with it, and each closed row must keep the hash of its own row.
    jan = invclose.close(history(), day(31), accounts=ACCOUNTS)
    feb_rows = pl.concat([history(), invoice()]).filter(
        ~((pl.col("txn_id") == "P") & (pl.col("status") == "physical"))
    )
    feb = invclose.close(feb_rows, FEB, accounts=ACCOUNTS, opening=jan)
    for name, table in feb.tables().items():
        assert name == "log" or not table.is_empty(), name  # nothing to warn about
        assert table["close_id"].unique().to_list() in ([feb.close_id], []), name
    assert feb.vouchers["voucher_id"].str.starts_with(f"{feb.close_id}-V").all()
    closed = {
        t: (h, by) for t, h, by in feb.closed_items.select("txn_id", "row_hash", "closed_by").rows()
    }
    assert closed["R1"] == (jan.closed_items.row(0, named=True)["row_hash"], jan.close_id)
    # A first close of the same rows hashes every row in one pass, without an opening: the
    # rows closed in February must have the same hashes there.
    whole = invclose.close(feb_rows, FEB, accounts=ACCOUNTS)
    expected = dict(whole.closed_items.select("txn_id", "row_hash").rows())
    for txn in ("R2", "J1", "F1"):
        assert closed[txn] == (expected[txn], feb.close_id), txn
    assert len({h for h, _ in closed.values()}) == len(closed)


def test_full_history_and_only_new_rows_give_the_same_close() -> None:
    jan = invclose.close(history(), day(31), accounts=ACCOUNTS)
    full = pl.concat([history().filter(pl.col("txn_id") != "P"), invoice()])
    only_new = full.filter(pl.col("date") > day(31))
    a = invclose.close(full, FEB, accounts=ACCOUNTS, opening=jan)
    b = invclose.close(only_new, FEB, accounts=ACCOUNTS, opening=jan)
    for name in ("settlements", "adjustments", "balances", "open_items", "log"):
        assert getattr(a, name).drop("close_id").equals(getattr(b, name).drop("close_id")), name


def test_opening_from_a_written_directory(tmp_path: Path) -> None:
    jan = invclose.close(history(), day(31), accounts=ACCOUNTS)
    jan.write(tmp_path / "jan")
    full = pl.concat([history().filter(pl.col("txn_id") != "P"), invoice()])
    from_dir = invclose.close(full, FEB, accounts=ACCOUNTS, opening=tmp_path / "jan")
    in_memory = invclose.close(full, FEB, accounts=ACCOUNTS, opening=jan)
    assert from_dir.settlements.equals(in_memory.settlements)
    assert from_dir.close_id == in_memory.close_id


def test_changing_a_closed_row_is_refused() -> None:
    jan = invclose.close(history(), day(31), accounts=ACCOUNTS)
    changed = history().with_columns(
        amount=pl.when(pl.col("txn_id") == "R1")
        .then(pl.lit(D("21.00")))
        .otherwise(pl.col("amount"))
    )
    with pytest.raises(invclose.ClosedPeriodError, match="R1"):
        invclose.close(changed, FEB, accounts=ACCOUNTS, opening=jan)


def test_new_row_in_the_closed_period_is_refused() -> None:
    jan = invclose.close(history(), day(31), accounts=ACCOUNTS)
    late = pl.concat(
        [history(), tx(("LATE", "A", 15, 1, "9.00")).with_columns(seq=pl.lit(99, pl.Int64))]
    )
    with pytest.raises(invclose.ClosedPeriodError, match="LATE") as err:
        invclose.close(late, FEB, accounts=ACCOUNTS, opening=jan)
    assert "2025-01-31" in str(err.value)


def test_closing_date_must_follow_the_opening() -> None:
    jan = invclose.close(history(), day(31), accounts=ACCOUNTS)
    with pytest.raises(invclose.ConfigError, match="after"):
        invclose.close(history(), day(31), accounts=ACCOUNTS, opening=jan)


def test_recalculation_adjusts_without_settling() -> None:
    r = invclose.recalculate(history(), day(15), accounts=ACCOUNTS)
    assert r.run_kind == "recalculation"
    assert r.settlements.is_empty()
    assert r.closed_items.is_empty()
    assert r.lock_date is None
    # J1 (3 units, 33.00) against R1 (2 @ 10.00): 20.00 + 11.00 kept = 31.00 -> +2.00 adjustment.
    assert r.adjustments.select("txn_id", "adjustment", "adjustment_date").rows() == [
        ("J1", D("2.00"), day(15))
    ]
    j1 = r.open_items.filter(pl.col("txn_id") == "J1").row(0, named=True)
    assert (j1["open_qty"], j1["open_value"], j1["carried_value"]) == (
        D(-3),
        D("-31.00"),
        D("-31.00"),
    )


def test_a_close_after_a_recalculation_adjusts_from_the_recalculated_value() -> None:
    recalc = invclose.recalculate(history(), day(15), accounts=ACCOUNTS)
    jan = invclose.close(history(), day(31), accounts=ACCOUNTS, opening=recalc)
    # The close starts from J1's recalculated carried value, 31.00 for 3 units (§10). It settles
    # 2 units for 20.00; the open unit keeps its carried cost pro rata:
    # 31.00 - round(31.00 * 2 / 3) = 31.00 - 20.67 = 10.33. New value 30.33: 0.67 less cost.
    assert jan.settlements.select("issue_txn_id", "amount").rows() == [("J1", D("20.00"))]
    assert jan.adjustments.select("txn_id", "posted_amount", "adjustment", "cost_delta").rows() == [
        ("J1", D("-31.00"), D("0.67"), D("-0.67"))
    ]
    j1 = jan.open_items.filter(pl.col("txn_id") == "J1").row(0, named=True)
    assert (j1["open_value"], j1["carried_value"]) == (D("-10.33"), D("-30.33"))


def test_recalculation_limited_to_some_items() -> None:
    two_items = pl.concat(
        [history(), history().with_columns(item_id=pl.lit("B"), txn_id=pl.col("txn_id") + "b")]
    )
    r = invclose.recalculate(two_items, day(15), accounts=ACCOUNTS, item_ids=["B"])
    assert r.adjustments["txn_id"].to_list() == ["J1b"]
    # Item A's rows are still in the open state that a later run continues from.
    assert "J1" in set(r.open_items["txn_id"])
    # One id as a string is that item, not its characters ("AB" is not items A and B).
    named = two_items.with_columns(item_id=pl.col("item_id").replace({"B": "AB"}))
    one = invclose.recalculate(named, day(15), accounts=ACCOUNTS, item_ids="AB")
    assert one.adjustments["txn_id"].to_list() == ["J1b"]


def test_a_recalculation_limited_to_unknown_items_is_refused() -> None:
    # A mistyped id would recalculate nothing and say nothing: it must be named instead.
    with pytest.raises(invclose.ConfigError, match="hold: 'ZZZ'"):
        invclose.recalculate(history(), day(15), accounts=ACCOUNTS, item_ids=["A", "ZZZ"])
    with pytest.raises(invclose.ConfigError, match="item_ids is empty"):
        invclose.recalculate(history(), day(15), accounts=ACCOUNTS, item_ids=[])
    # 23 mistyped ids: the first 20 named (sorted: Z00 ... Z19), and the 3 others counted,
    # not dropped without a word.
    typos = [f"Z{k:02d}" for k in range(23)]
    with pytest.raises(invclose.ConfigError, match=r"'Z19' \.\.\. and 3 more$"):
        invclose.recalculate(history(), day(15), accounts=ACCOUNTS, item_ids=typos)


def test_recalculation_keeps_the_lock_of_its_opening() -> None:
    jan = invclose.close(history(), day(31), accounts=ACCOUNTS)
    r = invclose.recalculate(history(), dt.date(2025, 2, 15), accounts=ACCOUNTS, opening=jan)
    assert r.lock_date == day(31)
    assert set(r.closed_items["txn_id"]) == {"R1"}


def test_a_physical_issue_marked_to_a_receipt_closed_earlier_goes_to_the_method() -> None:
    # January: R1 1 @ 10.00 is sold (S1) and closed. February: R2 2 @ 14.00, then P1, a
    # physical issue of 1 posted at -12.00 and marked to R1. R1 was financially posted on or
    # before D (by an earlier close), so the mark is valid (no marked_receipt_after_close_date,
    # close-semantics §4); R1 has nothing left, so P1 goes to FIFO: R2 @ 14.00, cost +2.00,
    # counted under include physical value as an adjustment without a piece.
    history = tx(
        ("R1", "A", 5, 1, "10.00"),
        ("S1", "A", 10, -1, "-10.00"),
        ("R2", "A", dt.date(2025, 2, 3), 2, "28.00"),
        ("P1", "A", dt.date(2025, 2, 5), -1, "-12.00", "physical", "R1"),
    )
    options = {"accounts": ACCOUNTS, "include_physical_value": True}
    jan = invclose.close(history, day(31), **options)
    feb = invclose.close(history, FEB, opening=jan, **options)
    assert feb.log.is_empty()
    assert feb.settlements.is_empty()
    assert feb.adjustments.select("txn_id", "cost_delta", "adjusted_against").rows() == [
        ("P1", D("2.00"), ["R2"])
    ]
    p1 = feb.open_items.filter(pl.col("txn_id") == "P1").row(0, named=True)
    assert (p1["open_qty"], p1["carried_value"]) == (D(-1), D("-14.00"))
    # The row-by-row reference agrees (it logged the mark as invalid before this was fixed).
    ref_jan = reference_close(history, day(31), include_physical_value=True)
    ref_feb = reference_close(history, FEB, opening=ref_jan.state, include_physical_value=True)
    assert ref_feb.log.is_empty()


def test_an_invoice_dated_after_the_close_leaves_the_physical_row_in_place() -> None:
    # The input holds P's physical row (20 January) and its invoice (10 February). Closing
    # January, P was received but not invoiced: the close must be the one of January's rows
    # alone (the invoice takes no part yet), whatever later rows the input holds.
    with_invoice = pl.concat([history(), invoice()])
    alone = invclose.close(history(), day(31), accounts=ACCOUNTS)
    jan = invclose.close(with_invoice, day(31), accounts=ACCOUNTS)
    p = jan.open_items.filter(pl.col("txn_id") == "P").row(0, named=True)
    assert (p["status"], p["open_qty"], p["open_value"]) == ("physical", D(2), D("24.00"))
    for name in ("settlements", "adjustments", "balances", "open_items", "log"):
        assert getattr(jan, name).drop("close_id").equals(getattr(alone, name).drop("close_id"))
    # February, from January, with the whole input: the invoice replaces the physical row,
    # as in the February close above (on hand: P invoiced, 2 @ 26.00).
    feb = invclose.close(with_invoice, FEB, accounts=ACCOUNTS, opening=jan)
    assert feb.balances.select("qty", "value").rows() == [(D(2), D("26.00"))]


def test_an_invoice_after_the_close_leaves_an_open_physical_row_given_only_new_rows() -> None:
    # P (physical, 20 January, 2 @ 24.00) is open after January. February's input holds only
    # the rows after January, with P's invoice dated 3 March (after the February close). On
    # 28 February P was still physical: it continues from the opening (2 @ 24.00, physical)
    # and the invoice takes no part, as when the input holds the whole history. P used to
    # vanish: in neither open_items nor closed_items, and out of the balances.
    late_invoice = tx(("P", "A", dt.date(2025, 3, 3), 2, "26.00")).with_columns(
        seq=pl.lit(20, pl.Int64)
    )
    jan = invclose.close(history(), day(31), accounts=ACCOUNTS)
    whole = pl.concat([history(), late_invoice])
    after_january = whole.filter(pl.col("date") > day(31))
    feb = invclose.close(after_january, FEB, accounts=ACCOUNTS, opening=jan)
    p = feb.open_items.filter(pl.col("txn_id") == "P").row(0, named=True)
    assert (p["status"], p["open_qty"], p["open_value"]) == ("physical", D(2), D("24.00"))
    assert feb.balances.select("physical_qty", "physical_value").rows() == [(D(2), D("24.00"))]
    from_whole = invclose.close(whole, FEB, accounts=ACCOUNTS, opening=jan)
    for name in ("settlements", "adjustments", "balances", "open_items", "closed_items", "log"):
        assert (
            getattr(feb, name).drop("close_id").equals(getattr(from_whole, name).drop("close_id"))
        )


def test_an_open_issue_marked_to_a_receipt_left_out_of_the_input_still_waits() -> None:
    # R3 (8 January, 1 @ 8.52) and I5 (10 January, -1 posted 28.63) marked to R2, received
    # 7 March. January leaves I5 open (its receipt is after the closing date, §4). February's
    # input is the month's rows alone (none here), so R2 is in neither the input nor the
    # opening's closed rows: it is not financial on or before 28 February as far as the run
    # knows, so I5 still waits and is logged, as with the whole history. It used to go to
    # FIFO and take R3 (8.52, +20.11) as if R2 had been used up by an earlier close.
    rows = tx(
        ("R3", "A", 8, 1, "8.52"),
        ("I5", "A", 10, -1, "-28.63", "financial", "R2"),
        ("R2", "A", dt.date(2025, 3, 7), 1, "19.97"),
    )
    jan = invclose.close(rows, day(31), accounts=ACCOUNTS)
    february = rows.filter(pl.col("date").is_between(dt.date(2025, 2, 1), FEB))
    for given in (rows, february):
        feb = invclose.close(given, FEB, accounts=ACCOUNTS, opening=jan)
        assert feb.settlements.is_empty()
        assert feb.adjustments.is_empty()
        assert feb.log.select("code", "txn_id").rows() == [
            ("marked_receipt_after_close_date", "I5")
        ]
        i5 = feb.open_items.filter(pl.col("txn_id") == "I5").row(0, named=True)
        assert (i5["open_qty"], i5["open_value"]) == (D(-1), D("-28.63"))


def test_an_invoice_dated_in_the_closed_period_is_refused() -> None:
    # P was physical at the January close; an invoice dated 25 January posts into the closed
    # period (close-semantics §12: physical or financial, no row on or before the lock).
    jan = invclose.close(history(), day(31), accounts=ACCOUNTS)
    backdated = tx(("P", "A", 25, 2, "26.00")).with_columns(seq=pl.lit(20, pl.Int64))
    rows = pl.concat([history().filter(pl.col("txn_id") != "P"), backdated])
    with pytest.raises(invclose.ClosedPeriodError, match="P") as err:
        invclose.close(rows, FEB, accounts=ACCOUNTS, opening=jan)
    assert err.value.failures.select("txn_id", "check").rows() == [
        ("P", "posting_into_closed_period")
    ]


def test_an_invoice_of_more_than_the_open_physical_row_is_refused() -> None:
    # P was received physically (2 units) in January and is open in the opening; an invoice
    # of 3 would add a unit nobody received. The invoice of 2 (invoice()) is accepted.
    jan = invclose.close(history(), day(31), accounts=ACCOUNTS)
    over = invoice().with_columns(qty=pl.lit(D(3)), amount=pl.lit(D("39.00")))
    whole = pl.concat([history(), over])
    for given in (whole, whole.filter(pl.col("date") > day(31))):
        with pytest.raises(invclose.InputValidationError) as err:
            invclose.close(given, FEB, accounts=ACCOUNTS, opening=jan)
        assert err.value.failures.select("txn_id", "check").rows() == [
            ("P", "invoice_exceeds_physical")
        ]
    invclose.close(pl.concat([history(), invoice()]), FEB, accounts=ACCOUNTS, opening=jan)
    # post_costs refuses it as the close does (it returned the invoice as given).
    with pytest.raises(invclose.InputValidationError) as err:
        invclose.post_costs(whole.filter(pl.col("date") > day(31)), opening=jan)
    assert err.value.failures.select("txn_id", "check").rows() == [
        ("P", "invoice_exceeds_physical")
    ]
    # With a row new in the closed period too, one error names both.
    late = tx(("N1", "A", 28, 1, "10.00")).with_columns(seq=pl.lit(40, pl.Int64))
    with pytest.raises(invclose.ClosedPeriodError) as closed_err:
        invclose.close(pl.concat([over, late]), FEB, accounts=ACCOUNTS, opening=jan)
    assert sorted(closed_err.value.failures.select("txn_id", "check").rows()) == [
        ("N1", "posting_into_closed_period"),
        ("P", "invoice_exceeds_physical"),
    ]


def test_every_row_refused_by_an_opening_is_named_at_once() -> None:
    # R1 was closed in January and is changed; N1 is new and dated in the closed January:
    # one error names both, so that one correction of the input suffices.
    jan = invclose.close(history(), day(31), accounts=ACCOUNTS)
    changed = history().with_columns(
        amount=pl.when(pl.col("txn_id") == "R1").then(D("21.00")).otherwise(pl.col("amount"))
    )
    late = tx(("N1", "A", 28, 1, "10.00")).with_columns(seq=pl.lit(40, pl.Int64))
    with pytest.raises(invclose.ClosedPeriodError) as err:
        invclose.close(pl.concat([changed, late]), FEB, accounts=ACCOUNTS, opening=jan)
    assert sorted(err.value.failures.select("txn_id", "check").rows()) == [
        ("N1", "posting_into_closed_period"),
        ("R1", "closed_row_changed"),
    ]
    assert "R1" in str(err.value)
    assert "N1" in str(err.value)


def test_rows_new_in_the_closed_period_are_named_beside_invalid_rows() -> None:
    # The whole history again (R1, J1, P as the opening knows them, dated in January: not
    # refused), N1 new and dated in the closed January, and F1 repeated (invalid): one error
    # names N1 and both F1 rows, where F1 was refused alone and N1 only after its correction.
    jan = invclose.close(history(), day(31), accounts=ACCOUNTS)
    late = tx(("N1", "A", 28, 1, "10.00")).with_columns(seq=pl.lit(40, pl.Int64))
    again = tx(("F1", "A", FEB, -1, "-12.00")).with_columns(seq=pl.lit(41, pl.Int64))
    with pytest.raises(invclose.ClosedPeriodError) as err:
        invclose.close(pl.concat([history(), late, again]), FEB, accounts=ACCOUNTS, opening=jan)
    failures = err.value.failures
    assert failures is not None
    assert sorted(failures.select("txn_id", "check").rows()) == [
        ("F1", "txn_id_duplicate"),
        ("F1", "txn_id_duplicate"),
        ("N1", "posting_into_closed_period"),
    ]
    assert "N1. Post them with a date after 2025-01-31" in str(err.value)
    # Without N1 the validation error stands alone, as it was.
    with pytest.raises(invclose.InputValidationError, match="txn_id_duplicate"):
        invclose.close(pl.concat([history(), again]), FEB, accounts=ACCOUNTS, opening=jan)


def test_a_mark_to_a_receipt_closed_earlier_needs_no_history(tmp_path: Path) -> None:
    # January closes R1 (J1 takes both its units). February's F2 is marked to R1: nothing of
    # R1 is left, so F2 goes to FIFO, where R2's 2 units go to J1's open unit and F1 first:
    # F2 is left unsettled (1 unit, logged). Given only February's rows (the contract
    # allows it), the mark names a row the input does not hold but the opening closed: the
    # close must be the one of the whole history, not a marked_to_unknown error.
    jan = invclose.close(history(), day(31), accounts=ACCOUNTS)
    marked = tx(("F2", "A", dt.date(2025, 2, 5), -1, "-12.00", "financial", "R1")).with_columns(
        seq=pl.lit(30, pl.Int64)
    )
    full = pl.concat([history(), marked])
    only_new = full.filter(pl.col("date") > day(31))
    a = invclose.close(full, FEB, accounts=ACCOUNTS, opening=jan)
    b = invclose.close(only_new, FEB, accounts=ACCOUNTS, opening=jan)
    assert b.settlements.filter(pl.col("issue_txn_id") == "F2").is_empty()
    short = b.log.filter(pl.col("code") == "insufficient_receipts")
    assert short.select("txn_id", "qty").rows() == [("F2", D(1))]
    for name in ("settlements", "adjustments", "balances", "open_items", "log"):
        assert getattr(a, name).drop("close_id").equals(getattr(b, name).drop("close_id")), name
    # The batched close too: each batch's slice of the opening holds the receipts its marks name.
    close_batched(only_new, FEB, tmp_path / "feb", batch_rows=1, accounts=ACCOUNTS, opening=jan)
    batched = invclose.read_result(tmp_path / "feb")
    assert batched.log.drop("close_id").equals(b.log.drop("close_id"))


def test_no_conversion_from_moving_average_to_a_periodic_method() -> None:
    # close-semantics §3.8. January values A at moving average (on hand 4 @ 10.00 after R1 5
    # @ 10.00 and S1 1 @ 10.00); February asks for FIFO: refused by name, not settled against
    # the moving-average on-hand row. Staying moving_average (or going to standard) is fine.
    jan_rows = tx(("R1", "A", 5, 5, "50.00"), ("S1", "A", 6, -1, "-10.00"))
    jan = invclose.close(jan_rows, day(31), method="moving_average", accounts=ACCOUNTS)
    feb_rows = pl.concat(
        [
            jan_rows,
            tx(("R2", "A", dt.date(2025, 2, 5), 2, "30.00")).with_columns(seq=pl.lit(5, pl.Int64)),
        ]
    )
    with pytest.raises(invclose.ConfigError, match=r"A \(now fifo\)"):
        invclose.close(feb_rows, FEB, method="fifo", accounts=ACCOUNTS, opening=jan)
    feb = invclose.close(feb_rows, FEB, method="moving_average", accounts=ACCOUNTS, opening=jan)
    assert feb.balances.select("qty", "value").rows() == [(D(6), D("70.00"))]


def test_an_opening_that_makes_a_group_too_large_is_refused() -> None:
    # 3e12 units in January, 2e12 in February: each input alone is under 2**62 micro-units
    # (4.6e12 units), but February's group with the opening's open receipt holds 5e12, where
    # 64-bit sums wrap around (a negative balance came out). It must be refused by name.
    jan_rows = tx(("R1", "A", 2, "3000000000000", "100.00"))
    jan = invclose.close(jan_rows, day(31), accounts=ACCOUNTS)
    feb_rows = tx(("R2", "A", dt.date(2025, 2, 2), "2000000000000", "300.00")).with_columns(
        seq=pl.lit(1, pl.Int64)
    )
    with pytest.raises(invclose.InputValidationError, match="too large to close exactly") as err:
        invclose.close(feb_rows, FEB, accounts=ACCOUNTS, opening=jan)
    assert err.value.failures is not None
    assert sorted(err.value.failures["txn_id"]) == ["R1", "R2"]


def test_a_recalculation_of_some_items_has_an_id_of_its_own() -> None:
    # A and B: receipts 2 @ 15.00 and 1 @ 21.00, a sale of 2 posted at -34.00 that FIFO
    # settles at 30.00 (-4.00 each). A recalculation of A alone adjusts one row, of both two:
    # two different results, which used to share one id.
    rows = pl.concat(
        [
            tx((f"{i}1", i, 1, 2, "30.00"), (f"{i}2", i, 2, 1, "21.00"), (f"{i}S", i, 3, -2, "-34"))
            for i in ("A", "B")
        ]
    )
    both = invclose.recalculate(rows, day(31), accounts=ACCOUNTS)
    only_a = invclose.recalculate(rows, day(31), accounts=ACCOUNTS, item_ids=["A"])
    assert both.adjustments.select("txn_id", "cost_delta").rows() == [
        ("AS", D("-4.00")),
        ("BS", D("-4.00")),
    ]
    assert only_a.adjustments.select("txn_id", "cost_delta").rows() == [("AS", D("-4.00"))]
    assert only_a.close_id != both.close_id
    assert invclose.recalculate(rows, day(31), accounts=ACCOUNTS, item_ids=["A"]).close_id == (
        only_a.close_id
    )


def _order_rows(*records: tuple[str, str, str, dt.date, int, str, str]) -> pl.DataFrame:
    """(txn_id, item, site, date, qty, amount, kind) rows of order O1."""
    return pl.DataFrame(
        [
            {
                "txn_id": t,
                "item_id": item,
                "site": site,
                "date": date,
                "qty": D(qty),
                "amount": D(amount),
                "seq": n,
                "kind": kind,
                "order_id": None if kind == "purchase" else "O1",
            }
            for n, (t, item, site, date, qty, amount, kind) in enumerate(records)
        ],
        schema=ORDER_SCHEMA,
    )


def test_a_month_that_breaks_an_order_the_opening_holds_is_refused() -> None:
    # January ships 2 of A from S1 in transfer order O1; its receipt comes in February, so the
    # shipment waits in January's open items. February's input (its own rows only) alone
    # keeps the order rules; with the opening's shipment, a receipt of kind production mixes
    # kinds (§9.1) and a transfer receipt of item B moves a second item (contract §1).
    january = _order_rows(
        ("P1", "A", "S1", day(2), 2, "20.00", "purchase"),
        ("T1", "A", "S1", day(3), -2, "-20.00", "transfer"),
    )
    jan = invclose.close(january, day(31), dimensions=["site"], accounts=ACCOUNTS)
    february = dt.date(2025, 2, 3)
    for kind, item, check in (
        ("production", "A", "order_kind_mixed"),
        ("transfer", "B", "transfer_other_item"),
    ):
        wrong = _order_rows(("T2", item, "S2", february, 2, "20.00", kind))
        with pytest.raises(invclose.InputValidationError, match="the opening") as refused:
            invclose.close(wrong, FEB, dimensions=["site"], accounts=ACCOUNTS, opening=jan)
        failures = refused.value.failures
        assert failures is not None
        assert failures.select("txn_id", "check").rows() == [("T2", check)]
    right = _order_rows(("T2", "A", "S2", february, 2, "20.00", "transfer"))
    feb = invclose.close(right, FEB, dimensions=["site"], accounts=ACCOUNTS, opening=jan)
    assert feb.balances.filter(pl.col("site") == "S2")["value"].to_list() == [D("20.00")]
    # The whole history again (the contract's other form) repeats T1: counted once.
    both = pl.concat([january, right])
    again = invclose.close(both, FEB, dimensions=["site"], accounts=ACCOUNTS, opening=jan)
    assert again.balances.filter(pl.col("site") == "S2")["value"].to_list() == [D("20.00")]


def test_a_group_closed_under_another_method_than_the_opening_is_warned() -> None:
    # January closes A under lifo (item table) and B under fifo (the default). February's
    # close leaves the item table out: A closes under fifo, which is allowed (only moving
    # average cannot become periodic, §3.8) but rarely meant (review 59): one warning, for A.
    january = tx(("RA", "A", 2, 2, "20.00"), ("RB", "B", 2, 1, "5.00"))
    items = pl.DataFrame({"item_id": ["A"], "method": ["lifo"]})
    jan = invclose.close(january, day(31), items=items, accounts=ACCOUNTS)
    february = tx(("SA", "A", 3, -1, "-10.00")).with_columns(date=pl.lit(dt.date(2025, 2, 3)))
    feb = invclose.close(february, FEB, accounts=ACCOUNTS, opening=jan)
    warned = feb.log.filter(pl.col("code") == "method_changed")
    assert warned.select("level", "item_id").rows() == [("warning", "A")]
    assert warned["message"][0].startswith("A: closed under fifo, the opening under lifo")
    # With the item table again, nothing is warned.
    kept = invclose.close(february, FEB, items=items, accounts=ACCOUNTS, opening=jan)
    assert kept.log.filter(pl.col("code") == "method_changed").is_empty()
