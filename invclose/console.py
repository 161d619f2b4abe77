"""The consoles of the command line, shared by ``invclose`` and ``invclose ledger``.

Without console markup: transaction ids, messages and SQL values are printed as they are (a
``[/x]`` in a ``txn_id`` must neither vanish nor crash the command), and validation messages
keep their ``[check_name]`` tags.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType

#: ``--strict`` of ``close``, ``check`` and the ledger's ``close`` / ``recalculate`` (a flag:
#: the empty metavar keeps typer from showing ``<bool>`` after it).
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        metavar="",
        help="exit 1 when the log has warning or error rows (info rows do not count)",
    ),
]


def stop_writing(stream: Any) -> None:
    """Send what is left of ``stream`` (standard output or error) nowhere: its reader has gone
    (``invclose sql ... | head``).

    The command goes on and ends with its own status (0, 1 for ``--strict``'s warnings, 2 on
    bad input): a reader that stops early changes nothing of what the command did (rich would
    exit 1 at once, and Python would report the closed pipe again when it exits).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stream.fileno())
    os.close(devnull)


def write_out(text: str) -> None:
    """Write ``text`` to standard output as it is (JSON, CSV), minding a reader that has gone
    (:func:`stop_writing`)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        stop_writing(sys.stdout)


class _Console(Console):
    """A rich console that stops writing on a closed pipe (:func:`stop_writing`) instead of
    exiting 1."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        stop_writing(self.file)


console = _Console(markup=False)
err_console = _Console(stderr=True, markup=False)


class _PlainHelp:
    """``--help`` shown as the flag it is: typer gives its help option the type ``<bool>``,
    as if it took a value (the command line's own flags get an empty metavar for that)."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = ""
        return option


class PlainHelpCommand(_PlainHelp, TyperCommand):
    """A command whose ``--help`` shows no type."""


class PlainHelpGroup(_PlainHelp, TyperGroup):
    """A group whose ``--help`` shows no type."""


class Typer(typer.Typer):
    """``typer.Typer`` whose group and commands show ``--help`` without a type."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", PlainHelpGroup)
        super().__init__(**kwargs)

    def command(
        self, *args: Any, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        kwargs.setdefault("cls", PlainHelpCommand)
        return super().command(*args, **kwargs)


#: Polars' widest table (its width is a 16-bit number): a table is never made to fit a
#: width by wrapping inside its cells.
_WIDEST_TABLE = 65_535


def print_frame(frame: pl.DataFrame, *, rows: int = -1, columns: int = -1) -> None:
    """Print ``frame`` as Polars draws it, every text and number whole.

    Polars fits a table to its width by wrapping cells, which split a number such as
    ``-102.45`` over two lines; here no cell is wrapped and a line wider than the terminal
    is left for the terminal to wrap (``soft_wrap``), not cut. ``rows`` / ``columns``: at
    most that many shown (-1: all).
    """
    with pl.Config(
        tbl_rows=rows, tbl_cols=columns, fmt_str_lengths=1000, tbl_width_chars=_WIDEST_TABLE
    ):
        text = str(frame)
    console.print(text, highlight=False, soft_wrap=True)


def error_line(message: str) -> Text:
    """``message`` after a bold red ``error:``, its own text never read as markup.

    >>> error_line("row 3 [txn_id_duplicate]").plain
    'error: row 3 [txn_id_duplicate]'
    """
    return Text.assemble(("error:", "bold red"), " ", message)


#: The accounts option of ``invclose close``/``check``, named where the API says ``accounts=``.
ACCOUNTS_OPTION = "pass --accounts FILE"

#: Library error texts that address a Python caller, and what the command line says instead:
#: a command-line user has no ``.failures`` DataFrame, gives ``--accounts``, not ``accounts=``,
#: and cannot call ``invclose.decimalize`` on a file.
_PYTHON_WORDING: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"; every failure is in this error's \.failures DataFrame"), ""),
    (re.compile(r" Every row is in this error's \.failures DataFrame\."), ""),
    (re.compile(r"pass accounts= with a row"), "{accounts} with a row"),
    (
        re.compile(
            r"convert explicitly with invclose\.decimalize\(df\) \(rounds half away from zero "
            r"to \d+ places\), or pass Decimal or text values"
        ),
        "store the column as a decimal or text type in the file (the command line never "
        "rounds floats; in Python, invclose.decimalize converts them)",
    ),
    (re.compile(r" \(float columns: invclose\.decimalize\)"), ""),
)


def cli_wording(message: str, *, accounts: str = ACCOUNTS_OPTION) -> str:
    """``message`` of a library error in command-line terms (options, files), not Python ones.

    ``accounts`` replaces the API's "pass accounts=" (the ledger names its own option).

    >>> cli_wording("... Fill the columns or pass accounts= with a row for these keys.")
    '... Fill the columns or pass --accounts FILE with a row for these keys.'
    """
    for pattern, replacement in _PYTHON_WORDING:
        message = pattern.sub(replacement.replace("{accounts}", accounts), message)
    return message


def findings_table(findings: pl.DataFrame, dims: Sequence[str], title: str) -> Table:
    """The rows of a pre-close check (or a log) as a table that folds, never cuts, its text.

    The ``message`` (what happened, why and how to fix it) is shown in full, however narrow
    the terminal: long cells wrap inside their column. Codes stay whole (they are what one
    searches for) and quantities lose their trailing zeros.
    """
    columns = ("level", "code", "item_id", *dims, "txn_id", "qty", "message")
    table = Table(title=title)
    for col in columns:
        if col == "code":
            table.add_column(col, no_wrap=True, min_width=widest(findings["code"], col))
        else:
            table.add_column(col, overflow="fold", justify="right" if col == "qty" else "left")
    for row in findings.iter_rows(named=True):
        table.add_row(*[cell_text(row.get(c)) for c in columns])
    return table


def widest(values: pl.Series, header: str) -> int:
    """The width a column needs to show ``values`` and its ``header`` whole (never cut).

    >>> import polars as pl
    >>> widest(pl.Series(["fifo", "weighted_average_date"]), "method")
    21
    """
    longest = values.cast(pl.String).str.len_chars().max()
    return max(len(header), longest if isinstance(longest, int) else 0)


def cell_text(value: object) -> str:
    """A table cell: empty for null, a decimal without trailing zeros (``-10``, ``2.5``).

    >>> cell_text(None), cell_text(Decimal("-10.000000")), cell_text(Decimal("2.500000"))
    ('', '-10', '2.5')
    >>> cell_text(Decimal("235.000000")), cell_text(Decimal("100.000000")), cell_text("S-1")
    ('235', '100', 'S-1')
    """
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    return str(value)


def check_failure(findings: pl.DataFrame, date: str) -> str | None:
    """The error message of a pre-close check whose list has ``error`` rows, else ``None``.

    Such a close would fail (``close`` refuses it with exit status 2), so ``check`` fails
    with it: a pipeline gating on ``check`` stops where the close would.
    """
    errors = findings.filter(findings["level"] == "error")
    if errors.is_empty():
        return None
    codes = ", ".join(sorted(set(errors["code"].to_list())))
    return (
        f"a close at {date} would fail: {errors.height} error row(s) ({codes}); "
        "fix them before closing"
    )


#: Log levels that make ``--strict`` fail (info rows never do).
STRICT_LEVELS = ("warning", "error")


def strict_exit(counts: list[tuple[str, str, int]], status: int) -> None:
    """Exit with ``status`` when ``--strict`` fails: ``counts`` (level, code, rows) of the
    log hold a warning or an error. The reason goes to standard error, so that a pipeline's
    log says why the step failed (the summary on standard output may be JSON or cut)."""
    failing = [(code, rows) for level, code, rows in counts if level in STRICT_LEVELS]
    if not failing:
        return
    listed = ", ".join(f"{code} ({rows:,})" for code, rows in failing)
    total = sum(rows for _, rows in failing)
    err_console.print(
        f"--strict: the log has {total:,} warning or error row(s): {listed}; exit {status}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    raise typer.Exit(status)


def log_counts(log: pl.DataFrame) -> list[tuple[str, str, int]]:
    """(level, code, rows) of ``log``, sorted by code."""
    return [tuple(r) for r in log.group_by("level", "code").len().sort("code", "level").rows()]  # type: ignore[misc]
