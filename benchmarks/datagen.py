"""Deterministic generator of realistic, contract-valid transaction frames (issue 7).

One month of postings of an ERP (January 2025, closing date 2025-01-31, plus a few rows of
early February that a close leaves out of scope), in posting order:

* ``txn_id`` (``T`` + 10 digits), ``item_id`` (``I`` + 6 digits), ``site`` (``S1``..``S4``),
  ``warehouse`` (``W1``..``W3``, shape ``dims`` only), ``date``, ``qty`` ``Decimal(38, 6)``,
  ``amount`` ``Decimal(38, 2)`` with the sign of ``qty``, ``status`` (5 % ``physical``),
  ``seq`` (int64 posting order), ``kind`` (``purchase`` / ``sale``; ``transfer``,
  ``consumption``, ``production`` in shape ``flows``) and ``order_id`` (shape ``flows`` only).
* 40 % of rows are receipts (1..120 units), 60 % issues (1..60 units): issues take about 75 %
  of what is received, so most issues settle and some groups run short.
* Every item has a base unit cost (log-normal around 20.00) drifting +0.3 % a day. Receipts
  are priced at it +-10 %, issues carry a plausible running-average posted cost: it +-2 %.
  The close therefore moves every issue by a few percent, as in real books.

Quantities and amounts are drawn as int64 micro-units and cents with a seeded numpy generator
and turned into Decimal exactly (the int64 is the decimal's unscaled value: no float is ever
involved). The same ``(rows, shape, seed)`` always gives the same frame, bit for bit.

Shapes
------
``uniform``     items drawn uniformly (``rows / 200`` items, 4 sites: ~50 rows per group)
``zipf``        items drawn with a Zipf law (s = 1.1): a few items hold a large share
``giant``       one item at one site holds 80 % of the rows (a single giant group)
``ties``        four posting dates, ``seq`` is the posting hour (many rows share date and
                ``seq``; ``txn_id``, in no particular order, breaks the ties)
``ahead``       half the issues are dated 1..14 days earlier and receipts 0..5 days later:
                issues run ahead of the receipts that cover them (negative stock)
``fractional``  quantities with 6 decimals (0.001 .. 120 units)
``dims``        two financial dimensions: ``site`` x ``warehouse`` (12 per item)
``flows``       10 % of rows belong to orders: transfers (an issue at one site and a receipt
                of the same item and quantity at another, ``kind = transfer``) and production
                orders (two component issues, ``kind = consumption``, and one output receipt,
                ``kind = production``, valued at the components + 5 %), with ``order_id``
``families``    ``flows`` inside product families of 50 consecutive items: every production
                order's components and output belong to one family, so the cost graph falls
                apart into components of about 50 items (what a batched close partitions by)

Command line::

    python -m benchmarks.datagen --rows 1e6 --shape zipf --out benchmarks/results/tmp/
    python -m benchmarks.datagen --rows 1e5 --shape uniform,giant --out data/ --seed 7
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

SHAPES = ("uniform", "zipf", "giant", "ties", "ahead", "fractional", "dims", "flows", "families")
FAMILY_ITEMS = 50
START = dt.date(2025, 1, 1)
CLOSE_DATE = dt.date(2025, 1, 31)
PERIOD_DAYS = 31  # January
AFTER_DAYS = 4  # rows dated 1..4 February (out of scope of the close)
AFTER_SHARE = 0.03
N_SITES = 4
N_WAREHOUSES = 3
RECEIPT_SHARE = 0.4
PHYSICAL_SHARE = 0.05
FLOW_SHARE = 0.10
ROWS_PER_ITEM = 200
ZIPF_S = 1.1
GIANT_SHARE = 0.8
DEFAULT_SEED = 7

_KINDS = ("purchase", "sale", "transfer", "consumption", "production")
_PURCHASE, _SALE, _TRANSFER, _CONSUMPTION, _PRODUCTION = range(len(_KINDS))
_EPOCH = dt.date(1970, 1, 1)


def dimensions(shape: str) -> list[str]:
    """Financial dimensions of a shape: ``site`` and ``warehouse`` for ``dims``, else ``site``."""
    return ["site", "warehouse"] if shape == "dims" else ["site"]


def closing_date() -> dt.date:
    """The closing date the generated month is meant for."""
    return CLOSE_DATE


def parse_rows(text: str | int | float) -> int:
    """``"1e6"``, ``"250000"``, ``1e5`` -> an int number of rows."""
    value = float(text) if isinstance(text, str) else text
    rows = int(value)
    if rows != value or rows <= 0:
        msg = f"rows must be a positive whole number, got {text!r}"
        raise ValueError(msg)
    return rows


def rows_label(rows: int) -> str:
    """``1000000`` -> ``"1e6"``, ``3000000`` -> ``"3e6"``; other counts as digits."""
    exp = len(str(rows)) - 1
    lead, rest = divmod(rows, 10**exp)
    return f"{lead}e{exp}" if rest == 0 and exp > 0 else str(rows)


def decimal_series(name: str, unscaled: np.ndarray, scale: int) -> pl.Series:
    """An exact ``Decimal(38, scale)`` series whose unscaled integers are ``unscaled``.

    The int64 values become the low word of the decimal's 128-bit integer (the high word is
    the sign extension); no arithmetic and no float is involved.
    """
    ints = np.ascontiguousarray(unscaled, dtype=np.int64)
    words = np.empty((ints.shape[0], 2), dtype=np.int64)
    words[:, 0] = ints
    words[:, 1] = ints >> 63
    arr = pa.Array.from_buffers(
        pa.decimal128(38, scale), ints.shape[0], [None, pa.py_buffer(words)]
    )
    return pl.Series(name, arr)


def _rng(rows: int, shape: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(shape.encode()), rows])


def _items(rng: np.random.Generator, n: int, n_items: int, shape: str) -> np.ndarray:
    if shape == "zipf":
        weights = 1.0 / np.arange(1, n_items + 1, dtype=np.float64) ** ZIPF_S
        codes = rng.choice(n_items, size=n, p=weights / weights.sum())
        return rng.permutation(n_items)[codes]  # heavy items are not the first ids
    if shape == "giant":
        codes = rng.integers(1, n_items, n)
        codes[rng.random(n) < GIANT_SHARE] = 0
        return codes
    return rng.integers(0, n_items, n)


def _unit_cents(base: np.ndarray, day: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Unit cost in cents: the item's base, drifting 0.3 % a day, times ``1 + noise``."""
    return np.maximum(np.rint(base * (1.0 + 0.003 * day) * (1.0 + noise)), 1).astype(np.int64)


def _value(qty_micro: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """Positive value in cents of ``qty_micro`` at ``unit`` cents, half up, at least 1 cent."""
    return np.maximum((qty_micro * unit + 500_000) // 1_000_000, 1)


def _flows(
    rng: np.random.Generator,
    n_transfers: int,
    n_orders: int,
    n_items: int,
    base: np.ndarray,
    family: int | None = None,
) -> dict[str, np.ndarray]:
    """Rows of transfer orders (issue + receipt) and production orders (2 issues + 1 output)."""
    # Transfers: row 2k is the shipment, 2k + 1 the receipt at another site.
    t_item = rng.integers(0, n_items, n_transfers)
    t_from = rng.integers(0, N_SITES, n_transfers)
    t_to = (t_from + rng.integers(1, N_SITES, n_transfers)) % N_SITES
    t_day = rng.integers(0, PERIOD_DAYS, n_transfers)
    t_qty = rng.integers(1, 41, n_transfers) * 1_000_000
    t_cost = _value(t_qty, _unit_cents(base[t_item], t_day, rng.uniform(-0.02, 0.02, n_transfers)))
    transfers = {
        "item": np.repeat(t_item, 2),
        "site": np.column_stack([t_from, t_to]).ravel(),
        "day": np.column_stack([t_day, t_day + rng.integers(0, 3, n_transfers)]).ravel(),
        "qty": np.column_stack([-t_qty, t_qty]).ravel(),
        "amount": np.column_stack([-t_cost, t_cost]).ravel(),
        "kind": np.tile(np.array([_TRANSFER, _TRANSFER], dtype=np.int8), n_transfers),
        "order": np.repeat(np.arange(n_transfers, dtype=np.int64), 2),
    }
    # Production: rows 3k, 3k + 1 are component issues, 3k + 2 the output, all at one site.
    comp_item = rng.integers(0, n_items, (n_orders, 2))
    out_item = rng.integers(0, n_items, n_orders)
    if family is not None:
        start = (out_item // family) * family
        comp_item = np.minimum(start[:, None] + rng.integers(0, family, (n_orders, 2)), n_items - 1)
    p_site = rng.integers(0, N_SITES, n_orders)
    p_day = rng.integers(0, PERIOD_DAYS, n_orders)
    comp_qty = rng.integers(1, 21, (n_orders, 2)) * 1_000_000
    comp_cost = _value(
        comp_qty,
        _unit_cents(base[comp_item], p_day[:, None], rng.uniform(-0.02, 0.02, (n_orders, 2))),
    )
    out_qty = rng.integers(1, 11, n_orders) * 1_000_000
    out_cost = comp_cost.sum(axis=1) * 105 // 100  # components + 5 % added cost
    production = {
        "item": np.column_stack([comp_item, out_item]).ravel(),
        "site": np.repeat(p_site, 3),
        "day": np.column_stack([p_day, p_day, p_day + rng.integers(0, 2, n_orders)]).ravel(),
        "qty": np.column_stack([-comp_qty, out_qty]).ravel(),
        "amount": np.column_stack([-comp_cost, out_cost]).ravel(),
        "kind": np.tile(np.array([_CONSUMPTION, _CONSUMPTION, _PRODUCTION], np.int8), n_orders),
        "order": np.repeat(np.arange(n_transfers, n_transfers + n_orders, dtype=np.int64), 3),
    }
    return {k: np.concatenate([transfers[k], production[k]]) for k in transfers}


def generate(rows: int, shape: str = "uniform", seed: int = DEFAULT_SEED) -> pl.DataFrame:
    """A contract-valid transaction frame of exactly ``rows`` rows, in posting order.

    Parameters
    ----------
    rows
        Number of rows.
    shape
        One of :data:`SHAPES` (see the module docstring).
    seed
        Seed of the numpy generator; with ``rows`` and ``shape`` it fixes the frame.

    Examples
    --------
    >>> df = generate(1000, "zipf")
    >>> df.height, df["qty"].dtype, df["amount"].dtype
    (1000, Decimal(precision=38, scale=6), Decimal(precision=38, scale=2))
    >>> generate(1000, "zipf").equals(df)
    True
    """
    if shape not in SHAPES:
        msg = f"unknown shape {shape!r}; choose from {', '.join(SHAPES)}"
        raise ValueError(msg)
    rng = _rng(rows, shape, seed)
    n_items = max(10, rows // ROWS_PER_ITEM)
    base = np.exp(rng.normal(np.log(2000.0), 1.0, n_items)).clip(5, 10_000_000)

    if shape in ("flows", "families"):
        n_transfers = int(rows * FLOW_SHARE / 2 / 2)
        n_orders = int(rows * FLOW_SHARE / 2 / 3)
    else:
        n_transfers = n_orders = 0
    n = rows - 2 * n_transfers - 3 * n_orders

    item = _items(rng, n, n_items, shape)
    site = rng.integers(0, N_SITES, n)
    if shape == "giant":
        site[item == 0] = 0
    receipt = rng.random(n) < RECEIPT_SHARE
    day = rng.integers(0, PERIOD_DAYS, n)
    after = rng.random(n) < AFTER_SHARE
    day[after] = PERIOD_DAYS + rng.integers(0, AFTER_DAYS, int(after.sum()))
    if shape == "ties":
        day = np.array([0, 10, 20, 30])[rng.integers(0, 4, n)]
    elif shape == "ahead":
        early = ~receipt & (rng.random(n) < 0.5)
        day[early] = np.maximum(day[early] - rng.integers(1, 15, int(early.sum())), 0)
        late = receipt & ~after
        day[late] = np.minimum(day[late] + rng.integers(0, 6, int(late.sum())), PERIOD_DAYS - 1)

    if shape == "fractional":
        qty = np.where(
            receipt, rng.integers(1_000, 120_000_001, n), rng.integers(1_000, 60_000_001, n)
        )
    else:
        qty = np.where(receipt, rng.integers(1, 121, n), rng.integers(1, 61, n)) * 1_000_000
    noise = np.where(receipt, rng.uniform(-0.10, 0.10, n), rng.uniform(-0.02, 0.02, n))
    amount = _value(qty, _unit_cents(base[item], day, noise))
    cols: dict[str, np.ndarray] = {
        "item": item,
        "site": site,
        "day": day,
        "qty": np.where(receipt, qty, -qty),
        "amount": np.where(receipt, amount, -amount),
        "kind": np.where(receipt, _PURCHASE, _SALE).astype(np.int8),
        "order": np.full(n, -1, dtype=np.int64),
    }
    physical = rng.random(n) < PHYSICAL_SHARE
    if n_transfers or n_orders:
        family = FAMILY_ITEMS if shape == "families" else None
        flows = _flows(rng, n_transfers, n_orders, n_items, base, family)
        cols = {k: np.concatenate([cols[k], flows[k]]) for k in cols}
        physical = np.concatenate([physical, np.zeros(rows - n, dtype=bool)])
    del item, site, receipt, day, qty, amount, noise

    # Posting order: by date, then a random time of day (the hour, for ``ties``).
    if shape == "ties":
        hour = rng.integers(0, 24, rows)
        slot = cols["day"] * 24 + hour
        order = np.argsort((slot << 32) | rng.integers(0, 2**32, rows), kind="stable")
        seq = slot[order].astype(np.int64)
        numbers = rng.permutation(rows)  # txn ids unrelated to the posting order
    else:
        order = np.argsort((cols["day"] << 32) | rng.integers(0, 2**32, rows), kind="stable")
        seq = np.arange(rows, dtype=np.int64)
        numbers = seq
    cols = {k: v[order] for k, v in cols.items()}
    physical = physical[order]

    frame = pl.DataFrame(
        {
            "number": numbers,
            "item": cols["item"].astype(np.int64),
            "site": cols["site"].astype(np.int64),
            "day": (cols["day"] + (START - _EPOCH).days).astype(np.int32),
            "physical": physical,
            "seq": seq,
            "kind": cols["kind"].astype(np.int64),
            "order": cols["order"],
        }
    ).with_columns(
        decimal_series("qty", cols["qty"], 6),
        decimal_series("amount", cols["amount"], 2),
    )
    del cols
    site_names = pl.Series([f"S{i + 1}" for i in range(N_SITES)])
    kind_names = pl.Series(list(_KINDS))
    columns: list[pl.Expr] = [
        pl.concat_str(pl.lit("T"), pl.col("number").cast(pl.String).str.zfill(10)).alias("txn_id"),
        pl.concat_str(pl.lit("I"), pl.col("item").cast(pl.String).str.zfill(6)).alias("item_id"),
        pl.col("site").replace_strict(dict(enumerate(site_names)), return_dtype=pl.String),
    ]
    if shape == "dims":
        wh = rng.integers(0, N_WAREHOUSES, rows)
        columns.append(
            pl.Series("warehouse", [f"W{i + 1}" for i in range(N_WAREHOUSES)]).gather(wh)
        )
    columns += [
        pl.col("day").cast(pl.Date).alias("date"),
        pl.col("qty"),
        pl.col("amount"),
        pl.when(pl.col("physical"))
        .then(pl.lit("physical"))
        .otherwise(pl.lit("financial"))
        .alias("status"),
        pl.col("seq"),
        pl.col("kind").replace_strict(dict(enumerate(kind_names)), return_dtype=pl.String),
    ]
    if shape in ("flows", "families"):
        prefix = pl.when(pl.col("kind") == _TRANSFER).then(pl.lit("TO")).otherwise(pl.lit("PO"))
        columns.append(
            pl.when(pl.col("order") >= 0)
            .then(pl.concat_str(prefix, pl.col("order").cast(pl.String).str.zfill(8)))
            .alias("order_id")
        )
    return frame.select(columns)


def dataset_path(out_dir: str | Path, rows: int, shape: str, seed: int = DEFAULT_SEED) -> Path:
    """Where :func:`write_dataset` puts ``(rows, shape, seed)`` inside ``out_dir``."""
    return Path(out_dir) / f"{shape}-{rows_label(rows)}-s{seed}.parquet"


def write_dataset(
    out: str | Path, rows: int, shape: str, seed: int = DEFAULT_SEED, *, force: bool = False
) -> Path:
    """Generate and write one Parquet file; ``out`` is a directory or a ``.parquet`` path.

    An existing file is kept unless ``force`` (the content is fixed by the arguments).
    """
    out = Path(out)
    path = out if out.suffix == ".parquet" else dataset_path(out, rows, shape, seed)
    if path.exists() and not force:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    generate(rows, shape, seed).write_parquet(tmp, statistics=True)
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.datagen", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rows", default="1e5", help="row counts, comma separated (1e5,1e6)")
    parser.add_argument("--shape", default="uniform", help=f"comma separated: {','.join(SHAPES)}")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", default="benchmarks/results/tmp", help="directory or .parquet")
    parser.add_argument("--force", action="store_true", help="regenerate existing files")
    args = parser.parse_args(argv)
    for rows in (parse_rows(r) for r in args.rows.split(",")):
        for shape in args.shape.split(","):
            start = time.perf_counter()
            path = write_dataset(args.out, rows, shape, args.seed, force=args.force)
            print(f"{shape:>10} {rows:>11,} rows  {time.perf_counter() - start:6.1f} s  {path}")


if __name__ == "__main__":
    main()
