"""Exceptions raised by invclose.

Domain problems (an issue with no receipt, negative stock) are never exceptions: they are
rows of the ``log`` table. Exceptions are for misuse and bad input, and they subclass
``ValueError`` so generic handlers still catch them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

#: How many ids (or items, groups) an error message names before it counts the rest.
MAX_NAMED = 20


def first_named(
    values: Sequence[object] | pl.Series, separator: str = ", ", total: int | None = None
) -> str:
    """The first :data:`MAX_NAMED` of ``values`` joined, and how many more there are (of
    ``total``, when ``values`` are only the first of them): the one way an error message lists
    the rows it refuses.

    >>> first_named(["T1", "T2"])
    'T1, T2'
    >>> first_named([f"T{i}" for i in range(23)]).endswith("T19 ... and 3 more")
    True
    >>> first_named(["T1", "T2"], total=1100).endswith("T2 ... and 1098 more")
    True
    """
    listed = separator.join(str(v) for v in values[:MAX_NAMED])
    shown = min(len(values), MAX_NAMED)
    more = (len(values) if total is None else total) - shown
    return f"{listed} ... and {more} more" if more > 0 else listed


class InvcloseError(ValueError):
    """Base class of every error invclose raises on purpose."""


class ConfigError(InvcloseError):
    """A setting of :class:`invclose.CloseConfig` (or a keyword of ``close``) is not valid."""


class InputValidationError(InvcloseError):
    """Input rows failed validation.

    Every failure is collected before raising; ``failures`` is a Polars DataFrame with one row
    per failure (``row``, ``txn_id``, ``column``, ``check``, ``value``, ``hint``).
    """

    def __init__(self, message: str, failures: pl.DataFrame | None = None) -> None:
        super().__init__(message)
        self.failures = failures


class InputFileNotFoundError(InputValidationError, FileNotFoundError):
    """A path, glob or directory given as input names no file to read.

    Also a ``FileNotFoundError``, so handlers written for the built-in error still catch it.
    """


class MissingAccountError(InvcloseError):
    """A transaction that must post has no inventory or offset account, even after mapping."""

    def __init__(self, message: str, failures: pl.DataFrame | None = None) -> None:
        super().__init__(message)
        self.failures = failures


class ClosedPeriodError(InvcloseError):
    """Rows were posted into, or changed inside, a period an earlier close has locked."""

    def __init__(self, message: str, failures: pl.DataFrame | None = None) -> None:
        super().__init__(message)
        self.failures = failures
