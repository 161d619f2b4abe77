"""The reading side of the ledger: history, results, vouchers, GL, reconciliation, verify.

Every read runs in a DuckDB transaction that is rolled back, so it sees one consistent
snapshot and can never change the file.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import polars as pl

from invclose.config import parse_date
from invclose.ledger import audit
from invclose.ledger.core import LedgerCore
from invclose.ledger.errors import LedgerError
from invclose.ledger.store import GL_BY_ACCOUNT_AS_OF_SQL, RECONCILIATION_AS_OF_SQL
from invclose.result import CloseResult

__all__ = ["LedgerReads"]

_COUNTS = "SELECT run_id, count(*) AS n FROM {} GROUP BY run_id"

HISTORY_SQL = f"""
SELECT r.run_id, r.kind, r.date, r.close_id, r.status, r.comment, r.reverses, r.lock_date,
       coalesce(t.n, 0) AS transactions, coalesce(s.n, 0) AS settlements,
       coalesce(a.n, 0) AS adjustments, coalesce(v.n, 0) AS voucher_lines,
       CAST(coalesce(v.debit, 0) AS DECIMAL(38, 2)) AS debit_total,
       CAST(coalesce(a.cost_delta, 0) AS DECIMAL(38, 2)) AS cost_delta_total,
       coalesce(l.n, 0) + coalesce(c.n, 0) AS warnings,
       r.created_at
FROM runs AS r
LEFT JOIN ({_COUNTS.format("transactions")}) AS t USING (run_id)
LEFT JOIN ({_COUNTS.format("settlements")}) AS s USING (run_id)
LEFT JOIN (SELECT run_id, count(*) AS n, sum(cost_delta) AS cost_delta
           FROM adjustments GROUP BY run_id) AS a USING (run_id)
LEFT JOIN (SELECT run_id, count(*) AS n, sum(debit) AS debit
           FROM vouchers GROUP BY run_id) AS v USING (run_id)
LEFT JOIN (SELECT run_id, count(*) AS n FROM log
           WHERE level IN ('warning', 'error') GROUP BY run_id) AS l USING (run_id)
LEFT JOIN (SELECT run_id, count(*) AS n FROM certificate
           WHERE NOT ok GROUP BY run_id) AS c USING (run_id)
ORDER BY r.run_id
"""


class LedgerReads(LedgerCore):
    """Read-only views of the ledger file (mixed into :class:`~invclose.ledger.Ledger`)."""

    def _read(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        with self._operation("read", write=False):
            return self._store.query(sql, params)

    def _repr_html_(self) -> str:
        """A compact HTML summary for Jupyter: file, lock date and the latest operations."""
        import html

        runs = self.history()
        lock = self.lock_date
        head = (
            f"<b>invclose ledger</b> {html.escape(str(self.path))}<br>"
            f"locked through: {lock.isoformat() if lock else 'nothing closed'}; "
            f"operations: {runs.height}"
        )
        columns = [
            "run_id",
            "kind",
            "date",
            "status",
            "adjustments",
            "cost_delta_total",
            "warnings",
        ]
        shown = runs.tail(10).select([c for c in columns if c in runs.columns])
        header = "".join(f"<th>{html.escape(c)}</th>" for c in shown.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
            for row in shown.iter_rows()
        )
        return f"<div>{head}<table><tr>{header}</tr>{body}</table></div>"

    @property
    def lock_date(self) -> dt.date | None:
        """The latest closing date in force: rows dated on or before it are refused."""
        with self._operation("read", write=False):
            return self._lock()

    def state(self) -> CloseResult | None:
        """The result in force, which the next close continues from (``None`` before any)."""
        with self._operation("read", write=False):
            return self._state()

    def result(self, id: int | str) -> CloseResult:
        """The stored result of a close, recalculation or manual adjustment.

        Parameters
        ----------
        id
            A ``run_id`` (int), or a ``close_id`` (str): its active run, else its latest.

        Returns
        -------
        CloseResult
            Equal (:meth:`CloseResult.equals`) to what the operation returned.

        Raises
        ------
        LedgerError
            If no such run stored a result (postings and reversals store none).
        """
        with self._operation("read", write=False):
            if isinstance(id, int):
                return self._load_result(id)
            runs = [r for r in self._runs().values() if r["close_id"] == id and r["state_kind"]]
            if not runs:
                msg = f"no close, recalculation or manual adjustment has close_id {id!r}"
                raise LedgerError(msg)
            active = [r for r in runs if r["status"] == "active"]
            return self._load_result(int((active or runs)[-1]["run_id"]))

    def transactions(self, *, all_versions: bool = False) -> pl.DataFrame:
        """The posted rows, in key order (date, seq, txn_id).

        Parameters
        ----------
        all_versions
            Also return the physical rows that an invoice has replaced.

        Returns
        -------
        polars.DataFrame
            ``run_id`` of the posting, the input columns, ``row_hash``, ``item_group`` and
            the accounts the row was posted to (``posted_inventory_account``,
            ``posted_offset_account``).
        """
        source = "transactions" if all_versions else "current_transactions"
        return self._read(f"SELECT * FROM {source} ORDER BY date, seq, txn_id, run_id")

    def vouchers(self, run_id: int | None = None) -> pl.DataFrame:
        """The voucher lines of one run (or of every run), in the order they were posted.

        The contract's ``vouchers`` columns plus ``run_id``; ``close_id`` names the posting
        (``P...``), close (``C...``), recalculation (``R...``), manual adjustment (``M...``)
        or reversal (``X...``); ``<close_id>-L`` names the lines of that close or reversal
        that take back, on the invoice's date, its adjustments of physical rows invoiced
        before it ran (lapsed adjustments, see :mod:`invclose.ledger.core`).
        """
        if run_id is None:
            return self._read("SELECT * FROM vouchers ORDER BY run_id, rowid")
        return self._read("SELECT * FROM vouchers WHERE run_id = ? ORDER BY rowid", [run_id])

    def gl(self, *, by_account: bool = False, as_of: Any = None) -> pl.DataFrame:
        """The general ledger of the file.

        Parameters
        ----------
        by_account
            Return ``account``, ``debit``, ``credit``, ``balance`` (debit - credit) per
            account instead of every line.
        as_of
            Only the lines posted on or before this date (a reversal is dated like what it
            reverses): the books at a period end, as the file shows them now.
        """
        day = None if as_of is None else parse_date(as_of, "as_of")
        if by_account:
            if day is None:
                return self._read("SELECT * FROM gl_by_account")
            return self._read(GL_BY_ACCOUNT_AS_OF_SQL, {"as_of": day})
        lines = self.vouchers()
        return lines if day is None else lines.filter(pl.col("posting_date") <= day)

    def reconciliation(self, as_of: Any = None) -> pl.DataFrame:
        """The ``reconciliation`` view: per inventory account, sub-ledger vs GL.

        Columns ``account``, ``posted_value`` (current row versions at their posted amount),
        ``adjustments`` (every adjustment of those versions in force, reversals included),
        ``subledger_value``, ``gl_balance`` and ``difference``, which must be 0.00.

        Parameters
        ----------
        as_of
            Reconcile at this date instead of now: the row versions in force on it (rows dated
            on or before it; a physical row whose invoice is dated later), their adjustments
            dated on or before it, against the voucher lines posted on or before it.
        """
        if as_of is None:
            return self._read("SELECT * FROM reconciliation")
        return self._read(RECONCILIATION_AS_OF_SQL, {"as_of": parse_date(as_of, "as_of")})

    def certificate(self, run_id: int | None = None) -> pl.DataFrame:
        """The checks each close stored when it ran (``run_id``, ``check``, ``ok``, ``detail``)."""
        if run_id is None:
            return self._read("SELECT * FROM certificate ORDER BY run_id, rowid")
        return self._read("SELECT * FROM certificate WHERE run_id = ? ORDER BY rowid", [run_id])

    def history(self) -> pl.DataFrame:
        """One row per operation.

        Returns
        -------
        polars.DataFrame
            ``run_id``, ``kind`` (``post``, ``close``, ``recalculation``, ``adjustment``,
            ``reversal``, ``config``), ``date``, ``close_id``, ``status`` (``active`` or
            ``reversed``), ``comment``, ``reverses`` (the run a reversal reverses),
            ``lock_date`` after it, row counts (``transactions``, ``settlements``,
            ``adjustments``, ``voucher_lines``), totals (``debit_total``,
            ``cost_delta_total``), ``warnings`` (log warnings and errors plus failed
            certificate checks) and ``created_at``.
        """
        return self._read(HISTORY_SQL)

    def verify(self) -> pl.DataFrame:
        """Check the file: one row per check (``check``, ``ok``, ``detail``).

        The hash chain, sub-ledger = GL per account, quantity and value conserved per
        group, carried values, every voucher balanced; see :mod:`invclose.ledger.audit`.
        """
        with self._operation("verify", write=False):
            return audit.verify_checks(
                self._store, self._state_run(), self.dimensions, self._genesis
            )

    def sql(self, query: str) -> pl.DataFrame:
        """Run one SQL ``SELECT`` over the file's tables and views.

        Only a single ``SELECT`` (or ``WITH ... SELECT``) statement is run: a read runs in a
        transaction that is rolled back, and a statement of another kind (``COMMIT`` first,
        then ``DELETE``) could end that transaction and change the file for good.

        Raises
        ------
        LedgerError
            The query holds another kind of statement, or more than one, or DuckDB cannot
            run it (a syntax error, an unknown table or column: DuckDB's message follows), or
            its result has a type Polars cannot hold.
        """
        try:
            kinds = [statement.type for statement in duckdb.extract_statements(query)]
        except duckdb.Error as exc:
            msg = f"SQL query failed: {exc}"
            raise LedgerError(msg) from exc
        if kinds != [duckdb.StatementType.SELECT]:
            found = ", ".join(kind.name for kind in kinds) or "none"
            msg = (
                f"sql runs one SELECT statement, which cannot change the file; got "
                f"{len(kinds)} statement(s): {found}. Send one SELECT per call; the ledger "
                "changes only through its verbs (post, close, reverse, ...)"
            )
            raise LedgerError(msg)
        try:
            return self._read(query)
        except (duckdb.Error, pl.exceptions.PolarsError) as exc:
            # A Polars error: DuckDB ran the query but its result has no Polars type (a UNION).
            msg = f"SQL query failed: {exc}"
            raise LedgerError(msg) from exc

    def dump(self) -> dict[str, pl.DataFrame]:
        """Every table of the file with its rows sorted: to compare the file over time."""
        with self._operation("read", write=False):
            return self._store.dump()
