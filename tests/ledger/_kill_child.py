"""The child process of the crash-safety test.

The test starts children from a ``forkserver`` that has imported this module, so each child
begins with invclose, its lazily imported dependencies and numba's compiler already loaded
(nothing here starts a thread: no Polars or DuckDB work happens at import). A child opens the
ledger, reports ``ready``, closes January and reverses the close, reporting how long each
took; the parent kills it with SIGKILL at a random moment, or the ledger's fault hook
(``INVCLOSE_LEDGER_FAULT``) kills it at a named step.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time
from multiprocessing.connection import Connection

import numba

import invclose  # noqa: F401  (preloaded for the children)
from invclose.ledger import FAULT_ENV, Ledger

CLOSE_DATE = "2025-01-31"

# Modules the first close imports lazily (pandera's polars backend pulls in hypothesis).
for _name in (
    "hypothesis",
    "pandera.backends.polars.register",
    "pandera.backends.polars.builtin_checks",
    "pandera.strategies.base_strategies",
):
    with contextlib.suppress(ImportError):  # optional speed-up only
        importlib.import_module(_name)


@numba.njit(cache=False)
def _warm(x: int) -> int:  # initialises numba's typing and target contexts once
    return x + 1


_warm(1)


def run(path: str, fault: str | None, conn: Connection) -> None:
    """Close and reverse on ``path``; with ``fault``, die at that step."""
    if fault:
        os.environ[FAULT_ENV] = fault
    books = Ledger(path)
    conn.send(("ready", 0.0, 0.0))
    start = time.perf_counter()
    books.close(CLOSE_DATE)
    closed = time.perf_counter()
    books.reverse()
    reversed_ = time.perf_counter()
    books.disconnect()
    conn.send(("done", closed - start, reversed_ - closed))
