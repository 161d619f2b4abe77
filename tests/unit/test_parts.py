"""A large in-memory close runs in parts of whole items (invclose.parts) and gives the rows of
one pass, in the same order (these FIFO ledgers have no virtual rows, which a part lists
after its own input rows).

The small ledger of the batched tests (``tests.helpers.components_ledger``), by hand (FIFO,
posted costs are running averages):

* item A: receipts 2 @ 15.00 (30.00) and 1 @ 21.00; a sale of 2 posted at -34.00 settles the
  first receipt: cost 30.00, cost_delta -4.00.
* items B and C, one production order PO1: B receipt 4 @ 10.00; the consumption of 4 posted
  at -36.00 settles at 40.00 (+4.00); the output, 1 C posted at 50.00, gets its component's
  +4.00 (54.00); its sale, posted at -50.00, settles at 54.00 (+4.00).
* item D: receipt 7.00 and its sale at -7.00: nothing to adjust.

Components {A}, {B, C}, {D}; with parts of one row each is a part (the production order keeps
B and C together).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

import invclose
from invclose.components import contiguous_parts
from invclose.errors import MissingAccountError
from invclose.kernel.prepare import build_working
from invclose.parts import working_parts
from invclose.progress import ProgressEvent
from invclose.schemas import RESULT_TABLES
from tests.helpers import (
    ACCOUNTS,
    D,
    components_february,
    components_ledger,
    day,
    rows_per_part,
    tx,
)


def _assert_identical(mine: invclose.CloseResult, one_pass: invclose.CloseResult) -> None:
    """Same id, metadata and every table row for row, in the same order."""
    assert mine.close_id == one_pass.close_id
    assert (mine.closing_date, mine.lock_date, mine.run_kind) == (
        one_pass.closing_date,
        one_pass.lock_date,
        one_pass.run_kind,
    )
    for table in RESULT_TABLES:
        assert getattr(mine, table).equals(getattr(one_pass, table)), table


def _working(items: list[str], orders: list[str | None]) -> pl.DataFrame:
    """Sorted kernel rows of one purchase per entry (item, order)."""
    n = len(items)
    frame = pl.DataFrame(
        {
            "txn_id": [f"t{k}" for k in range(n)],
            "item_id": items,
            "order_id": orders,
            "date": [day(1)] * n,
            "seq": list(range(n)),
            "qty": [1] * n,
            "status": ["financial"] * n,
            "kind": ["production"] * n,
            "q0": [1] * n,
            "v0": [100] * n,
            "method": ["fifo"] * n,
            "incl_phys": [False] * n,
        }
    )
    return build_working(frame, [], day(31))


def test_items_are_cut_only_between_components() -> None:
    # Items in order A B C D E; order P1 links A and C, so B (between them) stays with them:
    # the first possible cut is after C. Rows: A 2, B 1, C 1, D 2, E 1.
    working = _working(["C", "A", "D", "B", "A", "E", "D"], ["P1", "P1", *[None] * 5])
    cut = working_parts(working, part_rows=2)
    # Stretches {A, B, C} (rows 0-3), {D} (rows 4-5), {E} (row 6): parts by the 2-row
    # block each stretch starts in: 0, 2, 3.
    assert [p["item_id"].to_list() for p in cut] == [["A", "A", "B", "C"], ["D", "D"], ["E"]]
    # Each part is numbered as if sorted alone: positions and groups from 0.
    assert [p["pos"].to_list() for p in cut] == [[0, 1, 2, 3], [0, 1], [0]]
    assert [p["gid"].to_list() for p in cut] == [[0, 0, 1, 2], [0, 0], [0]]
    # A frame no larger than a part is not cut.
    assert len(working_parts(working, part_rows=7)) == 1
    # One component holding every item cannot be cut.
    linked = _working(["C", "A", "D", "B", "A", "E", "D"], ["P1"] * 7)
    assert len(working_parts(linked, part_rows=1)) == 1


def test_stretches_pack_into_parts_by_the_block_they_start_in() -> None:
    # Five items of 3 rows, none linked; parts of 4 rows: items start at rows 0, 3, 6, 9, 12,
    # in blocks 0, 0, 1, 2, 3.
    labels = np.arange(5)
    assert contiguous_parts(labels, np.full(5, 3), 4).tolist() == [0, 0, 1, 2, 3]
    # Items 0 and 3 in one component: the stretch 0-3 (12 rows) is one part, item 4 the next.
    assert contiguous_parts(np.array([0, 1, 2, 0, 3]), np.full(5, 3), 4).tolist() == [
        0,
        0,
        0,
        0,
        1,
    ]


def test_a_close_in_parts_gives_the_hand_values_and_the_rows_of_one_pass() -> None:
    df = components_ledger()
    one_pass = invclose.close(df, day(31), accounts=ACCOUNTS)
    events: list[ProgressEvent] = []
    with rows_per_part(1):
        mine = invclose.close(df, day(31), accounts=ACCOUNTS, progress=events.append)
    delta = dict(mine.adjustments.select("txn_id", "cost_delta").rows())
    assert delta == {"AS": D("-4.00"), "BC": D("4.00"), "CP": D("4.00"), "CS": D("4.00")}
    # Three parts ({A}, {B, C}, {D}): one "settle and cost" event each, rows counted up.
    settled = [
        (e.rows_done, e.parts_done, e.parts_total) for e in events if e.stage == "settle and cost"
    ]
    assert settled == [(3, 1, 3), (7, 2, 3), (9, 3, 3)]
    assert events[-1].stage == "assemble"
    # The last event is the whole run's: every part done (it read part 1 of 1, review 63).
    assert (events[-1].rows_done, events[-1].parts_done, events[-1].parts_total) == (9, 3, 3)
    _assert_identical(mine, one_pass)


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        # One voucher per item with lines, numbered in item order over all parts: A, B, C
        # (D adjusts nothing).
        ("transaction", {"AS": "V1", "BC": "V2", "CP": "V3", "CS": "V3"}),
        # At item detail C's lines net to nothing (CP +4.00, CS -4.00 on the same accounts).
        ("item", {"A": "V1", "B": "V2"}),
        # Item groups G1 = {A, C}, G2 = {B, D} span parts: netted again over all of them.
        # G1: AS +4.00 (1400 debit), CP +4.00, CS -4.00: 1400 nets +4.00, 5000 -4.00.
        # G2: BC -4.00: 1400 credit 4.00, 5000 debit 4.00.
        ("item_group", {"G1": "V1", "G2": "V2"}),
        # In total the four adjustments net to nothing: no voucher.
        ("total", {}),
    ],
)
def test_vouchers_are_numbered_and_netted_over_all_parts(
    detail: str, expected: dict[str | None, str]
) -> None:
    df = components_ledger()
    groups = pl.DataFrame({"item_id": ["A", "B", "C", "D"], "item_group": ["G1", "G2", "G1", "G2"]})
    kwargs = {"accounts": ACCOUNTS, "items": groups, "voucher_detail": detail}
    one_pass = invclose.close(df, day(31), **kwargs)  # type: ignore[arg-type]
    with rows_per_part(1):
        mine = invclose.close(df, day(31), **kwargs)  # type: ignore[arg-type]
    key = {"transaction": "txn_id", "item": "item_id", "item_group": "item_group"}.get(detail)
    lines = mine.vouchers.with_columns(
        number=pl.col("voucher_id").str.replace(r"^.*-", ""),
        key=pl.col(key) if key else pl.lit(None, pl.String),
    )
    assert dict(lines.select("key", "number").unique().rows()) == expected
    if detail == "item_group":
        nets = {
            (g, a): d - c
            for g, a, d, c in lines.select("item_group", "account", "debit", "credit").rows()
        }
        assert nets == {
            ("G1", "1400"): D("4.00"),
            ("G1", "5000"): D("-4.00"),
            ("G2", "1400"): D("-4.00"),
            ("G2", "5000"): D("4.00"),
        }
    _assert_identical(mine, one_pass)


def test_nothing_to_close_is_judged_over_the_whole_run_not_per_part() -> None:
    # A has a purchase on 2 January; B only one on 3 February, after the closing date. B's
    # part alone has nothing on or before 31 January, the run has: no warning.
    frame = tx(
        ("A1", "A", 2, 1, "10.00"), ("B1", "B", dt.date(2025, 2, 3), 1, "5.00")
    ).with_columns(kind=pl.lit("purchase"))
    with rows_per_part(1):
        some = invclose.close(frame, day(31), accounts=ACCOUNTS)
    assert some.log.is_empty()
    _assert_identical(some, invclose.close(frame, day(31), accounts=ACCOUNTS))
    # Both after the closing date, in two parts: one warning, not one per part.
    later = frame.with_columns(date=pl.lit(dt.date(2025, 2, 3)))
    with rows_per_part(1):
        none = invclose.close(later, day(31), accounts=ACCOUNTS)
    assert none.log.select("level", "code").rows() == [("warning", "nothing_to_close")]
    _assert_identical(none, invclose.close(later, day(31), accounts=ACCOUNTS))


def test_rows_without_accounts_are_named_from_every_part() -> None:
    # No accounts anywhere: the adjusted rows of part {A} (AS) and part {B, C} (BC, CP, CS)
    # are all named in one error, as one pass names them.
    df = components_ledger()
    with pytest.raises(MissingAccountError) as one_pass:
        invclose.close(df, day(31))
    with rows_per_part(1), pytest.raises(MissingAccountError) as mine:
        invclose.close(df, day(31))
    assert mine.value.failures is not None
    assert sorted(mine.value.failures["txn_id"]) == ["AS", "BC", "CP", "CS"]
    assert str(mine.value) == str(one_pass.value)


def test_a_later_close_and_a_recalculation_in_parts_continue_from_their_opening() -> None:
    january = invclose.close(components_ledger(), day(31), accounts=ACCOUNTS)
    # February, by hand: AS2 settles 21.00 + 24.00 = 45.00 for -40.00 posted: +5.00.
    february = components_february()
    feb_end = dt.date(2025, 2, 28)
    one_pass = invclose.close(february, feb_end, accounts=ACCOUNTS, opening=january)
    with rows_per_part(1):
        mine = invclose.close(february, feb_end, accounts=ACCOUNTS, opening=january)
        recalculated = invclose.recalculate(february, feb_end, accounts=ACCOUNTS, opening=january)
    assert dict(mine.adjustments.select("txn_id", "cost_delta").rows()) == {"AS2": D("5.00")}
    # The opening's closed rows are listed once, not once per part.
    assert mine.closed_items["txn_id"].is_duplicated().sum() == 0
    _assert_identical(mine, one_pass)
    _assert_identical(
        recalculated,
        invclose.recalculate(february, feb_end, accounts=ACCOUNTS, opening=january),
    )


def test_the_pre_close_check_in_parts_lists_what_one_pass_lists() -> None:
    # No accounts: the check names AS (part {A}) and BC, CP, CS (part {B, C}) as errors
    # missing_account, once each, as one pass does.
    df = components_ledger()
    one_pass = invclose.check(df, day(31))
    with rows_per_part(1):
        mine = invclose.check(df, day(31))
    missing = mine.filter(pl.col("code") == "missing_account")
    assert sorted(missing["txn_id"]) == ["AS", "BC", "CP", "CS"]
    assert set(missing["level"]) == {"error"}
    assert mine.equals(one_pass)
    # Everything after the closing date, in two parts: nothing_to_close once.
    later = df.with_columns(date=pl.lit(dt.date(2025, 2, 3)))
    with rows_per_part(1):
        warned = invclose.check(later, day(31), accounts=ACCOUNTS)
    assert warned.filter(pl.col("code") == "nothing_to_close").height == 1
    assert warned.equals(invclose.check(later, day(31), accounts=ACCOUNTS))


def test_a_negative_on_hand_row_pairs_with_nothing_in_the_lineage() -> None:
    # Two moving-average items: A buys 1 for 10.00 and sells 3 (-30.00), so it ends at -2
    # on hand; B buys 2 for 20.00. The close writes one on-hand row per item (A's an issue of
    # -2, B's a receipt of 2), both virtual. Only the averaging walk's closing pairs are an
    # issue and the receipt after it: A's on-hand row took B's as its pair, a transfer of
    # 2 units for 20.00 between two items (and a close in parts lost it at the cut).
    df = tx(
        ("A1", "A", 2, 1, "10.00"), ("A2", "A", 3, -3, "-30.00"), ("B1", "B", 2, 2, "20.00")
    ).with_columns(kind=pl.Series(["purchase", "sale", "purchase"]))
    items = pl.DataFrame({"item_id": ["A", "B"], "method": ["moving_average"] * 2})
    one_pass = invclose.close(df, day(31), items=items, accounts=ACCOUNTS)
    assert one_pass.cost_flow.filter(pl.col("kind") == "transfer").is_empty()
    onhand = one_pass.open_items.filter(pl.col("is_virtual")).sort("item_id")
    assert onhand.select("item_id", "open_qty").rows() == [("A", D("-2")), ("B", D("2"))]
    with rows_per_part(1):
        mine = invclose.close(df, day(31), items=items, accounts=ACCOUNTS)
    assert mine.cost_flow.equals(one_pass.cost_flow)
