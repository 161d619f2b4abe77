"""The period ledger: ``invclose.Ledger`` on one embedded DuckDB file (contract §5).

>>> from invclose.ledger import Ledger                          # doctest: +SKIP
>>> books = Ledger("books.duckdb", config=invclose.CloseConfig())  # doctest: +SKIP

Modules: :mod:`~invclose.ledger.books` (the ``Ledger`` class and its verbs),
:mod:`~invclose.ledger.core` (runs, the stack of states, reversal),
:mod:`~invclose.ledger.reads` (history, results, GL, reconciliation, verify),
:mod:`~invclose.ledger.store` (schema, connection and lock, transactions, table IO),
:mod:`~invclose.ledger.postings` (posting validation and vouchers),
:mod:`~invclose.ledger.manual` (manual value adjustments), :mod:`~invclose.ledger.audit`
(hash chain, checks, certificate), :mod:`~invclose.ledger.digests` (row hashes and sorted
digests), :mod:`~invclose.ledger.cli` (``invclose ledger ...``) and
:mod:`~invclose.ledger.errors`.
"""

from __future__ import annotations

from invclose.ledger.books import Ledger
from invclose.ledger.errors import (
    LedgerBusyError,
    LedgerDateError,
    LedgerError,
    LedgerStateError,
    NothingToReverseError,
    RefusedAdjustmentError,
)
from invclose.ledger.store import FAULT_ENV

__all__ = [
    "FAULT_ENV",
    "Ledger",
    "LedgerBusyError",
    "LedgerDateError",
    "LedgerError",
    "LedgerStateError",
    "NothingToReverseError",
    "RefusedAdjustmentError",
]
