"""Errors of the period ledger.

Every one subclasses :class:`invclose.InvcloseError` (itself a ``ValueError``), so code that
handles invclose errors handles these too. A refused operation never changes the file.
"""

from __future__ import annotations

from invclose.errors import ConfigError, InvcloseError

__all__ = [
    "LedgerBusyError",
    "LedgerDateError",
    "LedgerError",
    "LedgerStateError",
    "NothingToReverseError",
    "RefusedAdjustmentError",
]


class LedgerError(InvcloseError):
    """Base class of the errors that only the period ledger raises."""


class LedgerBusyError(LedgerError):
    """Another writer holds the ledger file, or another operation is running on it."""


class LedgerDateError(LedgerError, ConfigError):
    """A date is out of order: on or before the latest closing date, or before a run in force."""


class LedgerStateError(LedgerError):
    """The operation does not fit the ledger's current state (e.g. a run that blocks it)."""


class NothingToReverseError(LedgerStateError):
    """``reverse()`` was called but no close or manual adjustment is in force."""


class RefusedAdjustmentError(LedgerError):
    """A manual value adjustment was refused (no close, not periodic, nothing open, ...)."""
