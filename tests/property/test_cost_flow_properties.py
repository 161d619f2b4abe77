"""Cost flow on random transfer networks (close-semantics §9).

* Acyclic networks (transfers only from a lower to a higher site) under FIFO: the kernel's
  level-by-level costing equals a plain propagation written here with Decimals, site by site.
* Networks with cycles under weighted average: every derived receipt equals its share of its
  feeding issues' changes, to the cent, except for the cents the log reports as
  ``cycle_residual``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import invclose
from tests.helpers import ACCOUNTS

CENT = Decimal("0.01")
D0 = dt.date(2025, 1, 1)
SCHEMA = {
    "txn_id": pl.String,
    "item_id": pl.String,
    "site": pl.String,
    "date": pl.Date,
    "qty": pl.Decimal(38, 6),
    "amount": pl.Decimal(38, 2),
    "seq": pl.Int64,
    "kind": pl.String,
    "order_id": pl.String,
}


def cut(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    return (total * part / whole).quantize(CENT, ROUND_HALF_UP) if whole else Decimal(0)


@st.composite
def networks(draw: st.DrawFn, cyclic: bool) -> pl.DataFrame:
    n_sites = draw(st.integers(2, 4))
    rows: list[dict[str, Any]] = []

    def add(
        txn: str, site: int, day: int, qty: int, amount: Decimal, kind: str, order: str | None
    ) -> None:
        rows.append(
            {
                "txn_id": txn,
                "item_id": "X",
                "site": f"S{site}",
                "date": D0 + dt.timedelta(days=day),
                "qty": Decimal(qty),
                "amount": amount,
                "seq": len(rows),
                "kind": kind,
                "order_id": order,
            }
        )

    for k in range(draw(st.integers(1, 6))):
        qty = draw(st.integers(1, 5))
        add(
            f"P{k}",
            draw(st.integers(0, n_sites - 1)),
            draw(st.integers(0, 9)),
            qty,
            qty * Decimal(draw(st.integers(100, 2000))) / 100,
            "purchase",
            None,
        )
    for k in range(draw(st.integers(1, 6))):
        src = draw(st.integers(0, n_sites - 1))
        dst = draw(st.integers(0, n_sites - 1))
        if not cyclic and src >= dst:
            src, dst = min(src, dst), max(src, dst)
        if src == dst:
            continue
        qty = draw(st.integers(1, 4))
        posted = qty * Decimal(draw(st.integers(100, 2000))) / 100
        added = Decimal(draw(st.integers(0, 300))) / 100
        day = draw(st.integers(0, 9))
        add(f"T{k}-S", src, day, -qty, -posted, "transfer", f"T{k}")
        add(f"T{k}-R", dst, day, qty, posted + added, "transfer", f"T{k}")
    for k in range(draw(st.integers(0, 4))):
        qty = draw(st.integers(1, 3))
        add(
            f"X{k}",
            draw(st.integers(0, n_sites - 1)),
            draw(st.integers(0, 9)),
            -qty,
            -qty * Decimal(draw(st.integers(100, 2000))) / 100,
            "sale",
            None,
        )
    return pl.DataFrame(rows, schema=SCHEMA)


def plain_propagation(frame: pl.DataFrame, result: invclose.CloseResult) -> dict[str, Decimal]:
    """Cost changes by site in ascending order (transfers only go up), with Decimals."""
    rows = {r["txn_id"]: r for r in frame.iter_rows(named=True)}
    key = {t: (r["date"], r["seq"], t) for t, r in rows.items()}
    pieces = defaultdict(list)
    for p in result.settlements.iter_rows(named=True):
        pieces[p["receipt_txn_id"]].append((key[p["issue_txn_id"]], p["issue_txn_id"], p["qty"]))
    feeds = defaultdict(list)  # receipt <- (issue, qty) by transfer order, unit by unit
    for order in {r["order_id"] for r in rows.values() if r["order_id"]}:
        legs = sorted((key[t], t) for t, r in rows.items() if r["order_id"] == order)
        issues = [t for _, t in legs if rows[t]["qty"] < 0]
        receipts = [t for _, t in legs if rows[t]["qty"] > 0]
        for issue, receipt in zip(issues, receipts, strict=True):
            feeds[receipt].append(issue)
    delta: dict[str, Decimal] = {}
    for site in sorted({r["site"] for r in rows.values()}):
        here = {t: r for t, r in rows.items() if r["site"] == site}
        value = {}
        for t, r in here.items():
            if r["qty"] > 0:
                change = sum((delta[i] for i in feeds.get(t, [])), Decimal(0))
                delta[t] = change
                value[t] = r["amount"] + change
        paid: dict[str, Decimal] = defaultdict(Decimal)
        drawn: dict[str, Decimal] = defaultdict(Decimal)
        for receipt, taken in pieces.items():
            if receipt not in value:
                continue
            c, before = Decimal(0), Decimal(0)
            for _, issue, qty in sorted(taken):
                c += qty
                now = cut(value[receipt], c, rows[receipt]["qty"])
                paid[issue] += now - before
                drawn[issue] += qty
                before = now
        for t, r in here.items():
            if r["qty"] < 0:
                q, w = -r["qty"], -r["amount"]
                new = paid[t] + w - cut(w, drawn[t], q) if drawn[t] else w
                delta[t] = new - w
    return {t: d for t, d in delta.items() if d != 0}


@pytest.mark.property
@given(networks(cyclic=False))
def test_acyclic_networks_equal_a_plain_propagation(frame: pl.DataFrame) -> None:
    result = invclose.close(frame, "2025-01-31", dimensions=["site"], accounts=ACCOUNTS)
    got = dict(result.adjustments.select("txn_id", "cost_delta").rows())
    assert got == plain_propagation(frame, result)
    assert "cycle_residual" not in set(result.log["code"])


@pytest.mark.property
@given(networks(cyclic=True))
def test_cyclic_networks_satisfy_every_equation_to_the_cent(frame: pl.DataFrame) -> None:
    result = invclose.close(
        frame, "2025-01-31", method="weighted_average", dimensions=["site"], accounts=ACCOUNTS
    )
    if "not_converged" in set(result.log["code"]):
        return
    change = dict(result.adjustments.select("txn_id", "cost_delta").rows())
    rows = {r["txn_id"]: r for r in frame.iter_rows(named=True)}
    gap = Decimal(0)
    for t, r in rows.items():
        if r["kind"] == "transfer" and r["qty"] > 0:
            issue = t.replace("-R", "-S")
            gap += abs(change.get(t, Decimal(0)) - change.get(issue, Decimal(0)))
    residual = result.log.filter(pl.col("code") == "cycle_residual")["amount"].sum() or Decimal(0)
    assert gap <= residual
    # Value is conserved: posted total + all changes = balances + cost of what left.
    sold = [t for t, r in rows.items() if r["kind"] == "sale"]
    out = sum((-rows[t]["amount"] + change.get(t, Decimal(0)) for t in sold), Decimal(0))
    bought = sum((r["amount"] for r in rows.values() if r["kind"] == "purchase"), Decimal(0))
    added = sum(
        (
            r["amount"] + rows[t.replace("-R", "-S")]["amount"]
            for t, r in rows.items()
            if r["kind"] == "transfer" and r["qty"] > 0
        ),
        Decimal(0),
    )
    balance = result.balances["value"].sum() or Decimal(0)
    assert abs(bought + added - out - balance) <= residual + gap
