"""Cost flow across two closes (close-semantics §9.1) on random transfer networks.

FIFO at every site, transfers from a lower to a higher site, some received in the month after
they ship, some split over two receipts in different months, and production orders whose
output may come in the month after the component issue. Every site buys in January at
least what it ships in January, so no January issue lacks receipts: closing January and then
February (with the January result as opening) must then give every transaction the same total
adjustment as one close of both months, pass every shipment's whole change on, and log no
``late_cost``. The expected values are the one-close run's, an independent path: it feeds
everything within one run, with nothing carried in ``open_items``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import invclose
from tests.helpers import ACCOUNTS
from tests.property.test_cost_flow_properties import D0, SCHEMA, add_row

pytestmark = pytest.mark.property

JAN = dt.date(2025, 1, 31)
FEB = dt.date(2025, 2, 28)
#: Day offsets from D0: January is 0..30, February 31..58.
LAST_JAN = (JAN - D0).days
LAST_FEB = (FEB - D0).days


@st.composite
def two_month_networks(draw: st.DrawFn, stocked_february: bool = False) -> pl.DataFrame:
    """With ``stocked_february``, every site also buys 30 units on 1 February, more than all
    February issues together: no issue then ever lacks receipts dated up to its own date."""
    rows: list[dict[str, Any]] = []

    def add(
        txn: str, site: int, day: int, qty: int, amount: Decimal, kind: str, order: Any
    ) -> None:
        add_row(rows, txn, "X", site, day, qty, amount, kind, order)

    n_sites = draw(st.integers(2, 4))
    january_stock: dict[int, int] = {}

    def issue_day(site: int, qty: int) -> int:
        """A day for an issue of ``qty`` at ``site``: in January only while the site's January
        purchases still cover it (then counted against them), else early February."""
        day = draw(st.integers(4, LAST_FEB - 2))
        if day > LAST_JAN:
            return day
        if january_stock[site] < qty:
            return LAST_JAN + 1 + draw(st.integers(0, 10))
        january_stock[site] -= qty
        return day

    if stocked_february:
        for site in range(n_sites):
            add(
                f"F{site}",
                site,
                LAST_JAN + 1,
                30,
                Decimal(30 * draw(st.integers(5, 30))),
                "purchase",
                None,
            )
    for site in range(n_sites):
        qty = draw(st.integers(4, 20))
        january_stock[site] = qty
        add(
            f"P{site}",
            site,
            draw(st.integers(0, 3)),
            qty,
            Decimal(qty * draw(st.integers(5, 30))),
            "purchase",
            None,
        )
        if draw(st.booleans()):
            later = draw(st.integers(1, 10))
            add(
                f"Q{site}",
                site,
                draw(st.integers(31, LAST_FEB)),
                later,
                Decimal(later * draw(st.integers(5, 30))),
                "purchase",
                None,
            )
    for k in range(draw(st.integers(1, 5))):
        src = draw(st.integers(0, n_sites - 2))
        dst = draw(st.integers(src + 1, n_sites - 1))
        qty = draw(st.integers(1, 4))
        ship_day = issue_day(src, qty)
        # Posted at some unit cost: the close moves it to FIFO's, and that change flows.
        posted = Decimal(qty * draw(st.integers(5, 30)))
        order = f"T{k}"
        add(f"SHIP{k}", src, ship_day, -qty, -posted, "transfer", order)
        split = draw(st.integers(1, qty)) if qty > 1 and draw(st.booleans()) else qty
        first_day = draw(st.integers(ship_day, LAST_FEB))
        first_amount = (posted * split / qty).quantize(Decimal("0.01"))
        add(f"REC{k}a", dst, first_day, split, first_amount, "transfer", order)
        if split < qty:
            add(
                f"REC{k}b",
                dst,
                draw(st.integers(first_day, LAST_FEB)),
                qty - split,
                posted - first_amount,
                "transfer",
                order,
            )
    for k in range(draw(st.integers(0, 2))):
        # A production order: one component issue of X, one output of item F at the same site
        # (labour added), the output possibly in the next month.
        site = draw(st.integers(0, n_sites - 1))
        qty = draw(st.integers(1, 3))
        day = issue_day(site, qty)
        posted = Decimal(qty * draw(st.integers(5, 30)))
        add(f"COMP{k}", site, day, -qty, -posted, "production", f"M{k}")
        labour = Decimal(draw(st.integers(0, 9)))
        add_row(
            rows,
            f"OUT{k}",
            "F",
            site,
            draw(st.integers(day, LAST_FEB)),
            1,
            posted + labour,
            "production",
            f"M{k}",
        )
    return pl.DataFrame(rows, schema=SCHEMA)


def _close(frame: pl.DataFrame, date: dt.date, **kw: Any) -> invclose.CloseResult:
    return invclose.close(frame, date, method="fifo", dimensions=["site"], accounts=ACCOUNTS, **kw)


def _total_adjustments(*results: invclose.CloseResult) -> dict[str, Decimal]:
    frame = pl.concat([r.adjustments.select("txn_id", "adjustment") for r in results])
    return {
        txn: value
        for txn, value in frame.group_by("txn_id").agg(pl.col("adjustment").sum()).rows()
        if value != 0
    }


#: Each example closes three times (four to five runs below): half and a quarter of the
#: profile's count keep the CI tier within its time.
@settings(max_examples=max(10, settings().max_examples // 2))
@given(two_month_networks())
def test_two_closes_equal_one_close_of_both_months(frame: pl.DataFrame) -> None:
    jan = _close(frame, JAN)
    feb = _close(frame, FEB, opening=jan)
    one = _close(frame, FEB)
    assert _total_adjustments(jan, feb) == _total_adjustments(one)
    # January keeps each shipment that still has quantity to feed, with exactly the quantity
    # of its receipts dated in February (receipts total the shipped quantity).
    later = (
        frame.filter(pl.col("kind") == "transfer")
        .group_by("order_id")
        .agg(
            shipped_jan=(pl.col("qty") < 0).and_(pl.col("date") <= JAN).any(),
            feb_qty=pl.when((pl.col("qty") > 0) & (pl.col("date") > JAN)).then(pl.col("qty")).sum(),
        )
        .filter(pl.col("shipped_jan") & (pl.col("feb_qty") > 0))
    )
    kept = jan.open_items.filter(
        (pl.col("unfed_qty").fill_null(0) > 0)
        & (pl.col("qty") < 0)
        & (pl.col("kind") == "transfer")
    )
    assert dict(kept.select("order_id", "unfed_qty").rows()) == dict(
        later.select("order_id", "feb_qty").rows()
    )
    # A component issued in January whose output comes in February waits, whole.
    comps = frame.filter(pl.col("kind") == "production")
    waiting_orders = (
        comps.group_by("order_id")
        .agg(
            comp_jan=((pl.col("qty") < 0) & (pl.col("date") <= JAN)).any(),
            out_feb=((pl.col("qty") > 0) & (pl.col("date") > JAN)).any(),
            comp_qty=pl.when(pl.col("qty") < 0).then(-pl.col("qty")).sum(),
        )
        .filter(pl.col("comp_jan") & pl.col("out_feb"))
    )
    kept_comps = jan.open_items.filter(
        (pl.col("unfed_qty").fill_null(0) > 0) & (pl.col("kind") == "production")
    )
    assert dict(kept_comps.select("order_id", "unfed_qty").rows()) == dict(
        waiting_orders.select("order_id", "comp_qty").rows()
    )
    # After February nothing waits and nothing was late.
    assert (
        feb.open_items.filter(pl.col("unfed_qty").fill_null(0) > 0)
        .filter(pl.col("qty") < 0)
        .is_empty()
    )
    assert feb.log.filter(pl.col("code") == "late_cost").is_empty()


@settings(max_examples=max(10, settings().max_examples // 4))
@given(
    two_month_networks(stocked_february=True),
    st.one_of(st.none(), st.integers(4, LAST_JAN)),
    st.one_of(st.none(), st.integers(LAST_JAN + 1, LAST_FEB)),
)
def test_recalculations_between_the_closes_change_nothing_in_the_end(
    frame: pl.DataFrame, january_recalc: int | None, february_recalc: int | None
) -> None:
    # Recalculations feed provisionally: a chain with a recalculation before either close
    # must end where one close of both months ends (no issue lacks receipts at any date, so
    # no unsettled remainder depends on the order of runs).
    steps: list[tuple[str, dt.date]] = []
    if january_recalc is not None:
        steps.append(("recalculate", D0 + dt.timedelta(days=january_recalc)))
    steps.append(("close", JAN))
    if february_recalc is not None:
        steps.append(("recalculate", D0 + dt.timedelta(days=february_recalc)))
    steps.append(("close", FEB))
    results: list[invclose.CloseResult] = []
    for kind, date in steps:
        run = invclose.close if kind == "close" else invclose.recalculate
        opening = {"opening": results[-1]} if results else {}
        results.append(
            run(frame, date, method="fifo", dimensions=["site"], accounts=ACCOUNTS, **opening)
        )
    assert _total_adjustments(*results) == _total_adjustments(_close(frame, FEB))
    assert results[-1].log.filter(pl.col("code") == "late_cost").is_empty()
