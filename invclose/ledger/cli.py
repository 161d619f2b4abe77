"""``invclose ledger <verb> --db books.duckdb``: the ledger verbs on the command line.

A Typer sub-application; the main command line mounts it with
``app.add_typer(ledger_app, name="ledger")``. Exit status: 0 on success, 1 when ``verify``
finds a failed check (or, with ``--strict``, when a close or check logged warnings), 2 on a
refused or invalid operation (a plain message, never a traceback).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console

from invclose.config import CloseConfig
from invclose.errors import InvcloseError
from invclose.ledger.books import Ledger

__all__ = ["ledger_app"]

ledger_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="The period ledger on one DuckDB file: post, check, close, recalculate, reverse.",
)
console = Console()
err_console = Console(stderr=True)

BAD_INPUT = 2
FAILED = 1

DbOpt = Annotated[Path, typer.Option("--db", help="the ledger file (created on first use)")]
DateOpt = Annotated[str, typer.Option(help="date, e.g. 2025-01-31")]
CommentOpt = Annotated[str | None, typer.Option(help="recorded in the history")]
StrictOpt = Annotated[bool, typer.Option(help="exit 1 when the log has warnings")]


def _read(path: Path) -> pl.DataFrame:
    if not path.exists():
        msg = f"file not found: {path}"
        raise InvcloseError(msg)
    if path.suffix.lower() == ".parquet":
        return pl.read_parquet(path)
    return pl.read_csv(path, infer_schema=False)


def _show(frame: pl.DataFrame) -> None:
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=60):
        console.print(str(frame), highlight=False, soft_wrap=True)


@contextmanager
def _books(db: Path, config: CloseConfig | None = None) -> Iterator[Ledger]:
    """Open the ledger; turn invclose errors into exit status 2 with a plain message."""
    try:
        with Ledger(db, config=config) as books:
            yield books
    except InvcloseError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(BAD_INPUT) from None


def _run(db: Path, action: Callable[[Ledger], Any]) -> Any:
    with _books(db) as books:
        return action(books)


@ledger_app.command("init")
def init_cmd(
    db: DbOpt,
    method: Annotated[str, typer.Option(help="default valuation method")] = "fifo",
    dimensions: Annotated[str, typer.Option(help="financial dimensions, e.g. site")] = "",
    items: Annotated[Path | None, typer.Option(help="item table (CSV/Parquet)")] = None,
    accounts: Annotated[Path | None, typer.Option(help="accounts mapping (CSV/Parquet)")] = None,
    voucher_detail: Annotated[str, typer.Option(help="transaction, item, ...")] = "transaction",
) -> None:
    """Create the ledger file with its configuration (stored in the file)."""
    try:
        cfg = CloseConfig(
            method=method,
            dimensions=[d.strip() for d in dimensions.split(",") if d.strip()],
            items=None if items is None else _read(items),
            accounts=None if accounts is None else _read(accounts),
            voucher_detail=voucher_detail,
        )
    except InvcloseError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(BAD_INPUT) from None
    with _books(db, cfg) as books:
        console.print(f"ledger {books.path} ready (dimensions: {list(books.dimensions)})")


@ledger_app.command("post")
def post_cmd(
    db: DbOpt, transactions: Annotated[Path, typer.Argument(help="rows to post (CSV/Parquet)")]
) -> None:
    """Validate and post transactions with their posting vouchers."""
    run = _run(db, lambda b: b.post(_read(transactions)))
    console.print(f"posted as run {run}")


@ledger_app.command("check")
def check_cmd(db: DbOpt, date: DateOpt, strict: StrictOpt = False) -> None:
    """What a close at DATE would log (writes nothing)."""
    log = _run(db, lambda b: b.check(date))
    _show(log)
    if strict and log.filter(pl.col("level") != "info").height:
        raise typer.Exit(FAILED)


@ledger_app.command("close")
def close_cmd(
    db: DbOpt, date: DateOpt, comment: CommentOpt = None, strict: StrictOpt = False
) -> None:
    """Close the period at DATE and lock it."""
    result = _run(db, lambda b: b.close(date, comment=comment))
    console.print(result.summary(), highlight=False)
    if strict and result.log.filter(pl.col("level") != "info").height:
        raise typer.Exit(FAILED)


@ledger_app.command("recalculate")
def recalculate_cmd(
    db: DbOpt,
    date: DateOpt,
    items: Annotated[str | None, typer.Option(help="item ids, comma separated")] = None,
    comment: CommentOpt = None,
) -> None:
    """Adjust without settling or locking, dated DATE."""
    ids = None if items is None else [i.strip() for i in items.split(",") if i.strip()]
    result = _run(db, lambda b: b.recalculate(date, ids, comment=comment))
    console.print(result.summary(), highlight=False)


@ledger_app.command("reverse")
def reverse_cmd(db: DbOpt, comment: CommentOpt = None) -> None:
    """Reverse the latest close or manual adjustment (and recalculations after it)."""
    runs = _run(db, lambda b: b.reverse(comment=comment))
    console.print(f"reversal runs: {', '.join(map(str, runs))}")


@ledger_app.command("reverse-recalculations")
def reverse_recalculations_cmd(db: DbOpt, from_date: DateOpt, comment: CommentOpt = None) -> None:
    """Cancel every recalculation in force dated on or after FROM_DATE."""
    runs = _run(db, lambda b: b.reverse_recalculations(from_date, comment=comment))
    console.print(f"reversal runs: {', '.join(map(str, runs)) or 'none'}")


@ledger_app.command("adjust-on-hand")
def adjust_on_hand_cmd(
    db: DbOpt,
    item: Annotated[str, typer.Argument(help="item id")],
    comment: Annotated[str, typer.Option(help="why (required)")],
    dims: Annotated[str, typer.Option(help="dimension values, e.g. site=S1")] = "",
    new_value: Annotated[str | None, typer.Option(help="the group's new on-hand value")] = None,
    adjustment: Annotated[str | None, typer.Option(help="or the change of value")] = None,
) -> None:
    """Set (or change) a group's on-hand value at the latest closing date."""
    values = dict(p.split("=", 1) for p in dims.split(",") if "=" in p)
    result = _run(
        db,
        lambda b: b.adjust_on_hand(
            item, values, new_value=new_value, adjustment=adjustment, comment=comment
        ),
    )
    _show(result.adjustments.select("txn_id", "posted_amount", "settled_amount", "adjustment"))


@ledger_app.command("history")
def history_cmd(db: DbOpt) -> None:
    """Every operation: kind, date, ids, counts, totals, warnings, status."""
    _show(_run(db, lambda b: b.history().drop("created_at")))


@ledger_app.command("verify")
def verify_cmd(db: DbOpt) -> None:
    """The hash chain and the invariants; exit 1 if a check fails."""
    checks = _run(db, lambda b: b.verify())
    _show(checks)
    if not checks["ok"].all():
        raise typer.Exit(FAILED)


@ledger_app.command("sql")
def sql_cmd(db: DbOpt, query: Annotated[str, typer.Argument(help="read-only SQL")]) -> None:
    """Run a read-only query over the file (tables, ``reconciliation``, ``gl_by_account``)."""
    _show(_run(db, lambda b: b.sql(query)))
