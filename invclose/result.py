"""``CloseResult``: the handle on everything a close (or recalculation) produced.

It holds the eight result tables of the contract (§4) as Polars frames, with the run's
identity, and knows how to write itself to Parquet (:meth:`CloseResult.write`, read back with
:func:`read_result`), expose itself to DuckDB (:meth:`CloseResult.to_duckdb`,
:meth:`CloseResult.sql`) and describe itself to a person (:meth:`CloseResult.summary`, and an
HTML summary in Jupyter). Storage is delegated to :mod:`invclose.store`; nothing here computes
the close.
"""

from __future__ import annotations

import datetime as dt
import html
import importlib.metadata
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from invclose.config import parse_date
from invclose.errors import InvcloseError
from invclose.schemas import RESULT_TABLES, VIRTUAL_PREFIX
from invclose.store.duckdb import UNSETTLED_CODES, register_result
from invclose.store.parquet import (
    identity_problems,
    manifest_identity,
    read_result_dir,
    refuse_identity_problems,
    schema_problems,
    write_result_dir,
)

if TYPE_CHECKING:
    from invclose.plots import ResultPlots

__all__ = ["RUN_KINDS", "CloseResult", "read_result"]

#: Kinds of run a result can come from.
RUN_KINDS = ("close", "recalculation", "adjustment")

_MAX_ACCOUNT_LINES = 20
_MAX_FINDING_LINES = 12


def _library_version() -> str:
    """The running invclose version (looked up lazily: the package imports this module)."""
    import invclose

    version = getattr(invclose, "__version__", None)
    if version:
        return str(version)
    try:
        return importlib.metadata.version("invclose")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True, eq=False, repr=False)
class CloseResult:
    """The outcome of one close or recalculation: identity plus the eight result tables.

    Attributes
    ----------
    close_id
        Content hash of the inputs and configuration (same inputs, same id).
    closing_date
        The closing (or recalculation) date.
    run_kind
        ``"close"`` or ``"recalculation"``.
    dimensions
        The financial dimension columns the run settled within.
    config_fingerprint
        Canonical text (or hash) of the configuration the run used.
    lock_date
        The date that locks posting after this result: a close's own closing date; for a
        recalculation, the lock of its opening (``None`` if it had none).
    settlements, adjustments, vouchers, log, balances, open_items, closed_items, cost_flow
        The result tables (contract §4), each with exactly the schema of
        :func:`invclose.schemas.table_schema` for ``dimensions``.

    The frames are not copied; treat them as read-only. Two results compare with
    :meth:`equals` (``==`` is identity, since frames have no truth value).
    """

    close_id: str
    closing_date: dt.date
    run_kind: str
    dimensions: tuple[str, ...]
    config_fingerprint: str
    lock_date: dt.date | None
    settlements: pl.DataFrame
    adjustments: pl.DataFrame
    vouchers: pl.DataFrame
    log: pl.DataFrame
    balances: pl.DataFrame
    open_items: pl.DataFrame
    closed_items: pl.DataFrame
    cost_flow: pl.DataFrame

    def __post_init__(self) -> None:
        if not isinstance(self.close_id, str) or not self.close_id:
            msg = f"close_id must be a non-empty string; got {self.close_id!r}"
            raise InvcloseError(msg)
        if self.run_kind not in RUN_KINDS:
            msg = f"run_kind must be one of {RUN_KINDS}; got {self.run_kind!r}"
            raise InvcloseError(msg)
        object.__setattr__(self, "closing_date", parse_date(self.closing_date))
        if self.lock_date is not None:
            object.__setattr__(self, "lock_date", parse_date(self.lock_date, "lock date"))
        dims = (self.dimensions,) if isinstance(self.dimensions, str) else self.dimensions
        object.__setattr__(self, "dimensions", tuple(str(d) for d in dims))
        if not isinstance(self.config_fingerprint, str):
            msg = "config_fingerprint must be a string"
            raise InvcloseError(msg)
        problems: list[str] = []
        for table in RESULT_TABLES:
            frame = getattr(self, table)
            if not isinstance(frame, pl.DataFrame):
                problems.append(f"{table}: expected a polars DataFrame, got {type(frame).__name__}")
                continue
            problems.extend(schema_problems(frame, table, self.dimensions))
        if problems:
            msg = "CloseResult tables do not match their schemas: " + "; ".join(problems)
            raise InvcloseError(msg)

    # ------------------------------------------------------------------ tables and identity

    def tables(self) -> dict[str, pl.DataFrame]:
        """The result tables by name, in ``RESULT_TABLES`` order."""
        return {table: getattr(self, table) for table in RESULT_TABLES}

    def metadata(self) -> dict[str, Any]:
        """The run's identity as JSON-ready values (what the manifest records)."""
        return {
            "close_id": self.close_id,
            "closing_date": self.closing_date.isoformat(),
            "run_kind": self.run_kind,
            "dimensions": list(self.dimensions),
            "config_fingerprint": self.config_fingerprint,
            "lock_date": self.lock_date.isoformat() if self.lock_date else None,
            "invclose_version": _library_version(),
        }

    def equals(self, other: object) -> bool:
        """Whether ``other`` is a result with the same identity and identical tables."""
        if not isinstance(other, CloseResult):
            return False
        mine, theirs = self.metadata(), other.metadata()
        if mine != theirs:
            return False
        return all(
            getattr(self, t).schema == getattr(other, t).schema
            and getattr(self, t).equals(getattr(other, t))
            for t in RESULT_TABLES
        )

    def __repr__(self) -> str:
        rows = ", ".join(f"{t}={getattr(self, t).height}" for t in RESULT_TABLES)
        return (
            f"CloseResult(close_id={self.close_id!r}, closing_date={self.closing_date}, "
            f"run_kind={self.run_kind!r}, dimensions={self.dimensions!r}, rows: {rows})"
        )

    # ------------------------------------------------------------------ storage

    def write(self, path: str | Path) -> Path:
        """Write every table as Parquet plus ``manifest.json`` to directory ``path``.

        Atomic: the files are written to a temporary sibling directory which then replaces
        ``path``. An existing result directory (or an empty directory) is overwritten; any
        other non-empty directory, or a file, at ``path`` raises
        :class:`~invclose.errors.InvcloseError`. Returns the directory written.
        """
        return write_result_dir(path, self.tables(), self.metadata())

    def to_duckdb(
        self,
        con: duckdb.DuckDBPyConnection | None = None,
        *,
        schema: str | None = None,
    ) -> duckdb.DuckDBPyConnection:
        """Register every table as a DuckDB view named like it, plus the auditor views.

        The auditor views are ``unsettled`` (log rows that something could not be settled),
        ``gl_by_account`` (debit, credit and balance per account from ``vouchers``) and
        ``reconciliation`` (per inventory account: adjustments vs vouchers, ``difference``
        must be 0); their SQL is in :mod:`invclose.store.duckdb`. Without ``con`` a new
        in-memory connection is made. Returns the connection.

        >>> con = result.to_duckdb()                                  # doctest: +SKIP
        >>> con.sql("select * from reconciliation where difference <> 0").pl()  # doctest: +SKIP
        """
        if con is None:
            con = duckdb.connect()
        return register_result(con, self.tables(), schema)

    def sql(self, query: str) -> pl.DataFrame:
        """Run a SQL query over the result's views on a private in-memory DuckDB connection.

        The tables, the auditor views and the ``lineage(txn_id)`` macro are there; the views
        that need more than the result (``all_adjustments``, ``transactions``,
        ``inventory_value``) come with :func:`invclose.views.register_views`.

        >>> result.sql("select account, balance from gl_by_account")  # doctest: +SKIP
        """
        from invclose.views import query_result

        con = duckdb.connect()
        try:
            register_result(con, self.tables())
            return query_result(con, query)
        finally:
            con.close()

    @property
    def plot(self) -> ResultPlots:
        """Altair charts of this result (``pip install 'invclose[notebook]'``).

        >>> result.plot.adjustments_by_item()          # doctest: +SKIP
        >>> result.plot.value_flow("BOLT")             # doctest: +SKIP
        >>> result.plot.onhand_over_time(tx, "BOLT")   # doctest: +SKIP
        """
        from invclose.plots import ResultPlots

        return ResultPlots(self)

    # ------------------------------------------------------------------ for people

    def _groups(self) -> pl.DataFrame:
        """Distinct (item_id, dims) groups touched by the result: for a manual adjustment,
        the groups it adjusted (its balances and open items are the whole state's)."""
        keys = ["item_id", *self.dimensions]
        tables: tuple[str, ...] = ("adjustments",)
        if self.run_kind != "adjustment":
            tables = ("balances", "settlements", "adjustments", "open_items")
        parts: list[pl.DataFrame] = [getattr(self, t).select(keys) for t in tables]
        return pl.concat(parts).filter(pl.col("item_id").is_not_null()).unique()

    def _when(self) -> str:
        """``at`` the closing date; a manual adjustment is dated apart from the state it
        adjusts (the latest closing date, while a recalculation after it gives the state)."""
        dated = self.adjustments.get_column("adjustment_date").max()
        if self.run_kind != "adjustment" or dated is None or dated == self.closing_date:
            return f"at {self.closing_date.isoformat()}"
        assert isinstance(dated, dt.date)
        return f"dated {dated.isoformat()} (on the state at {self.closing_date.isoformat()})"

    def _facts(self) -> dict[str, Any]:
        """The numbers both summaries show."""
        zero2, zero6 = Decimal("0.00"), Decimal("0.000000")

        def total(frame: pl.DataFrame, column: str, zero: Decimal) -> Decimal:
            value = frame.get_column(column).sum()
            return zero if value is None else Decimal(value)

        groups = self._groups()
        adj = self.adjustments
        # A weighted-average closing pair's pieces (its virtual issue against the period's
        # receipts) hold the cost the real issues' pieces against its virtual receipt hold
        # too: counted apart, or the summary counts that cost twice.
        pair = pl.col("issue_txn_id").str.starts_with(VIRTUAL_PREFIX).fill_null(False)
        real, pairs = self.settlements.filter(~pair), self.settlements.filter(pair)
        # With each code's amount where its rows carry one (late_cost, cost_not_taken,
        # cycle_residual: money left on offset accounts that the counts alone hide).
        findings = (
            self.log.group_by("level", "code")
            .agg(
                pl.len(),
                pl.when(pl.col("amount").is_not_null().any()).then(pl.col("amount").sum()),
            )
            .with_columns(
                pl.col("level")
                .replace_strict({"error": 0, "warning": 1, "info": 2}, default=3)
                .alias("_rank")
            )
            .sort("_rank", "code", nulls_last=True)
            .drop("_rank")
        )
        accounts = (
            self.vouchers.group_by("account")
            .agg(
                pl.col("debit").fill_null(0).sum().alias("debit"),
                pl.col("credit").fill_null(0).sum().alias("credit"),
            )
            .with_columns((pl.col("debit") - pl.col("credit")).alias("balance"))
            .sort("account", nulls_last=True)
        )
        # Order issues whose receipts no close has fed yet (close-semantics §9.1).
        waiting = self.open_items.filter(
            (pl.col("unfed_qty").fill_null(0) > 0) & (pl.col("qty") < 0)
        )
        return {
            "items": groups.get_column("item_id").n_unique(),
            "groups": groups.height,
            "pieces": real.height,
            "settled_qty": total(real, "qty", zero6),
            "settled_amount": total(real, "amount", zero2),
            "pair_pieces": pairs.height,
            "pair_qty": total(pairs, "qty", zero6),
            "pair_amount": total(pairs, "amount", zero2),
            "adjusted": adj.height,
            **cost_delta_split(adj),
            "findings": findings.rows(),
            "unsettled": self.log.filter(pl.col("code").is_in(UNSETTLED_CODES)).height,
            "vouchers": self.vouchers.get_column("voucher_id").n_unique(),
            "voucher_lines": self.vouchers.height,
            "accounts": accounts.rows(),
            "debit": total(self.vouchers, "debit", zero2),
            "credit": total(self.vouchers, "credit", zero2),
            "balance_rows": self.balances.height,
            "balance_qty": total(self.balances, "qty", zero6),
            "balance_value": total(self.balances, "value", zero2),
            "physical_qty": total(self.balances, "physical_qty", zero6),
            "physical_value": total(self.balances, "physical_value", zero2),
            "open_items": self.open_items.height,
            "virtual": self.open_items.filter(pl.col("is_virtual").fill_null(False)).height,
            "closed_items": self.closed_items.height,
            "edges": self.cost_flow.height,
            "waiting": waiting.height,
            "waiting_change": total(waiting, "unfed_change", zero2),
        }

    def summary(self) -> str:
        """A one-screen plain-text summary for a controller.

        Closing date and close id, items and groups, settlement pieces and quantity (a
        weighted-average closing pair's pieces apart), the total ``cost_delta`` split into
        issues (more cost of goods) and receipts (more inventory value) with the change of
        inventory value beside it, findings by level and code with their amounts, voucher
        totals by account (those past the twentieth on one line), and balance totals.
        """
        f = self._facts()
        dims = ", ".join(self.dimensions) or "none"
        lock = self.lock_date.isoformat() if self.lock_date else "none"
        group_word = f"item x {', '.join(self.dimensions)}" if self.dimensions else "item"
        lines = [
            f"invclose {self.run_kind} {self._when()}  close id {self.close_id}",
            f"  dimensions: {dims}    lock date: {lock}",
            "",
            f"Scope        {_plural(f['items'], 'item')} in {_plural(f['groups'], 'group')}"
            f" ({group_word})",
            f"Settlements  {_plural(f['pieces'], 'piece')}, qty {_qty(f['settled_qty'])}, "
            f"amount {_money(f['settled_amount'])}",
        ]
        if f["pair_pieces"]:
            lines.append(
                f"             and {_plural(f['pair_pieces'], 'closing-pair piece')} "
                f"(qty {_qty(f['pair_qty'])}, amount {_money(f['pair_amount'])}): receipts "
                "settled into weighted average's virtual closing pair, not cost of issues"
            )
        lines += [
            f"Adjustments  {_plural(f['adjusted'], 'transaction')}, total cost delta "
            f"{_signed(f['cost_delta'])} (issues {_signed(f['issue_cost_delta'])}, receipts "
            f"{_signed(f['receipt_cost_delta'])})",
            f"             inventory value {_signed(f['inventory_change'])} (an issue's cost "
            "delta is more cost, a receipt's more inventory value)",
        ]
        if f["findings"]:
            lines.append(f"Findings     {sum(n for _, _, n, _ in f['findings'])} rows")
            width = max(len(str(code)) for _, code, _, _ in f["findings"][:_MAX_FINDING_LINES])
            lines.extend(
                f"  {level!s:<8} {code!s:<{width}}  {n}"
                + ("" if amount is None else f"  amount {_signed(amount)}")
                for level, code, n, amount in f["findings"][:_MAX_FINDING_LINES]
            )
            if len(f["findings"]) > _MAX_FINDING_LINES:
                lines.append(f"  ... {len(f['findings']) - _MAX_FINDING_LINES} more codes")
        else:
            lines.append("Findings     none")
        lines.append(
            f"Vouchers     {_plural(f['vouchers'], 'voucher')}, "
            f"{_plural(f['voucher_lines'], 'line')}"
        )
        if f["accounts"]:
            shown = f["accounts"][:_MAX_ACCOUNT_LINES]
            table = [(str(acc), _money(d), _money(c), _money(b)) for acc, d, c, b in shown]
            rest = f["accounts"][_MAX_ACCOUNT_LINES:]
            if rest:
                # The accounts not shown, summed: the total line stays the sum of the lines.
                debit = sum((d for _, d, _, _ in rest), Decimal(0))
                credit = sum((c for _, _, c, _ in rest), Decimal(0))
                label = f"{len(rest)} more account{'s' if len(rest) > 1 else ''}"
                table.append((label, _money(debit), _money(credit), _money(debit - credit)))
            table.append(
                (
                    "total",
                    _money(f["debit"]),
                    _money(f["credit"]),
                    _money(f["debit"] - f["credit"]),
                )
            )
            header = ("account", "debit", "credit", "balance")
            widths = [max(len(r[i]) for r in [header, *table]) for i in range(4)]
            lines.extend(
                f"  {r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  "
                f"{r[3]:>{widths[3]}}"
                for r in [header, *table]
            )
        lines.append(
            f"Balances     {_plural(f['balance_rows'], 'group')}, qty {_qty(f['balance_qty'])}, "
            f"value {_money(f['balance_value'])}"
            f" (physical qty {_qty(f['physical_qty'])}, value {_money(f['physical_value'])})"
        )
        lines.append(
            f"Open items   {f['open_items']} ({f['virtual']} virtual); "
            f"closed items {f['closed_items']}; cost-flow edges {f['edges']}"
        )
        if f["waiting"]:
            lines.append(
                f"Waiting      {_plural(f['waiting'], 'order issue')} for receipts not yet "
                f"costed; their change {_signed(f['waiting_change'])} stays on offset accounts"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """A compact HTML summary for Jupyter."""
        f = self._facts()
        esc = html.escape
        head = (
            f"<b>invclose {esc(self.run_kind)}</b> {esc(self._when())}"
            f" &middot; close id <code>{esc(self.close_id)}</code>"
            f" &middot; dimensions: {esc(', '.join(self.dimensions) or 'none')}"
            f" &middot; lock date: {esc(str(self.lock_date or 'none'))}"
        )
        facts = [
            ("items / groups", f"{f['items']} / {f['groups']}"),
            (
                "settlements",
                f"{_plural(f['pieces'], 'piece')}, qty {_qty(f['settled_qty'])}, "
                f"amount {_money(f['settled_amount'])}",
            ),
            (
                "adjustments",
                f"{f['adjusted']} rows, cost delta {_signed(f['cost_delta'])} "
                f"(issues {_signed(f['issue_cost_delta'])}, receipts "
                f"{_signed(f['receipt_cost_delta'])}); inventory value "
                f"{_signed(f['inventory_change'])}",
            ),
            (
                "findings",
                ", ".join(
                    f"{code} ({level}) {n}"
                    + ("" if amount is None else f", amount {_signed(amount)}")
                    for level, code, n, amount in f["findings"]
                )
                or "none",
            ),
            (
                "vouchers",
                f"{f['vouchers']} vouchers, {f['voucher_lines']} lines, "
                f"debit {_money(f['debit'])}, credit {_money(f['credit'])}",
            ),
            (
                "balances",
                f"qty {_qty(f['balance_qty'])}, value {_money(f['balance_value'])}",
            ),
            (
                "rows",
                ", ".join(f"{t} {getattr(self, t).height}" for t in RESULT_TABLES),
            ),
        ]
        if f["waiting"]:
            facts.append(
                (
                    "waiting for receipts",
                    f"{_plural(f['waiting'], 'order issue')}, change "
                    f"{_signed(f['waiting_change'])} on offset accounts",
                )
            )
        rows = "".join(
            f"<tr><th style='text-align:left'>{esc(k)}</th>"
            f"<td style='text-align:left'>{esc(v)}</td></tr>"
            for k, v in facts
        )
        return f"<div class='invclose-result'><p>{head}</p><table>{rows}</table></div>"


def cost_delta_split(adjustments: pl.DataFrame) -> dict[str, Decimal]:
    """The total ``cost_delta`` of ``adjustments``, of its issues and of its receipts, and
    the change of inventory value (the sum of ``adjustment``, each in its row's sign).

    ``cost_delta`` means more cost of goods on an issue but more inventory value on a
    receipt, so the summaries show the two apart, with the inventory change beside them.
    """
    zero = Decimal("0.00")

    def total(frame: pl.DataFrame, column: str) -> Decimal:
        value = frame.get_column(column).sum()
        return zero if value is None else Decimal(value)

    return {
        "cost_delta": total(adjustments, "cost_delta"),
        "issue_cost_delta": total(adjustments.filter(pl.col("qty") < 0), "cost_delta"),
        "receipt_cost_delta": total(adjustments.filter(pl.col("qty") >= 0), "cost_delta"),
        "inventory_change": total(adjustments, "adjustment"),
    }


def _money(value: Decimal) -> str:
    return f"{value.copy_abs() if value == 0 else value:,.2f}"


def _signed(value: Decimal) -> str:
    """Money with its sign: ``+1.50``, ``-0.25``; zero as ``0.00``."""
    return _money(value) if value == 0 else f"{value:+,.2f}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _qty(value: Decimal) -> str:
    """A quantity without trailing zeros: ``1,500.5``, ``12``, ``0``."""
    text = f"{value.normalize():,f}"
    return "0" if text in ("-0", "0") else text


def read_result(path: str | Path) -> CloseResult:
    """Read a result written by :meth:`CloseResult.write`.

    Parameters
    ----------
    path
        The directory the result was written to.

    Returns
    -------
    CloseResult
        The same tables and identity (``close_id``, dates, dimensions) as were written.

    Raises
    ------
    InvcloseError
        A file is missing, damaged or modified: the SHA-256 of every file is checked against
        ``manifest.json``, and so are the row counts and each table's schema.

    Examples
    --------
    >>> import datetime as dt, tempfile
    >>> from decimal import Decimal as D
    >>> import polars as pl, invclose
    >>> tx = pl.DataFrame({
    ...     "txn_id": ["r1", "i1"], "item_id": ["A", "A"],
    ...     "date": [dt.date(2025, 1, 2), dt.date(2025, 1, 4)],
    ...     "qty": [D("2"), D("-1")], "amount": [D("30.00"), D("-15.00")]})
    >>> result = invclose.close(tx, "2025-01-31")
    >>> with tempfile.TemporaryDirectory() as out:
    ...     _ = result.write(out)
    ...     invclose.read_result(out).equals(result)
    True
    """
    manifest, tables = read_result_dir(path)
    close_id, run_kind, closing_date, lock_date = manifest_identity(manifest, path)
    try:
        result = CloseResult(
            close_id=close_id,
            closing_date=closing_date,
            run_kind=run_kind,
            dimensions=tuple(manifest["dimensions"]),
            config_fingerprint=str(manifest["config_fingerprint"]),
            lock_date=lock_date,
            **tables,
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InvcloseError):
            raise
        msg = f"invclose result at {path} has a damaged manifest: {exc!r}"
        raise InvcloseError(msg) from exc
    _check_identity(result, path)
    return result


def _check_identity(result: CloseResult, path: str | Path) -> None:
    """Refuse a manifest whose identity disagrees with its own tables.

    The file hashes prove the tables, not the manifest's ``close_id`` and dates: an edited
    ``lock_date`` would let a later close post into a closed period. Every row carries the
    run's ``close_id``; a close locks its closing date, and no run locks a later date; the
    open rows are dated on or before the closing date.
    """
    other_ids = {}
    for name in RESULT_TABLES:
        frame = getattr(result, name)
        if "close_id" in frame.columns and frame.height:
            # Vectorised: a result of 1e7 rows is not turned into Python strings to check it.
            ids = frame["close_id"]
            other = ids.filter(ids != result.close_id)
            if other.len():
                other_ids[name] = str(other.min())
    latest = result.open_items["date"].max() if result.open_items.height else None
    identity = (result.close_id, result.run_kind, result.closing_date, result.lock_date)
    problems = identity_problems(
        identity, other_ids, latest if isinstance(latest, dt.date) else None
    )
    refuse_identity_problems(path, result.close_id, result.closing_date, problems)
