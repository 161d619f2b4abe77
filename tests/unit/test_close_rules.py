"""Hand-calculated closes, one rule each (close-semantics §3, §4, §7, §13)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest

import invclose
from tests.helpers import ACCOUNTS, D, day, tx


def close(frame: pl.DataFrame, method: str = "fifo", **kw: object) -> invclose.CloseResult:
    return invclose.close(frame, day(31), method=method, accounts=ACCOUNTS, **kw)


def pieces(result: invclose.CloseResult) -> list[tuple[str, str, Decimal, Decimal]]:
    return result.settlements.select("issue_txn_id", "receipt_txn_id", "qty", "amount").rows()


def test_cumulative_rounding_along_a_receipt() -> None:
    # One receipt of 3 units for 62.00, three issues of 1 unit each (posted 20.00 each).
    # Cumulative values along the receipt: round(62*1/3)=20.67, round(62*2/3)=41.33, 62.00,
    # so the pieces are 20.67, 41.33-20.67=20.66 and 62.00-41.33=20.67: they sum to 62.00.
    frame = tx(
        ("R", "A", 1, 3, "62.00"),
        ("I1", "A", 2, -1, "-20.00"),
        ("I2", "A", 3, -1, "-20.00"),
        ("I3", "A", 4, -1, "-20.00"),
    )
    result = close(frame)
    assert pieces(result) == [
        ("I1", "R", D(1), D("20.67")),
        ("I2", "R", D(1), D("20.66")),
        ("I3", "R", D(1), D("20.67")),
    ]
    assert result.adjustments.select("txn_id", "cost_delta").rows() == [
        ("I1", D("0.67")),
        ("I2", D("0.66")),
        ("I3", D("0.67")),
    ]
    assert result.balances["value"].to_list() == [D("0.00")]
    assert "R" in set(result.closed_items["txn_id"])


def test_partial_issue_keeps_carried_cost_for_the_unsettled_part() -> None:
    # Receipt 2 @ 10.00 = 20.00; issue of 3 posted at 36.00 (12.00 each).
    # Settled: 2 units for 20.00; unsettled 1 unit keeps 36.00 - round(36*2/3) = 12.00.
    # New issue value 32.00: adjustment +4.00 (less cost), cost_delta -4.00.
    frame = tx(("R", "A", 1, 2, "20.00"), ("I", "A", 2, -3, "-36.00"))
    result = close(frame)
    adj = result.adjustments.row(0, named=True)
    assert (adj["posted_amount"], adj["settled_amount"]) == (D("-36.00"), D("-32.00"))
    assert (adj["adjustment"], adj["cost_delta"]) == (D("4.00"), D("-4.00"))
    log = result.log.filter(pl.col("code") == "insufficient_receipts")
    assert log.select("txn_id", "qty").rows() == [("I", D(1))]
    open_issue = result.open_items.filter(pl.col("txn_id") == "I").row(0, named=True)
    assert (open_issue["open_qty"], open_issue["open_value"]) == (D(-1), D("-12.00"))
    neg = result.log.filter(pl.col("code") == "negative_on_hand")
    assert neg.select("item_id", "qty").rows() == [("A", D(-1))]
    assert result.balances.select("qty", "value").rows() == [(D(-1), D("-12.00"))]


def test_fifo_issue_before_its_receipt_settles_against_a_later_receipt() -> None:
    # Issue on day 1 into negative stock, receipt on day 5: FIFO pairs them (§3.2).
    frame = tx(("I", "A", 1, -2, "-10.00"), ("R", "A", 5, 2, "14.00"))
    result = close(frame)
    assert pieces(result) == [("I", "R", D(2), D("14.00"))]
    assert result.adjustments["cost_delta"].to_list() == [D("4.00")]


def test_lifo_takes_the_last_receipt_of_the_period_even_after_the_issue() -> None:
    frame = tx(
        ("R1", "A", 1, 1, "10.00"),
        ("I", "A", 2, -1, "-10.00"),
        ("R2", "A", 9, 1, "30.00"),
    )
    assert pieces(close(frame, "lifo")) == [("I", "R2", D(1), D("30.00"))]


def test_lifo_date_prefers_receipts_on_or_before_the_issue_date() -> None:
    # Same data: lifo_date takes R1 (latest receipt dated on or before day 2).
    frame = tx(
        ("R1", "A", 1, 1, "10.00"),
        ("I", "A", 2, -1, "-10.00"),
        ("R2", "A", 9, 1, "30.00"),
    )
    assert pieces(close(frame, "lifo_date")) == [("I", "R1", D(1), D("10.00"))]


def test_lifo_date_same_day_receipt_posted_after_the_issue_counts() -> None:
    frame = tx(
        ("R1", "A", 1, 1, "10.00"),
        ("I", "A", 2, -1, "-10.00"),
        ("R2", "A", 2, 1, "30.00"),
    )
    assert pieces(close(frame, "lifo_date")) == [("I", "R2", D(1), D("30.00"))]


def test_lifo_date_several_issues_on_one_date_last_issue_first() -> None:
    # Day 1: receipts R1 (10.00), R2 (20.00); issues I1 then I2 on day 2.
    # The last issue (I2) goes first and takes the latest receipt R2; I1 gets R1.
    frame = tx(
        ("R1", "A", 1, 1, "10.00"),
        ("R2", "A", 1, 1, "20.00"),
        ("I1", "A", 2, -1, "-15.00"),
        ("I2", "A", 2, -1, "-15.00"),
    )
    assert sorted(pieces(close(frame, "lifo_date"))) == [
        ("I1", "R1", D(1), D("10.00")),
        ("I2", "R2", D(1), D("20.00")),
    ]


def test_lifo_date_leftovers_take_later_receipts_nearest_first() -> None:
    # Issue on day 1 finds nothing on or before day 1; later receipts R5 (day 5) and R9 (day 9):
    # nearest first, so R5.
    frame = tx(
        ("I", "A", 1, -1, "-10.00"),
        ("R5", "A", 5, 1, "12.00"),
        ("R9", "A", 9, 1, "30.00"),
    )
    assert pieces(close(frame, "lifo_date")) == [("I", "R5", D(1), D("12.00"))]


def test_rows_after_the_closing_date_take_no_part() -> None:
    frame = tx(("I", "A", 10, -1, "-10.00"), ("R", "A", 1, 1, "10.00"))
    late = frame.with_columns(
        pl.when(pl.col("txn_id") == "R")
        .then(pl.lit(day(31)).dt.offset_by("1d"))
        .otherwise(pl.col("date"))
        .alias("date")
    )
    result = close(late)
    assert result.settlements.is_empty()
    assert "R" not in set(result.open_items["txn_id"])
    assert result.log.filter(pl.col("code") == "insufficient_receipts")["txn_id"].to_list() == ["I"]


def test_settlement_stays_within_financial_dimensions() -> None:
    # Site S1's issue cannot use site S2's receipt.
    frame = tx(
        ("R2", "A", 1, 1, "50.00"),
        ("I1", "A", 2, -1, "-10.00"),
        site=["S2", "S1"],
    )
    result = close(frame, dimensions=["site"])
    assert result.settlements.is_empty()
    assert result.balances.select("site", "qty").sort("site").rows() == [
        ("S1", D(-1)),
        ("S2", D(1)),
    ]


def test_marked_issue_beyond_its_receipt_goes_to_the_method() -> None:
    # I (3 units) is marked to R2 (2 units @ 20.00); 1 unit goes to fifo -> R1 (@ 10.00).
    frame = tx(
        ("R1", "A", 1, 1, "10.00"),
        ("R2", "A", 2, 2, "40.00"),
        ("I", "A", 3, -3, "-45.00", "financial", "R2"),
    )
    result = close(frame)
    assert sorted(
        result.settlements.select("receipt_txn_id", "qty", "amount", "principle").rows()
    ) == [
        ("R1", D(1), D("10.00"), "fifo"),
        ("R2", D(2), D("40.00"), "marking"),
    ]
    # 50.00 settled vs 45.00 posted: 5.00 more cost.
    assert result.adjustments["cost_delta"].to_list() == [D("5.00")]


def test_marked_receipt_after_the_closing_date_blocks_the_issue() -> None:
    frame = tx(
        ("R1", "A", 1, 1, "10.00"),
        ("I", "A", 2, -1, "-12.00", "financial", "RL"),
        ("RL", "A", 2, 1, "30.00", "physical"),
    )
    result = close(frame)
    assert result.settlements.is_empty()
    assert result.adjustments.is_empty()
    assert result.log.select("code", "txn_id", "qty").rows() == [
        ("marked_receipt_after_close_date", "I", D(1))
    ]


def test_financial_issue_adjusted_against_physical_receipt_logs_it() -> None:
    # include physical value: I (financial) meets only physical receipt P: adjusted, not settled.
    frame = tx(("P", "A", 1, 2, "30.00", "physical"), ("I", "A", 2, -1, "-12.00"))
    result = close(frame, include_physical_value=True)
    assert result.settlements.is_empty()
    adj = result.adjustments.row(0, named=True)
    assert (adj["txn_id"], adj["cost_delta"], adj["adjusted_against"]) == ("I", D("3.00"), ["P"])
    codes = result.log.select("code", "txn_id").sort("code").rows()
    assert ("receipt_not_invoiced", "P") in codes
    assert ("insufficient_receipts", "I") in codes
    issue = result.open_items.filter(pl.col("txn_id") == "I").row(0, named=True)
    assert (issue["open_qty"], issue["open_value"], issue["carried_value"]) == (
        D(-1),
        D("-15.00"),
        D("-15.00"),
    )


def test_an_issue_paired_with_a_physical_receipt_is_not_short_of_receipts() -> None:
    # include physical value, FIFO: P (physical 5 @ 10.00) comes first, so I (5 issued,
    # posted 75.00) is adjusted against P to 50.00 and not settled. But R (5 @ 20.00,
    # financial) covers I's 5 units: the group issues no more than it received, so nothing
    # is short of receipts (§13). P is named as not invoiced (warning), and I, whose 5 units
    # stay open until P is invoiced, as awaiting that invoice (info): the pre-close check
    # lists every issue that stays unsettled, with its reason.
    frame = tx(
        ("P", "A", 1, 5, "50.00", "physical"),
        ("R", "A", 2, 5, "100.00"),
        ("I", "A", 3, -5, "-75.00"),
    )
    result = close(frame, include_physical_value=True)
    adj = result.adjustments.row(0, named=True)
    assert (adj["txn_id"], adj["settled_amount"], adj["adjusted_against"]) == (
        "I",
        D("-50.00"),
        ["P"],
    )
    expected = [
        ("info", "awaiting_invoice", "I", D(5)),
        ("warning", "receipt_not_invoiced", "P", D(5)),
    ]
    assert result.log.select("level", "code", "txn_id", "qty").sort("code").rows() == expected
    waiting = result.log.filter(pl.col("code") == "awaiting_invoice")["message"].item()
    assert waiting.startswith("issue I:")
    assert "physical receipt(s) P," in waiting
    checked = invclose.check(
        frame, day(31), method="fifo", accounts=ACCOUNTS, include_physical_value=True
    )
    assert checked.select("level", "code", "txn_id", "qty").sort("code").rows() == expected
    # The auditor's view of what the close could not settle names both.
    unsettled = result.sql("select code, txn_id from unsettled order by code").rows()
    assert unsettled == [("awaiting_invoice", "I"), ("receipt_not_invoiced", "P")]


def test_an_issue_whose_receipts_went_to_a_physical_issue_is_listed_as_waiting() -> None:
    # include physical value, FIFO: F (financial 1 @ 10.00) is taken by PI, a physical issue
    # posted first (adjusted only). FI (financial, 1 posted at 12.00) finds nothing left:
    # it stays open, though the group's financial receipts (1) cover its financial issues
    # (1). Nothing is short and no physical receipt is involved; FI waits for PI's invoice.
    frame = tx(
        ("F", "A", 1, 1, "10.00"),
        ("PI", "A", 2, -1, "-12.00", "physical"),
        ("FI", "A", 3, -1, "-12.00"),
    )
    result = close(frame, include_physical_value=True)
    fi = result.open_items.filter(pl.col("txn_id") == "FI").row(0, named=True)
    assert (fi["open_qty"], fi["open_value"]) == (D(-1), D("-12.00"))
    assert result.log.select("level", "code", "txn_id", "qty").rows() == [
        ("info", "awaiting_invoice", "FI", D(1))
    ]
    message = result.log["message"].item()
    assert "went to physical issues" in message


def test_an_issue_partly_adjusted_against_a_physical_receipt_waits_for_all_of_it() -> None:
    # include physical value, FIFO: F (2 @ 10.00) goes to PI1 and PI2 (physical, 1 each);
    # FI (financial, 2 posted at 24.00) meets only P (physical, 1 @ 13.00): 1 unit adjusted
    # against P, the other unit has no receipt left. Financial receipts 2 >= financial
    # issues 2: not short. FI's whole open quantity, 2, waits for invoices (P's and the
    # physical issues'); P is logged as not invoiced.
    frame = tx(
        ("F", "A", 1, 2, "20.00"),
        ("PI1", "A", 2, -1, "-12.00", "physical"),
        ("PI2", "A", 3, -1, "-12.00", "physical"),
        ("FI", "A", 4, -2, "-24.00"),
        ("P", "A", 5, 1, "13.00", "physical"),
    )
    result = close(frame, include_physical_value=True)
    log = result.log.select("level", "code", "txn_id", "qty").sort("code").rows()
    assert log == [
        ("info", "awaiting_invoice", "FI", D(2)),
        ("warning", "receipt_not_invoiced", "P", D(1)),
    ]
    message = result.log.filter(pl.col("txn_id") == "FI")["message"].item()
    assert "physical receipt(s) P," in message


def test_a_bad_accounts_mapping_is_reported_with_the_other_tables_before_the_kernel() -> None:
    # Transactions, item table and accounts mapping all fail: one error lists all three
    # (the mapping was checked only after the kernel had run, and then alone).
    frame = tx(("R", "A", 1, 2, "20.00"), ("I", "A", 3, -1, "3.00"))
    items = pl.DataFrame({"item_id": ["A"], "method": ["fifoo"]})
    accounts = pl.concat([ACCOUNTS, ACCOUNTS])  # the same (kind, item_group) twice
    with pytest.raises(invclose.InputValidationError) as err:
        invclose.close(frame, day(31), items=items, accounts=accounts)
    text = str(err.value)
    assert "[amount_sign]" in text
    assert "[method_unknown]" in text
    assert "[accounts_duplicate]" in text
    assert err.value.failures is not None
    assert err.value.failures.select("txn_id", "check").rows() == [("I", "amount_sign")]


def test_quantities_and_money_beyond_64_bits_are_exact() -> None:
    # 1,000,000 units for 12,345,678.91; an issue of 333,333.333333 units.
    # V*c/Q = 1234567891 cents * 333333333333 micro / 1e12 micro = 411522630.3292... cents.
    frame = tx(
        ("R", "A", 1, "1000000", "12345678.91"), ("I", "A", 2, "-333333.333333", "-4115226.30")
    )
    result = close(frame)
    assert pieces(result) == [("I", "R", D("333333.333333"), D("4115226.30"))]
    assert result.adjustments.is_empty()


@pytest.mark.parametrize("method", ["fifo", "lifo", "lifo_date"])
def test_physical_rows_take_no_part_without_the_option(method: str) -> None:
    frame = tx(("P", "A", 1, 1, "50.00", "physical"), ("I", "A", 2, -1, "-10.00", "physical"))
    result = close(frame, method)
    assert result.settlements.is_empty()
    assert result.adjustments.is_empty()
    assert set(result.open_items["txn_id"]) == {"P", "I"}
    assert result.balances.select("qty", "physical_qty", "physical_value").rows() == [
        (D(0), D(0), D("40.00"))
    ]


def test_an_empty_frame_closes_to_empty_tables_with_a_warning() -> None:
    frame = tx(("R", "A", 1, 1, "1.00")).clear()
    result = close(frame)
    tables = result.tables()
    assert all(table.is_empty() for name, table in tables.items() if name != "log")
    assert result.log.select("level", "code").rows() == [("warning", "nothing_to_close")]
    assert result.lock_date == day(31)
    # Only a row dated after the closing date: nothing to close either.
    later = invclose.close(
        tx(("R", "A", 1, 1, "1.00")).with_columns(date=pl.lit(dt.date(2025, 2, 3))),
        day(31),
        accounts=ACCOUNTS,
    )
    assert later.log.select("code").rows() == [("nothing_to_close",)]


def test_bad_transactions_and_a_bad_item_table_are_reported_together() -> None:
    # One round of fixes, not two: I's amount has the wrong sign and the item table names a
    # method that does not exist; the one error lists both, the transactions' rows in
    # .failures.
    frame = tx(("R", "A", 1, 2, "20.00"), ("I", "A", 3, -1, "3.00"))
    items = pl.DataFrame({"item_id": ["A"], "method": ["fifoo"]})
    with pytest.raises(invclose.InputValidationError) as err:
        close(frame, items=items)
    text = str(err.value)
    assert "(txn_id 'I'), column 'amount' [amount_sign]" in text
    assert "(item_id 'A'), column 'method' [method_unknown]" in text
    assert err.value.failures is not None
    assert err.value.failures.select("txn_id", "check").rows() == [("I", "amount_sign")]


def test_virtual_ids_of_groups_whose_dimensions_hold_the_separator_differ() -> None:
    # Two weighted-average groups of item A, dimensions ("a|b", "c") and ("a", "b|c"): each
    # has two sources and an issue, so each gets a closing pair. Joined by "|" as they are,
    # both pairs were "~wac:2025-01-31:A:a|b|c:...": the "|" inside a value is escaped.
    frame = tx(
        ("R1", "A", 1, 2, "10.00"),
        ("R2", "A", 2, 2, "14.00"),
        ("I1", "A", 3, -1, "-10.00"),
        ("R3", "A", 1, 2, "10.00"),
        ("R4", "A", 2, 2, "14.00"),
        ("I2", "A", 3, -1, "-10.00"),
        d1=["a|b"] * 3 + ["a"] * 3,
        d2=["c"] * 3 + ["b|c"] * 3,
    )
    result = close(frame, "weighted_average", dimensions=["d1", "d2"])
    receipts = result.open_items.filter(pl.col("is_virtual"))["txn_id"].sort().to_list()
    assert receipts == [
        "~wac:2025-01-31:A:a\\|b|c:receipt",
        "~wac:2025-01-31:A:a|b\\|c:receipt",
    ]
    assert (
        result.settlements["issue_txn_id"]
        .filter(result.settlements["issue_txn_id"].str.starts_with("~"))
        .n_unique()
        == 2
    )


def test_dimension_values_that_differ_only_in_spelling_are_warned_per_item() -> None:
    # Item A is received at "S1", "S1 " and "s1", and at "" and null: five financial
    # dimensions as given, of which the extract most likely meant two. Each spelling group
    # of an item is one warning (per item, so that a batched close finds the same); item B,
    # at "S1" only, has none.
    frame = tx(
        ("R1", "A", 1, 1, "1.00"),
        ("R2", "A", 2, 1, "1.00"),
        ("R3", "A", 3, 1, "1.00"),
        ("R4", "A", 4, 1, "1.00"),
        ("R5", "A", 5, 1, "1.00"),
        ("R6", "B", 5, 1, "1.00"),
        site=["S1", "S1 ", "s1", "", None, "S1"],
    )
    result = invclose.close(frame, day(31), dimensions=["site"], accounts=ACCOUNTS)
    warned = result.log.filter(pl.col("code") == "dimension_spellings")
    assert warned.select("level", "item_id").rows() == [("warning", "A"), ("warning", "A")]
    assert warned["message"].to_list() == [
        "item A: site values '', null are 2 financial dimensions that differ only in spaces, "
        "case or null against empty; if they are one, correct the extract",
        "item A: site values 'S1', 'S1 ', 's1' are 3 financial dimensions that differ only in "
        "spaces, case or null against empty; if they are one, correct the extract",
    ]


def test_an_item_table_key_spelt_differently_from_its_item_is_warned() -> None:
    # The item table names "A " (a trailing blank) and "\u200bA" (a zero-width space) as
    # weighted_average, "b" beside an exact "B" (lifo), and "ZZ" (no such item this month). Keys are
    # compared as given, so A has no row and closes under the default method (fifo): one
    # warning for A naming both spellings. B has its own row ("b" is then only an extra row)
    # and ZZ resembles nothing: no warning.
    frame = tx(("R1", "A", 1, 2, "10.00"), ("S1", "A", 2, -1, "-4.00"), ("R2", "B", 1, 1, "1.00"))
    items = pl.DataFrame(
        {
            "item_id": ["A ", "\u200bA", "b", "B", "ZZ"],
            "method": ["weighted_average", "weighted_average", "weighted_average", "lifo", "fifo"],
        }
    )
    result = invclose.close(frame, day(31), method="fifo", items=items, accounts=ACCOUNTS)
    warned = result.log.filter(pl.col("code") == "item_table_spellings")
    assert warned.select("level", "item_id").rows() == [("warning", "A")]
    assert warned["message"].to_list() == [
        "item 'A' has no row in the item table, which names 'A ', '\u200bA': a spelling that "
        "differs only in spaces, zero-width characters, case or leading zeros, compared as "
        "given (an item_id column read as integers loses its zeros); the item was closed with "
        "the defaults (method fifo). If they are one item, correct the item table or the "
        "extract"
    ]
    # A was closed under fifo, B under its own row.
    assert result.balances.select("item_id", "method").rows() == [("A", "fifo"), ("B", "lifo")]


def test_an_item_table_read_as_integers_is_warned_whatever_else_the_run_holds() -> None:
    # The transactions name item "00042" (text); the item table was read with inferred
    # types (pl.read_csv), so its item_id is the integer 42 and "00042" has no row: closed
    # under fifo, not lifo, and warned (review 59).
    numbered = tx(("R1", "00042", 1, 2, "10.00"))
    read_as_integers = pl.DataFrame(
        {"item_id": pl.Series([42], dtype=pl.Int64), "method": ["lifo"]}
    )
    result = invclose.close(numbered, day(31), items=read_as_integers, accounts=ACCOUNTS)
    warned = result.log.filter(pl.col("code") == "item_table_spellings")
    assert warned["item_id"].to_list() == ["00042"]
    assert "which names '42'" in warned["message"][0]
    assert result.balances.select("item_id", "method").rows() == [("00042", "fifo")]
    # Items "it1" (with a row) and "IT1" (without) are both real: IT1 is warned whether or
    # not "it1" is in the same run (review 60: a batch holding IT1 alone warned, the
    # in-memory close of both did not).
    frame = tx(("R2", "it1", 1, 1, "1.00"), ("R3", "IT1", 1, 1, "1.00"))
    items = pl.DataFrame({"item_id": ["it1"], "method": ["lifo"]})
    for rows_of_run in (frame, frame.filter(pl.col("item_id") == "IT1")):
        run = invclose.close(rows_of_run, day(31), items=items, accounts=ACCOUNTS)
        spelt = run.log.filter(pl.col("code") == "item_table_spellings")
        assert spelt["item_id"].to_list() == ["IT1"]
