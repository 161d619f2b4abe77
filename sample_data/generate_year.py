"""Generate ``sample_data/year/``: one realistic, deterministic year of a fictional company.

**Fjellstad Outdoor AS** makes tents at its headquarters and sells them, with bought-in
merchandise, at two shops. ``site`` is the financial dimension.

* Sites: ``HQ`` (warehouse and workshop), ``NORTH`` and ``SOUTH`` (shops).
* Raw materials, bought at HQ: ``TUBE`` (aluminium tube, fifo), ``BOLT`` (box of bolts,
  weighted_average_date), ``FABRIC`` (tent fabric in metres, weighted_average).
* A two-level production at HQ: a frame order consumes 3 TUBE and 6 BOLT per ``FRAME``
  (lifo_date); a tent order consumes 1 FRAME, 8.5 m of FABRIC and 4 BOLT per ``TENT`` (fifo).
  Rows of one order share an ``order_id`` (``MO-…``): ``kind = consumption`` for the components,
  ``kind = production`` for the output, all on the order's date.
* Merchandise bought at HQ: ``LAMP`` (lifo), ``STOVE`` (fifo), ``CHAIR`` (weighted_average).
* Transfers HQ -> shop when a shop runs low: an issue at HQ and a receipt at the shop on the
  same day, both ``kind = transfer`` with the order's ``order_id`` (``TO-…``).
* Sales every business day at every site; issues are posted at the running average cost of
  their (item, site), as an ERP does before the close.
* Late invoices: some purchases received in the last days of a month are invoiced in the next
  month: a ``physical`` row on the receipt date and a ``financial`` row with the same
  ``txn_id`` on the invoice date, at the invoiced price. December's stay un-invoiced. A few
  shop sales shipped at a month end are invoiced the same way. On 31 July a trade customer's
  bulk order of chairs is shipped from a delivery of the 28th that is invoiced in August, so
  the July close has issues it cannot settle yet.
* Returns to the vendor: every tenth merchandise delivery is partly sent back three business
  days later, as an issue (``kind = purchase``) marked (``marked_to``) to the receipt.

Everything comes from one ``random.Random(seed)``, money is computed in ``Decimal`` (never
float) and rows are written in posting order with a global ``seq``: the same seed gives the
same files, byte for byte. Run from the repository root::

    python sample_data/generate_year.py            # writes sample_data/year/
    python sample_data/generate_year.py --out DIR --seed 7
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl

YEAR = 2025
SEED = 20250101
SITES = ("HQ", "NORTH", "SOUTH")
SHOPS = ("NORTH", "SOUTH")
BULK_DELIVERY = dt.date(YEAR, 7, 28)
BULK_ORDER = dt.date(YEAR, 7, 31)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Item:
    item_id: str
    name: str
    method: str
    item_group: str
    cost: Decimal  # the unit price at the start of the year
    lot: int  # purchase (or production) lot size
    reorder: int  # reorder point at HQ
    unit: str = "pcs"


ITEMS = (
    Item("TUBE", "aluminium tube 2 m", "fifo", "RAW", Decimal("4.20"), 300, 150),
    Item("BOLT", "box of 50 bolts", "weighted_average_date", "RAW", Decimal("0.85"), 800, 400),
    Item(
        "FABRIC", "ripstop tent fabric", "weighted_average", "RAW", Decimal("6.40"), 600, 300, "m"
    ),
    Item("FRAME", "tent frame", "lifo_date", "SEMI", Decimal("0"), 40, 35),
    Item("TENT", "3-person tent", "fifo", "FG", Decimal("0"), 30, 25),
    Item("LAMP", "camping lamp", "lifo", "MERCH", Decimal("18.50"), 60, 30),
    Item("STOVE", "gas stove", "fifo", "MERCH", Decimal("32.00"), 40, 20),
    Item("CHAIR", "folding chair", "weighted_average", "MERCH", Decimal("11.90"), 80, 40),
)
BY_ID = {item.item_id: item for item in ITEMS}
#: Bill of materials: output -> [(component, qty per unit)].
BOM = {
    "FRAME": [("TUBE", Decimal(3)), ("BOLT", Decimal(6))],
    "TENT": [("FRAME", Decimal(1)), ("FABRIC", Decimal("8.5")), ("BOLT", Decimal(4))],
}
#: Mean units sold per business day per site (HQ sells to trade customers too).
DEMAND = {
    "HQ": {"TENT": 0.8, "LAMP": 0.6, "STOVE": 0.4, "CHAIR": 0.8, "FABRIC": 1.5},
    "NORTH": {"TENT": 1.0, "LAMP": 1.2, "STOVE": 0.7, "CHAIR": 1.5},
    "SOUTH": {"TENT": 0.7, "LAMP": 0.9, "STOVE": 0.5, "CHAIR": 1.1},
}
#: Shop stock: transfer from HQ when below the first number, up to the second.
SHOP_STOCK = {"TENT": (6, 16), "LAMP": (6, 18), "STOVE": (4, 12), "CHAIR": (8, 24)}

ACCOUNTS = [
    # kind, item_group, inventory_account, offset_account
    ("purchase", None, None, "2100"),  # goods received / payables
    ("sale", None, None, "5000"),  # cost of goods sold
    ("sale", "MERCH", None, "5010"),  # cost of merchandise sold
    ("transfer", None, None, "1490"),  # transfer clearing
    ("production", None, None, "1500"),  # work in progress
    ("consumption", None, None, "1500"),
    (None, "RAW", "1300", None),
    (None, "SEMI", "1350", None),
    (None, "FG", "1400", None),
    (None, "MERCH", "1410", None),
    (None, None, "1400", "5900"),  # anything else: inventory vs. other adjustments
]


def money(value: Decimal) -> Decimal:
    """Round to cents, half away from zero (ROUND_HALF_UP is away from zero for Decimal)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def business_days(year: int) -> list[dt.date]:
    start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
    days = (start + dt.timedelta(n) for n in range((end - start).days + 1))
    return [d for d in days if d.weekday() < 5 and not (d.month == 12 and d.day in (24, 25, 26))]


def month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw by inversion (deterministic for a seeded ``Random``)."""
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class Books:
    """Posting state: running on-hand quantity and value per (item, site), and the rows."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.qty: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self.value: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self.rows: list[dict[str, object]] = []
        self.counters: dict[str, int] = defaultdict(int)
        self.pending: list[tuple[dt.date, dict[str, object]]] = []  # invoices to post later

    def next_id(self, prefix: str) -> str:
        self.counters[prefix] += 1
        return f"{prefix}-{self.counters[prefix]:05d}"

    def post(self, **row: object) -> dict[str, object]:
        row.setdefault("status", "financial")
        row.setdefault("order_id", None)
        row.setdefault("marked_to", None)
        row["seq"] = len(self.rows) + 1
        self.rows.append(row)
        key = (str(row["item_id"]), str(row["site"]))
        self.qty[key] += Decimal(row["qty"])  # type: ignore[arg-type]
        self.value[key] += Decimal(row["amount"])  # type: ignore[arg-type]
        return row

    def issue_amount(self, item_id: str, site: str, qty: Decimal) -> Decimal:
        """The running average cost of ``qty`` units (positive), as posted before a close."""
        on_hand, value = self.qty[(item_id, site)], self.value[(item_id, site)]
        if on_hand <= 0 or value <= 0:
            return money(qty * (BY_ID[item_id].cost or Decimal(1)))
        return money(value * qty / on_hand)

    def price(self, item: Item, day: dt.date) -> Decimal:
        """Unit price on ``day``: about 0.4 % inflation a month and +-3 % noise."""
        drift = Decimal(1) + Decimal("0.004") * (day.month - 1)
        noise = Decimal(1) + Decimal(self.rng.randint(-30, 30)) / Decimal(1000)
        return money(item.cost * drift * noise)

    # ------------------------------------------------------------------ business events

    def purchase(
        self, item: Item, day: dt.date, late_ok: bool, force_late: bool = False
    ) -> dict[str, object]:
        qty = Decimal(item.lot)
        price = self.price(item, day)
        txn = self.next_id("PO")
        last_days = (month_end(day) - day).days < 7
        late = force_late or (late_ok and last_days and self.rng.random() < 0.7)
        row = self.post(
            txn_id=txn,
            item_id=item.item_id,
            site="HQ",
            date=day,
            qty=qty,
            amount=money(qty * price),
            kind="purchase",
            status="physical" if late else "financial",
        )
        if late and day.month < 12:
            # The vendor's invoice arrives 4-12 days later, in the next month, at +-2 %.
            invoice_day = month_end(day) + dt.timedelta(self.rng.randint(3, 12))
            factor = Decimal(1) + Decimal(self.rng.randint(-20, 20)) / Decimal(1000)
            invoice = dict(row, status="financial", date=invoice_day)
            invoice["amount"] = money(qty * money(price * factor))
            self.pending.append((invoice_day, invoice))
        return row

    def post_invoices(self, day: dt.date) -> None:
        due = [inv for when, inv in self.pending if when <= day]
        self.pending = [(when, inv) for when, inv in self.pending if when > day]
        for invoice in due:
            # The invoice replaces the physical row: only the price difference moves the value.
            physical = next(
                r
                for r in self.rows
                if r["txn_id"] == invoice["txn_id"] and r["status"] == "physical"
            )
            row = dict(invoice, date=day)
            self.post(**row)
            key = (str(row["item_id"]), str(row["site"]))
            self.qty[key] -= Decimal(physical["qty"])  # type: ignore[arg-type]
            self.value[key] -= Decimal(physical["amount"])  # type: ignore[arg-type]

    def sell(self, item_id: str, site: str, day: dt.date, qty: Decimal, physical: bool) -> None:
        amount = self.issue_amount(item_id, site, qty)
        row = self.post(
            txn_id=self.next_id("SO"),
            item_id=item_id,
            site=site,
            date=day,
            qty=-qty,
            amount=-amount,
            kind="sale",
            status="physical" if physical else "financial",
        )
        if physical and day.month < 12:
            invoice_day = month_end(day) + dt.timedelta(self.rng.randint(2, 6))
            self.pending.append((invoice_day, dict(row, status="financial", date=invoice_day)))

    def transfer(self, item_id: str, to_site: str, day: dt.date, qty: Decimal) -> None:
        order = self.next_id("TO")
        amount = self.issue_amount(item_id, "HQ", qty)
        for site, sign in (("HQ", -1), (to_site, 1)):
            self.post(
                txn_id=f"{order}-{'OUT' if sign < 0 else 'IN'}",
                item_id=item_id,
                site=site,
                date=day,
                qty=sign * qty,
                amount=sign * amount,
                kind="transfer",
                order_id=order,
            )

    def produce(self, output: str, day: dt.date, qty: Decimal) -> None:
        order = self.next_id("MO")
        total = Decimal(0)
        for n, (component, per_unit) in enumerate(BOM[output], start=1):
            need = per_unit * qty
            cost = self.issue_amount(component, "HQ", need)
            total += cost
            self.post(
                txn_id=f"{order}-C{n}",
                item_id=component,
                site="HQ",
                date=day,
                qty=-need,
                amount=-cost,
                kind="consumption",
                order_id=order,
            )
        self.post(
            txn_id=f"{order}-OUT",
            item_id=output,
            site="HQ",
            date=day,
            qty=qty,
            amount=total,
            kind="production",
            order_id=order,
        )

    def return_to_vendor(self, receipt: dict[str, object], day: dt.date, qty: Decimal) -> None:
        item_id = str(receipt["item_id"])
        self.post(
            txn_id=self.next_id("RT"),
            item_id=item_id,
            site="HQ",
            date=day,
            qty=-qty,
            amount=-self.issue_amount(item_id, "HQ", qty),
            kind="purchase",
            marked_to=receipt["txn_id"],
        )

    def available(self, item_id: str, site: str) -> Decimal:
        return self.qty[(item_id, site)]


def simulate(seed: int = SEED, year: int = YEAR) -> pl.DataFrame:
    """The year's transactions in posting order (the canonical input columns, with ``site``)."""
    rng = random.Random(seed)
    books = Books(rng)
    days = business_days(year)
    returns_due: list[tuple[dt.date, dict[str, object], Decimal]] = []
    merch_receipts = 0
    # Opening stock: a purchase of every bought item on the first business day.
    for item in ITEMS:
        if item.cost > 0:
            books.purchase(item, days[0], late_ok=False)
    for day in days:
        books.post_invoices(day)
        # Vendor returns due today (marked to their receipt).
        for when, receipt, qty in [r for r in returns_due if r[0] == day]:
            books.return_to_vendor(receipt, when, qty)
        returns_due = [r for r in returns_due if r[0] != day]
        # The July story: a chair delivery received on the 28th is invoiced in August, and a
        # trade customer's bulk order on the 31st is shipped from it. The July close cannot
        # settle all of that order (insufficient_receipts, receipt_not_invoiced); August can.
        if day == BULK_DELIVERY:
            books.purchase(BY_ID["CHAIR"], day, late_ok=True, force_late=True)
        # Purchasing at HQ: reorder-point policy.
        for item in ITEMS:
            if item.cost > 0 and books.available(item.item_id, "HQ") < item.reorder:
                receipt = books.purchase(item, day, late_ok=True)
                if item.item_group == "MERCH" and receipt["status"] == "financial":
                    merch_receipts += 1
                    if merch_receipts % 10 == 3:  # every tenth delivery has a few defects
                        back = Decimal(rng.randint(1, 3))
                        when = days[min(days.index(day) + 3, len(days) - 1)]
                        returns_due.append((when, receipt, back))
        if day == BULK_ORDER:  # after the day's purchasing: nothing financial comes in later
            books.sell("CHAIR", "HQ", day, books.available("CHAIR", "HQ") - 5, physical=False)
        # Production at HQ: frames on Tuesdays, tents on Thursdays (when components suffice).
        if day.weekday() == 1 and books.available("FRAME", "HQ") < BY_ID["FRAME"].reorder:
            qty = Decimal(BY_ID["FRAME"].lot)
            if all(books.available(c, "HQ") >= p * qty for c, p in BOM["FRAME"]):
                books.produce("FRAME", day, qty)
        if day.weekday() == 3 and books.available("TENT", "HQ") < BY_ID["TENT"].reorder:
            qty = Decimal(BY_ID["TENT"].lot)
            if all(books.available(c, "HQ") >= p * qty for c, p in BOM["TENT"]):
                books.produce("TENT", day, qty)
        # Replenish the shops from HQ.
        for shop in SHOPS:
            for item_id, (low, high) in SHOP_STOCK.items():
                have = books.available(item_id, shop)
                if have < low:
                    qty = min(Decimal(high) - have, books.available(item_id, "HQ"))
                    if qty > 0:
                        books.transfer(item_id, shop, day, qty)
        # Sales: only what is on hand; near a month end a few shop sales ship before invoicing.
        for site in SITES:
            for item_id, mean in DEMAND[site].items():
                want = poisson(rng, mean * (1.6 if day.month in (5, 6, 7) else 1.0))
                unit = Decimal("2.5") if item_id == "FABRIC" else Decimal(1)
                qty = min(Decimal(want) * unit, books.available(item_id, site))
                if qty > 0:
                    late = site != "HQ" and (month_end(day) - day).days < 2 and rng.random() < 0.5
                    books.sell(item_id, site, day, qty, physical=late)
    schema = {
        "txn_id": pl.String,
        "item_id": pl.String,
        "site": pl.String,
        "date": pl.Date,
        "qty": pl.Decimal(38, 6),
        "amount": pl.Decimal(38, 2),
        "status": pl.String,
        "seq": pl.Int64,
        "kind": pl.String,
        "order_id": pl.String,
        "marked_to": pl.String,
    }
    return pl.DataFrame([{c: row.get(c) for c in schema} for row in books.rows], schema=schema)


def items_table() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "item_id": [i.item_id for i in ITEMS],
            "name": [i.name for i in ITEMS],
            "method": [i.method for i in ITEMS],
            "item_group": [i.item_group for i in ITEMS],
            "unit": [i.unit for i in ITEMS],
        }
    )


def accounts_table() -> pl.DataFrame:
    columns = ("kind", "item_group", "inventory_account", "offset_account")
    return pl.DataFrame(
        [dict(zip(columns, row, strict=True)) for row in ACCOUNTS],
        schema=dict.fromkeys(columns, pl.String),
    )


def write(out: Path, seed: int = SEED) -> dict[str, Path]:
    """Write ``transactions.parquet``, ``items.csv`` and ``accounts.csv`` to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "transactions": out / "transactions.parquet",
        "items": out / "items.csv",
        "accounts": out / "accounts.csv",
    }
    simulate(seed).write_parquet(paths["transactions"], statistics=False)
    items_table().write_csv(paths["items"])
    accounts_table().write_csv(paths["accounts"])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "year")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    paths = write(args.out, args.seed)
    frame = pl.read_parquet(paths["transactions"])
    print(f"wrote {frame.height} transactions to {paths['transactions']}")  # noqa: T201


if __name__ == "__main__":
    main()
