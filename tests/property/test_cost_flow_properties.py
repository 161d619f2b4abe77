"""Cost flow on random transfer networks (close-semantics §9).

* Acyclic networks (transfers only from a lower to a higher site) under FIFO: the kernel's
  level-by-level costing equals a plain propagation written here with Decimals, site by site.
* Networks with cycles (transfers both ways, an item consumed in its own production) under
  weighted average: every derived receipt equals its share of its feeding issues' changes, to
  the cent, except for the cents the log reports as ``cycle_residual``, which are exactly the
  cents by which they differ.
* Acyclic networks of two component items and a product, with transfers to several receipts
  and production orders whose components sit at several levels: a group-by-group propagation
  with Decimals (cuts in key order, one cut per order's total).
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
from tests.helpers import ACCOUNTS, ORDER_SCHEMA

CENT = Decimal("0.01")
D0 = dt.date(2025, 1, 1)
SCHEMA = {**ORDER_SCHEMA, "cost_share": pl.Decimal(38, 6)}


def add_row(
    rows: list[dict[str, Any]],
    txn: str,
    item: str,
    site: int,
    day: int,
    qty: int,
    amount: Decimal,
    kind: str,
    order: str | None,
    share: Decimal | None = None,
) -> None:
    """Append one transaction of site ``S<site>``, dated ``day`` days after D0, in seq order."""
    rows.append(
        {
            "txn_id": txn,
            "item_id": item,
            "site": f"S{site}",
            "date": D0 + dt.timedelta(days=day),
            "qty": Decimal(qty),
            "amount": amount,
            "seq": len(rows),
            "kind": kind,
            "order_id": order,
            "cost_share": share,
        }
    )


def cut(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    return (total * part / whole).quantize(CENT, ROUND_HALF_UP) if whole else Decimal(0)


@st.composite
def networks(draw: st.DrawFn, cyclic: bool) -> pl.DataFrame:
    n_sites = draw(st.integers(2, 4))
    rows: list[dict[str, Any]] = []

    def add(
        txn: str, site: int, day: int, qty: int, amount: Decimal, kind: str, order: str | None
    ) -> None:
        add_row(rows, txn, "X", site, day, qty, amount, kind, order)

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
    # With cycles: production orders consuming the item at one or two sites and putting it
    # out at any site (an item consumed in its own production, fed from other sites too).
    for k in range(draw(st.integers(0, 2)) if cyclic else 0):
        day = draw(st.integers(0, 9))
        posted = Decimal(0)
        for c in range(draw(st.integers(1, 2))):
            qty = draw(st.integers(1, 3))
            amount = qty * Decimal(draw(st.integers(100, 2000))) / 100
            posted += amount
            add(
                f"M{k}-C{c}",
                draw(st.integers(0, n_sites - 1)),
                day,
                -qty,
                -amount,
                "consumption",
                f"M{k}",
            )
        qty = draw(st.integers(1, 4))
        added = Decimal(draw(st.integers(0, 300))) / 100
        add(
            f"M{k}-O",
            draw(st.integers(0, n_sites - 1)),
            day,
            qty,
            posted + added,
            "production",
            f"M{k}",
        )
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


def price_issues(
    here: dict[str, dict[str, Any]],
    value: dict[str, Decimal],
    pieces: dict[str, list[Any]],
    rows: dict[str, dict[str, Any]],
    delta: dict[str, Decimal],
) -> None:
    """Set ``delta`` of the issues of one group (``here``) from its receipts' ``value``.

    Each receipt's value is cut along its pieces in the issues' key order (cumulative
    rounding); an issue's unsettled part keeps its posted cost pro rata.
    """
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
        price_issues(here, value, pieces, rows, delta)
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
    # Each derived receipt should change by its feeding issues' changes: one shipment per
    # transfer receipt, all components of its order for the one output of a production order.
    feeding: dict[str, list[str]] = defaultdict(list)
    for t, r in rows.items():
        if r["kind"] == "transfer" and r["qty"] < 0:
            feeding[t.replace("-S", "-R")].append(t)
        if r["kind"] == "consumption":
            feeding[f"{r['order_id']}-O"].append(t)
    gap = Decimal(0)
    for receipt, issues in feeding.items():
        fed = sum((change.get(i, Decimal(0)) for i in issues), Decimal(0))
        gap += abs(change.get(receipt, Decimal(0)) - fed)
    residual = result.log.filter(pl.col("code") == "cycle_residual")["amount"].sum() or Decimal(0)
    # Every cent a rounded receipt differs from its rounded feeding issue is logged, no more.
    assert gap == residual
    # Value is conserved: posted total + all changes = balances + cost of what left.
    sold = [t for t, r in rows.items() if r["kind"] == "sale"]
    out = sum((-rows[t]["amount"] + change.get(t, Decimal(0)) for t in sold), Decimal(0))
    bought = sum((r["amount"] for r in rows.values() if r["kind"] == "purchase"), Decimal(0))
    added = sum(
        (
            rows[receipt]["amount"] + sum((rows[i]["amount"] for i in issues), Decimal(0))
            for receipt, issues in feeding.items()
        ),
        Decimal(0),
    )
    balance = result.balances["value"].sum() or Decimal(0)
    assert abs(bought + added - out - balance) <= residual + gap


@pytest.mark.property
@given(
    method=st.sampled_from(["fifo", "weighted_average"]),
    n=st.integers(2, 5_000),
    a=st.integers(1, 10_000),
    k=st.integers(0, 5_000),
    p=st.integers(1, 10**7),
    s=st.integers(1, 10_000),
)
def test_an_item_consuming_itself_is_the_exact_solution_of_its_cycle(
    method: str, n: int, a: int, k: int, p: int, s: int
) -> None:
    # P1 buys 1 unit for a; order M consumes n units (posted p) and makes n (posted p + k, k
    # the route cost); X1 sells 1 (posted s); amounts in cents. With y the output's value and
    # c the consumption's (y = c + k), solved by hand:
    # FIFO: c takes P1 and n - 1 of Y, c = a + (n - 1) y / n, so y = n (a + k), and X1 takes
    # Y's last unit, y / n = a + k.
    # Weighted average: c = n (a + y) / (n + 1), so y = n a + (n + 1) k, c = n (a + k), and
    # X1 takes (a + y) / (n + 1) = a + k.
    # Every value is whole cents: rounding the right-hand side before the solve (multiplied by
    # up to n + 1) would show as a wrong value here, while its cents still check out.
    cents = Decimal("0.01")
    rows: list[dict[str, Any]] = []
    add_row(rows, "P1", "X", 1, 1, 1, a * cents, "purchase", None)
    add_row(rows, "C", "X", 1, 2, -n, -p * cents, "consumption", "M")
    add_row(rows, "Y", "X", 1, 3, n, (p + k) * cents, "production", "M")
    add_row(rows, "X1", "X", 1, 4, -1, -s * cents, "sale", None)
    frame = pl.DataFrame(rows, schema=SCHEMA)
    result = invclose.close(
        frame, "2025-01-31", method=method, dimensions=["site"], accounts=ACCOUNTS
    )
    y = n * (a + k) if method == "fifo" else n * a + (n + 1) * k
    expected = {"C": (y - k) - p, "Y": y - (p + k), "X1": (a + k) - s}
    got = dict(result.adjustments.select("txn_id", "cost_delta").rows())
    assert got == {t: v * cents for t, v in expected.items() if v}


#: Items in costing order: components X and Y are consumed to make P.
ITEMS = ("X", "Y", "P")


@st.composite
def production_networks(draw: st.DrawFn) -> pl.DataFrame:
    """Acyclic networks of two component items and one product over 2-4 sites.

    Transfers go from a lower to a higher site of one item, production orders consume X and Y
    at any site and put P out at any site (one or two outputs, shared by ``cost_share`` or by
    their posted amounts), so every link goes forward in the order (item, site) and one
    component's site can sit several levels above another's.
    """
    n_sites = draw(st.integers(2, 4))
    rows: list[dict[str, Any]] = []

    def add(
        txn: str,
        item: str,
        site: int,
        day: int,
        qty: int,
        amount: Decimal,
        kind: str,
        order: str | None = None,
        share: Decimal | None = None,
    ) -> None:
        add_row(rows, txn, item, site, day, qty, amount, kind, order, share)

    def price(qty: int) -> Decimal:
        return qty * Decimal(draw(st.integers(100, 2000))) / 100

    sites = st.integers(0, n_sites - 1)
    days = st.integers(0, 9)
    for k in range(draw(st.integers(2, 8))):
        qty = draw(st.integers(1, 5))
        add(
            f"P{k}",
            draw(st.sampled_from(ITEMS[:2])),
            draw(sites),
            draw(days),
            qty,
            price(qty),
            "purchase",
        )
    for k in range(draw(st.integers(0, 5))):
        # One shipment to one or two receipts at higher sites, dated alike: the key order of
        # the receipts (seq) is not the order of their sites.
        src = draw(st.integers(0, n_sites - 2))
        item, day = draw(st.sampled_from(ITEMS)), draw(days)
        legs = [
            (draw(st.integers(src + 1, n_sites - 1)), draw(st.integers(1, 3)))
            for _ in range(draw(st.integers(1, 2)))
        ]
        shipped = sum(q for _, q in legs)
        add(f"T{k}-S", item, src, day, -shipped, -price(shipped), "transfer", f"T{k}")
        for r, (dst, qty) in enumerate(legs):
            add(f"T{k}-R{r}", item, dst, day, qty, price(qty), "transfer", f"T{k}")
    for k in range(draw(st.integers(1, 3))):
        day = draw(days)
        for c in range(draw(st.integers(1, 3))):
            qty = draw(st.integers(1, 3))
            add(
                f"M{k}-C{c}",
                draw(st.sampled_from(ITEMS[:2])),
                draw(sites),
                day,
                -qty,
                -price(qty),
                "consumption",
                f"M{k}",
            )
        # Outputs shared by cost_share, else posted amounts, else (all posted at 0.00) quantities.
        weighting = draw(st.sampled_from(["share", "amount", "qty"]))
        for o in range(draw(st.integers(1, 2))):
            qty = draw(st.integers(1, 3))
            add(
                f"M{k}-O{o}",
                "P",
                draw(sites),
                day + draw(st.integers(0, 2)),
                qty,
                Decimal("0.00") if weighting == "qty" else price(qty),
                "production",
                f"M{k}",
                Decimal(draw(st.integers(1, 5))) if weighting == "share" else None,
            )
    for k in range(draw(st.integers(0, 4))):
        qty = draw(st.integers(1, 3))
        add(
            f"X{k}",
            draw(st.sampled_from(ITEMS)),
            draw(sites),
            draw(days),
            -qty,
            -price(qty),
            "sale",
        )
    return pl.DataFrame(rows, schema=SCHEMA)


def cumulative_cuts(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """``total`` cut by ``weights`` with cumulative rounding (close-semantics §7.3)."""
    whole, running, before, parts = sum(weights, Decimal(0)), Decimal(0), Decimal(0), []
    for w in weights:
        running += w
        now = cut(total, running, whole)
        parts.append(now - before)
        before = now
    return parts


def propagation_by_group(frame: pl.DataFrame, result: invclose.CloseResult) -> dict[str, Decimal]:
    """Cost changes group by group in the order (item X, Y, P; site), with Decimals.

    A transfer receipt takes its share of its order's one shipment's change by quantity; a
    production output its share of the sum of its order's component changes, by
    ``cost_share`` when given, else by posted amount, else by quantity. Both are cut with
    cumulative rounding across the order's receipts in key order (date, seq, txn_id;
    close-semantics §9.2, §9.3). Issues are priced on the library's settlement pieces, as in
    :func:`plain_propagation` (which receipt each issue settles against is proved against
    the reference close in test_kernel_vs_reference.py; the cost flow is what is checked here).
    """
    rows = {r["txn_id"]: r for r in frame.iter_rows(named=True)}
    key = {t: (r["date"], r["seq"], t) for t, r in rows.items()}
    pieces = defaultdict(list)
    for p in result.settlements.iter_rows(named=True):
        pieces[p["receipt_txn_id"]].append((key[p["issue_txn_id"]], p["issue_txn_id"], p["qty"]))
    orders: dict[str, list[str]] = defaultdict(list)
    for t, r in rows.items():
        if r["order_id"]:
            orders[r["order_id"]].append(t)
    delta: dict[str, Decimal] = {}
    produced: dict[str, Decimal] = {}

    def receipt_change(t: str) -> Decimal:
        r = rows[t]
        if r["kind"] not in ("transfer", "production"):
            return Decimal(0)
        if t not in produced:
            legs = sorted(orders[r["order_id"]], key=key.__getitem__)
            total = sum((delta[c] for c in legs if rows[c]["qty"] < 0), Decimal(0))
            outputs = [o for o in legs if rows[o]["qty"] > 0]
            if r["kind"] == "transfer":  # one shipment, fed to the receipts unit by unit
                weights = [rows[o]["qty"] for o in outputs]
            elif any(rows[o]["cost_share"] is not None for o in outputs):
                weights = [rows[o]["cost_share"] or Decimal(0) for o in outputs]
            elif any(rows[o]["amount"] for o in outputs):
                weights = [rows[o]["amount"] for o in outputs]
            else:
                weights = [rows[o]["qty"] for o in outputs]
            produced.update(zip(outputs, cumulative_cuts(total, weights), strict=True))
        return produced[t]

    groups = sorted({(ITEMS.index(r["item_id"]), r["site"]) for r in rows.values()})
    for item, site in groups:
        here = {t: r for t, r in rows.items() if r["item_id"] == ITEMS[item] and r["site"] == site}
        value = {}
        for t, r in here.items():
            if r["qty"] > 0:
                delta[t] = receipt_change(t)
                value[t] = r["amount"] + delta[t]
        price_issues(here, value, pieces, rows, delta)
    return {t: d for t, d in delta.items() if d != 0}


@pytest.mark.property
@given(production_networks())
def test_production_networks_equal_a_propagation_group_by_group(frame: pl.DataFrame) -> None:
    result = invclose.close(frame, "2025-01-31", dimensions=["site"], accounts=ACCOUNTS)
    got = dict(result.adjustments.select("txn_id", "cost_delta").rows())
    assert got == propagation_by_group(frame, result)
    assert not {"cycle_residual", "production_not_costed"} & set(result.log["code"])
