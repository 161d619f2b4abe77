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


#: Voucher columns of a line with its date.
DATED = ("posting_date", "account", "debit", "credit")


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


def test_a_lapsed_adjustment_is_mirrored_on_both_its_dates(tmp_path: Path) -> None:
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
        # Reversing January: PS's +1.00 lapsed with the invoice, whose posting took it back on
        # 2 February. The mirror takes it out of 31 January and undoes the take-back on
        # 2 February: January is as before the close (1400: 10.00 - 11.00), 2 February as if
        # the invoice replaced the unadjusted -11.00 (-0.50), and inventory stays at
        # 10.00 - 11.50.
        (reversal,) = books.reverse()
        assert sorted(books.vouchers(reversal).select(*DATED).rows()) == [
            (day(1, 31), "1400", D("0.00"), D("1.00")),
            (day(1, 31), "5000", D("1.00"), D("0.00")),
            (day(2, 2), "1400", D("1.00"), D("0.00")),
            (day(2, 2), "5000", D("0.00"), D("1.00")),
        ]
        assert books.result(int(books.history()["run_id"][1])).close_id == jan.close_id
        assert gl_balance(books, "1400") == D("-1.50")
        assert_consistent(books)
        # Closed again, January sees PS as physical (its invoice is dated after 31 January):
        # +1.00 on 31 January, taken back on the invoice's date, 2 February.
        again = books.close("2025-01-31")
        assert again.adjustments.select("txn_id", "adjustment").rows() == [("PS", D("1.00"))]
        assert sorted(books.vouchers(int(books.history()["run_id"][-1])).select(*DATED).rows()) == [
            (day(1, 31), "1400", D("1.00"), D("0.00")),
            (day(1, 31), "5000", D("0.00"), D("1.00")),
            (day(2, 2), "1400", D("0.00"), D("1.00")),
            (day(2, 2), "5000", D("1.00"), D("0.00")),
        ]
        assert gl_balance(books, "1400") == D("-1.50")
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


def test_costing_after_a_close_reads_only_rows_since_the_lock(
    books: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A nightly costing post must not read the whole history: January's rows are all in the
    # state of the January close, so a February post reads only rows dated after 31 January,
    # and costs as before. FIFO left R1's last unit (10.00), R2 (36.00) and the physical PR
    # (1 @ 9.00, open) after S1; the physical row's invoice (dated 2 February, 1 @ 14.00)
    # replaces it, so S2 costs (10.00 + 36.00 + 14.00) / 5 = 12.00.
    costing = pytest.importorskip("invclose.costing")
    monkeypatch.setattr(invclose, "post_costs", costing.post_costs, raising=False)
    books.post(
        rows(
            ("R1", "A", day(1, 3), 2, "20.00", "purchase"),
            ("R2", "A", day(1, 4), 3, "36.00", "purchase"),
            ("S1", "A", day(1, 5), -1, "-11.20", "sale"),
        )
    )
    books.post(rows(("PR", "A", day(1, 6), 1, "9.00", "purchase", "physical")))
    books.close("2025-01-31")
    books.post(rows(("PR", "A", day(2, 2), 1, "14.00", "purchase")))
    read: list[pl.DataFrame] = []
    query = books._store.query

    def spy(sql: str, params: list[object] | None = None) -> pl.DataFrame:
        out = query(sql, params)
        if "FROM transactions" in sql and "date" in out.columns:
            read.append(out)
        return out

    monkeypatch.setattr(books._store, "query", spy)
    books.post(rows(("S2", "A", day(2, 3), -1, None, "sale")))
    amounts = dict(books.transactions().select("txn_id", "amount").iter_rows())
    assert amounts["S2"] == D("-12.00")
    versions = [frame for frame in read if "PR" in frame["txn_id"].to_list()]
    assert versions, "the costing replay read no stored versions"
    assert all(frame["date"].min() > day(1, 31) for frame in versions)
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


def test_a_close_after_a_chart_without_the_rows_kind_uses_the_posted_accounts(
    books: Ledger,
) -> None:
    # R1 10 @ 10.00 and R2 10 @ 20.00 bought, I1 sold 10 posted at 150.00, all under the
    # catch-all mapping (1400 / 5000). The new chart maps only kind "transfer": a purchase or
    # a sale has no mapping row any more. I1's adjustment (FIFO: 100.00, +50.00) corrects the
    # accounts I1 was posted to, which the ledger knows: no MissingAccountError, and check()
    # lists no missing account either.
    books.post(
        rows(
            ("R1", "A", day(1, 2), "10", "100.00", "purchase"),
            ("R2", "A", day(1, 3), "10", "200.00", "purchase"),
            ("I1", "A", day(1, 5), "-10", "-150.00", "sale"),
        )
    )
    transfers_only = pl.DataFrame(
        {
            "kind": ["transfer"],
            "item_group": [None],
            "inventory_account": ["1600"],
            "offset_account": ["1690"],
        },
        schema=ACCOUNTS.schema,
    )
    books.reconfigure(
        invclose.CloseConfig(method="fifo", dimensions=["site"], accounts=transfers_only),
        comment="transfers only",
    )
    assert books.check("2025-01-31").filter(pl.col("code") == "missing_account").is_empty()
    result = books.close("2025-01-31")
    i1 = result.adjustments.filter(pl.col("txn_id") == "I1").row(0, named=True)
    assert (i1["adjustment"], i1["inventory_account"], i1["offset_account"]) == (
        D("50.00"),
        "1400",
        "5000",
    )
    assert gl_balance(books, "1400") == D("200.00")
    assert gl_balance(books, "5000") == D("100.00")
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


def test_a_batch_of_other_items_posts_a_revaluation_that_falls_due(tmp_path: Path) -> None:
    # S at standard 10.00, 12.00 from 1 February; item P is fifo (the config's default). R1
    # (5 units of S, 2 January) is posted; then a batch holding only P's purchase of
    # 3 February, with its amount. The change is active by that batch's last date: the
    # 5 units of S on hand on 1 February are revalued by +10.00 with it, as they are when
    # both rows come in one batch. That batch used to skip costing (no row without an
    # amount, no standard row), so the revaluation never came (and no close makes it later).
    config = _standard_10_then_12()
    r1 = rows(("R1", "S", day(1, 2), "5", None, "purchase"))
    p1 = rows(("P1", "P", day(2, 3), "1", "7.00", "purchase"))
    for batches in ("two", "one"):
        with Ledger(tmp_path / f"{batches}.duckdb", config=config) as books:
            if batches == "two":
                books.post(r1)
                books.post(p1)
            else:
                books.post(pl.concat([r1, p1]))
            reval = books.transactions().filter(pl.col("kind") == "revaluation")
            assert reval.select("date", "amount").rows() == [(day(2, 1), D("10.00"))], batches
            # 50.00 + 10.00 for S, 7.00 for P.
            assert gl_balance(books, "1400") == D("67.00"), batches
            assert gl_balance(books, "5900") == D("-10.00"), batches
            assert_consistent(books)


def test_a_receipt_backdated_before_a_posted_revaluation_is_revalued(tmp_path: Path) -> None:
    # S at standard 10.00, 12.00 from 1 February. R1 (5 units, 2 January) is posted, then I1
    # (1 unit, 5 February) with the revaluation of the 5 units on hand on 1 February:
    # +10.00. R0 (5 units, 20 January) is posted after it: 10 units were on hand on
    # 1 February, so the change comes to +20.00 and the rest +10.00 is posted with R0. The
    # books then hold 9 units at 12.00 = 108.00 (50 + 10 - 12 + 50 + 10), as when the three
    # rows are posted at once; before, 98.00 (R0 never revalued).
    config = _standard_10_then_12()
    rows_ = [
        rows(("R1", "S", day(1, 2), "5", None, "purchase")),
        rows(("I1", "S", day(2, 5), "-1", None, "sale")),
        rows(("R0", "S", day(1, 20), "5", None, "purchase")),
    ]
    totals = {}
    for batches in ("three", "one"):
        with Ledger(tmp_path / f"{batches}.duckdb", config=config) as books:
            if batches == "three":
                for batch in rows_:
                    books.post(batch)
            else:
                books.post(pl.concat(rows_).with_columns(seq=pl.Series([0, 2, 1])))
            reval = books.transactions().filter(pl.col("kind") == "revaluation")
            assert reval["amount"].sum() == D("20.00"), batches
            assert gl_balance(books, "1400") == D("108.00"), batches
            feb = books.close("2025-02-28")
            assert feb.balances.select("qty", "value").rows() == [(D(9), D("108.00"))]
            assert_consistent(books)
            totals[batches] = (gl_balance(books, "1400"), gl_balance(books, "5900"))
    assert totals["three"] == totals["one"] == (D("108.00"), D("-20.00"))


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


def test_a_physical_row_and_its_invoice_in_one_batch_post_as_in_two(tmp_path: Path) -> None:
    # The rows of the test above in one batch: P1 received physically (2 @ 20.00), S1 sells
    # 1 at the average 10.00, P1's invoice at 30.00 capitalises 5.00 (1 of its 2 units is on
    # hand) and books 5.00 of price variance, S2 leaves at 15.00. The physical row used to be
    # dropped before costing (S1 then cost nothing to go on, P1's invoice came in as a new
    # receipt), so one batch gave other books than three.
    items = pl.DataFrame({"item_id": ["M"], "method": ["moving_average"]})
    accounts = ACCOUNTS.with_columns(variance_account=pl.lit("5900"))
    config = invclose.CloseConfig(dimensions=["site"], accounts=accounts, items=items)
    with Ledger(tmp_path / "books.duckdb", config=config) as books:
        books.post(
            rows(
                ("P1", "M", day(1, 2), "2", "20.00", "purchase", "physical"),
                ("S1", "M", day(1, 3), "-1", None, "sale"),
                ("P1", "M", day(1, 4), "2", "30.00", "purchase"),
                ("S2", "M", day(1, 5), "-1", None, "sale"),
            )
        )
        amounts = dict(books.transactions().select("txn_id", "amount").iter_rows())
        assert amounts == {"P1": D("25.00"), "S1": D("-10.00"), "S2": D("-15.00")}
        # The physical row is stored and posted first, its invoice in a second posting run.
        assert books.history().select("kind").rows() == [("post",), ("post",)]
        assert gl_balance(books, "1400") == D("0.00")
        assert gl_balance(books, "2100") == D("-30.00")
        assert gl_balance(books, "5000") == D("25.00")
        assert gl_balance(books, "5900") == D("5.00")
        assert_consistent(books)


def test_an_invoice_listed_before_its_physical_row_posts_after_it(tmp_path: Path) -> None:
    # Without seq, rows post in row order; an invoice listed before its physical row (dated
    # after it) was refused for moving-average items as posted before it (review 65). It now
    # posts right after its physical row: R0 10 @ 10.00, P2 received 2 at 20.00 (the average
    # stays 10.00), invoiced at 22.00: 2.00 capitalised (both units on hand), 122.00 in stock.
    items = pl.DataFrame({"item_id": ["M"], "method": ["moving_average"]})
    accounts = ACCOUNTS.with_columns(variance_account=pl.lit("5900"))
    config = invclose.CloseConfig(dimensions=["site"], accounts=accounts, items=items)
    with Ledger(tmp_path / "books.duckdb", config=config) as books:
        books.post(rows(("R0", "M", day(1, 2), "10", "100.00", "purchase")))
        books.post(
            rows(
                ("P2", "M", day(1, 9), "2", "22.00", "purchase"),
                ("P2", "M", day(1, 6), "2", "20.00", "purchase", "physical"),
            )
        )
        assert gl_balance(books, "1400") == D("122.00")
        assert gl_balance(books, "5900") == D("0.00")
        assert_consistent(books)


@pytest.mark.parametrize("close_between", [False, True])
def test_a_moving_average_receipt_crossing_zero_books_its_gap_as_variance_when_received(
    tmp_path: Path, close_between: bool
) -> None:
    # R1 1 @ 10.00; S1 sells 2 at the average: -20.00, leaving -1 unit at -10.00. P (2 units,
    # price 8.00) is received physically and crosses zero (close-semantics §3.8): 1 unit at
    # the average 10.00 + 1 at its own 4.00 = 14.00 into inventory; payables owe its price,
    # 8.00; the gap of negative stock, 6.00, is variance when it is received (it posted
    # 14.00 against payables, so the gap reached variance only with the invoice, and half
    # of it was capitalised there). The invoice at the price (8.00) differs by 0 from it:
    # it posts nothing, S2 leaves at the 4.00 on hand. With a close between the physical
    # row and its invoice, the invoice finds P open in the state and gives the same books.
    items = pl.DataFrame({"item_id": ["M"], "method": ["moving_average"]})
    accounts = ACCOUNTS.with_columns(variance_account=pl.lit("5900"))
    config = invclose.CloseConfig(dimensions=["site"], accounts=accounts, items=items)
    with Ledger(tmp_path / "books.duckdb", config=config) as books:
        books.post(
            rows(
                ("R1", "M", day(1, 1), "1", "10.00", "purchase"),
                ("S1", "M", day(1, 2), "-2", None, "sale"),
            )
        )
        received = books.post(rows(("P", "M", day(1, 3), "2", "8.00", "purchase", "physical")))
        assert lines(books, received) == [
            ("P", "1400", D("14.00"), D("0.00")),
            ("P", "2100", D("0.00"), D("8.00")),
            ("P", "5900", D("0.00"), D("6.00")),
        ]
        if close_between:
            books.close("2025-01-03")
        invoice = books.post(rows(("P", "M", day(1, 4), "2", "8.00", "purchase")))
        assert lines(books, invoice) == []
        books.post(rows(("S2", "M", day(1, 5), "-1", None, "sale")))
        amounts = dict(books.transactions().select("txn_id", "amount").iter_rows())
        assert amounts == {"R1": D("10.00"), "S1": D("-20.00"), "P": D("14.00"), "S2": D("-4.00")}
        assert gl_balance(books, "1400") == D("0.00")
        assert gl_balance(books, "2100") == D("-18.00")
        assert gl_balance(books, "5900") == D("-6.00")
        assert_consistent(books)
    # The same rows in one batch book the same.
    with Ledger(tmp_path / "one.duckdb", config=config) as books:
        invoice = books.post(
            rows(
                ("R1", "M", day(1, 1), "1", "10.00", "purchase"),
                ("S1", "M", day(1, 2), "-2", None, "sale"),
                ("P", "M", day(1, 3), "2", "8.00", "purchase", "physical"),
                ("P", "M", day(1, 4), "2", "8.00", "purchase"),
                ("S2", "M", day(1, 5), "-1", None, "sale"),
            )
        )
        assert lines(books, invoice) == []
        amounts = dict(books.transactions().select("txn_id", "amount").iter_rows())
        assert amounts == {"R1": D("10.00"), "S1": D("-20.00"), "P": D("14.00"), "S2": D("-4.00")}
        assert gl_balance(books, "2100") == D("-18.00")
        assert gl_balance(books, "5900") == D("-6.00")
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


def by_date(books: Ledger) -> list[tuple[object, ...]]:
    """Debit minus credit per posting date and account over every voucher line (non-zero)."""
    frame = (
        books.vouchers()
        .group_by("posting_date", "account")
        .agg((pl.col("debit").sum() - pl.col("credit").sum()).alias("net"))
        .filter(pl.col("net") != 0)
        .sort("posting_date", "account")
    )
    return frame.rows()


#: FIFO by site, physical value included, the catch-all accounts.
FIFO_WITH_PHYSICAL = invclose.CloseConfig(
    method="fifo", dimensions=["site"], accounts=ACCOUNTS, include_physical_value=True
)

#: R1, received physically on 10 January (10 for 100.00), then invoiced on 5 February at
#: 120.00 (``r1_invoice``): the invoice of the early-invoice cases below.
R1_PHYSICAL = ("R1", "A", day(1, 10), "10", "100.00", "purchase", "physical")


def r1_invoice() -> pl.DataFrame:
    return rows(("R1", "A", day(2, 5), "10", "120.00", "purchase"))


def same_result(a: invclose.CloseResult, b: invclose.CloseResult) -> bool:
    """Whether two closes have the same id and the same rows in every table."""
    other = b.tables()
    return a.close_id == b.close_id and all(t.equals(other[k]) for k, t in a.tables().items())


def _stateless_january(
    january: pl.DataFrame, invoice: pl.DataFrame, config: invclose.CloseConfig
) -> invclose.CloseResult:
    """``invclose.close`` at 31 January of the physical rows and their later invoice, numbered
    as the ledger numbers them (January's batch, then the invoice's)."""
    both = pl.concat([january, invoice]).with_columns(seq=pl.int_range(0, pl.len()))
    return invclose.close(both, "2025-01-31", config=config)


def test_an_invoice_posted_before_an_earlier_close_leaves_its_physical_row_in_it(
    tmp_path: Path,
) -> None:
    # include physical value, FIFO. January: R2 1 @ 30.00, R1 received physically 10 @ 10.00,
    # I1 sells 2 posted at 50.00. R1's invoice (10 @ 12.00, 5 February) is posted before the
    # January close runs (as happens a few days into the next month). At 31 January R1 was
    # physical: I1 takes R2's 30.00 and one unit adjusted against R1 at 10.00 -> 40.00,
    # adjustment +10.00, and R1 stays open as physical; the same as when the invoice is
    # posted after the close, and as the stateless close of the same rows. February then
    # closes the same way in both ledgers: R1 invoiced at 12.00 settles I1's second unit
    # (30.00 + 12.00 = 42.00, -2.00) and leaves 9 units at 12.00 = 108.00.
    config = FIFO_WITH_PHYSICAL
    january = rows(
        ("R2", "A", day(1, 2), "1", "30.00", "purchase"),
        R1_PHYSICAL,
        ("I1", "A", day(1, 20), "-2", "-50.00", "sale"),
    )
    invoice = r1_invoice()
    results = {}
    for order in ("invoice first", "close first"):
        with Ledger(tmp_path / f"{order}.duckdb", config=config) as books:
            books.post(january)
            if order == "invoice first":
                books.post(invoice)
            jan = books.close("2025-01-31")
            if order == "close first":
                books.post(invoice)
            i1 = jan.adjustments.filter(pl.col("txn_id") == "I1")
            assert i1["adjustment"].to_list() == [D("10.00")], order
            r1 = jan.open_items.filter(pl.col("txn_id") == "R1").row(0, named=True)
            assert (r1["status"], r1["open_qty"]) == ("physical", D(10)), order
            assert same_result(jan, _stateless_january(january, invoice, config)), order
            feb = books.close("2025-02-28")
            assert feb.balances.select("qty", "value").rows() == [(D(9), D("108.00"))], order
            assert feb.adjustments.select("txn_id", "adjustment").rows() == [("I1", D("-2.00"))]
            results[order] = (jan, feb, by_date(books))
            assert_consistent(books)
    early, late = results["invoice first"], results["close first"]
    assert same_result(early[0], late[0])
    assert same_result(early[1], late[1])
    assert early[2] == late[2]


#: Cases of a physical receipt R1 (10 for 100.00 on 10 January) invoiced on 5 February at
#: 120.00: configuration, January's other rows, and by hand the January adjustments, R1's
#: open row at 31 January (status, qty, carried value) and February's balance.
_EARLY_INVOICE_CASES = {
    # FIFO with physical value: see the test above.
    "fifo_physical": (
        FIFO_WITH_PHYSICAL,
        [
            ("R2", "A", day(1, 2), "1", "30.00", "purchase"),
            ("I1", "A", day(1, 20), "-2", "-50.00", "sale"),
        ],
        [("I1", D("10.00"))],
        (D(9), D("108.00")),
    ),
    # Weighted average ignores physical rows, with or without the option: I1 (posted 40.00)
    # moves to the average of R2 30.00 and R3 20.00, 25.00: +15.00. February: R2/R3's unit
    # left (25.00) and R1's 10 invoiced units (120.00): 11 units, 145.00.
    "weighted_average": (
        invclose.CloseConfig(
            method="weighted_average",
            dimensions=["site"],
            accounts=ACCOUNTS,
            include_physical_value=True,
        ),
        [
            ("R2", "A", day(1, 2), "1", "30.00", "purchase"),
            ("R3", "A", day(1, 3), "1", "20.00", "purchase"),
            ("I1", "A", day(1, 20), "-1", "-40.00", "sale"),
        ],
        [("I1", D("15.00"))],
        (D(11), D("145.00")),
    ),
    # FIFO without physical value: R1 takes no part in value; I1 (posted 30.00) settles
    # against R2 at 25.00: +5.00. R1 is still open as physical at 31 January. February: R2's
    # unit left (25.00) and R1 invoiced (120.00): 11 units, 145.00.
    "fifo_without_physical": (
        invclose.CloseConfig(method="fifo", dimensions=["site"], accounts=ACCOUNTS),
        [
            ("R2", "A", day(1, 2), "2", "50.00", "purchase"),
            ("I1", "A", day(1, 20), "-1", "-30.00", "sale"),
        ],
        [("I1", D("5.00"))],
        (D(11), D("145.00")),
    ),
}


@pytest.mark.parametrize("case", sorted(_EARLY_INVOICE_CASES))
def test_reversing_and_reclosing_around_an_early_invoice_gives_the_same_books(
    tmp_path: Path, case: str
) -> None:
    # R1's invoice (5 February) is posted before the January close. Closing January and
    # February, reversing February then January and closing both again, or reversing only
    # January and closing it again, gives the closes (and, date by date and account by
    # account, the general ledger) of a ledger where the invoice came after the January
    # close; verify() passes at every step. R1 is open as physical at 31 January in every
    # case, as in the stateless close of the same rows.
    config, others, adjusted, february = _EARLY_INVOICE_CASES[case]
    january = rows(
        *others[:-1],
        R1_PHYSICAL,
        others[-1],
    )
    invoice = r1_invoice()
    with Ledger(tmp_path / "reference.duckdb", config=config) as books:
        books.post(january)
        jan = books.close("2025-01-31")
        books.post(invoice)
        feb = books.close("2025-02-28")
        expected_gl = by_date(books)
    assert jan.adjustments.select("txn_id", "adjustment").rows() == adjusted
    r1 = jan.open_items.filter(pl.col("txn_id") == "R1")
    assert r1.select("status", "open_qty", "carried_value").rows() == [
        ("physical", D(10), D("100.00"))
    ]
    assert feb.balances.select("qty", "value").rows() == [february]
    assert same_result(jan, _stateless_january(january, invoice, config))

    with Ledger(tmp_path / "both.duckdb", config=config) as books:
        books.post(january)
        books.post(invoice)
        assert same_result(books.close("2025-01-31"), jan)
        assert same_result(books.close("2025-02-28"), feb)
        assert_consistent(books)
        books.reverse()  # February
        assert_consistent(books)
        books.reverse()  # January
        assert_consistent(books)
        assert same_result(books.close("2025-01-31"), jan)
        assert_consistent(books)
        assert same_result(books.close("2025-02-28"), feb)
        assert_consistent(books)
        assert by_date(books) == expected_gl

    with Ledger(tmp_path / "january.duckdb", config=config) as books:
        books.post(january)
        books.post(invoice)
        books.close("2025-01-31")
        books.reverse()
        assert_consistent(books)
        assert same_result(books.close("2025-01-31"), jan)
        assert same_result(books.close("2025-02-28"), feb)
        assert_consistent(books)
        assert by_date(books) == expected_gl


def test_check_at_a_date_sees_a_physical_row_whose_later_invoice_is_posted(
    tmp_path: Path,
) -> None:
    # As the close, the pre-close check at 31 January takes R1 as it stood then (physical),
    # though its invoice of 5 February is posted. Financially the group received 1 (R2) and
    # issued 2 (I1): it is short, I1's second unit (adjusted against R1) stays open as
    # insufficient_receipts, R1 is not invoiced, and the financial on-hand is -1. The same
    # list as the stateless check of both rows (with the invoice, R1 would be financial and
    # nothing would be short).
    january = rows(
        ("R2", "A", day(1, 2), "1", "30.00", "purchase"),
        R1_PHYSICAL,
        ("I1", "A", day(1, 20), "-2", "-50.00", "sale"),
    )
    invoice = r1_invoice()
    with Ledger(tmp_path / "books.duckdb", config=FIFO_WITH_PHYSICAL) as books:
        books.post(january)
        books.post(invoice)
        listed = books.check("2025-01-31").select("code", "txn_id", "qty").sort("code").rows()
    assert listed == [
        ("insufficient_receipts", "I1", D(1)),
        ("negative_on_hand", None, D(-1)),
        ("receipt_not_invoiced", "R1", D(10)),
    ]
    both = pl.concat([january, invoice]).with_columns(seq=pl.int_range(0, pl.len()))
    stateless = invclose.check(both, "2025-01-31", config=FIFO_WITH_PHYSICAL)
    assert stateless.select("code", "txn_id", "qty").sort("code").rows() == listed


def test_an_adjustment_of_a_physical_row_invoiced_before_the_close_lapses_on_its_date(
    tmp_path: Path,
) -> None:
    # Include physical value, FIFO. R1 1 @ 10.00 (3 January); PS shipped physically 1 at
    # -11.00 (10 January); PS's invoice at -11.50 (2 February) is posted before the January
    # close. At 31 January PS was physical: the close moves it to R1's 10.00 (+1.00, 1400
    # debit / 5000 credit on 31 January) and it stays open. The invoice's posting took back
    # PS's carried -11.00 (1400: +11.00 - 11.50 = -0.50 on 2 February); the +1.00 came after
    # it and lapses with the invoice on 2 February (1400 credit 1.00, 5000 debit 1.00), as if
    # the close had run first: 1400 on 2 February -1.50 either way. February: PS invoiced
    # settles against R1 at 10.00 (+1.50); inventory is empty.
    config = FIFO_WITH_PHYSICAL
    january = rows(
        ("R1", "A", day(1, 3), "1", "10.00", "purchase"),
        ("PS", "A", day(1, 10), "-1", "-11.00", "sale", "physical"),
    )
    invoice = rows(("PS", "A", day(2, 2), "-1", "-11.50", "sale"))
    expected = [
        (day(1, 3), "1400", D("10.00")),
        (day(1, 3), "2100", D("-10.00")),
        (day(1, 10), "1400", D("-11.00")),
        (day(1, 10), "5000", D("11.00")),
        (day(1, 31), "1400", D("1.00")),
        (day(1, 31), "5000", D("-1.00")),
        (day(2, 2), "1400", D("-1.50")),
        (day(2, 2), "5000", D("1.50")),
        (day(2, 28), "1400", D("1.50")),
        (day(2, 28), "5000", D("-1.50")),
    ]
    results = {}
    for order in ("invoice first", "close first"):
        with Ledger(tmp_path / f"{order}.duckdb", config=config) as books:
            books.post(january)
            if order == "invoice first":
                books.post(invoice)
            jan = books.close("2025-01-31")
            assert jan.adjustments.select("txn_id", "adjustment").rows() == [("PS", D("1.00"))]
            ps = jan.open_items.filter(pl.col("txn_id") == "PS")
            assert ps.select("status", "open_qty", "carried_value").rows() == [
                ("physical", D(-1), D("-10.00"))
            ]
            assert same_result(jan, _stateless_january(january, invoice, config)), order
            # The stored result is the close's (the take-back lines are the ledger's).
            assert same_result(books.result(jan.close_id), jan), order
            if order == "close first":
                books.post(invoice)
            assert_consistent(books)
            feb = books.close("2025-02-28")
            assert feb.adjustments.select("txn_id", "adjustment").rows() == [("PS", D("1.50"))]
            assert gl_balance(books, "1400") == D("0.00")
            assert by_date(books) == expected, order
            assert_consistent(books)
            results[order] = (jan, feb)
            if order == "invoice first":
                # Reversing February then January, and closing both again, gives the same
                # books: each mirror posts on its run's date, and the take-back of PS's
                # +1.00 is undone on 2 February.
                books.reverse()
                books.reverse()
                assert_consistent(books)
                assert by_date(books) == [
                    *expected[:4],
                    (day(2, 2), "1400", D("-0.50")),
                    (day(2, 2), "5000", D("0.50")),
                ]
                assert same_result(books.close("2025-01-31"), jan)
                assert same_result(books.close("2025-02-28"), feb)
                assert by_date(books) == expected
                assert_consistent(books)
    assert same_result(*[r[0] for r in results.values()])
    assert same_result(*[r[1] for r in results.values()])
