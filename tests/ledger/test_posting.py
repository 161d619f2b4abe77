"""Posting: sequence, posting vouchers, invoice updates, lapsed adjustments, costing hook."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

import invclose
from invclose.ledger import Ledger
from tests.ledger.helpers import (
    ACCOUNTS,
    CONFIG,
    D,
    assert_consistent,
    day,
    dump,
    gl_balance,
    rows,
    same_dump,
)


@pytest.fixture
def books(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger(tmp_path / "books.duckdb", config=CONFIG)
    try:
        yield ledger
    finally:
        ledger.disconnect()


def lines(books: Ledger, run_id: int) -> list[tuple[object, ...]]:
    frame = books.vouchers(run_id).select("txn_id", "account", "debit", "credit")
    return frame.rows()


def test_posting_vouchers_and_sequence(books: Ledger) -> None:
    first = books.post(
        rows(
            ("R1", "A", day(1, 3), 2, "20.00", "purchase"),
            ("S1", "A", day(1, 4), -1, "-10.00", "sale"),
        )
    )
    second = books.post(rows(("R2", "A", day(1, 3), 1, "12.00", "purchase")))
    # One voucher per transaction: inventory takes the amount, the offset the opposite.
    assert lines(books, first) == [
        ("R1", "1400", D("20.00"), D("0.00")),
        ("R1", "2100", D("0.00"), D("20.00")),
        ("S1", "1400", D("0.00"), D("10.00")),
        ("S1", "5000", D("10.00"), D("0.00")),
    ]
    assert books.vouchers(first)["voucher_id"].n_unique() == 2
    # Without a seq column, a batch follows every earlier posting.
    seqs = dict(books.transactions().select("txn_id", "seq").iter_rows())
    assert seqs == {"R1": 0, "S1": 1, "R2": 2}
    assert books.history().select("run_id", "kind", "transactions").rows() == [
        (first, "post", 2),
        (second, "post", 1),
    ]
    assert_consistent(books)


def test_invoice_update_posts_the_difference_per_account(books: Ledger) -> None:
    received = rows(("P", "A", day(1, 3), 5, "70.00", "purchase", "physical")).with_columns(
        inventory_account=pl.lit("1400"),
        offset_account=pl.lit("2150"),  # goods received
    )
    books.post(received)
    invoice = books.post(rows(("P", "A", day(1, 9), 5, "75.00", "purchase")))
    # 2150 (goods received, not invoiced) is cleared, payables 2100 take the invoice, and
    # inventory moves by the difference 75.00 - 70.00.
    assert sorted(lines(books, invoice)) == [
        ("P", "1400", D("5.00"), D("0.00")),
        ("P", "2100", D("0.00"), D("75.00")),
        ("P", "2150", D("70.00"), D("0.00")),
    ]
    assert books.transactions()["status"].to_list() == ["financial"]
    assert books.transactions(all_versions=True).height == 2
    before = dump(books)
    with pytest.raises(invclose.InputValidationError, match="repeat a txn_id"):
        books.post(rows(("P", "A", day(1, 10), 5, "76.00", "purchase")))
    assert same_dump(before, dump(books))
    assert gl_balance(books, "1400") == D("75.00")
    assert_consistent(books)


def test_partial_invoice(books: Ledger) -> None:
    books.post(rows(("P", "A", day(1, 3), 5, "70.00", "purchase", "physical")))
    books.post(
        rows(
            ("P", "A", day(1, 9), 3, "45.00", "purchase"),  # 3 invoiced at 15.00
            ("P-rest", "A", day(1, 9), 2, "28.00", "purchase", "physical"),  # 2 still open
        )
    )
    # 1400: 70.00, then 45.00 - 70.00 + 28.00 = +3.00.
    assert gl_balance(books, "1400") == D("73.00")
    books.close("2025-01-31")
    assert_consistent(books)


def test_a_lapsed_adjustment_is_not_mirrored(tmp_path: Path) -> None:
    cfg = invclose.CloseConfig(dimensions=["site"], accounts=ACCOUNTS, include_physical_value=True)
    with Ledger(tmp_path / "p.duckdb", config=cfg) as books:
        books.post(
            rows(
                ("R1", "A", day(1, 3), 1, "10.00", "purchase"),
                ("PS", "A", day(1, 10), -1, "-11.00", "sale", "physical"),  # shipped
            )
        )
        jan = books.close("2025-01-31")
        # Include physical value: the physical issue PS is adjusted to R1's 10.00 (+1.00).
        assert dict(jan.adjustments.select("txn_id", "adjustment").iter_rows()) == {"PS": D("1.00")}
        # Its invoice replaces the physical row: -11.50 against the carried -10.00.
        invoice = books.post(rows(("PS", "A", day(2, 2), -1, "-11.50", "sale")))
        assert sorted(lines(books, invoice)) == [
            ("PS", "1400", D("0.00"), D("1.50")),
            ("PS", "5000", D("1.50"), D("0.00")),
        ]
        assert gl_balance(books, "1400") == D("-1.50")
        assert_consistent(books)
        # Reversing January: PS's adjustment lapsed with the invoice, so its mirror posts no
        # voucher and inventory stays at 10.00 - 11.50.
        (reversal,) = books.reverse()
        assert books.vouchers(reversal).is_empty()
        assert books.result(int(books.history()["run_id"][1])).close_id == jan.close_id
        assert gl_balance(books, "1400") == D("-1.50")
        assert_consistent(books)
        books.close("2025-01-31")
        assert_consistent(books)


def test_posting_time_costing_hook(books: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    costing = pytest.importorskip("invclose.costing")
    monkeypatch.setattr(invclose, "post_costs", costing.post_costs, raising=False)
    books.post(
        rows(
            ("R1", "A", day(1, 3), 2, "20.00", "purchase"),
            ("R2", "A", day(1, 4), 3, "36.00", "purchase"),
        )
    )
    books.post(rows(("S1", "A", day(1, 5), -1, None, "sale")))
    # The running average (20.00 + 36.00) / 5 = 11.20 fills the missing amount.
    amounts = dict(books.transactions().select("txn_id", "amount").iter_rows())
    assert amounts["S1"] == D("-11.20")
    assert gl_balance(books, "1400") == D("44.80")
    assert_consistent(books)
    # After a close the replay starts from the state in force: FIFO left R1's last unit
    # (10.00) and R2 (36.00), 4 units for 46.00, so the next issue costs 11.50.
    books.close("2025-01-31")
    books.post(rows(("S2", "A", day(2, 2), -1, None, "sale")))
    amounts = dict(books.transactions().select("txn_id", "amount").iter_rows())
    assert amounts["S2"] == D("-11.50")
    assert_consistent(books)


def test_adjustments_keep_the_accounts_a_row_was_posted_to(books: Ledger) -> None:
    # R1 10 @ 10.00 and R2 10 @ 20.00 bought on 1400, I1 sold 10 @ 15.00 (150.00) from 1400
    # to COGS 5000. Then the chart changes: purchases and sales now map to 1500 / 5500. FIFO
    # values I1 at 100.00: the close must take 50.00 back to 1400 and from 5000, where I1's
    # 150.00 was posted, not to 1500 / 5500 (1500 would show 50.00 it never held).
    books.post(
        rows(
            ("R1", "A", day(1, 2), "10", "100.00", "purchase"),
            ("R2", "A", day(1, 3), "10", "200.00", "purchase"),
            ("I1", "A", day(1, 5), "-10", "-150.00", "sale"),
        )
    )
    new_chart = ACCOUNTS.with_columns(
        inventory_account=pl.lit("1500"), offset_account=pl.lit("5500")
    )
    books.reconfigure(
        invclose.CloseConfig(method="fifo", dimensions=["site"], accounts=new_chart),
        comment="new chart of accounts",
    )
    result = books.close("2025-01-31")
    i1 = result.adjustments.filter(pl.col("txn_id") == "I1").row(0, named=True)
    assert (i1["adjustment"], i1["inventory_account"], i1["offset_account"]) == (
        D("50.00"),
        "1400",
        "5000",
    )
    # 1400: 100.00 + 200.00 - 150.00 + 50.00 = 200.00, the 10 units left of R2.
    assert gl_balance(books, "1400") == D("200.00")
    assert gl_balance(books, "5000") == D("100.00")
    assert gl_balance(books, "1500") == D("0.00")
    assert gl_balance(books, "5500") == D("0.00")
    assert_consistent(books)
