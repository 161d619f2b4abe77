"""The ledger file: schema (DDL), connection and lock, transactions, and table IO.

One embedded DuckDB file holds everything. Its tables (every row carries ``run_id``):

================  ===================================================================
``ledger_meta``   key/value: format version, dimensions, genesis hash of the chain
``ledger_config`` one row per configuration in force from a run on (``run_id`` 0: creation)
``runs``          one row per operation: kind, date, ``close_id``, status, comment, the
                  state pointers, the lock, and the hash chain
``transactions``  every posted row version (an invoice is a second version of its
                  physical row), with its ``row_hash`` and the accounts it was posted to
result tables     ``settlements``, ``adjustments`` (plus ``version_hash``: the row version
                  adjusted), ``vouchers`` (every general-ledger line: postings, closes,
                  recalculations, manual adjustments, reversals), ``log``, ``balances``,
                  ``open_items``, ``closed_items``, ``cost_flow``
``certificate``   the checks of :meth:`Ledger.verify` stored by every close
================  ===================================================================

and the views ``current_transactions``, ``gl_by_account`` and ``reconciliation``, the rows of
runs in force (``settlements_in_force``, ``cost_flow_in_force``, ``log_in_force``) and the
state in force (``state_balances``, ``state_open_items``, ``state_closed_items``).

Money is ``DECIMAL(38,2)`` and quantities ``DECIMAL(38,6)`` end to end: frames go in and out
through Arrow, never through floats. Every verb runs inside :meth:`Store.transaction`, one
DuckDB transaction, so a failure (or a kill) at any moment leaves the file as it was.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from invclose.config import CloseConfig
from invclose.errors import ConfigError
from invclose.ledger import digests
from invclose.ledger.errors import LedgerBusyError, LedgerError
from invclose.schemas import RESULT_TABLES, input_schema, table_schema

__all__ = [
    "FAULT_ENV",
    "FORMAT_VERSION",
    "HASHED_TABLES",
    "Store",
    "fault_point",
    "ledger_schema",
]

#: Version of the file layout, stored in ``ledger_meta``. 2: ``open_items`` has the order
#: state ``unfed_qty`` / ``unfed_change`` (its rows' hashes cover them, so a format-1 file
#: cannot simply gain the columns).
FORMAT_VERSION = "2"

#: Environment variable naming fault points (comma separated) at which the process kills
#: itself with SIGKILL: the crash-safety tests use it to stop a write at a named step.
FAULT_ENV = "INVCLOSE_LEDGER_FAULT"

#: Tables whose rows of a run enter that run's output hash.
HASHED_TABLES = ("transactions", *RESULT_TABLES)

_OPEN_PATHS: set[str] = set()
_OPEN_GUARD = threading.Lock()


def fault_point(step: str) -> None:
    """Kill the process at ``step`` when ``INVCLOSE_LEDGER_FAULT`` names it (test hook).

    Steps are ``<verb>:<where>``: the verb whose transaction is running (``post``, ``close``,
    ``recalculate``, ``reverse``, ``adjust``, ``reconfigure``) and the point inside it:
    ``begin``, ``stored_<table>``, ``<run kind>_recorded`` (e.g. ``close:reversal_recorded``
    for the cancellation of a recalculation inside a close), ``reversal_marked``,
    ``cancelled``, ``certified``, ``before_commit``, ``after_commit``. ``*:before_commit``
    matches every verb. Without the variable this is a no-op.
    """
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    where = step.partition(":")[2]
    names = {w.strip() for w in wanted.split(",")}
    if step in names or f"*:{where}" in names:
        os.kill(os.getpid(), signal.SIGKILL)


def quote(name: str) -> str:
    """A DuckDB identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


def duck_type(dtype: pl.DataType) -> str:
    """The DuckDB column type for a Polars dtype of the schemas."""
    if isinstance(dtype, pl.Decimal):
        return f"DECIMAL({dtype.precision}, {dtype.scale})"
    if isinstance(dtype, pl.List):
        inner = dtype.inner if isinstance(dtype.inner, pl.DataType) else dtype.inner()
        return f"{duck_type(inner)}[]"
    simple = {
        pl.String: "VARCHAR",
        pl.Date: "DATE",
        pl.Int64: "BIGINT",
        pl.Boolean: "BOOLEAN",
        pl.Datetime: "TIMESTAMP",
    }
    for polars_type, name in simple.items():
        if dtype == polars_type:
            return name
    msg = f"internal: no DuckDB type for {dtype}"
    raise AssertionError(msg)


def runs_schema() -> dict[str, pl.DataType]:
    """Columns of ``runs``: one row per operation."""
    return {
        "run_id": pl.Int64(),
        "kind": pl.String(),
        "date": pl.Date(),
        "close_id": pl.String(),
        "status": pl.String(),
        "comment": pl.String(),
        "reverses": pl.Int64(),
        "opening_run": pl.Int64(),
        "state_run": pl.Int64(),
        "lock_date": pl.Date(),
        "state_date": pl.Date(),
        "state_lock": pl.Date(),
        "state_kind": pl.String(),
        "config_run": pl.Int64(),
        "input_hash": pl.String(),
        "output_hash": pl.String(),
        "prev_hash": pl.String(),
        "hash": pl.String(),
        "created_seq": pl.Int64(),
        "created_at": pl.Datetime("us"),
    }


def transactions_schema(dims: tuple[str, ...]) -> dict[str, pl.DataType]:
    """Columns of ``transactions``: the input columns plus what posting added."""
    return {
        "run_id": pl.Int64(),
        **input_schema(dims),
        "row_hash": pl.String(),
        "item_group": pl.String(),
        "posted_inventory_account": pl.String(),
        "posted_offset_account": pl.String(),
    }


def certificate_schema() -> dict[str, pl.DataType]:
    """Columns of ``certificate`` (and of :meth:`Ledger.verify` without ``run_id``)."""
    return {"run_id": pl.Int64(), "check": pl.String(), "ok": pl.Boolean(), "detail": pl.String()}


def ledger_schema(dims: tuple[str, ...]) -> dict[str, dict[str, pl.DataType]]:
    """Every data table of the file with its columns, in creation order."""
    tables: dict[str, dict[str, pl.DataType]] = {
        "runs": runs_schema(),
        "transactions": transactions_schema(dims),
    }
    for name in RESULT_TABLES:
        columns: dict[str, pl.DataType] = {"run_id": pl.Int64(), **table_schema(name, dims)}
        if name == "adjustments":
            columns["version_hash"] = pl.String()
        tables[name] = columns
    tables["certificate"] = certificate_schema()
    return tables


#: The current version of each ``txn_id`` among the rows a query reads: the latest posted
#: (an invoice is its physical row's second version).
LATEST_VERSION = "QUALIFY row_number() OVER (PARTITION BY txn_id ORDER BY run_id DESC) = 1"

CURRENT_TRANSACTIONS_SQL = f"""
SELECT *
FROM transactions
{LATEST_VERSION}
"""

_GL_BY_ACCOUNT = """
SELECT
    account,
    CAST(SUM(debit) AS DECIMAL(38, 2)) AS debit,
    CAST(SUM(credit) AS DECIMAL(38, 2)) AS credit,
    CAST(SUM(debit) - SUM(credit) AS DECIMAL(38, 2)) AS balance
FROM vouchers
{where}
GROUP BY account
ORDER BY account
"""
GL_BY_ACCOUNT_SQL = _GL_BY_ACCOUNT.format(where="")
#: ``gl_by_account`` as of a date (the one ``?`` parameter): the voucher lines posted on or
#: before it, as the file shows them now (a reversal is dated like what it reverses).
GL_BY_ACCOUNT_AS_OF_SQL = _GL_BY_ACCOUNT.format(where="WHERE posting_date <= $as_of")

#: ``reconciliation``: per inventory account, the sub-ledger value (current row versions at
#: their posted amount, plus every adjustment of that version: closes, recalculations, manual
#: adjustments and their reversals) against the general-ledger balance of the account.
#: ``difference`` must be 0.00 on every row. Adjustments of virtual rows (no transaction)
#: count as they were posted.
_RECONCILIATION = """
WITH rows_in_force AS ({rows}),
posted AS (
    SELECT posted_inventory_account AS account, SUM(amount) AS amount
    FROM rows_in_force
    WHERE posted_inventory_account IS NOT NULL
    GROUP BY ALL
),
adjusted AS (
    SELECT a.inventory_account AS account, SUM(a.adjustment) AS amount
    FROM adjustments AS a
    LEFT JOIN rows_in_force AS c ON c.txn_id = a.txn_id
    WHERE a.inventory_account IS NOT NULL
      AND (c.txn_id IS NULL OR a.version_hash = c.row_hash)
      {adjusted}
    GROUP BY ALL
),
gl AS (
    SELECT account, SUM(debit) - SUM(credit) AS balance
    FROM vouchers
    {gl}
    GROUP BY ALL
),
accounts AS (
    SELECT account FROM posted
    UNION
    SELECT account FROM adjusted
)
SELECT
    accounts.account,
    CAST(COALESCE(p.amount, 0) AS DECIMAL(38, 2)) AS posted_value,
    CAST(COALESCE(a.amount, 0) AS DECIMAL(38, 2)) AS adjustments,
    CAST(COALESCE(p.amount, 0) + COALESCE(a.amount, 0) AS DECIMAL(38, 2)) AS subledger_value,
    CAST(COALESCE(g.balance, 0) AS DECIMAL(38, 2)) AS gl_balance,
    CAST(COALESCE(p.amount, 0) + COALESCE(a.amount, 0) - COALESCE(g.balance, 0)
         AS DECIMAL(38, 2)) AS difference
FROM accounts
LEFT JOIN posted AS p ON p.account = accounts.account
LEFT JOIN adjusted AS a ON a.account = accounts.account
LEFT JOIN gl AS g ON g.account = accounts.account
ORDER BY accounts.account
"""
RECONCILIATION_SQL = _RECONCILIATION.format(
    rows="SELECT * FROM current_transactions", adjusted="", gl=""
)
#: ``reconciliation`` as of a date (the parameter ``$as_of``): the row versions in force on
#: it (those dated on or before it; a physical row whose invoice is dated later), their
#: adjustments dated on or before it, and the voucher lines posted on or before it.
RECONCILIATION_AS_OF_SQL = _RECONCILIATION.format(
    rows=f"SELECT * FROM transactions WHERE date <= $as_of {LATEST_VERSION}",
    adjusted="AND a.adjustment_date <= $as_of",
    gl="WHERE posting_date <= $as_of",
)

#: The rows of runs still in force: a reversed run's settlements, cost flow and log stay in
#: the file for the record (its adjustments and vouchers are mirrored by the reversal, so
#: their sums are right over every run), and summing them over every run counts a reversed
#: close and its redo twice.
IN_FORCE_SQL = """
SELECT t.* FROM {table} AS t
WHERE t.run_id IN (SELECT run_id FROM runs WHERE status = 'active')
"""

#: The tables of the state in force (the latest run's ``state_run``: the close, recalculation
#: or manual adjustment the next close starts from). Each run stores a whole snapshot, so
#: the state is one run's rows, never a sum over runs.
STATE_SQL = """
SELECT t.* FROM {table} AS t
WHERE t.run_id = (SELECT state_run FROM runs ORDER BY run_id DESC LIMIT 1)
"""

#: Views added after the first files were written: created when missing on a writable open.
LATER_VIEWS = {
    **{
        f"{table}_in_force": IN_FORCE_SQL.format(table=table)
        for table in ("settlements", "cost_flow", "log")
    },
    **{
        f"state_{table}": STATE_SQL.format(table=table)
        for table in ("balances", "open_items", "closed_items")
    },
}

VIEWS = {
    "current_transactions": CURRENT_TRANSACTIONS_SQL,
    "gl_by_account": GL_BY_ACCOUNT_SQL,
    "reconciliation": RECONCILIATION_SQL,
    **LATER_VIEWS,
}


def _frame_bytes(frame: pl.DataFrame | None) -> bytes | None:
    if frame is None:
        return None
    buffer = io.BytesIO()
    frame.write_ipc(buffer)
    return buffer.getvalue()


def _frame_from(data: bytes | None) -> pl.DataFrame | None:
    return None if data is None else pl.read_ipc(io.BytesIO(data))


def config_settings(cfg: CloseConfig) -> str:
    """The scalar settings of ``cfg`` as JSON (tables are stored apart)."""
    return json.dumps(
        {
            "method": str(cfg.method),
            "dimensions": list(cfg.dims),
            "include_physical_value": cfg.include_physical_value,
            "voucher_detail": str(cfg.voucher_detail),
            "max_deviation": cfg.max_deviation,
        },
        sort_keys=True,
    )


def usable_as_ledger(path: Path) -> bool:
    r"""Whether ``path`` can be a ledger: no file yet, or a DuckDB database.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> usable_as_ledger(folder / "new.duckdb")
    True
    >>> _ = (folder / "t.csv").write_text("txn_id,item_id\nR1,A\n")
    >>> usable_as_ledger(folder / "t.csv")
    False
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return head[8:12] == b"DUCK"  # the magic bytes of every DuckDB database file


class Store:
    """An open ledger file: one DuckDB connection plus the helpers the verbs use.

    Opening registers the file as held by this process; a second writer (in this process or
    another) gets :class:`LedgerBusyError`. :meth:`release` closes the connection.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path).expanduser().resolve()
        self.read_only = read_only
        key = str(self.path)
        with _OPEN_GUARD:
            if key in _OPEN_PATHS:
                msg = (
                    f"the ledger file {self.path} is already open in this process; only one "
                    "writer at a time: disconnect the other Ledger first"
                )
                raise LedgerBusyError(msg)
            if not usable_as_ledger(self.path):
                # DuckDB opens a CSV or Parquet file as a read-only view of it: posts would
                # seem to succeed and be kept nowhere.
                msg = (
                    f"the ledger file {self.path} exists and is not a DuckDB database (a data "
                    "file?); choose another path for the ledger"
                )
                raise LedgerError(msg)
            try:
                self.con = duckdb.connect(key, read_only=read_only)
            except duckdb.IOException as exc:
                text = str(exc)
                if "lock" in text.lower():
                    msg = (
                        f"the ledger file {self.path} is in use by another process; only one "
                        "writer at a time: wait until it has finished and disconnected, then "
                        f"retry. (DuckDB: {text})"
                    )
                    raise LedgerBusyError(msg) from None
                msg = f"cannot open the ledger file {self.path}: {text}"
                raise LedgerError(msg) from None
            except duckdb.Error as exc:
                msg = f"cannot open the ledger file {self.path}: {exc}"
                raise LedgerError(msg) from None
            _OPEN_PATHS.add(key)
        self.verb: str | None = None
        #: Per table of :data:`HASHED_TABLES` and run_id: the row hashes of the rows inserted in
        #: the current transaction (for output hashes), 32 bytes a row instead of the rows.
        self._written: dict[str, dict[int, digests.SortedHashes]] = {}

    # ------------------------------------------------------------------ lifecycle

    def release(self) -> None:
        """Close the connection and let other writers in (idempotent)."""
        key = str(self.path)
        with _OPEN_GUARD:
            if key in _OPEN_PATHS and getattr(self, "con", None) is not None:
                try:
                    self.con.close()
                finally:
                    _OPEN_PATHS.discard(key)
                    self.con = None  # type: ignore[assignment]

    def fault(self, step: str) -> None:
        """Fault point ``<verb>:<step>`` inside the current transaction (see ``fault_point``)."""
        fault_point(f"{self.verb or 'none'}:{step}")

    @property
    def is_open(self) -> bool:
        """Whether the connection is still open."""
        return getattr(self, "con", None) is not None

    @contextmanager
    def transaction(self, verb: str, *, write: bool = True) -> Iterator[None]:
        """One DuckDB transaction: COMMIT at the end, ROLLBACK on any exception.

        Read-only uses (``write=False``) also run in a transaction, for a consistent
        snapshot, and always roll back.
        """
        if not self.is_open:
            msg = "this Ledger has been disconnected; open the file again"
            raise LedgerError(msg)
        if write and self.read_only:
            msg = f"{verb}: the ledger was opened read-only"
            raise LedgerError(msg)
        self.con.begin()
        self.verb = verb
        self._written = {}
        try:
            if write:
                fault_point(f"{verb}:begin")
            yield
            if write:
                fault_point(f"{verb}:before_commit")
                self.con.commit()
            else:
                self.con.rollback()
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # the transaction may already be over
                self.con.rollback()
            raise
        finally:
            self.verb = None
            self._written = {}
        if write:
            fault_point(f"{verb}:after_commit")

    # ------------------------------------------------------------------ schema

    def is_initialised(self) -> bool:
        """Whether the file already holds a ledger."""
        found = self.query(
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'ledger_meta'"
        )
        return bool(found["n"][0])

    def create(self, cfg: CloseConfig, genesis: str) -> None:
        """Create every table and view, and store the configuration (one transaction)."""
        dims = cfg.dims
        with self.transaction("create"):
            self.execute("CREATE TABLE ledger_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
            self.execute(
                "CREATE TABLE ledger_config (run_id BIGINT PRIMARY KEY, settings VARCHAR, "
                "items BLOB, accounts BLOB, fingerprint VARCHAR)"
            )
            for name, columns in ledger_schema(dims).items():
                cols = ", ".join(f"{quote(c)} {duck_type(t)}" for c, t in columns.items())
                self.execute(f"CREATE TABLE {quote(name)} ({cols})")
            for view, sql in VIEWS.items():
                self.execute(f"CREATE VIEW {quote(view)} AS {sql}")
            meta = {
                "format_version": FORMAT_VERSION,
                "dimensions": json.dumps(list(dims)),
                "genesis": genesis,
            }
            for key, value in meta.items():
                self.execute("INSERT INTO ledger_meta VALUES (?, ?)", [key, value])
            self.save_config(0, cfg)

    def add_missing_views(self) -> None:
        """Create the views of :data:`LATER_VIEWS` a file written before them lacks."""
        if self.read_only:
            return
        existing = set(
            self.query("SELECT view_name FROM duckdb_views() WHERE NOT internal")["view_name"]
        )
        missing = {view: sql for view, sql in LATER_VIEWS.items() if view not in existing}
        if not missing:
            return
        with self.transaction("add views"):
            for view, sql in missing.items():
                self.execute(f"CREATE VIEW {quote(view)} AS {sql}")

    def meta(self) -> dict[str, str]:
        """The ``ledger_meta`` key/value pairs."""
        frame = self.query("SELECT key, value FROM ledger_meta")
        return dict(zip(frame["key"].to_list(), frame["value"].to_list(), strict=True))

    def save_config(self, run_id: int, cfg: CloseConfig) -> None:
        """Store ``cfg`` as the configuration in force from ``run_id`` on."""
        self.execute(
            "INSERT INTO ledger_config VALUES (?, ?, ?, ?, ?)",
            [
                run_id,
                config_settings(cfg),
                _frame_bytes(cfg.items),
                _frame_bytes(cfg.accounts),
                cfg.fingerprint(),
            ],
        )

    def load_config(self, run_id: int | None = None) -> tuple[int, CloseConfig, str]:
        """The configuration in force (at ``run_id``, else now): its run, itself, fingerprint."""
        limit = (1 << 62) if run_id is None else int(run_id)
        rows = self.con.execute(
            "SELECT run_id, settings, items, accounts, fingerprint FROM ledger_config "
            "WHERE run_id <= ? ORDER BY run_id DESC LIMIT 1",
            [limit],
        ).fetchall()
        if not rows:
            msg = f"the ledger file {self.path} has no configuration; it is damaged"
            raise LedgerError(msg)
        config_run, settings, items, accounts, fingerprint = rows[0]
        values: dict[str, Any] = json.loads(settings)
        try:
            cfg = CloseConfig(
                method=values["method"],
                dimensions=tuple(values["dimensions"]),
                items=_frame_from(items),
                include_physical_value=values["include_physical_value"],
                accounts=_frame_from(accounts),
                voucher_detail=values["voucher_detail"],
                max_deviation=values["max_deviation"],
            )
        except ConfigError as exc:
            # A file written before a setting became invalid (e.g. a dimension named like a
            # column the close uses, refused since: its closes could overwrite it).
            msg = (
                f"the ledger file {self.path} holds a configuration this version refuses: "
                f"{exc}. Its rows are intact; read them with DuckDB (table transactions) and "
                "post them to a new ledger with a valid configuration"
            )
            raise LedgerError(msg) from exc
        return int(config_run), cfg, str(fingerprint)

    # ------------------------------------------------------------------ IO

    @contextmanager
    def registered(self, name: str, frame: pl.DataFrame) -> Iterator[str]:
        """``frame`` readable by queries as the temporary table ``name`` (quoted, as yielded)
        until the block ends, whatever happens in it: a name left registered would hold the
        frame's memory and shadow the next registration under that name."""
        self.con.register(name, frame.to_arrow())
        try:
            yield quote(name)
        finally:
            self.con.unregister(name)

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        """Run a statement (its result, if any, is fetched and dropped)."""
        self.con.execute(sql, params or [])
        if self.con.description is not None:
            self.con.fetchall()

    def query(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Run a query and return its rows as a Polars frame (exact Decimal, no floats)."""
        relation = self.con.sql(sql, params=params) if params else self.con.sql(sql)
        if relation is None:
            return pl.DataFrame()
        out: pl.DataFrame | pl.LazyFrame = relation.pl()
        return out if isinstance(out, pl.DataFrame) else out.collect()

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        """The single value of a one-row, one-column query."""
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None

    def insert(self, table: str, frame: pl.DataFrame, dims: tuple[str, ...]) -> None:
        """Append ``frame`` (with ``run_id``) to ``table``, cast to the table's columns."""
        if frame.is_empty():
            return
        schema = ledger_schema(dims)[table]
        extra = [c for c in frame.columns if c not in schema]
        if extra:
            msg = f"internal: table {table!r} got unexpected columns {extra}"
            raise AssertionError(msg)
        typed = frame.select(
            [
                (pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c)
                for c, t in schema.items()
            ]
        )
        if table in HASHED_TABLES and typed["run_id"].null_count():
            msg = f"internal: rows without a run_id inserted into {table!r}"
            raise AssertionError(msg)
        with self.registered(f"__invclose_ledger_{table}", typed) as rows:
            self.execute(f"INSERT INTO {quote(table)} BY NAME SELECT * FROM {rows}")
        if table in HASHED_TABLES:
            by_run = self._written.setdefault(table, {})
            digests.add_by_run(by_run, typed)

    def written_digest(self, run_id: int, table: str) -> str:
        """The sorted-hash digest of the rows of ``table`` inserted by ``run_id`` so far."""
        acc = self._written.get(table, {}).get(int(run_id), digests.SortedHashes())
        return acc.digest()

    def rows(
        self, table: str, run_id: int, dims: tuple[str, ...], *, sort: bool = False
    ) -> pl.DataFrame:
        """The rows of ``table`` stored by ``run_id``, typed as declared.

        In insertion order (``rowid``), or sorted on every column with ``sort=True``.
        """
        schema = ledger_schema(dims)[table]
        order = "ALL" if sort else "rowid"
        frame = self.query(
            f"SELECT * FROM {quote(table)} WHERE run_id = ? ORDER BY {order}", [int(run_id)]
        )
        return frame.select([pl.col(c).cast(t) for c, t in schema.items()])

    def table_names(self) -> list[str]:
        """Every base table of the file, sorted."""
        frame = self.query(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' ORDER BY table_name"
        )
        return [str(n) for n in frame["table_name"].to_list()]

    def dump(self) -> dict[str, pl.DataFrame]:
        """Every base table, all rows sorted: to compare the file before and after."""
        return {
            name: self.query(f"SELECT * FROM {quote(name)} ORDER BY ALL")
            for name in self.table_names()
        }
