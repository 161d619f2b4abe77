"""Expose result tables in DuckDB as views, plus ready-made auditor views.

:func:`register_result` takes the tables of a result (a mapping of Polars frames, as from
``CloseResult.tables()``) or the directory a result was written to, and creates on a DuckDB
connection one view per result table, named like the table (``settlements``, ``adjustments``,
``vouchers``, ``log``, ``balances``, ``open_items``, ``closed_items``, ``cost_flow``), and the
auditor views below. Money stays ``DECIMAL(38,2)``, quantities ``DECIMAL(38,6)``.

* From frames, each frame is registered on the connection (DuckDB keeps a reference to its Arrow
  data) and the views are ``TEMP`` views, or plain views in ``schema`` when one is given. Such
  views live only as long as the connection: in a database file, register from a directory
  instead.
* From a directory, the manifest is read and (by default) every file's SHA-256 checked, and the
  views read the Parquet files by absolute path, so they keep working in a database file as long
  as the directory stays where it is.

The auditor views are plain SQL over the table views (constants below, with ``{table}``
placeholders filled with the qualified view names). Nothing here computes a close.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from invclose.errors import InvcloseError
from invclose.schemas import RESULT_TABLES
from invclose.store.parquet import (
    identity_problems,
    manifest_identity,
    read_manifest,
    refuse_identity_problems,
    table_file,
    verify_files,
)

__all__ = [
    "AUDITOR_VIEWS",
    "GL_BY_ACCOUNT_SQL",
    "RECONCILIATION_SQL",
    "UNSETTLED_CODES",
    "UNSETTLED_SQL",
    "register_result",
]

#: Log codes of issues and receipts the close could not settle.
UNSETTLED_CODES = (
    "insufficient_receipts",
    "marked_receipt_after_close_date",
    "receipt_not_invoiced",
    "awaiting_invoice",
    "awaiting_transfer_receipt",
)

#: ``unsettled``: the ``log`` rows of what the close could not settle, all ``log`` columns.
UNSETTLED_SQL = (
    "\nSELECT *\nFROM {log}\nWHERE code IN ("
    + ", ".join(f"'{code}'" for code in UNSETTLED_CODES)
    + ")\n"
)

#: ``gl_by_account``: per account, total debit, total credit and balance (debit - credit)
#: over every voucher line of the result.
GL_BY_ACCOUNT_SQL = """
SELECT
    account,
    CAST(SUM(COALESCE(debit, 0)) AS DECIMAL(38, 2)) AS debit,
    CAST(SUM(COALESCE(credit, 0)) AS DECIMAL(38, 2)) AS credit,
    CAST(SUM(COALESCE(debit, 0)) - SUM(COALESCE(credit, 0)) AS DECIMAL(38, 2)) AS balance
FROM {vouchers}
GROUP BY account
ORDER BY account
"""

#: ``reconciliation``: sub-ledger (``adjustments``) against general ledger (``vouchers``).
#:
#: Every adjustment posts ``adjustment`` to its ``inventory_account`` (debit if positive) and
#: the opposite to its ``offset_account`` (close-semantics §8), so the net debit - credit of an
#: account in ``vouchers`` must equal ``adjustment_total``: the sum of ``adjustment`` over rows
#: posted to it as inventory account minus the sum over rows posted to it as offset account.
#: One row per inventory account named in ``adjustments``, plus any voucher account that no
#: adjustment names (it cannot be explained, so its difference shows). ``difference`` =
#: ``adjustment_total - voucher_net`` and must be 0 on every row.
RECONCILIATION_SQL = """
WITH postings AS (
    SELECT inventory_account AS account, COALESCE(adjustment, 0) AS amount
    FROM {adjustments}
    WHERE inventory_account IS NOT NULL
    UNION ALL
    SELECT offset_account AS account, -COALESCE(adjustment, 0) AS amount
    FROM {adjustments}
    WHERE offset_account IS NOT NULL
),
from_adjustments AS (
    SELECT account, SUM(amount) AS amount
    FROM postings
    GROUP BY account
),
from_vouchers AS (
    SELECT account, SUM(COALESCE(debit, 0)) - SUM(COALESCE(credit, 0)) AS amount
    FROM {vouchers}
    GROUP BY account
),
accounts AS (
    SELECT inventory_account AS account
    FROM {adjustments}
    WHERE inventory_account IS NOT NULL
    UNION
    SELECT account
    FROM from_vouchers
    WHERE account IS NOT NULL
      AND account NOT IN (SELECT account FROM postings)
)
SELECT
    accounts.account,
    CAST(COALESCE(a.amount, 0) AS DECIMAL(38, 2)) AS adjustment_total,
    CAST(COALESCE(v.amount, 0) AS DECIMAL(38, 2)) AS voucher_net,
    CAST(COALESCE(a.amount, 0) - COALESCE(v.amount, 0) AS DECIMAL(38, 2)) AS difference
FROM accounts
LEFT JOIN from_adjustments AS a ON a.account = accounts.account
LEFT JOIN from_vouchers AS v ON v.account = accounts.account
ORDER BY accounts.account
"""

#: Auditor view name -> SQL template, created after the table views.
AUDITOR_VIEWS: dict[str, str] = {
    "unsettled": UNSETTLED_SQL,
    "gl_by_account": GL_BY_ACCOUNT_SQL,
    "reconciliation": RECONCILIATION_SQL,
}


def quote_ident(name: str) -> str:
    """A DuckDB identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _qualified(schema: str | None, name: str) -> str:
    return quote_ident(name) if schema is None else f"{quote_ident(schema)}.{quote_ident(name)}"


def _check_identity(
    con: duckdb.DuckDBPyConnection, root: Path, manifest: Mapping[str, Any], sources: dict[str, str]
) -> None:
    """Refuse a result directory whose manifest disagrees with its tables, as
    :func:`invclose.read_result` does, reading one column of each file (nothing is loaded)."""
    identity = manifest_identity(manifest, root)
    close_id, _run_kind, closing, _lock = identity
    other_ids = {}
    for table in RESULT_TABLES:
        found = con.execute(
            f"SELECT min(close_id) FROM {sources[table]} WHERE close_id IS DISTINCT FROM ?",
            [close_id],
        ).fetchone()
        if found is not None and found[0] is not None:
            other_ids[table] = str(found[0])
    latest = con.execute(f"SELECT max(date) FROM {sources['open_items']}").fetchone()
    problems = identity_problems(identity, other_ids, None if latest is None else latest[0])
    refuse_identity_problems(root, close_id, closing, problems)


def register_result(
    con: duckdb.DuckDBPyConnection,
    tables_or_dir: Mapping[str, pl.DataFrame] | str | Path,
    schema: str | None = None,
    *,
    verify: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Create the result views on ``con`` and return ``con``.

    Parameters
    ----------
    con
        An open DuckDB connection (in memory or a database file).
    tables_or_dir
        The result tables as ``{table name: Polars frame}``, or a result directory.
    schema
        Put the views in this schema (created if missing) instead of the connection's default
        search path; lets several results sit side by side on one connection.
    verify
        For a directory: check every file's SHA-256 against the manifest first.
    """
    if schema is not None and not schema:
        msg = "schema must be a non-empty name or None"
        raise InvcloseError(msg)
    sources: dict[str, str] = {}
    if isinstance(tables_or_dir, str | Path):
        root = Path(tables_or_dir).expanduser().resolve()
        manifest = verify_files(root) if verify else read_manifest(root)
        for table in RESULT_TABLES:
            file = root / table_file(table)
            # The rows' own values: a folder on the path named like "site=S1" is no column.
            sources[table] = (
                f"read_parquet({_quote_literal(file.as_posix())}, hive_partitioning = false)"
            )
        if verify:
            _check_identity(con, root, manifest, sources)
    else:
        missing = [t for t in RESULT_TABLES if t not in tables_or_dir]
        if missing:
            msg = f"cannot register a result without tables {missing}"
            raise InvcloseError(msg)
        for table in RESULT_TABLES:
            internal = f"__invclose_{schema or ''}_{table}"
            con.register(internal, tables_or_dir[table].to_arrow())
            sources[table] = quote_ident(internal)
    # Without a schema the views are temporary: they shadow, never replace, stored objects.
    kind = "VIEW" if schema is not None else "TEMP VIEW"
    if schema is not None:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
    names = {table: _qualified(schema, table) for table in RESULT_TABLES}
    for table in RESULT_TABLES:
        con.execute(f"CREATE OR REPLACE {kind} {names[table]} AS SELECT * FROM {sources[table]}")
    for view, sql in AUDITOR_VIEWS.items():
        con.execute(f"CREATE OR REPLACE {kind} {_qualified(schema, view)} AS {sql.format(**names)}")
    return con
