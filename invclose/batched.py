"""A close larger than memory: whole items at a time, in batches of connected components.

Items only meet through orders (a transfer links two financial dimensions of one item, a
production order links its components' items to its outputs' items), so the items linked by
shared ``order_id`` s form connected components that close independently. The batched close

1. **plans**: reads only ``item_id`` and ``order_id`` (DuckDB over the Parquet files), finds the
   components (``scipy`` connected components over items and orders) and packs them, in order
   of their first item, into batches of about ``batch_rows`` input rows (a larger component is
   a batch of its own);
2. **partitions** the input once into one Parquet file per batch (a DuckDB ``COPY ...
   PARTITION_BY``, out of core), and checks that no ``txn_id`` appears in two batches;
3. **closes each batch** exactly as :func:`invclose.close` would (same validation, kernel and
   tables), writing its tables to a work directory and keeping one digest per item for the
   run's id (:func:`invclose.close.run_digests`);
4. **finishes**: the run's ``close_id`` from the item digests (the same id as the in-memory
   close), voucher numbers over all items, ``log`` and ``closed_items`` sorted as the in-memory
   close sorts them, one Parquet file per table plus the manifest, published atomically.

The result directory reads back with :func:`invclose.read_result` (when it fits in memory) and
is queried without loading by ``invclose sql`` / DuckDB. It holds the same rows as the
in-memory close of the same input; inside ``settlements``, ``adjustments``, ``vouchers``,
``balances``, ``open_items`` and ``cost_flow`` rows come batch by batch (each batch in the
in-memory order), so compare those tables after sorting.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from invclose.assemble import combined_missing_accounts, log_order
from invclose.close import (
    _check_dates,
    _config,
    execute_run,
    prepare_frame,
    run_digests,
    run_parts,
)
from invclose.components import item_components
from invclose.config import CloseConfig, VoucherDetail, parse_date
from invclose.errors import ConfigError, InputValidationError, MissingAccountError, first_named
from invclose.hashing import content_id
from invclose.io import (
    PARQUET_SUFFIXES,
    _expand,
    _suffix,
    guarded_read,
    is_paths,
    refuse_files_missing,
    refuse_float_files,
    time_zone,
    to_polars,
)
from invclose.kernel.money import from_cents, wide_cents
from invclose.kernel.vouchers import merge_voucher_lines, voucher_id
from invclose.opening import OpeningState, load_opening
from invclose.parts import RUN_WARNINGS, warned_by_every_part
from invclose.progress import ProgressCallback, report
from invclose.schemas import RESULT_TABLES, conform, input_schema, required_input, table_schema
from invclose.store.duckdb import quote_ident
from invclose.store.parquet import check_target, publish_result_dir, sibling_dir, table_file
from invclose.validate import failure_message, normalize_transactions

__all__ = ["BatchedClose", "close_batched"]

#: Stands for the run's id inside batch tables until every batch is known.
_PENDING = "C~pending~"
_ROW_TABLES = ("settlements", "adjustments", "balances", "open_items", "cost_flow")


@dataclass(frozen=True)
class BatchedClose:
    """What a batched close wrote: the result directory and its identity."""

    path: Path
    close_id: str
    closing_date: dt.date
    rows: int
    batches: int
    table_rows: dict[str, int]

    def __str__(self) -> str:
        tables = ", ".join(f"{t} {n:,}" for t, n in self.table_rows.items())
        return (
            f"close {self.close_id} at {self.closing_date}: {self.rows:,} rows in "
            f"{self.batches} batch(es) -> {self.path} ({tables})"
        )


# --------------------------------------------------------------------------- source


#: Columns a batched close adds to rows read from files: the file and the row within it.
FILE_COLUMN = "invclose_file"
FILE_ROW_COLUMN = "invclose_file_row"


def _with_files(exc: InputValidationError, rows: pl.DataFrame) -> InputValidationError:
    """``exc`` with each failing row's ``file`` and ``file_row`` (from 0) when ``rows`` (the
    batch it numbers) were read from files."""
    failures = exc.failures
    if failures is None or FILE_COLUMN not in rows.columns or "row" not in failures.columns:
        return exc
    at = failures["row"].cast(pl.Int64)
    known = at.is_not_null() & (at < rows.height)
    index = at.fill_null(0).clip(0, max(rows.height - 1, 0)).cast(pl.UInt32)
    named = failures.with_columns(
        file=pl.when(known).then(rows[FILE_COLUMN].gather(index)),
        file_row=pl.when(known).then(rows[FILE_ROW_COLUMN].cast(pl.Int64).gather(index)),
    )
    return InputValidationError(str(exc), named)


class _Source:
    """The input: Parquet files read by DuckDB, or an in-memory frame."""

    def __init__(self, source: Any, dims: tuple[str, ...]) -> None:
        self.frame: pl.DataFrame | None = None
        self.files: list[str] = []
        self.as_text: list[str] = []
        self.zones: dict[str, dict[str, str | None]] = {}
        self.columns_of: dict[str, list[str]] = {}
        if is_paths(source):
            paths = _expand(source)
            bad = [str(p) for p in paths if _suffix(p) not in PARQUET_SUFFIXES]
            if bad:
                msg = (
                    f"a batched close reads Parquet files only; not Parquet: {bad[:5]}. "
                    "Convert them (e.g. invclose.read_transactions(...).write_parquet(...))"
                )
                raise InputValidationError(msg)
            # The footers only: a damaged file, or one without a required column, is named
            # before any work. DuckDB matches column names ignoring case, so a file's "Qty"
            # would be read as qty, which the in-memory close refuses: exact names are checked
            # here for each file.
            schemas = {
                str(path): dict(guarded_read(path, partial(pl.read_parquet_schema, path)))
                for path in paths
            }
            columns_of = {path: list(schema) for path, schema in schemas.items()}
            refuse_files_missing(columns_of, required_input(dims), "transactions")
            _refuse_case_variants(columns_of, list(input_schema(dims)))
            refuse_float_files(schemas, "transactions")
            self.files = [str(p) for p in paths]
            self.columns_of = columns_of
            self.as_text = _decimals_to_read_as_text(schemas)
            # Zoned timestamps are read as their wall-clock time in each file's own zone, as
            # the in-memory close reads them (DuckDB would hand back UTC instants).
            self.zones = {
                path: {c: zone for c, dtype in schema.items() if (zone := time_zone(dtype))}
                for path, schema in schemas.items()
            }
        else:
            self.frame = to_polars(source)

    def schema(self) -> pl.Schema:
        if self.frame is not None:
            return self.frame.schema
        return pl.scan_parquet(self.files, missing_columns="insert").collect_schema()

    def relation(self, con: duckdb.DuckDBPyConnection) -> str:
        """The name of a DuckDB view over the source."""
        if self.frame is not None:
            con.register("invclose_source", self.frame.to_arrow())
        else:
            # Values come from the files only: DuckDB would take a folder named like
            # "site=S1" or "date=2025-01-20" for a column and replace the rows' own values.
            options = "hive_partitioning = false"
            # Each row keeps the file it came from and its row there, to name them in errors.
            options += f", filename = {_literal(FILE_COLUMN)}, file_row_number = true"
            if not self.as_text and not any(self.zones.values()):
                listed = ", ".join(_literal(f) for f in self.files)
                union = f"SELECT * FROM read_parquet([{listed}], union_by_name = true, {options})"
            else:
                # Decimal columns of different types across files: DuckDB's union would cut
                # the larger scale (100.0060 read as 100.01); as text every value stays exact
                # for validation, which refuses what the close cannot hold (too_many_decimals).
                # A zoned timestamp becomes its file's wall-clock time.
                selects = []
                for f in self.files:
                    read = f"read_parquet({_literal(f)}, {options})"
                    present = [c for c in self.as_text if c in self.columns_of[f]]
                    replaced = [
                        f"CAST({quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}" for c in present
                    ] + [
                        f"timezone({_literal(str(zone))}, {quote_ident(c)}) AS {quote_ident(c)}"
                        for c, zone in self.zones.get(f, {}).items()
                    ]
                    selects.append(
                        f"SELECT * REPLACE ({', '.join(replaced)}) FROM {read}"
                        if replaced
                        else f"SELECT * FROM {read}"
                    )
                union = " UNION ALL BY NAME ".join(selects)
            union = (
                f"SELECT * EXCLUDE (file_row_number), file_row_number AS {FILE_ROW_COLUMN} "
                f"FROM ({union})"
            )
            con.execute(f"CREATE VIEW invclose_source AS {union}")
        return "invclose_source"


def _decimals_to_read_as_text(schemas: dict[str, dict[str, pl.DataType]]) -> list[str]:
    """Columns that are Decimal in every file that has them, of different precisions or
    scales. (A float in any of several files is refused before, naming the file.)

    >>> a = {"amount": pl.Decimal(38, 4), "qty": pl.Decimal(38, 6)}
    >>> b = {"amount": pl.Decimal(38, 2), "qty": pl.Decimal(38, 6)}
    >>> c = {"amount": pl.Float64(), "qty": pl.Decimal(38, 6)}
    >>> _decimals_to_read_as_text({"a.parquet": a, "b.parquet": b})
    ['amount']
    >>> _decimals_to_read_as_text({"a.parquet": a, "b.parquet": b, "c.parquet": c})
    []
    """
    types: dict[str, set[str]] = {}
    other: set[str] = set()
    for schema in schemas.values():
        for name, dtype in schema.items():
            types.setdefault(name, set()).add(str(dtype))
            if not isinstance(dtype, pl.Decimal):
                other.add(name)
    return sorted(name for name, seen in types.items() if len(seen) > 1 and name not in other)


def _refuse_case_variants(columns_of: dict[str, list[str]], read: list[str]) -> None:
    """Refuse spellings of a column the close reads (``read``) that differ only in case, in
    or across the files: DuckDB would read them as one column, the in-memory close as two."""
    wanted = {name.lower() for name in read}
    spellings: dict[str, set[str]] = {}
    for columns in columns_of.values():
        for name in columns:
            if name.lower() in wanted:
                spellings.setdefault(name.lower(), set()).add(name)
    clashes = sorted(sorted(names) for names in spellings.values() if len(names) > 1)
    if clashes:
        listed = "; ".join(" and ".join(repr(n) for n in names) for names in clashes[:10])
        msg = (
            f"transactions: the files hold columns whose names differ only in case ({listed}); "
            "a batched close reads them as one column, invclose.close as two: rename them so "
            "that each column has one spelling"
        )
        raise InputValidationError(msg)


# --------------------------------------------------------------------------- plan


def _batches(components: pl.DataFrame, batch_rows: int) -> pl.DataFrame:
    """``item_id`` -> ``batch``: components packed in order, about ``batch_rows`` rows each."""
    sizes = (
        components.group_by("component").agg(pl.col("rows").sum().cast(pl.Int64)).sort("component")
    )
    totals = sizes["rows"].to_numpy()
    batch = np.empty(totals.size, np.int64)
    current, filled = 0, 0
    for k, rows in enumerate(totals.tolist()):  # one step per component, not per row
        if filled and filled + rows > batch_rows:
            current, filled = current + 1, 0
        batch[k] = current
        filled += rows
    mapping = sizes.select("component").with_columns(batch=pl.Series(batch))
    return components.join(mapping, on="component").select("item_id", "batch", "rows")


def _plan(
    con: duckdb.DuckDBPyConnection,
    view: str,
    has_orders: bool,
    state: OpeningState | None,
    batch_rows: int,
) -> pl.DataFrame:
    items = con.sql(
        f"SELECT CAST(item_id AS VARCHAR) AS item_id, count(*)::UINTEGER AS rows FROM {view} "
        "GROUP BY 1"
    ).pl()
    empty = pl.DataFrame(schema={"item_id": pl.String, "order_id": pl.String})
    links = (
        con.sql(
            f"SELECT DISTINCT CAST(item_id AS VARCHAR) AS item_id, "
            f"CAST(order_id AS VARCHAR) AS order_id FROM {view} "
            "WHERE order_id IS NOT NULL AND item_id IS NOT NULL"
        ).pl()
        if has_orders
        else empty
    )
    opening_items = empty.select("item_id")
    if state is not None:
        opening_items = state.open_items.select("item_id").unique()
        links = pl.concat(
            [
                links.cast(pl.String),
                state.open_items.filter(pl.col("order_id").is_not_null())
                .select("item_id", "order_id")
                .unique(),
            ]
        )
    items = items.with_columns(pl.col("item_id").cast(pl.String))
    return _batches(item_components(items, links.cast(pl.String), opening_items), batch_rows)


# --------------------------------------------------------------------------- partition


def _partition(con: duckdb.DuckDBPyConnection, view: str, plan: pl.DataFrame, work: Path) -> None:
    """One Parquet file per batch under ``work/input/batch=<k>/`` (rows without an item go to 0)."""
    con.register("invclose_plan", plan.select("item_id", "batch").to_arrow())
    target = str(work / "input").replace("'", "''")
    con.execute(
        f"COPY (SELECT s.*, coalesce(p.batch, 0) AS invclose_batch FROM {view} s "
        "LEFT JOIN invclose_plan p ON CAST(s.item_id AS VARCHAR) = p.item_id) "
        f"TO '{target}' (FORMAT parquet, PARTITION_BY (invclose_batch), OVERWRITE_OR_IGNORE)"
    )


#: Repeated ids a batched close lists in its error's failures (all of them are counted): the
#: input can be larger than memory, and so can its repeated ids.
_DUPLICATES_KEPT = 1000


def _duplicates_across_batches(
    con: duckdb.DuckDBPyConnection, view: str, plan: pl.DataFrame
) -> None:
    """A ``txn_id`` in two batches (two items) is a duplicate the batches cannot see alone."""
    # min <> max instead of count(DISTINCT ...): plain aggregates spill to disk, so this runs
    # in bounded memory over any number of rows.
    dupes = con.sql(
        f"SELECT txn_id, min(CAST(item_id AS VARCHAR)) AS first_item, "
        f"max(CAST(item_id AS VARCHAR)) AS last_item, count(*) OVER () AS total FROM {view} "
        "WHERE txn_id IS NOT NULL GROUP BY 1 HAVING first_item <> last_item "
        f"ORDER BY 1 LIMIT {_DUPLICATES_KEPT}"
    ).pl()
    if dupes.is_empty():
        return
    total = int(dupes["total"][0])
    listed = first_named(dupes["txn_id"], total=total)
    failures = dupes.select(
        row=pl.lit(None, pl.Int64),
        txn_id=pl.col("txn_id"),
        column=pl.lit("txn_id"),
        check=pl.lit("duplicate_txn_id"),
        value=pl.format("items {} and {}", pl.col("first_item"), pl.col("last_item")),
        hint=pl.lit("give every transaction its own txn_id"),
    )
    kept = f" (the first {dupes.height} in .failures)" if total > dupes.height else ""
    msg = (
        f"{total} txn_id value(s) used by more than one item: {listed}{kept}; give every "
        "transaction its own id"
    )
    raise InputValidationError(msg, failures)


def _batch_input(work: Path, batch: int, schema: pl.Schema, source: _Source) -> pl.DataFrame:
    if source.frame is not None:
        return source.frame.filter(pl.col("invclose_batch") == batch).drop("invclose_batch")
    folder = work / "input" / f"invclose_batch={batch}"
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        return pl.DataFrame(schema=schema)
    return pl.read_parquet(files, hive_partitioning=False)


def _same_place(a: Path, b: Path) -> bool:
    """Whether two paths name one directory (a link that loops names none)."""
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
        return False


def _opening_slice(state: OpeningState | None, items: pl.Series, txn_ids: pl.Series) -> Any:
    if state is None:
        return None
    return OpeningState(
        close_id=state.close_id,
        closing_date=state.closing_date,
        lock_date=state.lock_date,
        open_items=state.open_items.filter(pl.col("item_id").is_in(items.implode())),
        closed_items=state.closed_items.filter(pl.col("txn_id").is_in(txn_ids.implode())),
        moving_average_items=state.moving_average_items,
        methods=state.methods,
    )


# --------------------------------------------------------------------------- finish


def _parts(work: Path, table: str) -> list[Path]:
    return sorted((work / "parts" / table).glob("*.parquet"))


def _write_empty(table: str, file: Path, dims: list[str]) -> int:
    """A table no batch has rows for, with its schema."""
    conform(pl.DataFrame(), table, dims).write_parquet(file, compression="zstd")
    return 0


def _write_rows(work: Path, table: str, run_id: str, file: Path, dims: list[str]) -> int:
    parts = _parts(work, table)
    if not parts:
        return _write_empty(table, file, dims)
    frame = pl.scan_parquet(parts).with_columns(close_id=pl.lit(run_id))
    frame.sink_parquet(file, compression="zstd", maintain_order=True)
    return int(pl.scan_parquet(file).select(pl.len()).collect().item())


def _write_vouchers(work: Path, run_id: str, file: Path, cfg: CloseConfig, dims: list[str]) -> int:
    parts = _parts(work, "vouchers")
    if not parts:
        return _write_empty("vouchers", file, dims)
    scan = pl.scan_parquet(parts)
    if cfg.voucher_detail in (VoucherDetail.ITEM_GROUP, VoucherDetail.TOTAL):
        # Item groups span batches: add the batches' lines up again (they are few).
        lines = scan.collect()
        merged = merge_voucher_lines(
            lines.select(
                *[c for c in ("item_group",) if cfg.voucher_detail == VoucherDetail.ITEM_GROUP],
                "account",
                net=wide_cents(pl.col("debit")) - wide_cents(pl.col("credit")),
            ),
            VoucherDetail(cfg.voucher_detail),
            run_id,
        )
        table = conform(
            merged.with_columns(
                close_id=pl.lit(run_id),
                posting_date=pl.lit(lines["posting_date"].head(1).item()),
                debit=from_cents(pl.col("debit")),
                credit=from_cents(pl.col("credit")),
            ),
            "vouchers",
            dims,
        )
        table.write_parquet(file, compression="zstd")
        return table.height
    # One voucher per item: number the items with lines over the whole run, in item order.
    items = scan.select("item_id").unique().collect().sort("item_id")["item_id"]
    numbers = pl.DataFrame(
        {"item_id": items, "invclose_no": pl.int_range(1, items.len() + 1, eager=True)}
    )
    # A join streams; replace_strict with a Series of the run's items made Polars collect every
    # voucher line first (20 GB at 1e8 rows).
    (
        scan.join(numbers.lazy(), on="item_id", how="left", maintain_order="left")
        .with_columns(
            close_id=pl.lit(run_id),
            voucher_id=voucher_id(run_id, pl.col("invclose_no")),
        )
        .drop("invclose_no")
        .sink_parquet(file, compression="zstd", maintain_order=True)
    )
    return int(pl.scan_parquet(file).select(pl.len()).collect().item())


def _write_sorted(
    work: Path,
    table: str,
    run_id: str,
    file: Path,
    dims: list[str],
    extra: pl.DataFrame | None,
    memory_limit: str,
) -> int:
    """``log`` and ``closed_items``, sorted over the whole run as the in-memory close sorts.

    DuckDB sorts out of core (spilling to the work directory), so ``closed_items`` of a run
    larger than memory never has to fit.
    """
    parts = _parts(work, table)
    schema = table_schema(table, dims)
    if not parts and (extra is None or extra.is_empty()):
        return _write_empty(table, file, dims)
    con = duckdb.connect()
    try:
        con.execute(f"SET temp_directory = {_literal(str(work / 'spill'))}")
        con.execute(f"SET memory_limit = {_literal(memory_limit)}")
        sources = []
        if parts:
            listed = ", ".join(_literal(str(p)) for p in parts)
            sources.append(f"SELECT * FROM read_parquet([{listed}], hive_partitioning = false)")
        if extra is not None and not extra.is_empty():
            con.register("invclose_previous", conform(extra, table, dims).to_arrow())
            sources.append("SELECT * FROM invclose_previous")
        run = _literal(run_id)
        columns = []
        for column in schema:
            if column == "close_id":
                columns.append(f"{run} AS close_id")
            elif column == "closed_by":
                columns.append(
                    f"CASE WHEN closed_by = {_literal(_PENDING)} THEN {run} ELSE closed_by END "
                    "AS closed_by"
                )
            else:
                columns.append(f'"{column}"')
        keys = ["txn_id"] if table == "closed_items" else log_order(dims)
        order = ", ".join(f'"{key}" NULLS LAST' for key in keys)
        con.execute(
            f"COPY (SELECT {', '.join(columns)} FROM ({' UNION ALL '.join(sources)}) "
            f"ORDER BY {order}) TO {_literal(str(file))} "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
    finally:
        con.close()
    return int(pl.scan_parquet(file).select(pl.len()).collect().item())


#: A DuckDB memory size: a number and a unit.
_MEMORY_LIMIT = re.compile(r"\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", re.IGNORECASE)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --------------------------------------------------------------------------- close


def close_batched(
    source: Any,
    date: Any,
    out: str | Path,
    *,
    batch_rows: int = 1_000_000,
    memory_limit: str = "1GB",
    method: str | None = None,
    dimensions: list[str] | tuple[str, ...] | None = None,
    items: Any = None,
    include_physical_value: bool | None = None,
    accounts: Any = None,
    voucher_detail: str | None = None,
    opening: Any = None,
    config: CloseConfig | None = None,
    progress: ProgressCallback | None = None,
) -> BatchedClose:
    """Close ``source`` at ``date`` in batches of whole items and write the result to ``out``.

    Takes the keywords of :func:`invclose.close`, plus ``out`` (the result directory, written
    atomically: on any error nothing there changes) and ``batch_rows`` (input rows per batch;
    peak memory grows with it, about 2 GB per million rows) and ``memory_limit`` (what DuckDB
    may hold while it plans, partitions and sorts, a DuckDB size such as ``"1GB"``; beyond it
    DuckDB spills to the work directory). ``source`` is Parquet (a file, a
    directory or a glob; read out of core) or an in-memory frame. The input needs a ``seq``
    column: without one the posting order would be each batch's row order.

    Returns
    -------
    BatchedClose
        The directory, ``close_id``, rows, batches and row counts per table. The id and every
        table's rows are those of ``invclose.close`` on the same input (module docstring).

    Examples
    --------
    >>> import datetime as dt, tempfile
    >>> from decimal import Decimal as D
    >>> import polars as pl, invclose
    >>> from invclose.batched import close_batched
    >>> tx = pl.DataFrame({
    ...     "txn_id": ["r1", "i1", "r2", "i2"], "item_id": ["A", "A", "B", "B"],
    ...     "date": [dt.date(2025, 1, d) for d in (2, 4, 2, 4)], "seq": [1, 2, 3, 4],
    ...     "qty": [D("2"), D("-1"), D("1"), D("-1")],
    ...     "amount": [D("30.00"), D("-12.00"), D("5.00"), D("-4.00")],
    ...     "inventory_account": ["1400"] * 4, "offset_account": ["2100", "5000"] * 2})
    >>> done = close_batched(tx, "2025-01-31", tempfile.mkdtemp() + "/out", batch_rows=2)
    >>> done.batches, done.close_id == invclose.close(tx, "2025-01-31").close_id
    (2, True)
    """
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        msg = f"batch_rows must be a positive whole number of rows, not {batch_rows!r}"
        raise ConfigError(msg)
    cfg = _config(
        config,
        method=method,
        dimensions=dimensions,
        items=items,
        include_physical_value=include_physical_value,
        accounts=accounts,
        voucher_detail=voucher_detail,
    )
    if not _MEMORY_LIMIT.fullmatch(str(memory_limit)):
        msg = f"memory_limit must be a size such as '1GB' or '512MB', not {memory_limit!r}"
        raise ConfigError(msg)
    closing_date = parse_date(date)
    dims = list(cfg.dims)
    state = load_opening(opening, cfg.dims)
    _check_dates(closing_date, state, "close")
    data = _Source(source, cfg.dims)
    schema = data.schema()
    # Missing or mistyped columns are reported before anything is read.
    normalize_transactions(pl.DataFrame(schema=schema), dimensions=cfg.dims)
    if "seq" not in schema:
        msg = (
            "a batched close needs a seq column (the posting order within a day); without it "
            "the order would be each batch's row order. Add seq, or use invclose.close"
        )
        raise InputValidationError(msg)

    # Where the result goes is checked before the work: a wrong `out` is refused now, not
    # after every batch has run.
    target = check_target(out)
    if isinstance(opening, str | Path) and _same_place(Path(opening).expanduser(), target):
        msg = (
            f"out {out} is the opening directory: writing there would replace the previous "
            "close's result, which later closes and audits read; write to a directory of its "
            "own (e.g. out/2025-02)"
        )
        raise ConfigError(msg)
    work = sibling_dir(target, "work")
    con = duckdb.connect()
    try:
        # Row order inside a batch does not matter (the close sorts), so DuckDB may stream
        # and spill freely to the work directory.
        con.execute("SET preserve_insertion_order = false")
        con.execute(f"SET temp_directory = {_literal(str(work / 'spill'))}")
        con.execute(f"SET memory_limit = {_literal(memory_limit)}")
        view = data.relation(con)
        plan = _plan(con, view, "order_id" in schema, state, batch_rows)
        _duplicates_across_batches(con, view, plan)
        n_batches = int(plan.select(pl.col("batch").max()).item() or 0) + 1 if plan.height else 1
        total = int(plan.select(pl.col("rows").sum()).item()) if plan.height else 0
        if data.frame is not None:
            batch_of = plan.select(invclose_key="item_id", invclose_batch="batch")
            data.frame = (
                data.frame.with_columns(invclose_key=pl.col("item_id").cast(pl.String))
                .join(batch_of, on="invclose_key", how="left", maintain_order="left")
                .drop("invclose_key")
                .with_columns(pl.col("invclose_batch").fill_null(0))
            )
        else:
            _partition(con, view, plan, work)
        # DuckDB keeps buffers up to its memory limit until it is closed: free them before the
        # batches, which need the memory.
        con.close()
        report(progress, "plan", 0, total, 0, n_batches)
        digests: list[pl.DataFrame] = []
        alone: list[pl.DataFrame] = []  # each batch's run-wide warnings
        failures: list[InputValidationError] = []
        missing: list[MissingAccountError] = []
        done = 0
        for batch in range(n_batches):
            batch_items = plan.filter(pl.col("batch") == batch)["item_id"]
            rows = _batch_input(work, batch, schema, data)
            try:
                # A function call per batch: its frames are freed before the next batch loads.
                closed = _close_batch(
                    work,
                    rows,
                    _Batch(batch, n_batches, done, total, validate_only=bool(failures)),
                    cfg,
                    closing_date,
                    state,
                    batch_items,
                    progress,
                )
            except InputValidationError as exc:
                failures.append(_with_files(exc, rows))
                continue
            except MissingAccountError as exc:
                # Every batch's rows without accounts, as one in-memory close names them all.
                missing.append(exc)
                continue
            finally:
                del rows  # before the next batch loads
            if closed is not None:
                digests.append(closed[0])
                done += closed[1]
                alone.append(closed[2])
                report(progress, "batch", done, total, batch + 1, n_batches)
        if failures:
            raise _combined(failures)
        if missing:
            raise combined_missing_accounts(missing)
        parts, prefix = run_parts(cfg, closing_date, "close", state)
        all_digests = pl.concat(digests) if digests else pl.DataFrame({"digest": []})
        run_id = content_id(all_digests["digest"].cast(pl.String), *parts, prefix=prefix)
        previous = state.closed_items if state is not None else None
        run_warnings = _warned_by_every_batch(alone)
        counts: dict[str, int] = {}

        def fill(tmp: Path) -> dict[str, int]:
            for table in RESULT_TABLES:
                file = tmp / table_file(table)
                if table in _ROW_TABLES:
                    counts[table] = _write_rows(work, table, run_id, file, dims)
                elif table == "vouchers":
                    counts[table] = _write_vouchers(work, run_id, file, cfg, dims)
                else:
                    extra = previous if table == "closed_items" else run_warnings
                    counts[table] = _write_sorted(
                        work, table, run_id, file, dims, extra, memory_limit
                    )
            return counts

        metadata = {
            "close_id": run_id,
            "closing_date": closing_date.isoformat(),
            "run_kind": "close",
            "dimensions": dims,
            "config_fingerprint": cfg.fingerprint(),
            "lock_date": closing_date.isoformat(),
            "invclose_version": _version(),
        }
        path = publish_result_dir(target, fill, metadata)
        report(progress, "write", total, total, n_batches, n_batches)
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)
    return BatchedClose(path, run_id, closing_date, total, n_batches, counts)


@dataclass(frozen=True)
class _Batch:
    """Where a batch stands in the run."""

    number: int
    count: int
    rows_done: int
    rows_total: int
    validate_only: bool  # an earlier batch failed: only validate, to report every failure


def _close_batch(
    work: Path,
    rows: pl.DataFrame,
    batch: _Batch,
    cfg: CloseConfig,
    closing_date: dt.date,
    state: OpeningState | None,
    items: pl.Series,
    progress: ProgressCallback | None,
) -> tuple[pl.DataFrame, int, pl.DataFrame] | None:
    """Close one batch and write its tables; its item digests, input rows and the run-wide
    warnings it would give alone."""
    # The closed rows this batch repeats, and those its marks name (a mark to a closed
    # receipt is valid, see close._known).
    named = [rows["txn_id"].cast(pl.String)]
    if "marked_to" in rows.columns:
        named.append(rows["marked_to"].cast(pl.String).drop_nulls())
    if state is not None and "marked_to" in state.open_items.columns:
        # And those the marks of the opening's open issues of these items name: a receipt
        # the opening closed has nothing left (the issue goes to the method), one no close
        # knows makes the issue wait (opening._mark_unknown).
        carried = state.open_items.filter(pl.col("item_id").is_in(items.implode()))
        named.append(carried["marked_to"].cast(pl.String).drop_nulls())
    batch_state = _opening_slice(state, items, pl.concat(named))
    frame = prepare_frame(rows, cfg, batch_state, closing_date)
    if batch.validate_only:
        return None
    digests = run_digests(frame, frame["row_hash"], closing_date)
    result = execute_run(
        frame,
        cfg,
        closing_date,
        _PENDING,
        batch_state,
        "close",
        progress,
        rows_done=batch.rows_done,
        rows_total=batch.rows_total,
        part=(batch.number, batch.count),
        rows=rows.height,
    )
    _write_batch(work, batch.number, result.tables())
    return digests, rows.height, result.log.filter(pl.col("code").is_in(RUN_WARNINGS))


def _warned_by_every_batch(alone: list[pl.DataFrame]) -> pl.DataFrame | None:
    """The run-wide warnings every batch gave alone, once: the run has nothing to close only
    when no batch has."""
    if not alone:
        return None
    return alone[0].filter(pl.col("code").is_in(sorted(warned_by_every_part(alone))))


def _write_batch(work: Path, batch: int, tables: dict[str, pl.DataFrame]) -> None:
    for table, frame in tables.items():
        if table == "closed_items":
            frame = frame.filter(pl.col("closed_by") == _PENDING)
        if table == "log":
            frame = frame.filter(~pl.col("code").is_in(RUN_WARNINGS))
        folder = work / "parts" / table
        folder.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(folder / f"{batch:08d}.parquet", compression="lz4")


def _combined(failures: Sequence[InputValidationError]) -> InputValidationError:
    """One error for the failures of every batch.

    A batch's row numbers count its own rows, not the input's, so they are dropped: rows are
    named by ``txn_id`` (and, read from files, by their ``file`` and ``file_row`` there), and a
    failure of a whole column (found in every batch) is listed once.
    Errors without a failures table (a file that cannot be read) keep their text.
    """
    tables = [e.failures for e in failures if e.failures is not None]
    texts = [str(e) for e in failures if e.failures is None]
    if tables:
        merged = (
            pl.concat(tables, how="diagonal_relaxed")
            .with_columns(row=pl.lit(None, pl.Int64))
            .unique(maintain_order=True)
        )
        numbering = (
            "a batched close names rows by txn_id, and by file and row there, as it reads the "
            "input a batch at a time"
        )
        texts.insert(0, failure_message(merged, "transactions", "txn_id", numbering))
    return InputValidationError("\n".join(texts), merged if tables else None)


def _version() -> str:
    from invclose.result import _library_version

    return _library_version()
