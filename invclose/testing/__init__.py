"""Public test helpers, in the spirit of ``polars.testing``.

* :func:`reference_close`: a slow, obviously correct close (every method: fifo, lifo,
  lifo_date, the weighted averages, standard and moving average) written row by row from
  ``docs/close-rules.md``; the oracle of the property tests.
* :func:`assert_frames_equal_exact`: order-insensitive, exact table comparison.
* ``invclose.testing.strategies``: hypothesis strategies for contract transaction frames
  (needs ``hypothesis``; its names are also reachable here, imported on first use).
"""

from __future__ import annotations

from typing import Any

from invclose.testing.asserts import assert_frames_equal_exact
from invclose.testing.reference import (
    REFERENCE_METHODS,
    OpenEntry,
    ReferenceResult,
    ReferenceState,
    reference_close,
)

_STRATEGY_NAMES = (
    "close_inputs",
    "dimension_columns",
    "item_tables",
    "transactions",
    "two_close_inputs",
)

__all__ = [
    "REFERENCE_METHODS",
    "OpenEntry",
    "ReferenceResult",
    "ReferenceState",
    "assert_frames_equal_exact",
    "reference_close",
    *_STRATEGY_NAMES,
]


def __getattr__(name: str) -> Any:
    # The strategies need hypothesis, a test-only dependency: import them on first use.
    if name in _STRATEGY_NAMES:
        from invclose.testing import strategies

        return getattr(strategies, name)
    msg = f"module 'invclose.testing' has no attribute {name!r}"
    raise AttributeError(msg)
