"""A realistic quarter on the period ledger, every amount calculated by hand (FIFO, site S1).

Purchases post inventory 1400 against payables 2100, sales against COGS 5000. After every
step the reconciliation view shows zero difference and ``verify()`` passes; the running
balance of inventory account 1400 is given in the comments as "GL 1400".
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import invclose
from invclose.ledger import Ledger
from invclose.schemas import input_schema
from tests.ledger.helpers import (
    CONFIG,
    D,
    assert_consistent,
    day,
    dump,
    gl_balance,
    rows,
    same_dump,
)

JANUARY = rows(
    ("A-R1", "A", day(1, 3), 10, "100.00", "purchase"),  # 10 @ 10.00
    ("B-R1", "B", day(1, 5), 4, "20.00", "purchase"),  # 4 @ 5.00
    ("A-R2", "A", day(1, 10), 10, "120.00", "purchase"),  # 10 @ 12.00
    ("A-S1", "A", day(1, 15), -12, "-132.00", "sale"),  # posted at the average 11.00
    ("B-S1", "B", day(1, 20), -3, "-15.00", "sale"),
)
FEBRUARY = rows(
    ("A-R3", "A", day(2, 5), 10, "150.00", "purchase"),  # 10 @ 15.00
    ("A-S2", "A", day(2, 8), -10, "-136.67", "sale"),
    ("A-P1", "A", day(2, 12), 5, "70.00", "purchase", "physical"),  # received, not invoiced
    ("A-S3", "A", day(2, 20), -6, "-84.00", "sale"),
    ("B-S2", "B", day(2, 25), -1, "-5.00", "sale"),
    ("A-R4", "A", day(3, 2), 5, "80.00", "purchase"),  # early March: 5 @ 16.00
    ("A-S4", "A", day(3, 3), -5, "-80.00", "sale"),
)
LATE_INVOICE = rows(("A-P1", "A", day(2, 27), 5, "75.00", "purchase"))  # invoiced at 15.00


def adjustments(result: invclose.CloseResult) -> dict[str, object]:
    return dict(result.adjustments.select("txn_id", "adjustment").iter_rows())


def kinds(books: Ledger) -> list[tuple[int, str, str]]:
    return books.history().select("run_id", "kind", "status").rows()


def test_a_quarter(tmp_path: Path) -> None:
    books = Ledger(tmp_path / "books.duckdb", config=CONFIG)
    try:
        # 1. Post January. GL 1400 = 100 + 20 + 120 - 132 - 15 = 93.00.
        books.post(JANUARY)
        assert gl_balance(books, "1400") == D("93.00")
        assert gl_balance(books, "2100") == D("-240.00")
        assert_consistent(books)

        # 2. The pre-close check finds nothing to report, and writes nothing.
        before = dump(books)
        assert books.check("2025-01-31").is_empty()
        assert same_dump(before, dump(books))

        # 3. Close January. FIFO: A-S1 takes 10 of A-R1 (100.00) and 2 of A-R2
        #    (round(120.00 * 2/10) = 24.00): 124.00 against 132.00 posted, +8.00 (less cost).
        #    B-S1 takes 3 of B-R1 at 5.00: no change. GL 1400 = 101.00, COGS 147 - 8 = 139.00.
        jan = books.close("2025-01-31")
        assert adjustments(jan) == {"A-S1": D("8.00")}
        assert jan.settlements.select("issue_txn_id", "receipt_txn_id", "amount").rows() == [
            ("A-S1", "A-R1", D("100.00")),
            ("A-S1", "A-R2", D("24.00")),
            ("B-S1", "B-R1", D("15.00")),
        ]
        assert jan.balances.select("item_id", "qty", "value").rows() == [
            ("A", D(8), D("96.00")),
            ("B", D(1), D("5.00")),
        ]
        assert books.lock_date == day(1, 31)
        assert gl_balance(books, "1400") == D("101.00")
        assert gl_balance(books, "5000") == D("139.00")
        assert_consistent(books)
        assert books.certificate(books.history()["run_id"].max())["ok"].all()

        # 4. A backdated purchase (28 January) is refused with the whole batch.
        before = dump(books)
        late = rows(
            ("A-R3", "A", day(2, 5), 10, "150.00", "purchase"),
            ("B-R2", "B", day(1, 28), 2, "10.00", "purchase"),
        )
        with pytest.raises(invclose.ClosedPeriodError, match=r"B-R2.*2025-01-31") as refused:
            books.post(late)
        assert "2025-01-31" in str(refused.value)
        assert refused.value.failures is not None
        assert refused.value.failures["txn_id"].to_list() == ["B-R2"]
        assert same_dump(before, dump(books))

        # 5. Post February and early March.
        #    GL 1400 = 101 + 150 - 136.67 + 70 - 84 - 5 + 80 - 80 = 95.33.
        books.post(FEBRUARY)
        assert gl_balance(books, "1400") == D("95.33")
        assert_consistent(books)

        # 6. Recalculate at 15 February. A-S2 would take the 8 open units of A-R2 (96.00)
        #    and 2 of A-R3 (round(150.00 * 2/10) = 30.00): 126.00 against 136.67, +10.67.
        #    Nothing is settled or locked. GL 1400 = 106.00.
        feb15 = books.recalculate("2025-02-15")
        assert adjustments(feb15) == {"A-S2": D("10.67")}
        assert feb15.settlements.is_empty()
        assert books.lock_date == day(1, 31)
        assert gl_balance(books, "1400") == D("106.00")
        assert_consistent(books)

        # 7. Recalculate at 3 March (from the 15 February values). A-S2 stays at 126.00;
        #    A-S3 takes A-R3's units 3..8: round(150 * 8/10) - 30.00 = 90.00 against 84.00,
        #    -6.00; A-S4 takes A-R3's last 2 (30.00) and 3 of A-R4 (round(80 * 3/5) = 48.00):
        #    78.00 against 80.00, +2.00. GL 1400 = 106 - 6 + 2 = 102.00.
        mar3 = books.recalculate("2025-03-03")
        assert adjustments(mar3) == {"A-S3": D("-6.00"), "A-S4": D("2.00")}
        assert all(d == day(3, 3) for d in mar3.vouchers["posting_date"])
        assert gl_balance(books, "1400") == D("102.00")
        assert_consistent(books)

        # 8. Close February at 28 February. First the 3 March recalculation is cancelled
        #    (+6.00 and -2.00, GL 1400 = 106.00); the 15 February one stays in force, so
        #    A-S2 (already 126.00) does not move and only A-S3 gets -6.00. GL 1400 = 100.00:
        #    A-R3's 2 open units (30.00) + A-P1 physical (70.00) + A-R4 80.00 - A-S4 80.00.
        feb = books.close("2025-02-28")
        assert adjustments(feb) == {"A-S3": D("-6.00")}
        assert feb.settlements.select("issue_txn_id", "receipt_txn_id", "amount").rows() == [
            ("A-S2", "A-R2", D("96.00")),
            ("A-S2", "A-R3", D("30.00")),
            ("A-S3", "A-R3", D("90.00")),
            ("B-S2", "B-R1", D("5.00")),
        ]
        history = books.history()
        mar3_run = history.filter(pl.col("close_id") == mar3.close_id)
        feb15_run = history.filter(pl.col("close_id") == feb15.close_id)
        assert mar3_run["status"].to_list() == ["reversed"]
        assert feb15_run["status"].to_list() == ["active"]
        cancellation = history.filter(pl.col("reverses") == mar3_run["run_id"].item())
        assert cancellation["kind"].to_list() == ["reversal"]
        assert cancellation["date"].to_list() == [day(3, 3)]
        assert books.lock_date == day(2, 28)
        assert gl_balance(books, "1400") == D("100.00")
        assert_consistent(books)

        # 9. The late invoice of A-P1 dated 27 February is refused: February is closed.
        before = dump(books)
        with pytest.raises(invclose.ClosedPeriodError, match=r"A-P1.*2025-02-28"):
            books.post(LATE_INVOICE)
        assert same_dump(before, dump(books))

        # 10. Reverse February: the close's -6.00 is mirrored (GL 1400 = 106.00), the lock
        #     goes back to 31 January and the cancelled 3 March recalculation stays cancelled.
        feb_run = int(history.filter(pl.col("close_id") == feb.close_id)["run_id"].item())
        (reversal,) = books.reverse(comment="late invoice for A-P1")
        mirror = books.vouchers(reversal).select("posting_date", "account", "debit", "credit")
        original = books.vouchers(feb_run).select("posting_date", "account", "credit", "debit")
        assert mirror.rows() == original.rows()  # same accounts and date, debit/credit swapped
        assert books.lock_date == day(1, 31)
        assert gl_balance(books, "1400") == D("106.00")
        assert books.history().filter(pl.col("run_id") == mar3_run["run_id"].item())[
            "status"
        ].to_list() == ["reversed"]
        assert_consistent(books)

        # 11. Now the invoice posts: 75.00 against the physical row's carried 70.00, +5.00.
        #     GL 1400 = 111.00.
        books.post(LATE_INVOICE)
        assert gl_balance(books, "1400") == D("111.00")
        assert_consistent(books)

        # 12. Close February again (from the 15 February values): A-S3 -6.00 as before;
        #     on hand A-R3 2 units 30.00 + A-P1 5 units 75.00 = 105.00 = GL 1400.
        feb2 = books.close("2025-02-28")
        assert adjustments(feb2) == {"A-S3": D("-6.00")}
        assert feb2.close_id != feb.close_id  # the data changed (the invoice)
        a = feb2.balances.filter(pl.col("item_id") == "A")
        assert a.select("qty", "value", "unit_cost").row(0) == (D(7), D("105.00"), D("15"))
        assert gl_balance(books, "1400") == D("105.00")
        assert_consistent(books)

        # 13. Reverse February again: GL 1400 = 111.00, lock 31 January.
        assert len(books.reverse()) == 1
        assert books.lock_date == day(1, 31)
        assert gl_balance(books, "1400") == D("111.00")
        assert_consistent(books)

        # 14. Reverse January: the 15 February recalculation, posted after it, is reversed
        #     first in the same call, then the close. GL 1400 = 111 - 10.67 - 8 = 92.33, the
        #     sum of every posted amount; nothing is locked.
        first, second = books.reverse()
        kinds_by_run = {r: (k, s) for r, k, s in kinds(books)}
        reversed_runs = books.history().filter(pl.col("run_id").is_in([first, second]))
        assert reversed_runs["reverses"].to_list() == [
            feb15_run["run_id"].item(),
            history.filter(pl.col("close_id") == jan.close_id)["run_id"].item(),
        ]
        assert kinds_by_run[first] == ("reversal", "active")
        assert books.lock_date is None
        assert books.state() is None
        assert gl_balance(books, "1400") == D("92.33")
        assert_consistent(books)
        with pytest.raises(invclose.InvcloseError, match="nothing to reverse"):
            books.reverse()
    finally:
        books.disconnect()


def test_reversing_and_closing_again_gives_the_same_result(tmp_path: Path) -> None:
    with Ledger(tmp_path / "b.duckdb", config=CONFIG) as books:
        books.post(JANUARY)
        first = books.close("2025-01-31")
        books.reverse()
        again = books.close("2025-01-31")
        assert again.close_id == first.close_id
        assert again.equals(first)
        runs = books.history().filter(pl.col("close_id") == first.close_id)
        assert runs["status"].to_list() == ["reversed", "active"]
        # result() by close_id gives the active run; by run_id, the stored one, identical.
        assert books.result(first.close_id).equals(first)
        assert books.result(int(runs["run_id"][0])).equals(first)
        # The ledger's close equals the stateless close over the same rows.
        posted = books.transactions().select(list(input_schema(("site",))))
        stateless = invclose.close(posted, "2025-01-31", config=CONFIG)
        assert stateless.close_id == first.close_id
        assert_consistent(books)
