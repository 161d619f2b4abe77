"""Manual value adjustments: ``adjust_on_hand`` and ``adjust_transactions`` (§10)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

import invclose
from invclose.errors import InputValidationError
from invclose.ledger import Ledger, RefusedAdjustmentError
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

TWO_UNITS = rows(
    ("R1", "A", day(1, 3), 1, "10.00", "purchase"),
    ("R2", "A", day(1, 5), 1, "13.00", "purchase"),
)


@pytest.fixture
def books(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger(tmp_path / "books.duckdb", config=CONFIG)
    try:
        ledger.post(TWO_UNITS)
        yield ledger
    finally:
        ledger.disconnect()


def moves(result: invclose.CloseResult) -> dict[str, object]:
    return dict(result.adjustments.select("txn_id", "adjustment").iter_rows())


def test_needs_a_close(books: Ledger) -> None:
    before = dump(books)
    with pytest.raises(RefusedAdjustmentError, match="need a close"):
        books.adjust_on_hand("A", {"site": "S1"}, new_value="30.00", comment="count")
    assert same_dump(before, dump(books))


def test_on_hand_to_one_unit_cost_with_cumulative_rounding(books: Ledger) -> None:
    books.close("2025-01-31")
    # Open units at 10.00 and 13.00 set to 30.00: 15.00 each, so +5.00 and +2.00, posted to
    # the receipts' own accounts (purchase: 1400 / 2100) on the closing date.
    result = books.adjust_on_hand("A", {"site": "S1"}, new_value="30.00", comment="revalue")
    assert moves(result) == {"R1": D("5.00"), "R2": D("2.00")}
    assert result.vouchers.select("posting_date", "account", "debit", "credit").rows() == [
        (day(1, 31), "1400", D("5.00"), D("0.00")),
        (day(1, 31), "2100", D("0.00"), D("5.00")),
        (day(1, 31), "1400", D("2.00"), D("0.00")),
        (day(1, 31), "2100", D("0.00"), D("2.00")),
    ]
    opened = result.open_items.select("txn_id", "open_value", "carried_value").rows()
    assert opened == [("R1", D("15.00"), D("15.00")), ("R2", D("15.00"), D("15.00"))]
    assert result.balances.select("value", "unit_cost").row(0) == (D("30.00"), D("15"))
    history = books.history()
    assert history.select("kind", "date", "comment").row(-1) == (
        "adjustment",
        day(1, 31),
        "revalue",
    )
    assert gl_balance(books, "1400") == D("30.00")
    assert_consistent(books)
    # A later close settles from the adjusted values: S1 takes R1 at 15.00 (posted 11.50).
    books.post(rows(("S1", "A", day(2, 3), -1, "-11.50", "sale")))
    feb = books.close("2025-02-28")
    assert moves(feb) == {"S1": D("-3.50")}
    assert gl_balance(books, "1400") == D("15.00")
    assert_consistent(books)
    # Reversing February, then the manual adjustment, brings back 10.00 + 13.00 - 11.50.
    books.reverse()
    books.reverse(comment="undo the revaluation")
    assert gl_balance(books, "1400") == D("11.50")
    assert books.lock_date == day(1, 31)
    assert_consistent(books)


def test_cumulative_rounding_in_key_order(books: Ledger) -> None:
    books.post(rows(("R3", "A", day(1, 7), 1, "7.00", "purchase")))
    books.close("2025-01-31")
    # 3 units to 10.00: round(10 * 1/3) = 3.33, round(10 * 2/3) - 3.33 = 3.34, 10 - 6.67 = 3.33.
    result = books.adjust_on_hand("A", {"site": "S1"}, adjustment="-20.00", comment="impair")
    values = result.open_items.select("txn_id", "open_value").rows()
    assert values == [("R1", D("3.33")), ("R2", D("3.34")), ("R3", D("3.33"))]
    assert moves(result) == {"R1": D("-6.67"), "R2": D("-9.66"), "R3": D("-3.67")}
    assert_consistent(books)


def test_adjust_transactions(books: Ledger) -> None:
    books.close("2025-01-31")
    changes = pl.DataFrame(
        {"txn_id": ["R1", "R2"], "new_value": ["12.00", None], "adjustment": [None, "-1.00"]}
    )
    result = books.adjust_transactions(changes, comment="supplier credit note")
    assert moves(result) == {"R1": D("2.00"), "R2": D("-1.00")}
    assert gl_balance(books, "1400") == D("24.00")
    assert_consistent(books)


def test_refusals_change_nothing(books: Ledger) -> None:
    books.post(rows(("S1", "A", day(1, 20), -2, "-23.00", "sale")))
    books.post(rows(("B1", "B", day(1, 4), 1, "5.00", "purchase")))
    books.close("2025-01-31")  # A is used up; B has one open unit
    before = dump(books)
    with pytest.raises(RefusedAdjustmentError, match="no positive open quantity"):
        books.adjust_on_hand("A", {"site": "S1"}, new_value="1.00", comment="x")
    with pytest.raises(RefusedAdjustmentError, match="dims must give a value"):
        books.adjust_on_hand("B", {}, new_value="1.00", comment="x")
    with pytest.raises(RefusedAdjustmentError, match="comment"):
        books.adjust_on_hand("B", {"site": "S1"}, new_value="1.00", comment=" ")
    with pytest.raises(RefusedAdjustmentError, match="exactly one"):
        books.adjust_on_hand("B", {"site": "S1"}, new_value="1.00", adjustment="1", comment="x")
    with pytest.raises(RefusedAdjustmentError, match="negative"):
        books.adjust_on_hand("B", {"site": "S1"}, adjustment="-6.00", comment="x")
    bad = pl.DataFrame({"txn_id": ["R1", "S1", "B1"], "new_value": ["1.00", "1.00", "1.00"]})
    with pytest.raises(RefusedAdjustmentError, match=r"R1: not an open financial receipt") as e:
        books.adjust_transactions(bad, comment="x")
    assert "S1: not an open" in str(e.value)
    # Every problem in one refusal: B1's value is no amount, S1 is no open receipt and R9 is
    # named twice (the first two came one correction at a time).
    mixed = pl.DataFrame(
        {"txn_id": ["B1", "S1", "R9", "R9"], "new_value": ["1,50", "1.00", "1.00", "2.00"]}
    )
    with pytest.raises(InputValidationError) as both:
        books.adjust_transactions(mixed, comment="x")
    message = str(both.value)
    assert "new_value of B1 must be an amount such as '30.00'; got '1,50'" in message
    assert "S1: not an open financial receipt" in message
    assert "R9: named more than once" in message
    assert same_dump(before, dump(books))


def test_standard_items_are_refused(tmp_path: Path) -> None:
    items = pl.DataFrame({"item_id": ["S"], "method": ["standard"], "standard_cost": ["2.00"]})
    cfg = invclose.CloseConfig(dimensions=["site"], accounts=ACCOUNTS, items=items)
    with Ledger(tmp_path / "s.duckdb", config=cfg) as books:
        books.post(rows(("P", "S", day(1, 3), 5, "10.00", "purchase")))
        books.close("2025-01-31")
        with pytest.raises(RefusedAdjustmentError, match="periodic method"):
            books.adjust_on_hand("S", {"site": "S1"}, new_value="1.00", comment="x")
        assert_consistent(books)


def test_a_weighted_average_closing_receipt_is_adjusted(tmp_path: Path) -> None:
    items = pl.DataFrame({"item_id": ["W"], "method": ["weighted_average"]})
    cfg = invclose.CloseConfig(dimensions=["site"], accounts=ACCOUNTS, items=items)
    with Ledger(tmp_path / "w.duckdb", config=cfg) as books:
        books.post(
            rows(
                ("W1", "W", day(1, 3), 2, "20.00", "purchase"),
                ("W2", "W", day(1, 4), 2, "24.00", "purchase"),
                ("WS", "W", day(1, 9), -1, "-10.00", "sale"),
            )
        )
        jan = books.close("2025-01-31")
        # Average (20 + 24) / 4 = 11.00: WS -1.00; the closing receipt keeps 3 units, 33.00.
        assert moves(jan) == {"WS": D("-1.00")}
        receipt = jan.open_items.filter(pl.col("is_virtual"))
        assert receipt.select("open_qty", "open_value").row(0) == (D(3), D("33.00"))
        # The closing receipt has no accounts: it takes those of W2, the group's last receipt.
        result = books.adjust_on_hand("W", {"site": "S1"}, new_value="36.00", comment="count")
        assert result.adjustments.select("txn_id", "adjustment", "inventory_account").rows() == [
            (receipt["txn_id"].item(), D("3.00"), "1400")
        ]
        assert_consistent(books)
        books.post(rows(("WS2", "W", day(2, 2), -3, "-33.00", "sale")))
        feb = books.close("2025-02-28")
        assert moves(feb) == {"WS2": D("-3.00")}  # 36.00 of cost instead of 33.00
        assert gl_balance(books, "1400") == D("0.00")
        assert_consistent(books)


def test_the_summary_of_an_adjustment_after_a_recalculation_gives_its_date_and_groups(
    books: Ledger,
) -> None:
    # Item B is received too, so the state holds two groups. After the January close and a
    # recalculation at 2025-02-15 (the state's closing date), an adjustment of A alone is
    # dated the latest closing date, 2025-01-31 (§10): the summary said "adjustment at
    # 2025-02-15" and counted every group of the state (review 58).
    books.post(rows(("RB", "B", day(1, 4), 1, "4.00", "purchase")))
    books.close("2025-01-31")
    books.post(rows(("S1", "A", day(2, 3), -1, "-11.50", "sale")))
    books.recalculate("2025-02-15")
    result = books.adjust_on_hand("A", {"site": "S1"}, adjustment="1.00", comment="count")
    assert set(result.adjustments["adjustment_date"]) == {day(1, 31)}
    lines = result.summary().splitlines()
    assert lines[0].startswith("invclose adjustment dated 2025-01-31 (on the state at 2025-02-15)")
    assert lines[3].startswith("Scope        1 item in 1 group")
    assert "adjustment</b> dated 2025-01-31 (on the state at 2025-02-15)" in result._repr_html_()
