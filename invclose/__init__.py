"""invclose: the periodic inventory close of an ERP, over dataframes.

The whole public API is on this screen.

>>> import invclose
>>> sorted(invclose.__all__)[:3]
['CloseConfig', 'CloseResult', 'ClosedPeriodError']
"""

from __future__ import annotations

from invclose.close import check, close, compare, recalculate
from invclose.config import CloseConfig, Method, VoucherDetail
from invclose.costing import post_costs
from invclose.errors import (
    ClosedPeriodError,
    ConfigError,
    InputValidationError,
    InvcloseError,
    MissingAccountError,
)
from invclose.io import decimalize, read_transactions
from invclose.ledger import Ledger, LedgerBusyError, LedgerError
from invclose.result import CloseResult, read_result

__version__ = "0.1.0"

__all__ = [
    "CloseConfig",
    "CloseResult",
    "ClosedPeriodError",
    "ConfigError",
    "InputValidationError",
    "InvcloseError",
    "Ledger",
    "LedgerBusyError",
    "LedgerError",
    "Method",
    "MissingAccountError",
    "VoucherDetail",
    "__version__",
    "check",
    "close",
    "compare",
    "decimalize",
    "post_costs",
    "read_result",
    "read_transactions",
    "recalculate",
]
