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


@pytest.mark.parametrize("detail", ["transaction", "item", "item_group", "total"])
def test_adjustments_keep_the_accounts_a_row_was_posted_to(books: Ledger, detail: str) -> None:
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
        invclose.CloseConfig(
            method="fifo", dimensions=["site"], accounts=new_chart, voucher_detail=detail
        ),
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


def _standard_10_then_12() -> invclose.CloseConfig:
    """Item S at standard 10.00, 12.00 from 1 February. A revaluation posts its change to
    inventory (1400) against the variance account (5900); price variances go there too."""
    items = pl.DataFrame(
        {
            "item_id": ["S", "S"],
            "method": ["standard", "standard"],
            "standard_cost": ["10.00", "12.00"],
            "valid_from": [day(1, 1), day(2, 1)],
        }
    )
    revaluation = pl.DataFrame(
        {
            "kind": ["revaluation"],
            "item_group": [None],
            "inventory_account": ["1400"],
            "offset_account": [None],
        },
        schema=ACCOUNTS.schema,
    )
    accounts = pl.concat([ACCOUNTS, revaluation]).with_columns(variance_account=pl.lit("5900"))
    return invclose.CloseConfig(dimensions=["site"], accounts=accounts, items=items)


def test_standard_cost_change_posts_its_revaluation(tmp_path: Path) -> None:
    config = _standard_10_then_12()
    with Ledger(tmp_path / "books.duckdb", config=config) as books:
        books.post(rows(("R1", "S", day(1, 2), "10", None, "purchase")))  # 10 x 10.00
        books.post(rows(("I1", "S", day(2, 5), "-5", None, "sale")))  # 5 x 12.00
        # 10 units were on hand on 1 February: +2.00 x 10 = +20.00, posted with I1.
        amounts = books.transactions().select("txn_id", "date", "amount").rows()
        assert amounts == [
            ("R1", day(1, 2), D("100.00")),
            ("REVAL:2025-02-01:S:S1", day(2, 1), D("20.00")),
            ("I1", day(2, 5), D("-60.00")),
        ]
        reval = books.vouchers().filter(pl.col("txn_id") == "REVAL:2025-02-01:S:S1")
        assert reval.select("posting_date", "account", "debit", "credit").rows() == [
            (day(2, 1), "1400", D("20.00"), D("0.00")),
            (day(2, 1), "5900", D("0.00"), D("20.00")),
        ]
        # A purchase given 15.00 posts at the standard 12.00; 3.00 is price variance.
        books.post(rows(("R2", "S", day(2, 10), "1", "15.00", "purchase")))
        assert lines(books, books.history()["run_id"][-1]) == [
            ("R2", "1400", D("12.00"), D("0.00")),
            ("R2", "2100", D("0.00"), D("15.00")),
            ("R2", "5900", D("3.00"), D("0.00")),
        ]
        # 100.00 + 20.00 - 60.00 + 12.00 = 72.00 for 6 units: 6 x 12.00.
        feb = books.close("2025-02-28")
        assert feb.balances.select("qty", "value").rows() == [(D(6), D("72.00"))]
        assert gl_balance(books, "1400") == D("72.00")
        assert gl_balance(books, "5900") == D("-17.00")
        assert_consistent(books)
        # The next posting does not revalue again (the change is before the closing date).
        books.post(rows(("I2", "S", day(3, 3), "-1", None, "sale")))
        assert books.transactions().filter(pl.col("kind") == "revaluation").height == 1
        assert_consistent(books)


def test_moving_average_invoice_capitalises_only_what_is_on_hand(tmp_path: Path) -> None:
    items = pl.DataFrame({"item_id": ["M"], "method": ["moving_average"]})
    accounts = ACCOUNTS.with_columns(variance_account=pl.lit("5900"))
    config = invclose.CloseConfig(dimensions=["site"], accounts=accounts, items=items)
    with Ledger(tmp_path / "books.duckdb", config=config) as books:
        books.post(rows(("P1", "M", day(1, 2), "2", "20.00", "purchase", "physical")))
        books.post(rows(("S1", "M", day(1, 3), "-1", None, "sale")))  # 20.00 / 2 = 10.00
        invoice = books.post(rows(("P1", "M", day(1, 4), "2", "30.00", "purchase")))
        # 10.00 above the physical 20.00; 1 of the 2 units is on hand: 5.00 capitalised
        # (P1 posts 25.00), 5.00 price variance. Vouchers: inventory +5.00 (25.00 replaces
        # 20.00), payables -10.00 more (30.00 replaces 20.00), variance +5.00.
        assert lines(books, invoice) == [
            ("P1", "1400", D("5.00"), D("0.00")),
            ("P1", "2100", D("0.00"), D("10.00")),
            ("P1", "5900", D("5.00"), D("0.00")),
        ]
        # On hand 1 unit, 10.00 + 5.00 = 15.00: S2 leaves at 15.00 and inventory is empty.
        books.post(rows(("S2", "M", day(1, 5), "-1", None, "sale")))
        amounts = dict(books.transactions().select("txn_id", "amount").iter_rows())
        assert amounts == {"P1": D("25.00"), "S1": D("-10.00"), "S2": D("-15.00")}
        assert gl_balance(books, "1400") == D("0.00")
        assert_consistent(books)


def test_a_standard_physical_receipt_books_its_price_variance_once(tmp_path: Path) -> None:
    # S at standard 12.00. P1 is received physically with a price of 15.00, then invoiced at
    # 15.00. The receipt posts at standard (1400 +12.00 against 2100); the invoice reverses
    # it and books the invoiced 15.00: 12.00 to inventory, 3.00 price variance (5900). In
    # the end 1400 holds 12.00, 2100 owes 15.00 and 5900 has 3.00, not 6.00.
    items = pl.DataFrame({"item_id": ["S"], "method": ["standard"], "standard_cost": ["12.00"]})
    accounts = ACCOUNTS.with_columns(variance_account=pl.lit("5900"))
    config = invclose.CloseConfig(dimensions=["site"], accounts=accounts, items=items)
    with Ledger(tmp_path / "books.duckdb", config=config) as books:
        books.post(rows(("P1", "S", day(1, 5), "1", "15.00", "purchase", "physical")))
        assert lines(books, books.history()["run_id"][-1]) == [
            ("P1", "1400", D("12.00"), D("0.00")),
            ("P1", "2100", D("0.00"), D("12.00")),
        ]
        books.post(rows(("P1", "S", day(1, 10), "1", "15.00", "purchase")))
        assert gl_balance(books, "1400") == D("12.00")
        assert gl_balance(books, "2100") == D("-15.00")
        assert gl_balance(books, "5900") == D("3.00")
        assert_consistent(books)


def test_a_physical_standard_receipt_across_a_cost_change_is_valued_once(tmp_path: Path) -> None:
    # S at standard 10.00, 12.00 from 1 February. P1 is received physically on 20 January
    # (price 11.00: posted at standard 10.00) and invoiced on 5 February at 11.00. Nothing
    # was financially on hand on 1 February, so there is no revaluation; the invoice reverses
    # the physical 10.00 and books 12.00 to inventory, 11.00 owed and -1.00 price variance
    # (the invoice is 1.00 below standard). 1400 = 12.00: one unit at the new standard, not
    # 14.00 (the cost change revalued on the physical row and then again by the invoice).
    config = _standard_10_then_12()
    with Ledger(tmp_path / "books.duckdb", config=config) as books:
        books.post(rows(("P1", "S", day(1, 20), "1", "11.00", "purchase", "physical")))
        books.post(rows(("P1", "S", day(2, 5), "1", "11.00", "purchase")))
        assert books.transactions().filter(pl.col("kind") == "revaluation").is_empty()
        assert gl_balance(books, "1400") == D("12.00")
        assert gl_balance(books, "2100") == D("-11.00")
        assert gl_balance(books, "5900") == D("-1.00")
        feb = books.close("2025-02-28")
        assert feb.balances.select("qty", "value").rows() == [(D(1), D("12.00"))]
        assert_consistent(books)
