"""Vouchers post each adjustment to the accounts of the original transaction (§8)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import invclose
from invclose.batched import close_batched
from invclose.config import VoucherDetail
from invclose.kernel.vouchers import voucher_ids, voucher_lines
from tests.helpers import ACCOUNTS, D, day, rows_per_part, tx


def _frame() -> pl.DataFrame:
    # Item A: receipts 10.00 and 22.00, a sale posted at 16.00 -> fifo settles at 10.00
    # (adjustment +6.00 on the sale: COGS credited 6.00, inventory debited 6.00).
    # Item B (group G2): receipt 5.00, consumption posted at 4.00 -> +1.00 more cost.
    frame = tx(
        ("A1", "A", 1, 1, "10.00"),
        ("A2", "A", 1, 1, "22.00"),
        ("AS", "A", 2, -1, "-16.00"),
        ("B1", "B", 1, 1, "5.00"),
        ("BS", "B", 2, -1, "-4.00"),
    )
    return frame.with_columns(
        inventory_account=pl.Series(["1400", "1400", "1410", None, None]),
        offset_account=pl.Series(["2100", "2100", "5010", None, None]),
        kind=pl.Series(["purchase", "purchase", "sale", "purchase", "consumption"]),
    )


ITEMS = pl.DataFrame({"item_id": ["A", "B"], "item_group": ["G1", "G2"]})
MAPPING = pl.DataFrame(
    {
        "kind": ["consumption", None, "consumption"],
        "item_group": [None, None, "G2"],
        "inventory_account": ["1400-any", "1400-default", "1420"],
        "offset_account": ["6000-any", "6000-default", "6020"],
    }
)


def _close(detail: str = "transaction") -> invclose.CloseResult:
    return invclose.close(_frame(), day(31), items=ITEMS, accounts=MAPPING, voucher_detail=detail)


def test_adjustment_posts_to_the_rows_own_accounts_and_most_specific_mapping() -> None:
    result = _close()
    adj = {r["txn_id"]: r for r in result.adjustments.iter_rows(named=True)}
    # AS carries its own accounts (1410 / 5010), even though a mapping exists.
    assert (adj["AS"]["inventory_account"], adj["AS"]["offset_account"]) == ("1410", "5010")
    # BS has none: kind=consumption and item_group=G2 is the most specific mapping row.
    assert (adj["BS"]["inventory_account"], adj["BS"]["offset_account"]) == ("1420", "6020")


def test_transaction_vouchers_are_balanced_pairs() -> None:
    lines = _close().vouchers
    got = sorted(lines.select("txn_id", "account", "debit", "credit").rows())
    assert got == [
        ("AS", "1410", D("6.00"), D("0.00")),  # sale got cheaper: inventory debited back
        ("AS", "5010", D("0.00"), D("6.00")),  # and COGS credited
        ("BS", "1420", D("0.00"), D("1.00")),  # consumption dearer: inventory credited
        ("BS", "6020", D("1.00"), D("0.00")),  # consumption account debited
    ]
    per_voucher = lines.group_by("voucher_id").agg(pl.col("debit").sum(), pl.col("credit").sum())
    assert all(d == c for _, d, c in per_voucher.rows())
    # One voucher per item.
    assert lines.group_by("item_id").agg(pl.col("voucher_id").n_unique())[
        "voucher_id"
    ].to_list() == [1, 1]


@pytest.mark.parametrize("detail", ["transaction", "item", "item_group", "total"])
def test_line_numbers_restart_at_1_in_every_voucher(detail: str) -> None:
    # Transaction detail: A's voucher has AS's two lines, B's voucher BS's two lines, so
    # each voucher is numbered 1, 2 (the second voucher does not continue with 3, 4).
    lines = _close(detail).vouchers
    numbers = lines.group_by("voucher_id").agg(pl.col("line_no").sort())["line_no"].to_list()
    assert all(n == list(range(1, len(n) + 1)) for n in numbers)
    if detail == "transaction":
        assert sorted(numbers) == [[1, 2], [1, 2]]


@pytest.mark.parametrize("detail", ["item", "item_group", "total"])
def test_coarser_detail_nets_to_the_same_account_totals(detail: str) -> None:
    fine = _close().vouchers
    coarse = _close(detail).vouchers

    def totals(v: pl.DataFrame) -> list[tuple[str, object]]:
        return sorted(
            v.group_by("account")
            .agg((pl.col("debit") - pl.col("credit")).sum().alias("net"))
            .rows()
        )

    assert totals(coarse) == totals(fine)
    assert coarse["txn_id"].null_count() == coarse.height
    if detail == "total":
        assert coarse["voucher_id"].n_unique() == 1
        assert coarse["item_id"].null_count() == coarse.height
    per_voucher = coarse.group_by("voucher_id").agg(pl.col("debit").sum(), pl.col("credit").sum())
    assert all(d == c for _, d, c in per_voucher.rows())


def test_voucher_lines_per_account_equal_the_adjustments() -> None:
    result = _close()
    adj = result.adjustments
    inv = adj.group_by("inventory_account").agg(pl.col("adjustment").sum()).rows()
    lines = dict(
        result.vouchers.group_by("account").agg((pl.col("debit") - pl.col("credit")).sum()).rows()
    )
    for account, total in inv:
        assert lines[account] == total


def test_missing_account_stops_the_close_and_names_the_rows() -> None:
    frame = tx(("R", "A", 1, 1, "10.00"), ("S1", "A", 2, -1, "-16.00"))
    with pytest.raises(invclose.MissingAccountError) as err:
        invclose.close(frame, day(31))
    assert "S1" in str(err.value)
    assert "kind=None item_group=None" in str(err.value)
    assert err.value.failures is not None
    assert err.value.failures["txn_id"].to_list() == ["S1"]


def test_rows_that_need_no_posting_need_no_account() -> None:
    # Posted at the settled cost: nothing to adjust, so no account is required.
    frame = tx(("R", "A", 1, 1, "10.00"), ("S1", "A", 2, -1, "-10.00"))
    result = invclose.close(frame, day(31))
    assert result.adjustments.is_empty()
    assert result.vouchers.is_empty()
    assert result.settlements.height == 1


def test_default_accounts_mapping_row_matches_anything() -> None:
    frame = tx(("R", "A", 1, 1, "10.00"), ("S1", "A", 2, -1, "-16.00"))
    result = invclose.close(frame, day(31), accounts=ACCOUNTS)
    assert result.adjustments.select("inventory_account", "offset_account").rows() == [
        ("1400", "5000")
    ]


@pytest.mark.parametrize("detail", ["transaction", "item", "item_group", "total"])
def test_numbers_kept_for_later_ids_give_the_same_lines(detail: str) -> None:
    # A close numbers its vouchers before its id is known and names them last: that must
    # give exactly the lines named at once. Item A posts +5.00 and -7.00 (two sites), B
    # +3.00 to its own offset account, and a row without item +2.00.
    adjusted = pl.DataFrame(
        {
            "item_id": ["A", "A", "B", None],
            "site": ["s", "t", "s", "s"],
            "item_group": ["G1", "G1", None, "G1"],
            "txn_id": ["1", "2", "3", "4"],
            "inventory_account": ["1400"] * 4,
            "offset_account": ["5000", "5000", "2100", "5000"],
            "adjustment": [500, -700, 300, 200],
        }
    )
    level = VoucherDetail(detail)
    named = voucher_lines(adjusted, level, ["site"], "C1")
    numbered = voucher_lines(adjusted, level, ["site"], None)
    later = numbered.with_columns(voucher_ids(numbered["voucher_no"], "C1")).select(named.columns)
    assert later.equals(named)
    assert "voucher_no" not in named.columns
    # Every voucher balances.
    sums = named.group_by("voucher_id").agg(pl.col("debit").sum(), pl.col("credit").sum())
    assert (sums["debit"] == sums["credit"]).all()
    if detail == "total":  # one voucher: 1400 nets +3.00, 5000 -0.00 (5 - 7 + 2), 2100 -3.00
        assert sorted(named.select("account", "debit", "credit").rows()) == [
            ("1400", 300, 0),
            ("2100", 0, 300),
        ]


# Three sites of item A, each a receipt of 1 unit at 40,000,000,000,000,000.00 (4 * 10**18
# cents, inside the close's bound of 2**62 cents per group) and an issue of 1 unit posted at
# 0.01. FIFO settles each issue at 40,000,000,000,000,000.00: adjustment
# -39,999,999,999,999,999.99 per site, -119,999,999,999,999,999.97 together, which is more
# than an int64 of cents holds (2**63 - 1 = 92,233,720,368,547,758.07).
HUGE = "40000000000000000.00"
HUGE_TOTAL = D("119999999999999999.97")


def _huge_sites() -> pl.DataFrame:
    sites = ["1", "2", "3"]
    rows = [(f"R{s}", "A", 1, "1", HUGE) for s in sites]
    rows += [(f"I{s}", "A", 2, "-1", "-0.01") for s in sites]
    return tx(*rows, site=sites + sites)


@pytest.mark.parametrize("detail", ["item", "item_group", "total"])
def test_totals_over_groups_past_an_int64_of_cents_are_exact(detail: str) -> None:
    result = invclose.close(
        _huge_sites(), day(31), dimensions=["site"], accounts=ACCOUNTS, voucher_detail=detail
    )
    assert result.adjustments["adjustment"].sum() == -HUGE_TOTAL
    gl = result.vouchers.group_by("account").agg(pl.col("debit", "credit").sum())
    totals = {a: (d, c) for a, d, c in gl.rows()}
    assert totals["1400"] == (D("0.00"), HUGE_TOTAL)
    assert totals["5000"] == (HUGE_TOTAL, D("0.00"))


def test_compare_totals_over_sites_past_an_int64_of_cents_are_exact() -> None:
    table = invclose.compare(_huge_sites(), day(31), dimensions=["site"], methods=["fifo"])
    row = table.row(0, named=True)
    assert row["cost_of_goods"] == D("120000000000000000.00")
    assert row["ending_value"] == D("0.00")


def _huge_items() -> pl.DataFrame:
    """As ``_huge_sites``, with items A, B and C instead of three sites of A."""
    items = ["A", "B", "C"]
    rows = [(f"R{i}", i, 1, "1", HUGE) for i in items]
    rows += [(f"I{i}", i, 2, "-1", "-0.01") for i in items]
    return tx(*rows)


@pytest.mark.parametrize("detail", ["item_group", "total"])
def test_vouchers_netted_over_parts_and_batches_past_an_int64_of_cents_are_exact(
    detail: str, tmp_path: Path
) -> None:
    df = _huge_items()
    with rows_per_part(2):
        in_parts = invclose.close(df, day(31), accounts=ACCOUNTS, voucher_detail=detail)
    done = close_batched(
        df, day(31), tmp_path / "out", batch_rows=2, accounts=ACCOUNTS, voucher_detail=detail
    )
    batched = invclose.read_result(done.path)
    for result in (in_parts, batched):
        gl = result.vouchers.group_by("account").agg(pl.col("debit", "credit").sum())
        totals = {a: (d, c) for a, d, c in gl.rows()}
        assert totals["1400"] == (D("0.00"), HUGE_TOTAL)
        assert totals["5000"] == (HUGE_TOTAL, D("0.00"))
