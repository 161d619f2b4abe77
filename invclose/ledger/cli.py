"""``invclose ledger <verb> --db books.duckdb``: the ledger verbs on the command line.

A Typer sub-application; the main command line mounts it with
``app.add_typer(ledger_app, name="ledger")``. ``init`` creates the file; every other verb
needs it to exist (a mistyped ``--db`` is refused, not silently made a new, empty ledger).
``check``, ``history``, ``verify`` and ``sql`` open it read-only. Every verb takes ``--json``
(a JSON document on stdout, for machines). Exit status: 0 on success, 1 when ``verify`` finds
a failed check (or, with ``--strict``, when a close or check logged warnings or errors), 2 on
a refused or invalid operation (a plain message on stderr, never a traceback).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import duckdb
import polars as pl
import typer

from invclose.config import CloseConfig
from invclose.console import (
    StrictOpt,
    Typer,
    cli_wording,
    console,
    err_console,
    error_line,
    findings_table,
    log_counts,
    print_frame,
    strict_exit,
    write_out,
)
from invclose.errors import InvcloseError
from invclose.io import first_paragraph, read_one_file
from invclose.ledger.books import Ledger
from invclose.ledger.errors import LedgerError
from invclose.ledger.store import Store, usable_as_ledger
from invclose.result import CloseResult

__all__ = ["ledger_app"]

ledger_app = Typer(
    add_completion=False,
    no_args_is_help=True,
    help="The period ledger on one DuckDB file: post, check, close, recalculate, reverse.",
)

BAD_INPUT = 2
FAILED = 1
#: Where a ledger's accounts mapping comes from, named where the API says "pass accounts=".
_LEDGER_ACCOUNTS = "give the ledger an accounts mapping (`invclose ledger init --accounts FILE`)"

DbOpt = Annotated[
    Path, typer.Option("--db", help="the ledger file (created by `init`, required by the rest)")
]
DateOpt = Annotated[str, typer.Option(help="date, e.g. 2025-01-31")]
CommentOpt = Annotated[str | None, typer.Option(help="recorded in the history")]
#: Flags take no value: an empty metavar keeps typer from showing ``<bool>`` after them.
JsonOpt = Annotated[bool, typer.Option("--json", metavar="", help="print JSON (for machines)")]


def _fail(message: str) -> NoReturn:
    err_console.print(error_line(message), highlight=False, soft_wrap=True)
    raise typer.Exit(BAD_INPUT)


@contextmanager
def _plain_errors() -> Iterator[None]:
    """Turn invclose errors (ledger errors included) into exit status 2 with a plain message."""
    try:
        yield
    except InvcloseError as exc:
        _fail(cli_wording(str(exc), accounts=_LEDGER_ACCOUNTS))
    except duckdb.Error as exc:
        # A damaged file can fail at any read, not only when it is opened.
        _fail(
            f"the ledger file could not be read ({type(exc).__name__}: {first_paragraph(exc)}); "
            "it may be damaged: restore it from a backup"
        )


def _read(path: Path) -> pl.DataFrame:
    if not path.exists():
        msg = f"file not found: {path}"
        raise InvcloseError(msg)
    if not path.is_file():
        msg = f"{path} is not a file: give one CSV or Parquet file"
        raise InvcloseError(msg)
    # The library's reader: "cannot read <path>: <reason>; <fix>" for a file it cannot read.
    return read_one_file(path)


def _show(frame: pl.DataFrame) -> None:
    # Whole texts: a log message's reason is at its end.
    print_frame(frame)


def _say(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True)


def _write_json(document: Any) -> None:
    text = document if isinstance(document, str) else json.dumps(document, indent=2)
    write_out(text.rstrip("\n") + "\n")


def _require_ledger(db: Path) -> None:
    """Refuse a ``--db`` that is not an existing ledger file (only ``init`` creates one)."""
    hint = f"create it with `invclose ledger init --db {db}`"
    if not db.exists():
        msg = f"ledger file not found: {db}; {hint}"
        raise LedgerError(msg)
    if not db.is_file() or not usable_as_ledger(db):
        msg = f"{db} is not a ledger file (not a DuckDB database)"
        raise LedgerError(msg)
    if not _holds_ledger(db):
        msg = f"{db} holds no ledger; {hint}"
        raise LedgerError(msg)


def _holds_ledger(db: Path) -> bool:
    store = Store(db, read_only=True)
    try:
        return store.is_initialised()
    finally:
        store.release()


@contextmanager
def _books(db: Path, *, read_only: bool = False) -> Iterator[Ledger]:
    """Open an existing ledger; invclose errors become exit status 2 with a plain message."""
    with _plain_errors():
        _require_ledger(db)
        with Ledger(db, read_only=read_only) as books:
            yield books


def _run(db: Path, action: Callable[[Ledger], Any], *, read_only: bool = False) -> Any:
    with _books(db, read_only=read_only) as books:
        return action(books)


def _facts(result: CloseResult) -> dict[str, Any]:
    """The JSON summary of ``invclose close --json``, plus the run kind and the lock date."""
    from invclose.cli import _facts as close_facts  # the main CLI mounts this module

    lock = result.lock_date
    return {
        "kind": result.run_kind,
        **close_facts(result),
        "lock_date": None if lock is None else lock.isoformat(),
    }


@ledger_app.command("init")
def init_cmd(
    db: DbOpt,
    method: Annotated[str, typer.Option(help="default valuation method")] = "fifo",
    dimensions: Annotated[str, typer.Option(help="financial dimensions, e.g. site")] = "",
    items: Annotated[Path | None, typer.Option(help="item table (CSV/Parquet)")] = None,
    accounts: Annotated[Path | None, typer.Option(help="accounts mapping (CSV/Parquet)")] = None,
    voucher_detail: Annotated[str, typer.Option(help="transaction, item, ...")] = "transaction",
    as_json: JsonOpt = False,
) -> None:
    """Create the ledger file with its configuration (stored in the file)."""
    with _plain_errors():
        cfg = CloseConfig(
            method=method,
            dimensions=[d.strip() for d in dimensions.split(",") if d.strip()],
            items=None if items is None else _read(items),
            accounts=None if accounts is None else _read(accounts),
            voucher_detail=voucher_detail,
        )
        if db.exists():
            if not db.is_file() or not usable_as_ledger(db):
                _fail(f"{db} exists and is not a DuckDB file; choose another --db")
            if _holds_ledger(db):
                with Ledger(db, read_only=True) as found:
                    stored, stored_dims = found.config, list(found.dimensions)
                if stored.fingerprint() != cfg.fingerprint():
                    _fail(
                        f"{db} already holds a ledger with another configuration (dimensions "
                        f"{stored_dims}, method {stored.method}); init does not change it"
                    )
        with Ledger(db, config=cfg) as books:
            path, dims = books.path, list(books.dimensions)
    if as_json:
        _write_json({"db": str(path), "dimensions": dims, "method": str(cfg.method)})
    else:
        _say(f"ledger {path} ready (dimensions: {dims})")


@ledger_app.command("post")
def post_cmd(
    db: DbOpt,
    transactions: Annotated[Path, typer.Argument(help="rows to post (CSV/Parquet)")],
    as_json: JsonOpt = False,
) -> None:
    """Validate and post transactions with their posting vouchers."""
    with _plain_errors():
        frame = _read(transactions)
    run = _run(db, lambda b: b.post(frame))
    if as_json:
        _write_json({"run_id": run, "rows": frame.height})
    else:
        _say(f"posted as run {run}")


@ledger_app.command("check")
def check_cmd(
    db: DbOpt, date: DateOpt, strict: StrictOpt = False, as_json: JsonOpt = False
) -> None:
    """What a close at DATE would log (writes nothing)."""

    def check(books: Ledger) -> tuple[pl.DataFrame, tuple[str, ...]]:
        return books.check(date), tuple(books.dimensions)

    log, dims = _run(db, check, read_only=True)
    if as_json:
        _write_json(log.drop("close_id").write_json())
    else:
        # As `invclose check`: every message in full (a frame would cut it at 60 characters).
        title = f"pre-close check at {date}: {log.height} finding(s)"
        console.print(findings_table(log, dims, title))
    if strict:
        strict_exit(log_counts(log), FAILED)


@ledger_app.command("close")
def close_cmd(
    db: DbOpt,
    date: DateOpt,
    comment: CommentOpt = None,
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Close the period at DATE and lock it."""

    def close(books: Ledger) -> tuple[CloseResult, pl.DataFrame]:
        result = books.close(date, comment=comment)
        # Lapse vouchers the same run posts on invoices' dates, which its result does not
        # hold: named here so that the summary's totals are not read as the whole run.
        lapses = books.sql(
            "SELECT count(*) AS lines, coalesce(sum(debit), 0) AS debit FROM vouchers "
            f"WHERE voucher_id LIKE '{result.close_id}-L%'"
        )
        return result, lapses

    result, lapses = _run(db, close)
    lines, debit = lapses.row(0)
    if as_json:
        _write_json({**_facts(result), "lapse_lines": lines, "lapse_debit": f"{debit:.2f}"})
    else:
        _say(result.summary())
        if lines:
            _say(
                f"Lapses       this close also posted {lines} line(s), debit {debit:,.2f}, on "
                f"invoices' dates (vouchers {result.close_id}-L*): adjustments of physical "
                "rows invoiced before the close ran, taken back as the invoice lapses them"
            )
    if strict:
        strict_exit(log_counts(result.log), FAILED)


@ledger_app.command("recalculate")
def recalculate_cmd(
    db: DbOpt,
    date: DateOpt,
    items: Annotated[str | None, typer.Option(help="item ids, comma separated")] = None,
    comment: CommentOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Adjust without settling or locking, dated DATE."""
    ids = None if items is None else [i.strip() for i in items.split(",") if i.strip()]

    result = _run(db, lambda books: books.recalculate(date, ids, comment=comment))
    if as_json:
        _write_json(_facts(result))
    else:
        _say(result.summary())


def _reversed(books: Ledger, runs: list[int]) -> dict[str, Any]:
    """What the reversal runs ``runs`` reversed, and the closing date in force after them."""
    history = books.history()
    done = history.filter(pl.col("run_id").is_in(runs)).select("run_id", "reverses")
    undone = done.join(
        history.select(pl.col("run_id").alias("reverses"), "kind", "date", "close_id"),
        on="reverses",
        how="left",
    ).sort("run_id")  # run ids grow: the order the reversals were made
    lock = books.lock_date
    return {
        "reversal_runs": runs,
        "reversed": [
            {
                "reversal_run": row["run_id"],
                "run_id": row["reverses"],
                "kind": row["kind"],
                "date": None if row["date"] is None else row["date"].isoformat(),
                "close_id": row["close_id"],
            }
            for row in undone.iter_rows(named=True)
        ],
        "lock_date": None if lock is None else lock.isoformat(),
    }


def _say_reversed(facts: dict[str, Any]) -> None:
    if not facts["reversed"]:
        _say("nothing to cancel: no recalculation in force on or after that date")
        return
    for row in facts["reversed"]:
        what = row["kind"] if row["close_id"] is None else f"{row['kind']} {row['close_id']}"
        _say(f"reversed {what} of {row['date']} (run {row['run_id']}) by run {row['reversal_run']}")
    lock = facts["lock_date"]
    _say(f"closing date in force: {lock}" if lock else "no close in force: nothing is locked")


@ledger_app.command("reverse")
def reverse_cmd(db: DbOpt, comment: CommentOpt = None, as_json: JsonOpt = False) -> None:
    """Reverse the latest close or manual adjustment (and recalculations after it)."""
    facts = _run(db, lambda b: _reversed(b, b.reverse(comment=comment)))
    if as_json:
        _write_json(facts)
    else:
        _say_reversed(facts)


@ledger_app.command("reverse-recalculations")
def reverse_recalculations_cmd(
    db: DbOpt, from_date: DateOpt, comment: CommentOpt = None, as_json: JsonOpt = False
) -> None:
    """Cancel every recalculation in force dated on or after FROM_DATE."""
    facts = _run(db, lambda b: _reversed(b, b.reverse_recalculations(from_date, comment=comment)))
    if as_json:
        _write_json(facts)
    else:
        _say_reversed(facts)


def _dimension_values(dims: str) -> dict[str, str | None]:
    """``name=value`` pairs separated by commas (blanks around them dropped), or a JSON
    object for values the pairs cannot spell (a comma, surrounding blanks: "S1 " and "S1"
    are different financial dimensions; ``null``: the group of rows without a value)."""
    if dims.lstrip().startswith("{"):
        try:
            parsed = json.loads(dims)
        except json.JSONDecodeError as exc:
            _fail(f'--dims: not a JSON object ({exc}); e.g. \'{{"site": "S1 "}}\'')
        if not isinstance(parsed, dict) or not all(
            v is None or isinstance(v, str) for v in parsed.values()
        ):
            _fail('--dims as JSON takes an object of text values or null, e.g. {"site": "S1"}')
        return {str(k): v for k, v in parsed.items()}
    values: dict[str, str | None] = {}
    for part in (p.strip() for p in dims.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            _fail(f"--dims takes name=value pairs separated by commas (e.g. site=S1); got {part!r}")
        values[name.strip()] = value.strip()
    return values


@ledger_app.command("adjust-on-hand")
def adjust_on_hand_cmd(
    db: DbOpt,
    item: Annotated[str, typer.Argument(help="item id")],
    comment: Annotated[str, typer.Option(help="why (required)")],
    dims: Annotated[
        str,
        typer.Option(
            help='dimension values, e.g. site=S1, or JSON: {"site": "S1 "}, {"site": null}'
        ),
    ] = "",
    new_value: Annotated[str | None, typer.Option(help="the group's new on-hand value")] = None,
    adjustment: Annotated[str | None, typer.Option(help="or the change of value")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set (or change) a group's on-hand value at the latest closing date."""
    values = _dimension_values(dims)
    result = _run(
        db,
        lambda b: b.adjust_on_hand(
            item, values, new_value=new_value, adjustment=adjustment, comment=comment
        ),
    )
    table = result.adjustments.select("txn_id", "posted_amount", "settled_amount", "adjustment")
    if as_json:
        _write_json(table.write_json())
    else:
        _show(table)


@ledger_app.command("history")
def history_cmd(db: DbOpt, as_json: JsonOpt = False) -> None:
    """Every operation: kind, date, ids, counts, totals, warnings, status."""
    runs = _run(db, lambda b: b.history().drop("created_at"), read_only=True)
    if as_json:
        _write_json(runs.write_json())
    else:
        _show(runs)


@ledger_app.command("verify")
def verify_cmd(db: DbOpt, as_json: JsonOpt = False) -> None:
    """The hash chain and the invariants; exit 1 if a check fails."""
    checks = _run(db, lambda b: b.verify(), read_only=True)
    if as_json:
        _write_json(checks.write_json())
    else:
        _show(checks)
    if not checks["ok"].all():
        raise typer.Exit(FAILED)


@ledger_app.command("reconcile")
def reconcile_cmd(
    db: DbOpt,
    as_of: Annotated[
        str | None,
        typer.Option(help="reconcile at this date (e.g. 2025-01-31) instead of now"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sub-ledger against general ledger per inventory account; exit 1 on a difference."""
    table = _run(db, lambda b: b.reconciliation(as_of=as_of), read_only=True)
    if as_json:
        _write_json(table.write_json())
    else:
        _show(table)
    if (table["difference"] != 0).any():
        raise typer.Exit(FAILED)


@ledger_app.command("sql")
def sql_cmd(
    db: DbOpt,
    query: Annotated[str, typer.Argument(help="read-only SQL")],
    as_json: JsonOpt = False,
) -> None:
    """Run a read-only query over the file (its tables and the reconciliation and
    gl_by_account views)."""

    def read(books: Ledger) -> pl.DataFrame:
        try:
            return books.sql(query)
        except duckdb.Error as exc:  # a bad query (or a write on the read-only file)
            msg = f"query failed: {exc}"
            raise InvcloseError(msg) from None

    frame = _run(db, read, read_only=True)
    if as_json:
        _write_json(frame.write_json())
    else:
        _show(frame)
