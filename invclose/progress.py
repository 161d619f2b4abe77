"""Progress of long runs: a callback of plain events, and a rich progress bar that consumes them.

Library calls report nothing unless given ``progress=``; the command line passes
:func:`progress_display` (a bar on a terminal, ``--progress lines`` for a log file). A
callback receives a :class:`ProgressEvent` after every step: the in-memory close reports its
stages over one part (or each part of a large frame), the batched close
(:mod:`invclose.batched`) the stages of every batch and a ``"batch"`` event when a batch's
tables are written, with the rows and batches done so far.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, TextIO, get_args

__all__ = [
    "PROGRESS_MODES",
    "ProgressCallback",
    "ProgressEvent",
    "line_progress",
    "progress_display",
    "rich_progress",
]

#: How the command line shows progress: ``auto`` draws a bar when standard error is a
#: terminal and nothing otherwise, ``lines`` writes one line per event (for a pipeline's
#: log), ``off`` nothing.
ProgressMode = Literal["auto", "lines", "off"]
PROGRESS_MODES: tuple[ProgressMode, ...] = get_args(ProgressMode)


@dataclass(frozen=True)
class ProgressEvent:
    """Where a run stands.

    Attributes
    ----------
    stage
        What just finished: ``"validate"``, ``"settle and cost"`` (once per part of a large
        in-memory close, :mod:`invclose.parts`), ``"assemble"``; for a batched close
        ``"plan"``, then per batch ``"settle and cost"``, ``"assemble"`` and ``"batch"`` (its
        tables written), and ``"write"``.
    rows_done, rows_total
        Input rows fully processed (their result tables made) so far, and in the whole run.
    parts_done, parts_total
        Parts (batches of whole items) processed so far, and in the whole run.
    """

    stage: str
    rows_done: int
    rows_total: int
    parts_done: int
    parts_total: int

    @property
    def fraction(self) -> float:
        """Share of the rows done, between 0 and 1 (1 for an empty run).

        >>> ProgressEvent("batch", 25, 100, 1, 4).fraction
        0.25
        """
        return 1.0 if self.rows_total <= 0 else min(1.0, self.rows_done / self.rows_total)


ProgressCallback = Callable[[ProgressEvent], None]


def report(
    progress: ProgressCallback | None,
    stage: str,
    rows_done: int,
    rows_total: int,
    parts_done: int = 0,
    parts_total: int = 1,
) -> None:
    """Send one event to ``progress`` when there is a callback."""
    if progress is not None:
        progress(ProgressEvent(stage, rows_done, rows_total, parts_done, parts_total))


@contextlib.contextmanager
def rich_progress(
    description: str = "closing", *, transient: bool = True
) -> Iterator[ProgressCallback]:
    """A rich progress bar (rows, batches, elapsed time) driven by the events it is given.

    The bar is drawn on standard error when it is a terminal; otherwise nothing is written.

    >>> with rich_progress(transient=True) as progress:       # doctest: +SKIP
    ...     invclose.close(df, "2025-01-31", progress=progress)
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    stderr = Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows  {task.fields[parts]}  {task.fields[stage]}"),
        TimeElapsedColumn(),
        console=stderr,
        transient=transient,
        # Drawn on a terminal only: to a file or pipe rich would write an empty line when
        # the bar stops, ahead of any error message (a log file gains nothing from it).
        disable=not stderr.is_terminal,
    )
    task = bar.add_task(description, total=None, parts="", stage="starting")

    def update(event: ProgressEvent) -> None:
        bar.update(
            task,
            completed=event.rows_done,
            total=max(event.rows_total, 1),
            parts=_parts_done(event),
            stage=event.stage,
        )

    with bar:
        yield update


def _parts_done(event: ProgressEvent) -> str:
    """``"1 of 4 parts"`` (done so far), empty for a run of one part."""
    return f"{event.parts_done} of {event.parts_total} parts" if event.parts_total > 1 else ""


def _line(description: str, event: ProgressEvent, seconds: float) -> str:
    """One event as a log line.

    >>> _line("closing", ProgressEvent("batch", 2500, 10000, 1, 4), 3.25)
    'invclose closing: batch, 2,500 of 10,000 rows (25%), 1 of 4 parts, 3.2 s'
    """
    parts = _parts_done(event)
    return (
        f"invclose {description}: {event.stage}, {event.rows_done:,} of {event.rows_total:,} "
        f"rows ({event.fraction:.0%}){', ' + parts if parts else ''}, {seconds:.1f} s"
    )


@contextlib.contextmanager
def line_progress(
    description: str = "closing", stream: TextIO | None = None
) -> Iterator[ProgressCallback]:
    """A callback writing one line per event to ``stream`` (standard error by default), with
    the seconds since the run started: progress a log file keeps.

    >>> import io
    >>> log = io.StringIO()
    >>> with line_progress("closing", log) as progress:
    ...     progress(ProgressEvent("validate", 0, 1000, 0, 1))
    >>> log.getvalue().startswith("invclose closing: validate, 0 of 1,000 rows (0%), ")
    True
    """
    start = time.perf_counter()

    def write(event: ProgressEvent) -> None:
        out = sys.stderr if stream is None else stream
        print(_line(description, event, time.perf_counter() - start), file=out, flush=True)

    yield write


@contextlib.contextmanager
def progress_display(
    description: str = "closing", mode: ProgressMode = "auto"
) -> Iterator[ProgressCallback | None]:
    """The command line's progress (one of :data:`PROGRESS_MODES`): a bar on a terminal
    (``auto``), one line per event (``lines``), or none (``off``: the callback is ``None``).

    >>> with progress_display("closing", "off") as progress:
    ...     progress is None
    True
    """
    if mode == "off":
        yield None
    elif mode == "lines":
        with line_progress(description) as lines:
            yield lines
    else:
        with rich_progress(description) as bar:
            yield bar
