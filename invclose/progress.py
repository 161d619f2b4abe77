"""Progress of long runs: a callback of plain events, and a rich progress bar that consumes them.

Library calls report nothing unless given ``progress=``; the command line passes
:func:`rich_progress`. A callback receives a :class:`ProgressEvent` after every step: the
in-memory close reports its stages over one part, the batched close (:mod:`invclose.batched`)
one event per stage of every batch, with the rows and batches done so far.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["ProgressCallback", "ProgressEvent", "rich_progress"]


@dataclass(frozen=True)
class ProgressEvent:
    """Where a run stands.

    Attributes
    ----------
    stage
        What just finished: ``"validate"``, ``"settle and cost"`` (once per part of a large
        in-memory close, :mod:`invclose.parts`), ``"assemble"``; ``"plan"``, ``"batch"`` and
        ``"write"`` for a batched close.
    rows_done, rows_total
        Input rows fully processed so far, and in the whole run.
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
        parts = f"batch {event.parts_done}/{event.parts_total}" if event.parts_total > 1 else ""
        bar.update(
            task,
            completed=event.rows_done,
            total=max(event.rows_total, 1),
            parts=parts,
            stage=event.stage,
        )

    with bar:
        yield update
