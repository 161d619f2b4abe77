"""Cost flow across closes (close-semantics §9.1): receipts in a later period and late cost.

Every expected value is worked out by hand in the test's comments. January is closed on
2025-01-31, February on 2025-02-28; day 34 is 3 February.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

import invclose
from tests.helpers import ACCOUNTS, ORDER_SCHEMA, D

JAN = dt.date(2025, 1, 31)
FEB = dt.date(2025, 2, 28)

SCHEMA = ORDER_SCHEMA


def rows(*records: tuple[Any, ...]) -> pl.DataFrame:
    """(txn_id, item, site, day of 2025 counted from 1 January, qty, amount, kind, order)."""
    out = [
        {
            "txn_id": txn,
            "item_id": item,
            "site": site,
            "date": dt.date(2025, 1, 1) + dt.timedelta(days=n - 1),
            "qty": Decimal(str(qty)),
            "amount": Decimal(amount),
            "seq": seq,
            "kind": kind,
            "order_id": order,
        }
        for seq, (txn, item, site, n, qty, amount, kind, order) in enumerate(records)
    ]
    return pl.DataFrame(out, schema=SCHEMA)


def close(frame: pl.DataFrame, date: dt.date, **kw: Any) -> invclose.CloseResult:
    return invclose.close(frame, date, method="fifo", dimensions=["site"], accounts=ACCOUNTS, **kw)


def adjustment(result: invclose.CloseResult, txn: str) -> Decimal | None:
    hit = result.adjustments.filter(pl.col("txn_id") == txn)["adjustment"]
    return hit[0] if hit.len() else None


def open_row(result: invclose.CloseResult, txn: str) -> dict[str, Any]:
    hit = result.open_items.filter(pl.col("txn_id") == txn)
    assert hit.height == 1, f"{txn} is not in open_items"
    return hit.row(0, named=True)


def closed(result: invclose.CloseResult) -> set[str]:
    return set(result.closed_items["txn_id"])


def log_rows(result: invclose.CloseResult, code: str) -> pl.DataFrame:
    return result.log.filter(pl.col("code") == code)


# Site S1 buys 10 at 10.00 and 10 at 20.00; the shipment of 10 on 20 January posts at the
# running average 15.00 (150.00). FIFO settles it against the first 10: 100.00, so the
# shipment carries 50.00 less cost (adjustment +50.00 on the issue). Its receipt at S2 is
# dated 3 February, after the January close.
IN_TRANSIT = rows(
    ("P1", "X", "S1", 2, 10, "100.00", "purchase", None),
    ("P2", "X", "S1", 3, 10, "200.00", "purchase", None),
    ("SHIP", "X", "S1", 20, -10, "-150.00", "transfer", "T1"),
    ("REC", "X", "S2", 34, 10, "150.00", "transfer", "T1"),
)


def test_shipment_closed_before_its_receipt_waits_in_open_items() -> None:
    jan = close(IN_TRANSIT, JAN)
    assert adjustment(jan, "SHIP") == D("50.00")
    # Fully settled, but its receipt is not costed yet: kept with open_qty 0, the whole
    # quantity unfed and the whole change (50.00 less cost = -50.00) not passed on.
    ship = open_row(jan, "SHIP")
    assert ship["open_qty"] == D("0")
    assert ship["open_value"] == D("0.00")
    assert ship["carried_value"] == D("-100.00")
    assert ship["unfed_qty"] == D("10")
    assert ship["unfed_change"] == D("-50.00")
    assert "SHIP" not in closed(jan)
    assert (
        "Waiting      1 order issue for receipts not yet costed; their change -50.00 stays "
        "on offset accounts"
    ) in jan.summary()
    assert "waiting for receipts</th><td style='text-align:left'>1 order issue, change -50.00" in (
        jan._repr_html_()
    )
    # P1 is fully settled and closed; P2 is open, not an order row: no unfed state.
    assert "P1" in closed(jan)
    assert open_row(jan, "P2")["unfed_qty"] is None


@pytest.mark.parametrize("history", ["whole history", "only new rows"])
def test_the_close_that_covers_the_receipt_passes_the_change_on(history: str) -> None:
    jan = close(IN_TRANSIT, JAN)
    feb_rows = (
        IN_TRANSIT if history == "whole history" else IN_TRANSIT.filter(pl.col("txn_id") == "REC")
    )
    feb = close(feb_rows, FEB, opening=jan)
    # The receipt takes the shipment's January change: 150.00 - 50.00 = 100.00.
    assert adjustment(feb, "REC") == D("-50.00")
    assert open_row(feb, "REC")["carried_value"] == D("100.00")
    assert open_row(feb, "REC")["unfed_qty"] == D("0")
    # The shipment is not adjusted again and now closes.
    assert adjustment(feb, "SHIP") is None
    assert "SHIP" in closed(feb)
    assert "SHIP" not in set(feb.open_items["txn_id"])
    assert log_rows(feb, "late_cost").is_empty()
    # Lineage: the receipt's cost comes from the shipment, 100.00 for 10 units.
    edge = feb.cost_flow.filter(pl.col("to_txn_id") == "REC")
    assert edge.select("from_txn_id", "qty", "amount", "kind").rows() == [
        ("SHIP", D("10"), D("100.00"), "transfer")
    ]


def test_vouchers_move_the_change_through_transit_and_balance() -> None:
    jan = close(IN_TRANSIT, JAN)
    feb = close(IN_TRANSIT, FEB, opening=jan)
    # January: the shipment's 50.00 leaves S1's inventory cost towards the offset (transit)
    # account; February: the receipt takes it back from there. Each voucher balances and the
    # offset account nets to zero over the two closes.
    for result in (jan, feb):
        v = result.vouchers
        assert v["debit"].sum() == v["credit"].sum()
    both = pl.concat([jan.vouchers, feb.vouchers])
    offset = both.filter(pl.col("account") == "5000")
    assert offset["debit"].sum() - offset["credit"].sum() == D("0.00")
    assert offset["debit"].sum() == D("50.00")


# The shipment of 10 (change -50.00 as above) feeds R1 (6, in January) and R2 (4, 3 February).
PARTIAL = rows(
    ("P1", "X", "S1", 2, 10, "100.00", "purchase", None),
    ("P2", "X", "S1", 3, 10, "200.00", "purchase", None),
    ("SHIP", "X", "S1", 20, -10, "-150.00", "transfer", "T1"),
    ("R1", "X", "S2", 25, 6, "90.00", "transfer", "T1"),
    ("R2", "X", "S2", 34, 4, "60.00", "transfer", "T1"),
)


@pytest.mark.parametrize("history", ["whole", "after January"])
def test_a_move_within_a_site_received_next_month_passes_the_cost_on_once(history: str) -> None:
    # P1 buys 3 at S1 (30.00). T1 moves the 3 within S1 (another warehouse: same financial
    # dimension) on 14 January, posted at 18.00; its receipt T2 comes on 1 February. January
    # has no receipt for T1, so FIFO settles it against P1: 30.00 (-12.00), waiting for its
    # receipt. February passes that on: T2 = 18.00 + 12.00 = 30.00 and S1 holds 3 units for
    # 30.00, as one close of both months gives (there T1 and T2 pair as a move). February used
    # to pair T1 with T2 again, settling T1 twice (-48.00 for 3 units) and leaving S1 at 0.00.
    frame = rows(
        ("P1", "A", "S1", 10, 3, "30.00", "purchase", None),
        ("T1", "A", "S1", 14, -3, "-18.00", "transfer", "TO"),
        ("T2", "A", "S1", 32, 3, "18.00", "transfer", "TO"),
    )
    jan = close(frame, JAN)
    assert adjustment(jan, "T1") == D("-12.00")
    given = frame if history == "whole" else frame.filter(pl.col("date") > JAN)
    feb = close(given, FEB, opening=jan)
    assert feb.settlements.is_empty()
    assert feb.adjustments.select("txn_id", "settled_amount").rows() == [("T2", D("30.00"))]
    assert feb.balances.select("site", "qty", "value").rows() == [("S1", D(3), D("30.00"))]
    one = close(frame, FEB)
    assert one.balances.select("site", "qty", "value").rows() == [("S1", D(3), D("30.00"))]
    assert "T1" in closed(feb)


def test_a_move_received_in_two_parts_after_its_issue_was_settled_cuts_its_cent_once() -> None:
    # P1 buys 2 at S1 for 10.01. T1 moves them within S1 on 10 January, posted -10.00; they
    # arrive on 3 and 4 February (T2, T3, 5.00 each). January: T1 has no receipt, FIFO
    # settles it at -10.01 (adjustment -0.01, waiting for its receipts). February: T1's
    # value is fixed, its 10.01 cut over its 2 units with cumulative rounding in key order:
    # T2 5.01 (5.005 rounds half up), T3 10.01 - 5.01 = 5.00. S1 holds 2 units for 10.01, as
    # bought. T1 feeding receipts of its own group was read as a cycle, solved and rounded
    # per receipt: 5.01 + 5.01 = 10.02 and a cycle_residual of 0.01 (review 43).
    frame = rows(
        ("P1", "A", "S1", 2, 2, "10.01", "purchase", None),
        ("T1", "A", "S1", 10, -2, "-10.00", "transfer", "TO"),
        ("T2", "A", "S1", 34, 1, "5.00", "transfer", "TO"),
        ("T3", "A", "S1", 35, 1, "5.00", "transfer", "TO"),
    )
    jan = close(frame, JAN)
    assert adjustment(jan, "T1") == D("-0.01")
    feb = close(frame, FEB, opening=jan)
    assert feb.adjustments.select("txn_id", "settled_amount", "adjustment").rows() == [
        ("T2", D("5.01"), D("0.01"))
    ]
    assert feb.balances.select("site", "qty", "value").rows() == [("S1", D(2), D("10.01"))]
    assert feb.log.is_empty()
    assert close(frame, FEB).balances.select("qty", "value").rows() == [(D(2), D("10.01"))]


def test_an_order_moved_in_part_then_received_elsewhere_passes_its_new_cost_on_whole() -> None:
    # S1 buys 3 for 30.01 (P1). Order TO issues the 3 on 10 January (T, posted -33.00);
    # 1 arrives in S1 on 11 January (R1, 11.00: a move, paired with T for good), 2 in S2 on
    # 9 February (R2, 22.00). January: T's 2 units on their way wait (posted 22.00).
    # February: they leave S1, so FIFO settles them against P1: round(30.01 * 2 / 3) = 20.01,
    # 1.99 less than posted. That change is the 2 units' alone (the paired unit kept R1's
    # cost): R2 = 22.00 - 1.99 = 20.01; S1 keeps P1's last unit (10.00), S2 20.01: 30.01 as
    # bought, as one close of both months. The change was cut over all 3 units of T: R2
    # 20.67 and late_cost -0.66 on the transit account (review 48).
    frame = rows(
        ("P1", "A", "S1", 2, 3, "30.01", "purchase", None),
        ("T", "A", "S1", 10, -3, "-33.00", "transfer", "TO"),
        ("R1", "A", "S1", 11, 1, "11.00", "transfer", "TO"),
        ("R2", "A", "S2", 40, 2, "22.00", "transfer", "TO"),
    )
    jan = close(frame, JAN)
    assert jan.adjustments.is_empty()
    feb = close(frame, FEB, opening=jan)
    assert dict(feb.adjustments.select("txn_id", "settled_amount").rows())["R2"] == D("20.01")
    assert feb.balances.select("site", "qty", "value").rows() == [
        ("S1", D(1), D("10.00")),
        ("S2", D(2), D("20.01")),
    ]
    assert log_rows(feb, "late_cost").is_empty()
    one = close(frame, FEB)
    assert one.balances.select("site", "qty", "value").rows() == [
        ("S1", D(1), D("10.00")),
        ("S2", D(2), D("20.01")),
    ]


def test_an_order_received_in_its_own_site_and_elsewhere_is_no_move() -> None:
    # S1 buys 2 for 20.00 (P1). Order TO issues both on 10 January (T1, posted -22.00) and
    # receives one in S1 (T2, 11.00, another warehouse) and one in S2 (T3, 11.00). The order
    # does not stay in S1, so T1 is an ordinary transfer issue: FIFO settles it against P1,
    # -20.00 (adjustment +2.00), and its change (-2.00) is cut over its 2 units in key order:
    # T2 -1.00 and T3 -1.00, 10.00 each. S1 holds T2 (10.00), S2 T3 (10.00). T1 and T2 were
    # paired as a move, leaving T1's other unit waiting for a receipt in S1 (logged
    # awaiting_transfer_receipt) although T3 had arrived: S1 9.00, S2 11.00 (review 46).
    frame = rows(
        ("P1", "A", "S1", 2, 2, "20.00", "purchase", None),
        ("T1", "A", "S1", 10, -2, "-22.00", "transfer", "TO"),
        ("T2", "A", "S1", 11, 1, "11.00", "transfer", "TO"),
        ("T3", "A", "S2", 12, 1, "11.00", "transfer", "TO"),
    )
    jan = close(frame, JAN)
    assert jan.adjustments.select("txn_id", "settled_amount", "adjustment").rows() == [
        ("T1", D("-20.00"), D("2.00")),
        ("T2", D("10.00"), D("-1.00")),
        ("T3", D("10.00"), D("-1.00")),
    ]
    assert jan.balances.select("site", "qty", "value").rows() == [
        ("S1", D(1), D("10.00")),
        ("S2", D(1), D("10.00")),
    ]
    assert log_rows(jan, "awaiting_transfer_receipt").is_empty()
    assert log_rows(jan, "cycle_residual")["amount"].to_list() in ([], [D("0.00")])


@pytest.mark.parametrize("with_sale", [False, True])
def test_a_move_within_a_site_partly_received_waits_for_the_rest(with_sale: bool) -> None:
    # S1 buys 3 at 10.00 (P1) and 3 at 14.00 (P2). TO ships 3 within S1 on 10 January at the
    # average 12.00 (-36.00); 2 arrive on 12 January (T2, 24.00), 1 on 3 February (T3, 12.00).
    # January: T1's 2 received units pair with T2 as a move (T1 takes T2's 24.00: nothing to
    # adjust); its third unit is on its way within S1, not issued from it: it waits for its
    # receipt at its cost (12.00), logged awaiting_transfer_receipt (info, 1 unit), not
    # awaiting_invoice (there is no physical row). S1: 30.00 + 42.00 + 24.00 - 36.00 = 60.00
    # for 5 units. February: T3 pairs with the waiting unit (T1 takes its 12.00): nothing to
    # adjust, S1 holds 6 units for 72.00 (every unit at its purchase cost).
    # With a sale X of 3 on 20 January posted at -36.00: FIFO gives it P1's 3 units, 30.00
    # (adjustment +6.00), as the unit on its way took no receipt of S1; S1 keeps P2's 3 units
    # (42.00) less the waiting unit (12.00): 30.00 for 2 units.
    records = [
        ("P1", "A", "S1", 2, 3, "30.00", "purchase", None),
        ("P2", "A", "S1", 3, 3, "42.00", "purchase", None),
        ("T1", "A", "S1", 10, -3, "-36.00", "transfer", "TO"),
        ("T2", "A", "S1", 12, 2, "24.00", "transfer", "TO"),
        ("T3", "A", "S1", 34, 1, "12.00", "transfer", "TO"),
    ]
    if with_sale:
        records.append(("X", "A", "S1", 20, -3, "-36.00", "sale", None))
    frame = rows(*records)
    jan = close(frame, JAN)
    assert adjustment(jan, "T1") is None
    assert jan.log.select("level", "code", "txn_id", "qty").rows() == [
        ("info", "awaiting_transfer_receipt", "T1", D(1))
    ]
    if with_sale:
        assert adjustment(jan, "X") == D("6.00")
        assert jan.balances.select("site", "qty", "value").rows() == [("S1", D(2), D("30.00"))]
        return
    assert jan.balances.select("site", "qty", "value").rows() == [("S1", D(5), D("60.00"))]
    feb = close(frame, FEB, opening=jan)
    assert feb.adjustments.is_empty()
    assert feb.balances.select("site", "qty", "value").rows() == [("S1", D(6), D("72.00"))]
    assert "T1" in closed(feb)


MAR = dt.date(2025, 3, 31)


def test_a_move_short_of_receipts_then_received_settles_what_it_holds_open_once() -> None:
    # S1 buys 1 at 10.00 (P1); TO ships 3 within S1 on 10 January, posted -36.00, received
    # in full only on 3 February (T2, 36.00); P2 buys 5 at 20.00 on 9 February; X sells 6 on
    # 11 March, posted -108.00.
    # January: T1 has no receipt yet, so FIFO settles it: 1 unit against P1 (10.00), 2 short
    # (insufficient_receipts, kept at 24.00): -34.00, adjustment +2.00.
    # February: T2 cannot pair with T1 as a move any more (a unit of T1 is settled already):
    # it takes T1's cost as a transfer receipt, and T1's 2 open units go to FIFO, whose first
    # receipt is T2 itself (a cycle through S1). With x the unit cost of T2: T1's units cost
    # 10.00 + 2x, all of which T2's 3 units take, so 3x = 10.00 + 2x: x = 10.00. T1 -30.00
    # (+4.00), T2 30.00 (-6.00); S1 holds T2's unit left and P2: 10.00 + 100.00 = 110.00 for
    # 6 units. (The move used to pair all 3 units again, settling T1's first unit twice.)
    # March: X takes T2's unit and P2's 5: 110.00 (adjustment -2.00), as one close of the
    # three months gives (there T1 and T2 pair as a move and X takes P1 and P2).
    frame = rows(
        ("P1", "A", "S1", 2, 1, "10.00", "purchase", None),
        ("T1", "A", "S1", 10, -3, "-36.00", "transfer", "TO"),
        ("T2", "A", "S1", 34, 3, "36.00", "transfer", "TO"),
        ("P2", "A", "S1", 40, 5, "100.00", "purchase", None),
        ("X", "A", "S1", 70, -6, "-108.00", "sale", None),
    )
    jan = close(frame, JAN)
    assert adjustment(jan, "T1") == D("2.00")
    assert log_rows(jan, "insufficient_receipts").select("txn_id", "qty").rows() == [("T1", D(2))]
    feb = close(frame, FEB, opening=jan)
    assert feb.adjustments.select("txn_id", "settled_amount", "adjustment").rows() == [
        ("T1", D("-30.00"), D("4.00")),
        ("T2", D("30.00"), D("-6.00")),
    ]
    assert feb.balances.select("site", "qty", "value").rows() == [("S1", D(6), D("110.00"))]
    mar = close(frame, MAR, opening=feb)
    assert mar.adjustments.select("txn_id", "settled_amount", "adjustment").rows() == [
        ("X", D("-110.00"), D("-2.00"))
    ]
    assert mar.balances.select("qty", "value").rows() == [(D(0), D("0.00"))]
    one = close(frame, MAR)
    assert one.adjustments.select("txn_id", "settled_amount").rows() == [("X", D("-110.00"))]


def test_a_move_partly_received_then_short_waits_without_settling_twice() -> None:
    # Review 42's case: S1 buys 1 at 10.00 (P1); TO ships 3 within S1 on 10 January at
    # -36.00; 1 arrives on 12 January (T2, 12.00), 2 on 3 February (T3, 24.00); P2 buys 5 at
    # 20.00 on 9 February; X sells 6 on 11 March, posted -108.00.
    # January: T1's first unit pairs with T2; the 2 on their way wait (24.00, logged
    # awaiting_transfer_receipt): S1 holds 10.00 + 12.00 - 36.00 = -14.00 for -1 unit.
    # February: T3 pairs with them: nothing to adjust; S1 holds 6 units, 110.00 (P1, P2).
    # March: X takes P1 and P2: 110.00 (adjustment -2.00), as one close of the three months.
    # T1's waiting units were settled by FIFO in January, and February paired all 3 units
    # with T3 again (T1 ended with +1 open unit, X short by 2).
    frame = rows(
        ("P1", "A", "S1", 2, 1, "10.00", "purchase", None),
        ("T1", "A", "S1", 10, -3, "-36.00", "transfer", "TO"),
        ("T2", "A", "S1", 12, 1, "12.00", "transfer", "TO"),
        ("T3", "A", "S1", 34, 2, "24.00", "transfer", "TO"),
        ("P2", "A", "S1", 40, 5, "100.00", "purchase", None),
        ("X", "A", "S1", 70, -6, "-108.00", "sale", None),
    )
    jan = close(frame, JAN)
    assert jan.adjustments.is_empty()
    assert log_rows(jan, "awaiting_transfer_receipt").select("txn_id", "qty").rows() == [
        ("T1", D(2))
    ]
    assert jan.balances.select("qty", "value").rows() == [(D(-1), D("-14.00"))]
    feb = close(frame, FEB, opening=jan)
    assert feb.adjustments.is_empty()
    assert feb.balances.select("qty", "value").rows() == [(D(6), D("110.00"))]
    mar = close(frame, MAR, opening=feb)
    assert mar.adjustments.select("txn_id", "settled_amount", "adjustment").rows() == [
        ("X", D("-110.00"), D("-2.00"))
    ]
    assert mar.log.is_empty()
    assert mar.balances.select("qty", "value").rows() == [(D(0), D("0.00"))]


def test_a_move_after_a_recalculation_logs_no_cost_left_behind() -> None:
    # Review 44: S1 buys 10 at 10.00; T1 moves 6 within S1 on 20 January at -72.00; 4 arrive
    # on 25 January (48.00), 2 on 3 February (24.00). A recalculation on 22 January, before
    # any receipt of T1, settles it by FIFO: 60.00 (adjustment +12.00). January: 4 units pair
    # with R1 and take its 48.00 (-8.00: 40.00 of the recalculated value -> 48.00); the 2 on
    # their way keep the recalculated 20.00 (unfed change -4.00). February: R2 pairs with
    # them and they take its 24.00 (-4.00): T1 is back at its posted -72.00, as without the
    # recalculation, and nothing is left on an offset account. February used to log
    # cost_not_taken -2.67 (naming standard or moving-average receipts there are none of)
    # and late_cost +2.67.
    frame = rows(
        ("P1", "A", "S1", 2, 10, "100.00", "purchase", None),
        ("T1", "A", "S1", 20, -6, "-72.00", "transfer", "TO"),
        ("R1", "A", "S1", 25, 4, "48.00", "transfer", "TO"),
        ("R2", "A", "S1", 34, 2, "24.00", "transfer", "TO"),
    )
    recalc = invclose.recalculate(
        frame, dt.date(2025, 1, 22), method="fifo", dimensions=["site"], accounts=ACCOUNTS
    )
    assert adjustment(recalc, "T1") == D("12.00")
    jan = close(frame, JAN, opening=recalc)
    assert adjustment(jan, "T1") == D("-8.00")
    t1 = open_row(jan, "T1")
    assert (t1["open_value"], t1["unfed_qty"], t1["unfed_change"]) == (
        D("-20.00"),
        D(2),
        D("-4.00"),
    )
    feb = close(frame, FEB, opening=jan)
    assert feb.adjustments.select("txn_id", "settled_amount", "adjustment").rows() == [
        ("T1", D("-72.00"), D("-4.00"))
    ]
    assert feb.log.is_empty()


def test_an_issue_short_of_receipts_because_a_transit_receipt_is_held_is_logged_so() -> None:
    # S1 buys 3 at 10.00 and ships them to S2 on order T1; S2 receives the 3 and sends 1 back
    # to S1 on the same order (a transit leg: that issue settles against S2's receipt, which
    # the method never pairs with other rows, §9.2). S2 then ships 2 on order T2 (received at
    # S1 in February). S2 has no receipt its method could give T2's issue: the 2 units left of
    # the transit receipt wait for T1's later issues. So SH2 is logged insufficient_receipts
    # (2 units), as §13 lists an issue beyond the receipts available; it used to be logged
    # awaiting_invoice, with no physical row anywhere.
    frame = rows(
        ("P1", "A", "S1", 2, 3, "30.00", "purchase", None),
        ("SH", "A", "S1", 5, -3, "-30.00", "transfer", "T1"),
        ("RC", "A", "S2", 6, 3, "30.00", "transfer", "T1"),
        ("BK", "A", "S2", 7, -1, "-10.00", "transfer", "T1"),
        ("BKR", "A", "S1", 8, 1, "10.00", "transfer", "T1"),
        ("SH2", "A", "S2", 9, -2, "-20.00", "transfer", "T2"),
        ("RC2", "A", "S1", 34, 2, "20.00", "transfer", "T2"),
    )
    jan = close(frame, JAN)
    assert log_rows(jan, "awaiting_invoice").is_empty()
    assert log_rows(jan, "insufficient_receipts").select("site", "txn_id", "qty").rows() == [
        ("S2", "SH2", D(2))
    ]


def test_a_transit_receipts_rest_stays_held_in_the_next_close() -> None:
    # S1 buys 3 at 10.00 and ships them on T1 to the transit site S2 (RC, 30.00), which
    # forwards 1 to S3 in January (BK, -10.00: a transit leg, paired with RC). S2 buys 1 at
    # 20.00 (P2); X sells 2 from S2 on 9 February, posted -30.00 (15.00 each). RC's other 2
    # units are in transit, held for T1's later issues (§9.2: the method never pairs RC with
    # other rows), so FIFO gives X only P2: 20.00, and 1 unit short (insufficient_receipts)
    # at its posted 15.00: 35.00, adjustment -5.00; S2 keeps RC's 2 units (20.00) less
    # the 15.00 of X's short unit: 5.00 for 1 unit. So one close of both months; closing
    # January first used to release RC in February (the opening did not say RC was a
    # transit receipt): X took 2 of RC at 10.00 (20.00). BK stays open (quantity 0) while
    # RC holds units, so the next close sees the pair.
    # March: BK2 forwards RC's 2 units (-20.00) to S3: paired with RC, 20.00; RC, BK and BK2
    # close.
    frame = rows(
        ("P1", "A", "S1", 2, 3, "30.00", "purchase", None),
        ("SH", "A", "S1", 5, -3, "-30.00", "transfer", "T1"),
        ("RC", "A", "S2", 6, 3, "30.00", "transfer", "T1"),
        ("BK", "A", "S2", 7, -1, "-10.00", "transfer", "T1"),
        ("BKR", "A", "S3", 8, 1, "10.00", "transfer", "T1"),
        ("P2", "A", "S2", 9, 1, "20.00", "purchase", None),
        ("X", "A", "S2", 40, -2, "-30.00", "sale", None),
        ("BK2", "A", "S2", 65, -2, "-20.00", "transfer", "T1"),
        ("BKR2", "A", "S3", 66, 2, "20.00", "transfer", "T1"),
    )
    jan = close(frame, JAN)
    assert open_row(jan, "BK")["open_qty"] == D(0)
    assert open_row(jan, "RC")["open_qty"] == D(2)
    for feb in (close(frame, FEB, opening=jan), close(frame, FEB)):
        assert feb.adjustments.select("txn_id", "settled_amount", "adjustment").rows() == [
            ("X", D("-35.00"), D("-5.00"))
        ]
        assert log_rows(feb, "insufficient_receipts").select("txn_id", "qty").rows() == [
            ("X", D(1))
        ]
        assert feb.balances.filter(pl.col("site") == "S2").select("qty", "value").rows() == [
            (D(1), D("5.00"))
        ]
        assert {"RC", "BK"} <= set(feb.open_items["txn_id"])
    mar = close(frame, MAR, opening=close(frame, FEB, opening=jan))
    pieces = mar.settlements.select("issue_txn_id", "receipt_txn_id", "qty", "amount", "principle")
    assert pieces.rows() == [("BK2", "RC", D(2), D("20.00"), "transfer")]
    assert {"RC", "BK", "BK2"} <= closed(mar)


def test_partial_receipt_passes_the_rest_in_the_next_close() -> None:
    jan = close(PARTIAL, JAN)
    # R1 takes 6/10 of -50.00 = -30.00; -20.00 waits for the 4 units still in transit.
    assert adjustment(jan, "R1") == D("-30.00")
    ship = open_row(jan, "SHIP")
    assert (ship["unfed_qty"], ship["unfed_change"]) == (D("4"), D("-20.00"))
    feb = close(PARTIAL, FEB, opening=jan)
    assert adjustment(feb, "R2") == D("-20.00")
    assert adjustment(feb, "R1") is None
    assert "SHIP" in closed(feb)


# Production across month end: the component issue of order MO1 is on 28 January (posted at
# the average 15.00 x 4 = 60.00; FIFO: 4 of P1 at 10.00 = 40.00, 20.00 less cost), its output
# on 2 February (posted 60.00 + 5.00 of labour = 65.00).
WIP = rows(
    ("P1", "C", "S1", 2, 10, "100.00", "purchase", None),
    ("P2", "C", "S1", 3, 10, "200.00", "purchase", None),
    ("COMP", "C", "S1", 28, -4, "-60.00", "production", "MO1"),
    ("OUT", "F", "S1", 33, 1, "65.00", "production", "MO1"),
)


def test_production_output_in_a_later_period_takes_the_components_change() -> None:
    jan = close(WIP, JAN)
    assert adjustment(jan, "COMP") == D("20.00")
    comp = open_row(jan, "COMP")
    assert (comp["open_qty"], comp["unfed_qty"], comp["unfed_change"]) == (
        D("0"),
        D("4"),
        D("-20.00"),
    )
    feb = close(WIP, FEB, opening=jan)
    # 40.00 of component + 5.00 of labour as posted = 45.00.
    assert adjustment(feb, "OUT") == D("-20.00")
    assert open_row(feb, "OUT")["carried_value"] == D("45.00")
    assert "COMP" in closed(feb)


# Late cost: S1 has only 6 units when the shipment of 10 leaves on 20 January (posted at
# 10.00: 100.00). January settles 6 at 10.00 (as posted) and the receipt REC (25 January) is
# fed in January with no change. February brings 4 units at 15.00 on 3 February: the
# shipment's open 4 settle at 60.00 against a carried 40.00, 20.00 more cost. Its receipt was
# costed in January, so the stateless close leaves that on the offset account: late_cost.
LATE = rows(
    ("P1", "X", "S1", 2, 6, "60.00", "purchase", None),
    ("SHIP", "X", "S1", 20, -10, "-100.00", "transfer", "T1"),
    ("REC", "X", "S2", 25, 10, "100.00", "transfer", "T1"),
    ("P2", "X", "S1", 34, 4, "60.00", "purchase", None),
)


def test_late_cost_stays_on_the_offset_account_and_is_logged() -> None:
    jan = close(LATE, JAN)
    assert adjustment(jan, "REC") is None
    assert open_row(jan, "SHIP")["open_qty"] == D("-4")
    assert open_row(jan, "SHIP")["unfed_qty"] == D("0")
    feb = close(LATE, FEB, opening=jan)
    assert adjustment(feb, "SHIP") == D("-20.00")
    assert adjustment(feb, "REC") is None
    late = log_rows(feb, "late_cost")
    assert late.select("level", "txn_id", "qty", "amount", "order_id").rows() == [
        ("info", "SHIP", D("10"), D("20.00"), "T1")
    ]
    # The message states the amount as the amount column does (it said "2000 cent(s)"), and
    # the summary shows it beside the count: money left on the transit account.
    assert "changed by 20.00 (+ = more cost)" in late["message"][0]
    lines = [ln.split() for ln in feb.summary().splitlines()]
    assert ["info", "late_cost", "1", "amount", "+20.00"] in lines


def test_a_recalculation_feeds_provisionally_and_the_close_finishes_it() -> None:
    # Recalculation on 26 January: the shipment's change -50.00 reaches R1 (6/10: -30.00);
    # nothing is fed for good, so the shipment keeps all 10 unfed with -50.00, and R1 records
    # the -30.00 it took provisionally.
    recalc = invclose.recalculate(
        PARTIAL, dt.date(2025, 1, 26), method="fifo", dimensions=["site"], accounts=ACCOUNTS
    )
    assert adjustment(recalc, "R1") == D("-30.00")
    ship = open_row(recalc, "SHIP")
    assert (ship["unfed_qty"], ship["unfed_change"]) == (D("10"), D("-50.00"))
    assert (open_row(recalc, "R1")["unfed_qty"], open_row(recalc, "R1")["unfed_change"]) == (
        D("6"),
        D("-30.00"),
    )
    # The close on 31 January changes nothing more: R1's whole share is -30.00, which it has.
    jan = close(PARTIAL, JAN, opening=recalc)
    assert adjustment(jan, "R1") is None
    assert adjustment(jan, "SHIP") is None
    ship = open_row(jan, "SHIP")
    assert (ship["unfed_qty"], ship["unfed_change"]) == (D("4"), D("-20.00"))
    assert open_row(jan, "R1")["carried_value"] == D("60.00")
    feb = close(PARTIAL, FEB, opening=jan)
    assert adjustment(feb, "R2") == D("-20.00")


def test_a_change_after_a_recalculation_still_reaches_its_receipt() -> None:
    # S1 has 4 at 10.00 before the shipment of 10 (posted 150.00) on 20 January; 6 at 20.00
    # arrive on 28 January. The receipt REC (25 January) takes all 10.
    frame = rows(
        ("P1", "X", "S1", 2, 4, "40.00", "purchase", None),
        ("SHIP", "X", "S1", 20, -10, "-150.00", "transfer", "T1"),
        ("REC", "X", "S2", 25, 10, "150.00", "transfer", "T1"),
        ("P2", "X", "S1", 28, 6, "120.00", "purchase", None),
    )
    # 26 January: 4 settle at 40.00 against 4/10 of 150.00 = 60.00: -20.00; the other 6 keep
    # their 90.00. REC follows: 130.00.
    recalc = invclose.recalculate(
        frame, dt.date(2025, 1, 26), method="fifo", dimensions=["site"], accounts=ACCOUNTS
    )
    assert adjustment(recalc, "REC") == D("-20.00")
    # 31 January: 40.00 + 6 x 20.00 = 160.00, +30.00 on the recalculated 130.00, and REC
    # follows again: 160.00, as a close without the recalculation gives.
    jan = close(frame, JAN, opening=recalc)
    assert adjustment(jan, "SHIP") == D("-30.00")
    assert adjustment(jan, "REC") == D("30.00")
    assert open_row(jan, "REC")["carried_value"] == D("160.00")
    assert open_row(close(frame, JAN), "REC")["carried_value"] == D("160.00")
    assert "SHIP" in closed(jan)


def test_a_standard_cost_output_uses_up_the_order_and_nothing_waits() -> None:
    # The output F is a standard-cost item: it takes no cost from the close, so the FIFO
    # component's change (20.00 less cost, as in WIP above) stays on the WIP account, and the
    # component closes instead of waiting for an output that will never take it.
    frame = rows(
        ("P1", "C", "S1", 2, 10, "100.00", "purchase", None),
        ("P2", "C", "S1", 3, 10, "200.00", "purchase", None),
        ("COMP", "C", "S1", 20, -4, "-60.00", "production", "MO1"),
        ("OUT", "F", "S1", 25, 1, "65.00", "production", "MO1"),
    )
    items = pl.DataFrame({"item_id": ["C", "F"], "method": ["fifo", "standard"]})
    jan = close(frame, JAN, items=items)
    assert adjustment(jan, "COMP") == D("20.00")
    assert adjustment(jan, "OUT") is None
    assert "COMP" in closed(jan)
    assert "COMP" not in set(jan.open_items["txn_id"])
    # The log explains the 20.00 left on WIP: COMP's cost fell by 20.00 (amount -20.00, in
    # the cost_delta sign of late_cost) for the 4 units it fed to the standard-cost output.
    not_taken = [("COMP", D("4"), D("-20.00"), "MO1")]
    columns = ["txn_id", "qty", "amount", "order_id"]
    assert log_rows(jan, "cost_not_taken").select(columns).rows() == not_taken
    # With the output in February, January cannot know its method's part: the component
    # waits, and February's output uses it up without taking the change.
    later = frame.with_columns(
        date=pl.when(pl.col("txn_id") == "OUT").then(dt.date(2025, 2, 3)).otherwise("date")
    )
    jan = close(later, JAN, items=items)
    assert open_row(jan, "COMP")["unfed_qty"] == D("4")
    assert log_rows(jan, "cost_not_taken").is_empty()
    feb = close(later, FEB, items=items, opening=jan)
    assert adjustment(feb, "OUT") is None
    assert "COMP" in closed(feb)
    assert log_rows(feb, "cost_not_taken").select(columns).rows() == not_taken
    # A recalculation leaves the change waiting for the close: nothing is logged yet.
    recalc = invclose.recalculate(
        frame, JAN, method="fifo", dimensions=["site"], accounts=ACCOUNTS, items=items
    )
    assert log_rows(recalc, "cost_not_taken").is_empty()


def test_a_standard_co_product_keeps_its_share_on_wip() -> None:
    # MO1 consumes COMP (FIFO: 1 of P1 at 10.00 against 15.00 posted, 5.00 less cost) and
    # yields OUT1 (item F, standard, posted 10.00) and OUT2 (item G, FIFO, posted 5.00). By
    # posted amounts (§9.3) OUT1 weighs 10/15 and OUT2 5/15 of the -5.00, with cumulative
    # rounding in key order: OUT1 -3.33, OUT2 -5.00 - (-3.33) = -1.67. OUT1 is never adjusted
    # (§7.4): its -3.33 stays on WIP, logged; OUT2 takes only its -1.67 (not all -5.00).
    frame = rows(
        ("P1", "C", "S1", 2, 1, "10.00", "purchase", None),
        ("P2", "C", "S1", 3, 1, "20.00", "purchase", None),
        ("COMP", "C", "S1", 4, -1, "-15.00", "production", "MO1"),
        ("OUT1", "F", "S1", 5, 1, "10.00", "production", "MO1"),
        ("OUT2", "G", "S1", 5, 1, "5.00", "production", "MO1"),
    )
    items = pl.DataFrame({"item_id": ["C", "F", "G"], "method": ["fifo", "standard", "fifo"]})
    jan = close(frame, JAN, items=items)
    assert adjustment(jan, "COMP") == D("5.00")
    assert adjustment(jan, "OUT1") is None
    assert adjustment(jan, "OUT2") == D("-1.67")
    columns = ["txn_id", "qty", "amount", "order_id"]
    assert log_rows(jan, "cost_not_taken").select(columns).rows() == [
        ("OUT1", D("1"), D("-3.33"), "MO1")
    ]


def _chain(frame: pl.DataFrame, steps: list[tuple[str, dt.date]]) -> invclose.CloseResult:
    result: invclose.CloseResult | None = None
    for kind, date in steps:
        run = close if kind == "close" else recalculate
        result = run(frame, date) if result is None else run(frame, date, opening=result)
    assert result is not None
    return result


def recalculate(frame: pl.DataFrame, date: dt.date, **kw: Any) -> invclose.CloseResult:
    return invclose.recalculate(
        frame, date, method="fifo", dimensions=["site"], accounts=ACCOUNTS, **kw
    )


CHAINS = [
    [("close", JAN), ("close", FEB)],
    [("recalculate", dt.date(2025, 2, 4)), ("close", FEB)],
    [("close", JAN), ("recalculate", dt.date(2025, 2, 10)), ("close", FEB)],
]


@pytest.mark.parametrize("steps", CHAINS, ids=["close-close", "recalc-close", "close-recalc-close"])
def test_a_cycle_passes_on_what_waits_from_an_earlier_run(steps: list[tuple[str, dt.date]]) -> None:
    # X is consumed in its own production order W1. COMP (-10, 20 January, posted 150.00) is
    # FIFO-costed at P1's 100.00: -50.00; OUT (+10, 3 February) takes it: 100.00, as one
    # close of both months gives. The change waits in January (or a recalculation passes it
    # provisionally) and the cycle solve must count it: no residual.
    frame = rows(
        ("P1", "X", "S1", 2, 10, "100.00", "purchase", None),
        ("P2", "X", "S1", 3, 10, "200.00", "purchase", None),
        ("COMP", "X", "S1", 20, -10, "-150.00", "production", "W1"),
        ("OUT", "X", "S1", 34, 10, "150.00", "production", "W1"),
    )
    result = _chain(frame, steps)
    assert open_row(result, "OUT")["carried_value"] == D("100.00")
    # After a January close COMP is settled whole: its value is fixed, so W1 is no cycle in
    # February (nothing to log); with COMP open it is one, solved without a residual.
    residuals = [] if steps[0] == ("close", JAN) else [D("0.00")]
    assert log_rows(result, "cycle_residual")["amount"].to_list() == residuals


def test_outputs_of_a_component_settled_in_an_earlier_close_share_its_cent_once() -> None:
    # A is consumed in its own production order W1: P1 buys 2 for 10.01; COMP (-2, 10
    # January, posted -10.00) is settled by FIFO in January at -10.01 (adjustment -0.01,
    # waiting for W1's outputs); O1 and O2 (1 each, posted 5.00: equal weights) come on 3
    # and 4 February. February cuts COMP's 0.01 across them cumulatively in key order:
    # O1 +0.01 (0.005 rounds half away from zero), O2 0.01 - 0.01 = 0.00; S1 holds 2 units
    # for 10.01. COMP was read as an edge of a cycle through S1, and the solve rounded each
    # output on its own: 5.01 + 5.01 = 10.02, cycle_residual 0.01. (One close of both
    # months has COMP open, a true cycle: it still logs that cent, close-semantics §9.4.)
    frame = rows(
        ("P1", "A", "S1", 2, 2, "10.01", "purchase", None),
        ("COMP", "A", "S1", 10, -2, "-10.00", "production", "W1"),
        ("O1", "A", "S1", 34, 1, "5.00", "production", "W1"),
        ("O2", "A", "S1", 35, 1, "5.00", "production", "W1"),
    )
    jan = close(frame, JAN)
    assert adjustment(jan, "COMP") == D("-0.01")
    feb = close(frame, FEB, opening=jan)
    assert feb.adjustments.select("txn_id", "settled_amount", "adjustment").rows() == [
        ("O1", D("5.01"), D("0.01"))
    ]
    assert feb.balances.select("qty", "value").rows() == [(D(2), D("10.01"))]
    assert feb.log.is_empty()


@pytest.mark.parametrize("steps", CHAINS, ids=["close-close", "recalc-close", "close-recalc-close"])
def test_a_transfer_cycle_over_the_month_end(steps: list[tuple[str, dt.date]]) -> None:
    # S1 ships 10 to S2 (SH1, 20 January, posted 150.00; FIFO: P1's 100.00), received on
    # 3 February (RC1: 100.00); S2 ships 5 of them back (SH2, posted 75.00; FIFO: 50.00),
    # received at S1 on 6 February (RC2: 50.00); S1 sells 12.
    frame = rows(
        ("P1", "X", "S1", 2, 10, "100.00", "purchase", None),
        ("P2", "X", "S1", 3, 10, "200.00", "purchase", None),
        ("SH1", "X", "S1", 20, -10, "-150.00", "transfer", "T1"),
        ("RC1", "X", "S2", 34, 10, "150.00", "transfer", "T1"),
        ("SH2", "X", "S2", 36, -5, "-75.00", "transfer", "T2"),
        ("RC2", "X", "S1", 37, 5, "75.00", "transfer", "T2"),
        ("SALE", "X", "S1", 38, -12, "-180.00", "sale", None),
    )
    result = _chain(frame, steps)
    # The same as one close of both months: RC1 150.00 - 50.00, RC2 75.00 - 25.00.
    one = close(frame, FEB)
    assert (adjustment(one, "RC1"), adjustment(one, "RC2")) == (D("-50.00"), D("-25.00"))
    # RC1 keeps 5 units at 50.00; the sale takes P2's 10 and 2 of RC2, whose other 3 remain
    # at 30.00.
    assert open_row(result, "RC1")["open_value"] == D("50.00")
    assert open_row(result, "RC2")["open_value"] == D("30.00")
    # After a January close SH1 is settled whole: February's S1 -> S2 link has a fixed value,
    # so S1 -> S2 -> S1 is no cycle then (nothing to log); with SH1 open it is one, solved
    # without a residual.
    residuals = [] if steps[0] == ("close", JAN) else [D("0.00")]
    assert log_rows(result, "cycle_residual")["amount"].to_list() == residuals


def test_a_component_issued_after_its_output_was_costed_is_late_cost() -> None:
    # MO1's output OUT is costed in January (COMP1: 4 of P1 at 10.00 = 40.00 against 60.00
    # posted; OUT 65.00 - 20.00 = 45.00). COMP2 (2 more units, posted 30.00) is booked on
    # 3 February: FIFO takes 2 more of P1, 20.00, 10.00 less cost. No output is left to feed,
    # so February logs that as late cost and the component closes instead of waiting.
    frame = rows(
        ("P1", "C", "S1", 2, 10, "100.00", "purchase", None),
        ("P2", "C", "S1", 3, 10, "200.00", "purchase", None),
        ("COMP1", "C", "S1", 20, -4, "-60.00", "production", "MO1"),
        ("OUT", "F", "S1", 25, 1, "65.00", "production", "MO1"),
        ("COMP2", "C", "S1", 34, -2, "-30.00", "production", "MO1"),
    )
    jan = close(frame, JAN)
    assert adjustment(jan, "OUT") == D("-20.00")
    feb = close(frame, FEB, opening=jan)
    assert adjustment(feb, "COMP2") == D("10.00")
    assert adjustment(feb, "OUT") is None
    assert "COMP2" in closed(feb)
    late = log_rows(feb, "late_cost")
    assert late.select("txn_id", "qty", "amount", "order_id").rows() == [
        ("COMP2", D("2"), D("-10.00"), "MO1")
    ]


def test_a_late_component_left_partly_unsettled_has_no_change_waiting() -> None:
    # As above, but COMP2 issues 30 units on 3 February while only 16 are left (P1 6, P2 10):
    # FIFO settles 6 x 10.00 + 10 x 20.00 = 260.00 for 16 units; the 14 unsettled keep the
    # carried 15.00 each (210.00). The issue carries 470.00 against 450.00 posted, 20.00 more
    # cost (adjustment -20.00), all of it late cost (MO1's only output was costed in January).
    # Nothing of it waits: unfed_change must be 0.00, not the late change counted again.
    frame = rows(
        ("P1", "C", "S1", 2, 10, "100.00", "purchase", None),
        ("P2", "C", "S1", 3, 10, "200.00", "purchase", None),
        ("COMP1", "C", "S1", 20, -4, "-60.00", "production", "MO1"),
        ("OUT", "F", "S1", 25, 1, "65.00", "production", "MO1"),
        ("COMP2", "C", "S1", 34, -30, "-450.00", "production", "MO1"),
    )
    feb = close(frame, FEB, opening=close(frame, JAN))
    assert adjustment(feb, "COMP2") == D("-20.00")
    comp2 = open_row(feb, "COMP2")
    assert (comp2["open_qty"], comp2["carried_value"]) == (D("-14"), D("-470.00"))
    assert (comp2["unfed_qty"], comp2["unfed_change"]) == (D("0"), D("0.00"))
    late = log_rows(feb, "late_cost").select("txn_id", "qty", "amount").rows()
    assert late == [("COMP2", D("30"), D("20.00"))]


def test_quantity_never_received_keeps_waiting_as_goods_in_transit() -> None:
    # A shipment of 10 of which 8 are received: the 2 units are still in transit, with their
    # share of the change (2/10 of -50.00 = -10.00) on the transit account, until a receipt
    # of the order takes them.
    frame = rows(
        ("P1", "X", "S1", 2, 10, "100.00", "purchase", None),
        ("P2", "X", "S1", 3, 10, "200.00", "purchase", None),
        ("SHIP", "X", "S1", 20, -10, "-150.00", "transfer", "T1"),
        ("REC", "X", "S2", 25, 8, "120.00", "transfer", "T1"),
    )
    feb = close(frame, FEB, opening=close(frame, JAN))
    ship = open_row(feb, "SHIP")
    assert (ship["open_qty"], ship["unfed_qty"], ship["unfed_change"]) == (
        D("0"),
        D("2"),
        D("-10.00"),
    )
    assert open_row(feb, "REC")["carried_value"] == D("80.00")


def _late_order(o2_day: int, o2_status: str = "financial") -> pl.DataFrame:
    frame = rows(
        ("P1", "C", "S1", 2, 10, "100.00", "purchase", None),
        ("P2", "C", "S1", 3, 10, "200.00", "purchase", None),
        ("C1", "C", "S1", 20, -4, "-60.00", "production", "MO1"),
        ("O1", "F", "S1", 25, 1, "65.00", "production", "MO1"),
        ("C2", "C", "S1", 34, -2, "-30.00", "production", "MO1"),
        ("O2", "F", "S1", o2_day, 1, "30.00", "production", "MO1"),
    )
    return frame.with_columns(
        status=pl.when(pl.col("txn_id") == "O2")
        .then(pl.lit(o2_status))
        .otherwise(pl.lit("financial"))
    )


@pytest.mark.parametrize("o2", ["dated in March", "physical in February"])
def test_a_component_waits_while_an_output_of_its_order_is_still_to_come(o2: str) -> None:
    # As above, C2 (3 February) changes by -10.00 after O1 was costed in January; but O2, a
    # second output of MO1, is dated 5 March (or posted physically in February and invoiced
    # in March): C2 waits for it, and March passes the -10.00 to O2 (30.00 -> 20.00).
    frame = _late_order(
        64 if o2 == "dated in March" else 40, "physical" if "physical" in o2 else "financial"
    )
    jan = close(frame, JAN)
    feb = close(frame, FEB, opening=jan)
    assert log_rows(feb, "late_cost").is_empty()
    c2 = open_row(feb, "C2")
    assert (c2["unfed_qty"], c2["unfed_change"]) == (D("2"), D("-10.00"))
    # O2's invoice (or O2 itself) is dated 5 March: nothing posts into the closed February.
    invoiced = frame.with_columns(
        status=pl.lit("financial"),
        date=pl.when(pl.col("txn_id") == "O2").then(dt.date(2025, 3, 5)).otherwise("date"),
    )
    mar = close(invoiced, dt.date(2025, 3, 31), opening=feb)
    assert adjustment(mar, "O2") == D("-10.00")
    assert "C2" in closed(mar)


def test_an_output_after_the_closing_date_is_part_of_the_close_id() -> None:
    # The February close reads O2 (5 March): with it, C2's -10.00 waits for O2; given rows up
    # to 28 February only, C2's change is late cost. Two different results, so two ids; a sale
    # dated after the closing date, which the close does not read, changes neither.
    full = _late_order(64)
    cut = full.filter(pl.col("date") <= FEB)
    sale = rows(("S9", "C", "S1", 65, -1, "-15.00", "sale", None)).with_columns(
        seq=pl.lit(9, pl.Int64), status=pl.lit("financial")
    )
    later_sale = pl.concat([cut, sale])
    results = {}
    for name, frame in (("full", full), ("cut", cut), ("later sale", later_sale)):
        results[name] = close(frame, FEB, opening=close(frame, JAN))
    assert log_rows(results["full"], "late_cost").is_empty()
    assert log_rows(results["cut"], "late_cost").select("txn_id").rows() == [("C2",)]
    assert results["full"].close_id != results["cut"].close_id
    assert results["later sale"].close_id == results["cut"].close_id


def test_a_close_takes_back_what_a_recalculation_passed_to_an_order_it_cannot_cost() -> None:
    # COMP (-4, 28 January: -20.00, waiting) feeds OUT (2 February), which is sold on
    # 5 February. The recalculation of 12 February passes OUT -20.00 provisionally (45.00; the
    # sale follows). A physical component C3 dated 11 February, posted after the
    # recalculation, keeps the February close from costing MO1, so OUT must give the -20.00
    # back (the sale with it): COMP still holds it, waiting. Nothing is passed twice.
    frame = rows(
        ("P1", "C", "S1", 2, 10, "100.00", "purchase", None),
        ("P2", "C", "S1", 3, 10, "200.00", "purchase", None),
        ("COMP", "C", "S1", 28, -4, "-60.00", "production", "MO1"),
        ("OUT", "F", "S1", 33, 1, "65.00", "production", "MO1"),
        ("SALE", "F", "S1", 36, -1, "-65.00", "sale", None),
        ("C3", "C", "S1", 42, -1, "-15.00", "production", "MO1"),
    ).with_columns(
        status=pl.when(pl.col("txn_id") == "C3")
        .then(pl.lit("physical"))
        .otherwise(pl.lit("financial"))
    )
    jan = close(frame, JAN)
    recalc = recalculate(frame.filter(pl.col("txn_id") != "C3"), dt.date(2025, 2, 12), opening=jan)
    assert (adjustment(recalc, "OUT"), adjustment(recalc, "SALE")) == (D("-20.00"), D("20.00"))
    feb = close(frame, FEB, opening=recalc)
    assert (adjustment(feb, "OUT"), adjustment(feb, "SALE")) == (D("20.00"), D("-20.00"))
    comp = open_row(feb, "COMP")
    assert (comp["unfed_qty"], comp["unfed_change"]) == (D("4"), D("-20.00"))


# MO2: COMP (-6, 20 January, posted 90.00; FIFO 60.00: -30.00) for two outputs received on
# 2 February, F (posted 100.00) and G (posted 50.00): by posted amounts F takes 2/3, -20.00,
# and G 1/3, -10.00.
TWO_OUTPUTS = rows(
    ("P1", "C", "S1", 2, 10, "100.00", "purchase", None),
    ("P2", "C", "S1", 3, 10, "200.00", "purchase", None),
    ("COMP", "C", "S1", 20, -6, "-90.00", "production", "MO2"),
    ("OF", "F", "S1", 33, 1, "100.00", "production", "MO2"),
    ("OG", "G", "S1", 33, 1, "50.00", "production", "MO2"),
)


def test_a_recalculation_of_some_items_leaves_the_others_outputs_alone() -> None:
    jan = close(TWO_OUTPUTS, JAN)
    recalc = recalculate(TWO_OUTPUTS, dt.date(2025, 2, 10), opening=jan, item_ids=["F"])
    # Only F moves; G is not recalculated, and COMP keeps all of its -30.00 waiting.
    assert adjustment(recalc, "OF") == D("-20.00")
    assert adjustment(recalc, "OG") is None
    assert open_row(recalc, "COMP")["unfed_change"] == D("-30.00")
    feb = close(TWO_OUTPUTS, FEB, opening=recalc)
    # The close shares by posted amounts, not by the values the recalculation left (OF's
    # 80.00 against OG's 50.00 would give OF -18.46): OF has its share, OG takes -10.00.
    assert adjustment(feb, "OF") is None
    assert adjustment(feb, "OG") == D("-10.00")
    plain = close(TWO_OUTPUTS, FEB, opening=jan)
    assert (adjustment(plain, "OF"), adjustment(plain, "OG")) == (D("-20.00"), D("-10.00"))


def test_a_recalculation_of_other_items_leaves_a_transit_transfer_alone() -> None:
    # X goes S1 -> transit TR -> S2; the transit issue is posted 140.00 against its receipt's
    # 150.00. Recalculating only Y must adjust no row of X (the transit pair included); the
    # close afterwards ends where a close alone ends.
    frame = rows(
        ("P1", "X", "S1", 2, 10, "100.00", "purchase", None),
        ("P2", "X", "S1", 3, 10, "200.00", "purchase", None),
        ("SHIP", "X", "S1", 20, -10, "-150.00", "transfer", "T1"),
        ("TRR", "X", "TR", 21, 10, "150.00", "transfer", "T1"),
        ("TRI", "X", "TR", 22, -10, "-140.00", "transfer", "T1"),
        ("REC", "X", "S2", 23, 10, "140.00", "transfer", "T1"),
        ("PY", "Y", "S1", 2, 1, "5.00", "purchase", None),
        ("SY", "Y", "S1", 5, -1, "-4.00", "sale", None),
    )
    recalc = recalculate(frame, dt.date(2025, 1, 25), item_ids=["Y"])
    assert recalc.adjustments.select("txn_id", "adjustment").rows() == [("SY", D("-1.00"))]
    jan = close(frame, JAN, opening=recalc)
    # A close alone: SHIP 100.00 (-50.00), the transit pair and REC follow: TRR 100.00,
    # TRI and REC 100.00 (-40.00 on the 140.00 posted).
    for txn, value in (("SHIP", "50.00"), ("TRR", "-50.00"), ("TRI", "40.00"), ("REC", "-40.00")):
        assert adjustment(jan, txn) == D(value)


def test_a_receipt_now_at_standard_cost_keeps_what_a_recalculation_gave_it() -> None:
    # WIP as above; the recalculation of 10 February passes OUT (item F) -20.00. F is then
    # costed at standard: the close adjusts no standard row, so OUT keeps the recalculated
    # 45.00 (its voucher is already posted) and the books agree: F's on-hand is 45.00.
    recalc = recalculate(WIP, dt.date(2025, 2, 10), opening=close(WIP, JAN))
    assert adjustment(recalc, "OUT") == D("-20.00")
    items = pl.DataFrame({"item_id": ["C", "F"], "method": ["fifo", "standard"]})
    feb = close(WIP, FEB, opening=recalc, items=items)
    assert adjustment(feb, "OUT") is None
    assert feb.balances.filter(pl.col("item_id") == "F")["value"].to_list() == [D("45.00")]
    assert "COMP" in closed(feb)
