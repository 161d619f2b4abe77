"""The ``invclose`` command line: thin commands over the public API.

Exit status: 0 on success; 1 when ``--strict`` was given and the log (or the check's list)
has warning or error rows (info rows do not count); 2 on bad input or a close that would fail
(a plain message, never a traceback): ``close`` refuses such a close, ``check`` lists its
``error`` rows and exits 2 too, so a pipeline gating on ``check`` stops where ``close`` would.
"""

from __future__ import annotations

import enum
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import duckdb
import polars as pl
import typer
from rich.table import Table

import invclose
from invclose.batched import close_batched
from invclose.console import (
    StrictOpt,
    Typer,
    cell_text,
    check_failure,
    cli_wording,
    console,
    err_console,
    error_line,
    findings_table,
    log_counts,
    print_frame,
    stop_writing,
    strict_exit,
    widest,
    write_out,
)
from invclose.errors import InvcloseError
from invclose.io import read_one_file
from invclose.progress import ProgressMode, progress_display
from invclose.result import cost_delta_split
from invclose.schemas import VIRTUAL_PREFIX
from invclose.store.duckdb import register_result
from invclose.store.parquet import check_target
from invclose.views import query_result

app = Typer(
    add_completion=False,
    no_args_is_help=True,
    help="invclose: the periodic inventory close of an ERP, over dataframes.",
)
from invclose.ledger.cli import ledger_app  # noqa: E402 - the sub-app needs `app` defined first

app.add_typer(ledger_app, name="ledger")


BAD_INPUT = 2
WARNINGS = 1


def _fail(message: str) -> None:
    err_console.print(error_line(message), highlight=False, soft_wrap=True)
    raise typer.Exit(BAD_INPUT)


def _mode(progress: Show) -> ProgressMode:
    """The ``--progress`` value as :func:`invclose.progress.progress_display` takes it (the
    enum's values are :data:`invclose.progress.PROGRESS_MODES`)."""
    return progress.value


def _money(value: Decimal | float | None) -> str:
    """An amount as the JSON summaries write it: always two decimal places.

    >>> _money(Decimal("0")), _money(None), _money(Decimal("-11.5"))
    ('0.00', '0.00', '-11.50')
    """
    return f"{Decimal(value or 0):.2f}"


def _read_table(path: Path | None) -> pl.DataFrame | None:
    # The library's reader: a file it cannot read is an InputValidationError (exit 2).
    return None if path is None else read_one_file(path)


def _settings(
    method: str | None,
    items: Path | None,
    dimensions: str | None,
    accounts: Path | None,
    include_physical_value: bool,
    voucher_detail: str | None,
) -> dict[str, Any]:
    # The item table goes to the library as read: its validation parses include_physical_value
    # (true/false/yes/no/1/0) and names a value that is neither, with the transactions' errors.
    return {
        "method": method,
        "items": _read_table(items),
        "dimensions": [d.strip() for d in dimensions.split(",") if d.strip()]
        if dimensions
        else None,
        "accounts": _read_table(accounts),
        "include_physical_value": include_physical_value or None,
        "voucher_detail": voucher_detail,
    }


def _run_close(
    transactions: Path,
    date: str,
    settings: dict[str, Any],
    opening: Path | None,
    show: ProgressMode = "auto",
) -> invclose.CloseResult:
    with progress_display("closing", show) as progress:
        # The files are read by the close itself, so that their problems and those of the
        # item table and the accounts come in one error.
        return invclose.close(transactions, date, opening=opening, progress=progress, **settings)


def _batched_facts(out: Path) -> dict[str, Any]:
    """The summary facts of a written result, computed by DuckDB over its files."""
    con = duckdb.connect()
    try:
        register_result(con, out)
        settlements, pair_pieces = con.sql(
            "select count(*), count(*) filter (where starts_with(issue_txn_id, ?)) "
            "from settlements",
            params=[VIRTUAL_PREFIX],
        ).fetchall()[0]
        adjustments, delta, issues, receipts, inventory = con.sql(
            "select count(*), coalesce(sum(cost_delta), 0), "
            "coalesce(sum(cost_delta) filter (where qty < 0), 0), "
            "coalesce(sum(cost_delta) filter (where qty >= 0), 0), "
            "coalesce(sum(adjustment), 0) from adjustments"
        ).fetchall()[0]
        log_counts = con.sql(
            "select level, code, count(*) from log group by all order by code, level"
        ).fetchall()
        (vouchers,) = con.sql("select count(distinct voucher_id) from vouchers").fetchall()[0]
    finally:
        con.close()
    return {
        "settlements": settlements,
        "settlement_pieces": settlements - pair_pieces,
        "closing_pair_pieces": pair_pieces,
        "adjustments": adjustments,
        "total_cost_delta": _money(delta),
        "issues_cost_delta": _money(issues),
        "receipts_cost_delta": _money(receipts),
        "inventory_change": _money(inventory),
        "log": [{"level": lv, "code": c, "rows": n} for lv, c, n in log_counts],
        "vouchers": vouchers,
    }


def _close_in_batches(
    transactions: Path,
    date: str,
    settings: dict[str, Any],
    opening: Path | None,
    out: Path | None,
    batch_rows: int,
    as_json: bool,
    strict: bool,
    show: ProgressMode,
) -> None:
    if out is None:
        _fail("--batch-rows writes the result to disk: give --out DIR")
        return
    with progress_display("closing in batches", show) as progress:
        done = close_batched(
            transactions,
            date,
            out,
            batch_rows=batch_rows,
            opening=opening,
            progress=progress,
            **settings,
        )
    facts = {
        "close_id": done.close_id,
        "closing_date": done.closing_date.isoformat(),
        "rows": done.rows,
        "batches": done.batches,
        **_batched_facts(out),
        "tables": done.table_rows,
    }
    if as_json:
        write_out(json.dumps(facts, indent=2) + "\n")
    else:
        console.print(str(done), highlight=False, soft_wrap=True)
        console.print(
            f"adjusted transactions: {facts['adjustments']:,}, total cost delta "
            f"{facts['total_cost_delta']} (issues {facts['issues_cost_delta']}, receipts "
            f"{facts['receipts_cost_delta']}), inventory value {facts['inventory_change']}; "
            f"settlements: {facts['settlements']:,}; vouchers: {facts['vouchers']:,}",
            highlight=False,
            soft_wrap=True,
        )
        for entry in facts["log"]:
            console.print(f"  {entry['level']:<8} {entry['code']:<28} {entry['rows']:,}")
    if strict:
        strict_exit([(e["level"], e["code"], e["rows"]) for e in facts["log"]], WARNINGS)


def _facts(result: invclose.CloseResult) -> dict[str, Any]:
    log_counts = result.log.group_by("level", "code").len().sort("code").rows()
    pair_pieces = int(
        result.settlements.select(
            pl.col("issue_txn_id").str.starts_with(VIRTUAL_PREFIX).sum()
        ).item()
    )
    split = cost_delta_split(result.adjustments)
    return {
        "close_id": result.close_id,
        "closing_date": result.closing_date.isoformat(),
        "settlements": result.settlements.height,
        # The summary's split: a weighted-average closing pair's pieces repeat cost the real
        # issues' pieces hold (CloseResult.summary counts them apart).
        "settlement_pieces": result.settlements.height - pair_pieces,
        "closing_pair_pieces": pair_pieces,
        "adjustments": result.adjustments.height,
        "total_cost_delta": _money(split["cost_delta"]),
        "issues_cost_delta": _money(split["issue_cost_delta"]),
        "receipts_cost_delta": _money(split["receipt_cost_delta"]),
        "inventory_change": _money(split["inventory_change"]),
        "log": [{"level": lv, "code": c, "rows": n} for lv, c, n in log_counts],
        "vouchers": result.vouchers["voucher_id"].n_unique(),
    }


def _finish(result: invclose.CloseResult, as_json: bool, strict: bool) -> None:
    if as_json:
        write_out(json.dumps(_facts(result), indent=2) + "\n")
    else:
        console.print(result.summary(), highlight=False, soft_wrap=True)
    if strict:
        strict_exit(log_counts(result.log), WARNINGS)


MethodOpt = Annotated[str | None, typer.Option(help="fifo, lifo, lifo_date, ... (default fifo)")]
ItemsOpt = Annotated[Path | None, typer.Option(help="item table (CSV/Parquet): method per item")]
DimsOpt = Annotated[str | None, typer.Option(help="financial dimensions, e.g. site,warehouse")]
AccountsOpt = Annotated[Path | None, typer.Option(help="accounts mapping (CSV/Parquet)")]
#: Flags take no value: an empty metavar keeps typer from showing ``<bool>`` after them.
PhysOpt = Annotated[
    bool,
    typer.Option("--include-physical-value", metavar="", help="include physical value"),
]
DetailOpt = Annotated[str | None, typer.Option(help="transaction, item, item_group or total")]
JsonOpt = Annotated[bool, typer.Option("--json", metavar="", help="print a JSON summary")]
OpeningOpt = Annotated[
    Path | None, typer.Option(help="directory of the previous close (its --out)")
]


class Show(enum.StrEnum):
    """The ``--progress`` modes (:data:`invclose.progress.PROGRESS_MODES`)."""

    auto = "auto"
    lines = "lines"
    off = "off"


ProgressOpt = Annotated[
    Show,
    typer.Option(
        "--progress",
        help="auto: a bar when standard error is a terminal; lines: one line per step on "
        "standard error (for a log file); off: none",
    ),
]


@app.command("close")
def close_cmd(
    transactions: Annotated[Path, typer.Argument(help="transactions (Parquet or CSV)")],
    date: Annotated[str, typer.Option(help="closing date, e.g. 2025-01-31")],
    out: Annotated[
        Path | None, typer.Option(help="directory to write the result tables to")
    ] = None,
    method: MethodOpt = None,
    items: ItemsOpt = None,
    dimensions: DimsOpt = None,
    accounts: AccountsOpt = None,
    include_physical_value: PhysOpt = False,
    voucher_detail: DetailOpt = None,
    opening: OpeningOpt = None,
    batch_rows: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="close Parquet larger than memory in batches of whole items of about this "
            "many rows (needs --out and a seq column)",
        ),
    ] = None,
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
    progress: ProgressOpt = Show.auto,
) -> None:
    """Close the inventory at DATE and print a summary (optionally write the tables)."""
    if out is not None and opening is not None and out.resolve() == opening.resolve():
        _fail(
            f"--out {out} is the --opening directory: writing there would replace the previous "
            "close's result, which later closes and audits read; write to a directory of its "
            "own (e.g. out/2025-02)"
        )
    settings = _settings(
        method, items, dimensions, accounts, include_physical_value, voucher_detail
    )
    if batch_rows is not None:
        _close_in_batches(
            transactions, date, settings, opening, out, batch_rows, as_json, strict, _mode(progress)
        )
        return
    if out is not None:
        # A place that cannot take a result is refused now, not after the close has run.
        check_target(out)
    result = _run_close(transactions, date, settings, opening, _mode(progress))
    if out is not None:
        result.write(out)
        if not as_json:
            console.print(f"tables written to {out}")
    _finish(result, as_json, strict)


@app.command("check")
def check_cmd(
    transactions: Annotated[Path, typer.Argument(help="transactions (Parquet or CSV)")],
    date: Annotated[str, typer.Option(help="closing date, e.g. 2025-01-31")],
    method: MethodOpt = None,
    items: ItemsOpt = None,
    dimensions: DimsOpt = None,
    accounts: AccountsOpt = None,
    include_physical_value: PhysOpt = False,
    opening: OpeningOpt = None,
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List what a close at DATE could not settle, and why (nothing is written).

    Exit status 2 when the list has error rows (the close would fail, as `close` does on the
    same input), 1 with --strict when it has warnings, else 0.
    """
    settings = _settings(method, items, dimensions, accounts, include_physical_value, None)
    dims = settings["dimensions"] or ()
    findings = invclose.check(transactions, date, opening=opening, **settings)
    if as_json:
        write_out(findings.drop("close_id").write_json() + "\n")
    else:
        title = f"pre-close check at {date}: {findings.height} finding(s)"
        console.print(findings_table(findings, dims, title))
    failure = check_failure(findings, date)
    if failure is not None:
        _fail(failure)
    if strict:
        strict_exit(log_counts(findings), WARNINGS)


@app.command("compare")
def compare_cmd(
    transactions: Annotated[Path, typer.Argument(help="transactions (Parquet or CSV)")],
    date: Annotated[str, typer.Option(help="closing date, e.g. 2025-01-31")],
    methods: Annotated[
        str | None, typer.Option(help="comma-separated methods (default: the five periodic)")
    ] = None,
    items: Annotated[
        Path | None,
        typer.Option(help="item table (CSV/Parquet): item groups, include_physical_value"),
    ] = None,
    dimensions: DimsOpt = None,
    include_physical_value: PhysOpt = False,
    opening: OpeningOpt = None,
    as_json: JsonOpt = False,
    progress: ProgressOpt = Show.auto,
) -> None:
    """Cost of goods and ending inventory per item under several methods (a what-if)."""
    settings = _settings(None, items, dimensions, None, include_physical_value, None)
    dims = settings["dimensions"] or []
    wanted = None
    if methods is not None:
        wanted = [m.strip() for m in methods.split(",") if m.strip()]
        if not wanted:
            _fail(
                "--methods names no method: give at least one (e.g. --methods fifo,lifo), "
                "or leave --methods out to compare all five"
            )
    with progress_display("comparing methods", _mode(progress)) as shown:
        table = invclose.compare(
            transactions,
            date,
            methods=wanted,
            dimensions=dims,
            include_physical_value=settings["include_physical_value"],
            opening=opening,
            items=settings["items"],  # each item's method is replaced by the ones compared
            progress=shown,
        )
    if as_json:
        write_out(table.write_json() + "\n")
        return
    console.print(_compare_view(table, date))


def _compare_view(table: pl.DataFrame, date: str) -> Table:
    """The compare table for a terminal: names whole, headers wrapped at their words.

    ``item_id`` and ``method`` are never cut (``weighted_average`` and
    ``weighted_average_date`` must stay apart); quantities lose their trailing zeros
    (``235``, not ``235.000000``) so that the table fits 80 columns.
    """
    view = Table(title=f"methods compared at {date}")
    for col in table.columns:
        if col in ("item_id", "method"):
            view.add_column(col, no_wrap=True, min_width=widest(table[col], col))
        else:
            view.add_column(col.replace("_", " "), justify="right", overflow="fold")
    quantities = {c for c in table.columns if c.endswith("_qty")}
    for row in table.iter_rows(named=True):
        view.add_row(*[cell_text(v) if c in quantities else str(v) for c, v in row.items()])
    return view


@app.command("sql")
def sql_cmd(
    result_dir: Annotated[Path, typer.Argument(help="directory written by `invclose close --out`")],
    query: Annotated[str, typer.Argument(help="SQL over the result tables and views")],
    as_json: Annotated[
        bool, typer.Option("--json", metavar="", help="print the rows as JSON")
    ] = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", metavar="", help="print every row as CSV")
    ] = False,
) -> None:
    """Run SQL over a written close (tables: settlements, adjustments, vouchers, log, ...)."""
    con = duckdb.connect()
    try:
        # Views over the files (checked against the manifest): nothing is loaded first, so
        # a result larger than memory can be queried.
        register_result(con, result_dir)
        try:
            frame = query_result(con, query)
        except InvcloseError as exc:  # a bad query is bad input
            _fail(str(exc))
            return
    finally:
        con.close()
    if as_json:
        write_out(frame.write_json() + "\n")
        return
    if as_csv:
        write_out(frame.write_csv())
        return
    # Whole texts (a log message's reason is at its end); rows up to a screenful, and then
    # said so plainly rather than by a row of dots in the middle.
    print_frame(frame.head(_SQL_ROWS), rows=_SQL_ROWS, columns=30)
    if frame.height > _SQL_ROWS:
        console.print(
            f"showing the first {_SQL_ROWS} of {frame.height:,} rows: --csv or --json prints "
            "every row",
            highlight=False,
            soft_wrap=True,
        )


#: Rows ``invclose sql`` shows as a table.
_SQL_ROWS = 200


def _sample_dir(data: Path | None) -> Path:
    candidates = (
        [data]
        if data is not None
        else [
            Path.cwd() / "sample_data",
            Path(__file__).resolve().parents[1] / "sample_data",
        ]
    )
    for candidate in candidates:
        if candidate is not None and (candidate / "transactions.parquet").exists():
            return candidate
    _fail("sample_data/ not found: run from the repository root or pass --data DIR")
    raise AssertionError  # unreachable: _fail exits


@app.command("demo")
def demo_cmd(
    data: Annotated[Path | None, typer.Option(help="the sample_data directory")] = None,
    out: Annotated[Path | None, typer.Option(help="write the result tables here")] = None,
) -> None:
    """Close the bundled sample ledger at 2025-01-31 and print the summary."""
    sample = _sample_dir(data)
    settings = _settings(None, sample / "items.csv", "site", sample / "accounts.csv", False, None)
    result = _run_close(sample / "transactions.parquet", "2025-01-31", settings, None)
    console.print(f"sample ledger: {sample}", highlight=False)
    if out is not None:
        result.write(out)
        console.print(f"tables written to {out}")
    _finish(result, False, False)


def main() -> None:
    """Entry point: run the app, turning invclose errors into exit status 2."""
    try:
        code = app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except InvcloseError as exc:
        err_console.print(error_line(cli_wording(str(exc))), highlight=False, soft_wrap=True)
        sys.exit(BAD_INPUT)
    except FileNotFoundError as exc:
        err_console.print(error_line(str(exc)), highlight=False, soft_wrap=True)
        sys.exit(BAD_INPUT)
    except typer.Abort:
        sys.exit(BAD_INPUT)
    except BrokenPipeError:  # a write this module does not make through the consoles
        stop_writing(sys.stdout)
        sys.exit(0)
    except typer.TyperException as exc:
        # Usage errors (typer's own copy of click's exceptions, which can show themselves).
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        sys.exit(BAD_INPUT)
    sys.exit(code if isinstance(code, int) else 0)
