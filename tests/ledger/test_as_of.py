"""The general ledger and the reconciliation at a past date (``as_of``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import invclose
from invclose.ledger import Ledger
from tests.ledger.helpers import ACCOUNTS, CONFIG, D, assert_consistent, day, rows
from tests.ledger.test_cli import invoke


@pytest.fixture
def two_months(tmp_path: Path) -> Iterator[Ledger]:
    """January: R1 10 @ 10.00, S1 4 sold (posted -44.00), P1 2 received physically (20.00);
    closed (S1 settles at 40.00: +4.00 on inventory). February: P1 invoiced at 24.00, R2 5 for
    60.00, S2 2 sold (posted -24.00); closed (S2 takes R1 at 20.00: +4.00)."""
    with Ledger(tmp_path / "books.duckdb", config=CONFIG) as books:
        _two_months(books)
        yield books


def _two_months(books: Ledger) -> None:
    """Post and close the two months of :func:`two_months`."""
    books.post(
        rows(
            ("R1", "A", day(1, 3), 10, "100.00", "purchase"),
            ("S1", "A", day(1, 10), -4, "-44.00", "sale"),
            ("P1", "A", day(1, 20), 2, "20.00", "purchase", "physical"),
        )
    )
    books.close("2025-01-31")
    books.post(
        rows(
            ("R2", "A", day(2, 2), 5, "60.00", "purchase"),
            ("P1", "A", day(2, 5), 2, "24.00", "purchase"),
            ("S2", "A", day(2, 10), -2, "-24.00", "sale"),
        )
    )
    books.close("2025-02-28")


def _inventory(table: object, column: str) -> object:
    return table.filter(account="1400")[column].item()  # type: ignore[attr-defined]


def test_the_reconciliation_at_a_past_date_balances_and_shows_its_values(
    two_months: Ledger,
) -> None:
    books = two_months
    assert_consistent(books)
    # Now: posted 100 - 44 + 24 (P1's invoice) + 60 - 24 = 116.00, adjusted 4 + 4 = 8.00:
    # 124.00 = R1 4 @ 10.00 + P1 2 @ 12.00 + R2 60.00.
    now = books.reconciliation()
    assert (_inventory(now, "posted_value"), _inventory(now, "subledger_value")) == (
        D("116.00"),
        D("124.00"),
    )
    # January 31: P1 still at its physical 20.00 (its invoice is dated February 5); the
    # close's +4.00 is dated January 31: 100 - 44 + 20 + 4 = 80.00 on both sides.
    january = books.reconciliation(as_of="2025-01-31")
    assert january.select("posted_value", "adjustments", "subledger_value", "gl_balance").row(
        0
    ) == (D("76.00"), D("4.00"), D("80.00"), D("80.00"))
    assert january["difference"].to_list() == [D("0.00")] * january.height
    # January 15: R1 and S1 only, the close's adjustment not yet dated: 56.00.
    mid = books.reconciliation(as_of="2025-01-15")
    assert (_inventory(mid, "subledger_value"), _inventory(mid, "gl_balance")) == (
        D("56.00"),
        D("56.00"),
    )
    assert mid["difference"].to_list() == [D("0.00")] * mid.height


def test_the_general_ledger_at_a_past_date(two_months: Ledger) -> None:
    books = two_months
    january = books.gl(by_account=True, as_of="2025-01-31")
    assert _inventory(january, "balance") == D("80.00")
    lines = books.gl(as_of="2025-01-31")
    assert lines["posting_date"].max() <= day(1, 31)
    inventory = lines.filter(account="1400")
    assert inventory["debit"].sum() - inventory["credit"].sum() == D("80.00")
    assert _inventory(books.gl(by_account=True), "balance") == D("124.00")


def test_the_command_line_reconciles_at_a_past_date(tmp_path: Path) -> None:
    db = tmp_path / "books.duckdb"
    with Ledger(db, config=CONFIG) as books:
        _two_months(books)
    january = invoke("reconcile", "--db", db, "--as-of", "2025-01-31", "--json")
    assert january.exit_code == 0, january.output
    (row,) = json.loads(january.stdout)
    assert (row["account"], row["subledger_value"], row["gl_balance"], row["difference"]) == (
        "1400",
        "80.00",
        "80.00",
        "0.00",
    )
    now = invoke("reconcile", "--db", db)
    assert now.exit_code == 0, now.output
    assert "124.00" in now.stdout
    bad = invoke("reconcile", "--db", db, "--as-of", "31/01/2025")
    assert bad.exit_code == 2
    assert "as_of must be a date such as '2025-01-31'" in bad.stderr  # was "closing date"


@contextmanager
def _recalculated_shipment(tmp_path: Path) -> Iterator[Ledger]:
    """R1 10 @ 10.00 closed in January; X1 ships 3 physically on 3 February at -36.00, and a
    recalculation on the 15th (physical value included) costs it at 30.00: +6.00."""
    cfg = invclose.CloseConfig(
        method="fifo", dimensions=["site"], accounts=ACCOUNTS, include_physical_value=True
    )
    with Ledger(tmp_path / "books.duckdb", config=cfg) as books:
        books.post(rows(("R1", "A", day(1, 3), 10, "100.00", "purchase")))
        books.close("2025-01-31")
        books.post(rows(("X1", "A", day(2, 3), -3, "-36.00", "sale", "physical")))
        books.recalculate("2025-02-15")
        yield books


def test_an_invoice_dated_before_a_recalculation_posted_after_it_reconciles(
    tmp_path: Path,
) -> None:
    # January: R1 10 @ 10.00, closed. X1 ships 3 physically on 3 February at -36.00; a
    # recalculation on the 15th (physical value included) costs it at 30.00: +6.00 dated the
    # 15th. Its invoice, dated the 10th at -40.00, is posted after that. The GL took the
    # +6.00 back on the 10th, before it existed (review 64): 100 - 36 - (40 - 30) = 54.00
    # against the sub-ledger's 100 - 40 = 60.00 from the 10th to the 14th.
    with _recalculated_shipment(tmp_path) as books:
        books.post(rows(("X1", "A", day(2, 10), -3, "-40.00", "sale")))
        expected = {"2025-02-09": D("64.00"), "2025-02-10": D("60.00"), "2025-02-14": D("60.00")}
        expected["2025-02-15"] = D("60.00")
        for date, value in expected.items():
            table = books.reconciliation(as_of=date)
            assert table.select("subledger_value", "gl_balance").row(0) == (value, value), date
        assert_consistent(books)
        # Cancelling the recalculation takes its +6.00 and the take-back away on the 15th.
        books.reverse_recalculations("2025-02-01", comment="redo")
        for date in ("2025-02-12", "2025-02-15"):
            table = books.reconciliation(as_of=date)
            assert table.select("subledger_value", "gl_balance").row(0) == (D("60.00"),) * 2
        assert_consistent(books)


def test_a_take_back_that_nets_to_nothing_takes_no_voucher_number(tmp_path: Path) -> None:
    # X1's recalculation (+6.00 on 15 February) is cancelled before its invoice is posted:
    # +6.00 - 6.00 on the 15th takes nothing back, so the batch's vouchers are numbered
    # T1 (X1's invoice) and T2 (Y1), as before the take-backs were dated (review 65: T1, T3).
    with _recalculated_shipment(tmp_path) as books:
        books.reverse_recalculations("2025-02-15", comment="redo")
        run = books.post(
            rows(
                ("X1", "A", day(2, 10), -3, "-40.00", "sale"),
                ("Y1", "A", day(2, 20), 1, "10.00", "purchase"),
            )
        )
        ids = books.vouchers(run)["voucher_id"].unique(maintain_order=True).to_list()
        assert [i.rsplit("-", 1)[1] for i in ids] == ["T1", "T2"]
        assert_consistent(books)
