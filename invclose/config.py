"""Settings of a close, checked once when they are built.

``CloseConfig`` is frozen: a close never changes its configuration, and two closes with
equal configurations and inputs produce bit-identical outputs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import polars as pl

from invclose.errors import ConfigError


class Method(StrEnum):
    """Valuation methods, named as in the contract."""

    FIFO = "fifo"
    LIFO = "lifo"
    LIFO_DATE = "lifo_date"
    WEIGHTED_AVERAGE = "weighted_average"
    WEIGHTED_AVERAGE_DATE = "weighted_average_date"
    STANDARD = "standard"
    MOVING_AVERAGE = "moving_average"


#: Methods whose close settles issues against receipts (close-semantics §3.1).
PERIODIC_METHODS = frozenset(
    {
        Method.FIFO,
        Method.LIFO,
        Method.LIFO_DATE,
        Method.WEIGHTED_AVERAGE,
        Method.WEIGHTED_AVERAGE_DATE,
    }
)

#: Methods under which include-physical-value lets physical rows into the matching (§5).
ORDINAL_METHODS = frozenset({Method.FIFO, Method.LIFO, Method.LIFO_DATE})


class VoucherDetail(StrEnum):
    """How finely voucher lines are netted (close-semantics §8)."""

    TRANSACTION = "transaction"
    ITEM = "item"
    ITEM_GROUP = "item_group"
    TOTAL = "total"


def parse_method(value: str | Method) -> Method:
    """Return the :class:`Method` named by ``value``, or raise a ``ConfigError`` listing them."""
    try:
        return Method(str(value).strip().lower())
    except ValueError:
        valid = ", ".join(m.value for m in Method)
        msg = f"unknown valuation method {value!r}; expected one of: {valid}"
        raise ConfigError(msg) from None


def parse_date(value: Any, what: str = "closing date") -> dt.date:
    """Parse a date given as ``datetime.date``, ``datetime.datetime`` at midnight (a pandas
    ``Timestamp`` is one) or ISO string.

    A datetime with a time of day is refused, as in the transactions' ``date``: a close
    locks whole days, and which of the day's rows such a date means is not clear.

    >>> import datetime as dt
    >>> parse_date(dt.datetime(2025, 1, 31))
    datetime.date(2025, 1, 31)
    >>> parse_date(dt.datetime(2025, 1, 31, 12))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    invclose.errors.ConfigError: closing date has a time of day (2025-01-31 12:00:00); ...
    """
    if isinstance(value, dt.datetime):
        # A pandas Timestamp keeps nanoseconds beyond the datetime's microseconds.
        nanoseconds: Any = getattr(value, "nanosecond", None)
        if value.time() != dt.time(0) or nanoseconds:
            msg = (
                f"{what} has a time of day ({value}); pass the day itself, e.g. "
                f"'{value.date().isoformat()}' or .date()"
            )
            raise ConfigError(msg)
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    msg = f"{what} must be a date such as '2025-01-31'; got {value!r}"
    raise ConfigError(msg)


#: Columns of the kernel's working rows, of ``compare`` and ``post_costs`` and of the ledger's
#: tables (besides the contract's): a financial dimension so named would collide with them.
KERNEL_COLUMNS = frozenset(
    {
        *("_hash_row", "adj_only_qty", "adjusted_against", "adjustment", "carried0"),
        *("carried1", "cost_delta", "day", "derived_adj", "fin", "from_opening", "frozen"),
        *("gid", "holds_transit", "i_fin", "in_scope", "incl_phys", "is_derived", "is_receipt"),
        *("is_virtual_new", "issue_pos", "participates", "pending0", "pending1", "phase"),
        "mark_unknown",
        *("pos", "q0", "q1", "q_abs", "r_fin", "rank", "real", "receipt_pos", "s_real"),
        *("unfed0", "unfed1", "unit_cost_micro", "v0", "v1", "w_abs", "walk_day", "rem"),
        *("used", "variance", "issued_qty", "cost_of_goods", "ending_qty", "ending_value"),
        # post_costs' working columns
        *("base", "default_cents", "done", "fallback_cents", "fixed", "fq", "fv", "has"),
        *("inv_q", "inv_row", "inv_v", "new_cents", "old_cents", "open_phys_q"),
        *("open_phys_v", "parts", "phys", "phys_pos", "phys_seq", "pq", "pv", "q", "rest"),
        *("std_cents", "unit", "v"),
        # the ledger's stored columns
        *("run_id", "version_hash", "posted_inventory_account", "posted_offset_account"),
    }
)


def reserved_columns() -> frozenset[str]:
    """Names a financial dimension cannot take: every column of the contract's tables (input,
    items, accounts and results) and of the kernel's working rows.

    >>> {"qty", "close_id", "pos"} <= reserved_columns()
    True
    """
    from invclose import schemas

    names = {*schemas.input_schema(()), *schemas.item_schema(), *schemas.accounts_schema()}
    for table in schemas.RESULT_TABLES:
        names.update(schemas.table_schema(table, ()))
    return frozenset(names) | KERNEL_COLUMNS


@dataclass(frozen=True)
class CloseConfig:
    """Every setting a close takes.

    Parameters
    ----------
    method
        Valuation method for items the ``items`` table does not list (default ``fifo``).
    dimensions
        Financial dimension columns: the close settles within one (item, dimensions) group.
    items
        Optional item table (``item_id``, ``method``, ``include_physical_value``,
        ``item_group``, ``standard_cost``, ``default_cost``, ``valid_from``).
    include_physical_value
        Default for items the table does not list.
    accounts
        Optional accounts mapping (``kind``, ``item_group``, ``inventory_account``,
        ``offset_account``, ``variance_account``).
    voucher_detail
        ``transaction`` (default), ``item``, ``item_group`` or ``total``.
    max_deviation
        Threshold of the pre-close ``cost_price_deviation`` check (0.25 = 25 %).

    Examples
    --------
    >>> from invclose import CloseConfig
    >>> CloseConfig(method="lifo", dimensions=["site"]).dimensions
    ('site',)
    """

    method: Method | str = Method.FIFO
    dimensions: Sequence[str] = ()
    items: pl.DataFrame | None = field(default=None, compare=False)
    include_physical_value: bool = False
    accounts: pl.DataFrame | None = field(default=None, compare=False)
    voucher_detail: VoucherDetail | str = VoucherDetail.TRANSACTION
    max_deviation: float | str = "0.25"

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", parse_method(self.method))
        dims = (self.dimensions,) if isinstance(self.dimensions, str) else self.dimensions
        dims = tuple(str(d) for d in dims)
        if len(set(dims)) != len(dims):
            msg = f"dimensions must not repeat a column: {dims}"
            raise ConfigError(msg)
        reserved = sorted(set(dims) & reserved_columns())
        if reserved:
            msg = (
                f"dimensions {reserved} are named like columns the close uses or writes; "
                "rename those columns in the transactions (e.g. add a prefix) and name them here"
            )
            raise ConfigError(msg)
        object.__setattr__(self, "dimensions", dims)
        for name in ("items", "accounts"):
            table = getattr(self, name)
            if table is not None and not isinstance(table, pl.DataFrame):
                # pandas, Arrow, a LazyFrame or a path: one Polars frame from here on (the
                # fingerprint and every step read it as one).
                from invclose.io import to_polars

                object.__setattr__(self, name, to_polars(table, name))
        try:
            detail = VoucherDetail(str(self.voucher_detail))
        except ValueError:
            valid = ", ".join(v.value for v in VoucherDetail)
            msg = f"unknown voucher_detail {self.voucher_detail!r}; expected one of: {valid}"
            raise ConfigError(msg) from None
        object.__setattr__(self, "voucher_detail", detail)
        if not isinstance(self.include_physical_value, bool):
            msg = "include_physical_value must be True or False"
            raise ConfigError(msg)

    @property
    def dims(self) -> tuple[str, ...]:
        """The financial dimension columns as a tuple."""
        return tuple(self.dimensions)

    def with_overrides(self, **kwargs: Any) -> CloseConfig:
        """Return a copy with the given settings replaced (``None`` values are ignored)."""
        changes = {k: v for k, v in kwargs.items() if v is not None}
        return dataclasses.replace(self, **changes)

    def fingerprint(self) -> str:
        """A canonical text of every setting, for content hashes such as ``close_id``."""
        parts = [
            f"method={self.method}",
            f"dimensions={','.join(self.dims)}",
            f"include_physical_value={self.include_physical_value}",
            f"voucher_detail={self.voucher_detail}",
            f"max_deviation={self.max_deviation}",
        ]
        for name, table in (("items", self.items), ("accounts", self.accounts)):
            if table is None:
                parts.append(f"{name}=none")
            else:
                ordered = table.select(sorted(table.columns))
                ordered = ordered.sort(ordered.columns, nulls_last=True)
                parts.append(f"{name}={ordered.write_csv()}")
        return "\n".join(parts)
