"""SQL for auditors: every view a close exposes in DuckDB, documented, plus two table macros.

:func:`register_views` puts on one DuckDB connection:

* the result's tables and auditor views, exactly as :meth:`CloseResult.to_duckdb` does
  (:mod:`invclose.store.duckdb` holds their SQL);
* ``all_adjustments``: this close's ``adjustments`` and those of the earlier closes of a chain
  (``earlier=``), so values can be rebuilt across a year of monthly closes;
* with ``transactions=``: a ``transactions`` view and the table macro
  ``inventory_value(as_of)``: quantity and value per item and financial dimensions on any date,
  rebuilt from the transactions and the adjustments;
* the table macro ``lineage(txn_id)``: every row whose cost reaches ``txn_id`` through
  ``cost_flow`` (the recursive query of the README's "Cost flow" section), with its depth.

:data:`VIEW_DOCS` documents every view and macro with one example query each; the tests run
every example on the sample close and compare it with hand-computed values, and
:func:`views_markdown` renders the README table from it. Nothing here computes a close: it is
all plain SQL over the result tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from invclose.errors import InvcloseError, first_named
from invclose.store.duckdb import quote_ident

if TYPE_CHECKING:
    from invclose.result import CloseResult

__all__ = [
    "ALL_ADJUSTMENTS_SQL",
    "INVENTORY_VALUE_SQL",
    "LINEAGE_SQL",
    "VIEW_DOCS",
    "ViewDoc",
    "inventory_value_sql",
    "register_views",
    "views_markdown",
]

#: ``all_adjustments``: the adjustments of this close and of every earlier close given, with
#: the columns the value macros need. ``{sources}`` is a ``UNION ALL`` of registered frames.
ALL_ADJUSTMENTS_SQL = """
SELECT close_id, txn_id, item_id{dims}, kind, status, date, qty, posted_amount,
       settled_amount, adjustment, cost_delta, adjustment_date,
       inventory_account, offset_account
FROM ({sources})
"""

#: ``inventory_value(as_of)``: one row per item and financial dimensions with stock on
#: ``as_of`` (a date or an ISO text).
#:
#: * ``qty``, ``posted_value``: the financial transactions dated on or before ``as_of`` (at
#:   the amounts they were posted with);
#: * ``adjustment``: the adjustments whose ``adjustment_date`` is on or before ``as_of``: what
#:   the ledger knew that day, so ``value = posted_value + adjustment`` is the balance of the
#:   inventory accounts; on a closing date it equals the close's ``balances.value``;
#: * ``settled_value``: ``posted_value`` plus the adjustments of the transactions dated on or
#:   before ``as_of`` whenever they were posted, i.e. the value at settled cost, in hindsight;
#: * ``physical_qty``, ``physical_value``: physical rows dated on or before ``as_of`` and not
#:   yet invoiced then (an invoice is the financial row with the same ``txn_id``), plus the
#:   physical-value adjustments of such rows.
#:
#: It needs the whole history in ``transactions``, and the adjustments of every close of the
#: chain in ``all_adjustments`` (``register_views(..., earlier=[...])``).
INVENTORY_VALUE_SQL = """
CREATE OR REPLACE TEMP MACRO inventory_value(as_of) AS TABLE
WITH tx AS (
    SELECT txn_id, item_id{dims}, date, qty, amount, COALESCE(status, 'financial') AS status
    FROM transactions
    WHERE date <= CAST(as_of AS DATE)
),
invoiced AS (
    SELECT DISTINCT txn_id FROM tx WHERE status = 'financial'
),
still_physical AS (
    SELECT txn_id FROM tx WHERE status = 'physical'
    EXCEPT
    SELECT txn_id FROM invoiced
),
pieces AS (
    SELECT item_id{dims},
        CASE WHEN status = 'financial' THEN qty ELSE 0 END AS qty,
        CASE WHEN status = 'financial' THEN amount ELSE 0 END AS posted_value,
        CAST(0 AS DECIMAL(38, 2)) AS adjustment,
        CAST(0 AS DECIMAL(38, 2)) AS restated,
        CASE WHEN status = 'physical' THEN qty ELSE 0 END AS physical_qty,
        CASE WHEN status = 'physical' THEN amount ELSE 0 END AS physical_value
    FROM tx
    WHERE status = 'financial' OR txn_id IN (SELECT txn_id FROM still_physical)
    UNION ALL
    SELECT item_id{dims}, 0, 0,
        CASE WHEN adjustment_date <= CAST(as_of AS DATE) THEN adjustment ELSE 0 END,
        CASE WHEN date <= CAST(as_of AS DATE) THEN adjustment ELSE 0 END,
        0, 0
    FROM all_adjustments
    WHERE COALESCE(status, 'financial') = 'financial'
      AND (adjustment_date <= CAST(as_of AS DATE) OR date <= CAST(as_of AS DATE))
    UNION ALL
    SELECT item_id{dims}, 0, 0, 0, 0, 0, adjustment
    FROM all_adjustments
    WHERE status = 'physical'
      AND adjustment_date <= CAST(as_of AS DATE)
      AND txn_id IN (SELECT txn_id FROM still_physical)
)
SELECT
    item_id{dims},
    CAST(SUM(qty) AS DECIMAL(38, 6)) AS qty,
    CAST(SUM(posted_value) AS DECIMAL(38, 2)) AS posted_value,
    CAST(SUM(adjustment) AS DECIMAL(38, 2)) AS adjustment,
    CAST(SUM(posted_value) + SUM(adjustment) AS DECIMAL(38, 2)) AS value,
    CAST(SUM(posted_value) + SUM(restated) AS DECIMAL(38, 2)) AS settled_value,
    CAST(SUM(physical_qty) AS DECIMAL(38, 6)) AS physical_qty,
    CAST(SUM(physical_value) AS DECIMAL(38, 2)) AS physical_value
FROM pieces
GROUP BY item_id{dims}
ORDER BY item_id{dims}
"""

#: ``lineage(txn_id)``: ``txn_id`` (depth 0) and every row its cost came from, walking
#: ``cost_flow`` backwards (receipt -> issue pieces, issue -> derived receipt of transfer and
#: production orders, closing pairs), with the shortest number of edges to it. A breadth-first
#: walk keyed by ``txn_id`` (DuckDB's ``USING KEY``): each row is reached once, at its least
#: depth, so a chain of any length is walked to its end and a cost cycle ends the walk
#: (a depth cap cut long chains of transfers short without a word).
LINEAGE_SQL = """
CREATE OR REPLACE TEMP MACRO lineage(start_txn) AS TABLE
WITH RECURSIVE walk(txn_id, depth) USING KEY (txn_id) AS (
    SELECT CAST(start_txn AS VARCHAR), 0
    UNION
    SELECT f.from_txn_id, w.depth + 1
    FROM walk AS w
    JOIN cost_flow AS f ON f.to_txn_id = w.txn_id
    WHERE f.from_txn_id NOT IN (SELECT txn_id FROM recurring.walk)
)
SELECT txn_id, depth
FROM walk
ORDER BY depth, txn_id
"""


#: Views and macros :func:`register_views` alone creates: the name DuckDB reports, the name
#: as documented, what it needs beyond a result and the keyword of ``register_views`` for it.
NEEDS_REGISTER_VIEWS = (
    (
        "all_adjustments",
        "all_adjustments",
        "the adjustments of earlier closes (earlier=)",
        "earlier=[...]",
    ),
    ("transactions", "transactions", "the transactions (transactions=)", "transactions=..."),
    (
        "inventory_value",
        "inventory_value(as_of)",
        "the transactions (transactions=)",
        "transactions=...",
    ),
)


def query_result(con: duckdb.DuckDBPyConnection, query: str) -> pl.DataFrame:
    """Run ``query`` on ``con``, which holds a result's views (``register_result``), with the
    ``lineage`` macro added (it reads only ``cost_flow``).

    A query naming a view that only :func:`register_views` creates fails with an
    :class:`~invclose.errors.InvcloseError` that says so; any other failing query with
    DuckDB's message.

    >>> con = duckdb.connect()
    >>> _ = con.execute("create table cost_flow (from_txn_id varchar, to_txn_id varchar)")
    >>> query_result(con, "select count(*) as n from lineage('S-1')").item()
    1
    >>> query_result(con, "select * from inventory_value('2025-01-31')")
    Traceback (most recent call last):
    ...
    invclose.errors.InvcloseError: SQL query failed: ... inventory_value(as_of) needs the ...
    """
    con.execute(LINEAGE_SQL)
    try:
        relation = con.sql(query)
    except duckdb.Error as exc:
        text = str(exc)
        msg = f"SQL query failed: {text}"
        for name, shown, need, keyword in NEEDS_REGISTER_VIEWS:
            if f"name {name} does not exist" in text:
                msg += (
                    f"; {shown} needs {need}: register the result with "
                    f"invclose.views.register_views(con, result, {keyword}) and query con"
                )
        raise InvcloseError(msg) from exc
    if relation is None:  # a statement without a result set
        return pl.DataFrame()
    out: pl.DataFrame | pl.LazyFrame = relation.pl()
    return out if isinstance(out, pl.DataFrame) else out.collect()


@dataclass(frozen=True)
class ViewDoc:
    """One view or table macro: what a row is, what it is for, and one example query."""

    name: str
    kind: str  # "table", "auditor view", "input" or "macro"
    row: str
    description: str
    example: str
    needs_transactions: bool = False


VIEW_DOCS: tuple[ViewDoc, ...] = (
    ViewDoc(
        "settlements",
        "table",
        "settled piece (issue, receipt, qty)",
        "Which receipt each issue was costed from, under which principle.",
        "select issue_txn_id, receipt_txn_id, qty, amount, principle from settlements "
        "where item_id = 'BOLT' and site = 'S1' order by issue_txn_id, receipt_txn_id",
    ),
    ViewDoc(
        "adjustments",
        "table",
        "adjusted transaction",
        "Posted vs settled cost; `cost_delta` > 0 is more cost of goods (or more value on a "
        "receipt).",
        "select item_id, sum(cost_delta) as cost_delta from adjustments "
        "group by item_id order by item_id",
    ),
    ViewDoc(
        "vouchers",
        "table",
        "general-ledger line",
        "The close's postings; every voucher balances.",
        "select account, debit, credit from vouchers where txn_id = 'S-201' order by line_no",
    ),
    ViewDoc(
        "log",
        "table",
        "finding",
        "Warnings and information from the close (`level`, `code`, `message`).",
        "select level, code, txn_id, qty from log order by code",
    ),
    ViewDoc(
        "balances",
        "table",
        "item x financial dimensions",
        "Quantity and value on hand after the close.",
        "select item_id, site, qty, value from balances order by item_id, site",
    ),
    ViewDoc(
        "open_items",
        "table",
        "row still open after the close",
        "What the next close continues from (`opening=`).",
        "select txn_id, open_qty, open_value from open_items order by txn_id",
    ),
    ViewDoc(
        "closed_items",
        "table",
        "row closed by this or an earlier close",
        "Locked rows with their content hash.",
        "select count(*) as closed from closed_items",
    ),
    ViewDoc(
        "cost_flow",
        "table",
        "edge of cost lineage (from -> to)",
        "How cost moved: receipt -> issue pieces, issue -> derived receipt in transfer and "
        "production orders.",
        "select from_txn_id, qty, amount, kind from cost_flow "
        "where to_txn_id = 'S-001' order by from_txn_id",
    ),
    ViewDoc(
        "unsettled",
        "auditor view",
        "log row of something the close could not settle",
        "Issues short of receipts, marked receipts out of reach, receipts not invoiced and "
        "the issues awaiting their invoices; `message` says why.",
        "select txn_id, code, qty from unsettled order by txn_id",
    ),
    ViewDoc(
        "gl_by_account",
        "auditor view",
        "account",
        "Debit, credit and balance of the close's vouchers.",
        "select account, debit, credit, balance from gl_by_account order by account",
    ),
    ViewDoc(
        "reconciliation",
        "auditor view",
        "inventory account",
        "Sub-ledger (adjustments) against general ledger (vouchers); `difference` must be 0.",
        "select account, adjustment_total, voucher_net, difference from reconciliation "
        "order by account",
    ),
    ViewDoc(
        "all_adjustments",
        "auditor view",
        "adjusted transaction of this or an earlier close",
        "This close's adjustments plus those of `earlier=` closes of the chain.",
        "select close_id, count(*) as adjusted, sum(cost_delta) as cost_delta "
        "from all_adjustments group by close_id",
    ),
    ViewDoc(
        "transactions",
        "input",
        "input transaction",
        "The transactions given to `register_views` (with `transactions=`).",
        "select status, count(*) as n from transactions group by status order by status",
        needs_transactions=True,
    ),
    ViewDoc(
        "inventory_value(as_of)",
        "macro",
        "item x financial dimensions with a transaction on or before `as_of` (those at zero "
        "included)",
        "Quantity and value on any date from the transactions and the adjustments: `value` as "
        "the ledger showed it (adjustments by `adjustment_date`), `settled_value` at settled "
        "cost, `physical_qty` / `physical_value` not yet invoiced.",
        "select item_id, site, qty, value, settled_value from inventory_value('2025-01-15') "
        "order by item_id, site",
        needs_transactions=True,
    ),
    ViewDoc(
        "lineage(txn_id)",
        "macro",
        "row whose cost reaches `txn_id`",
        "The recursive walk back through `cost_flow`, with the depth of each row (each row "
        "once, at its least depth; chains of any length, cost cycles walked once).",
        "select txn_id, depth from lineage('S-001')",
    ),
)


def inventory_value_sql(dimensions: Sequence[str]) -> str:
    """The ``CREATE MACRO inventory_value`` statement for these financial dimensions."""
    return INVENTORY_VALUE_SQL.format(dims=_dim_list(dimensions))


def _dim_list(dimensions: Sequence[str]) -> str:
    return "".join(f", {quote_ident(d)}" for d in dimensions)


def _check_numbers(frame: pl.DataFrame) -> None:
    """Money and quantities must be exact: refuse binary floats, as the close does."""
    floats = [c for c in ("qty", "amount") if c in frame.columns and frame.schema[c].is_float()]
    if floats:
        msg = (
            f"transactions columns {floats} are binary floats; read them with "
            "invclose.read_transactions or convert with invclose.decimalize first"
        )
        raise InvcloseError(msg)


def _refuse_missing_amounts(frame: pl.DataFrame) -> None:
    """Every row needs the amount it posted: ``inventory_value`` sums them, and SQL's ``SUM``
    would skip a null silently (an extract whose issues were costed at posting has none)."""
    missing = frame.filter(pl.col("amount").is_null())
    if missing.is_empty():
        return
    from invclose.errors import InputValidationError
    from invclose.validate import id_failures

    hint = (
        "inventory_value sums the posted amounts: pass the rows as they were posted "
        "(Ledger.transactions(), or the output of invclose.post_costs), not the extract "
        "without amounts"
    )
    failures = id_failures(missing, "amount", "amount_missing", pl.col("amount"), hint)
    listed = first_named(missing["txn_id"].cast(pl.String))
    msg = f"transactions: {missing.height} row(s) have no amount: {listed}; {hint}"
    raise InputValidationError(msg, failures)


def _as_transactions(transactions: Any, dimensions: Sequence[str]) -> pl.DataFrame:
    """A Polars frame is taken as given (invoice pairs kept, so physical rows have a history);
    anything else goes through :func:`invclose.read_transactions`."""
    if isinstance(transactions, pl.LazyFrame):
        transactions = transactions.collect()
    if not isinstance(transactions, pl.DataFrame):
        from invclose.io import read_transactions

        return read_transactions(transactions, dimensions=dimensions)
    missing = [
        c
        for c in ("txn_id", "item_id", "date", "qty", "amount", *dimensions)
        if c not in transactions.columns
    ]
    if missing:
        msg = f"transactions lack columns {missing}"
        raise InvcloseError(msg)
    _check_numbers(transactions)
    _refuse_missing_amounts(transactions)
    frame = transactions
    if "status" not in frame.columns:
        frame = frame.with_columns(status=pl.lit("financial"))
    return frame.with_columns(
        pl.col("date").cast(pl.Date),
        pl.col("qty").cast(pl.Decimal(38, 6)),
        pl.col("amount").cast(pl.Decimal(38, 2)),
    )


def register_views(
    con: duckdb.DuckDBPyConnection | None,
    result: CloseResult,
    transactions: Any = None,
    *,
    earlier: Iterable[CloseResult] = (),
) -> duckdb.DuckDBPyConnection:
    """Register every view of :data:`VIEW_DOCS` on ``con`` (a new in-memory one if ``None``).

    Parameters
    ----------
    con
        A DuckDB connection; the views and macros are temporary (they live as long as it).
    result
        The close whose tables become the views.
    transactions
        The transactions behind the close, for ``transactions`` and ``inventory_value``: the
        whole history, as a Polars frame (raw rows with invoice pairs are fine: a physical row
        counts until its invoice's date) or anything :func:`invclose.read_transactions`
        accepts. Without it those two are not created.
    earlier
        Earlier closes of the same chain: their adjustments join ``all_adjustments`` so that
        ``inventory_value`` is right across several closes.

    Returns
    -------
    duckdb.DuckDBPyConnection
        ``con``.

    Examples
    --------
    >>> con = register_views(None, result, transactions=tx)             # doctest: +SKIP
    >>> con.sql("select * from inventory_value('2025-01-15')").pl()    # doctest: +SKIP
    """
    if con is None:
        con = duckdb.connect()
    result.to_duckdb(con)
    dims = tuple(result.dimensions)
    chain = [*earlier, result]
    sources = []
    for n, res in enumerate(chain):
        if tuple(res.dimensions) != dims:
            msg = (
                f"earlier close {res.close_id} has dimensions {list(res.dimensions)}, "
                f"this one {list(dims)}"
            )
            raise InvcloseError(msg)
        name = f"__invclose_adjustments_{n}"
        con.register(name, res.adjustments.to_arrow())
        sources.append(f"SELECT * FROM {quote_ident(name)}")
    con.execute(
        "CREATE OR REPLACE TEMP VIEW all_adjustments AS "
        + ALL_ADJUSTMENTS_SQL.format(dims=_dim_list(dims), sources=" UNION ALL ".join(sources))
    )
    con.execute(LINEAGE_SQL)
    if transactions is not None:
        frame = _as_transactions(transactions, dims)
        con.register("__invclose_transactions", frame.to_arrow())
        con.execute(
            "CREATE OR REPLACE TEMP VIEW transactions AS SELECT * FROM __invclose_transactions"
        )
        con.execute(inventory_value_sql(dims))
    return con


def views_markdown(docs: Iterable[ViewDoc] = VIEW_DOCS) -> str:
    """The README table of views: name, one row per, what for, example query."""
    lines = [
        "| view | one row per | what for | example |",
        "| --- | --- | --- | --- |",
    ]
    for doc in docs:
        example = doc.example.replace("|", "\\|")
        lines.append(f"| `{doc.name}` | {doc.row} | {doc.description} | `{example}` |")
    return "\n".join(lines)
