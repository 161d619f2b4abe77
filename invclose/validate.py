"""Validation at the boundary: any supported input becomes the canonical frame, or one error.

Every public entry point passes its input through here before anything is computed, and
nothing downstream validates again (architecture: validate at the boundaries, never inside the
kernel).

How it works, for :func:`normalize_transactions`:

1. **Coerce** each known column to its canonical dtype (:mod:`invclose.schemas`), exactly:
   strings are parsed (numbers by their digits, never through floats; dates as ISO
   ``YYYY-MM-DD``), decimals with more places than allowed are detected by comparing the cast
   with the original, binary floats are refused. A value that cannot be coerced becomes null
   and is reported once.
2. **Row checks** on the coerced frame run as a pandera ``DataFrameSchema`` validated with
   ``lazy=True``, so every failing row is collected.
3. **Cross-row checks** (duplicate ``txn_id`` and the invoice pair, ``marked_to``) are Polars
   window expressions and joins.

All failures are gathered into one Polars frame (``row``, ``txn_id``, ``column``, ``check``,
``value``, ``hint``), keeping the first failure of each (row, column) cell, and raised as a
single :class:`~invclose.errors.InputValidationError`. Row numbers count input rows from 0.

Check names (the ``check`` column of ``failures``):

============================  ==================================================================
``column_missing``            a required column, or a configured dimension column, is absent
``float_type``                ``qty`` / ``amount`` / ``cost_share`` is a binary-float column
``dtype``                     a column has a dtype that cannot hold its values exactly
``not_a_date``                a date that is not ISO ``YYYY-MM-DD`` (or has a time of day)
``not_a_number``              a number written as text that is not a plain decimal, or a
                              ``Decimal`` Infinity / NaN in a pandas column
``not_an_integer``            ``seq`` that is not a whole number
``not_a_boolean``             ``include_physical_value`` that is not true / false
``too_many_decimals``         more than 6 places (qty, cost_share) or 2 (amount, costs)
``out_of_range``              does not fit ``Decimal(38, scale)`` / ``Int64``
``too_large``                 ``qty`` / ``amount`` of a group (item and financial dimensions)
                              whose absolute values sum to more than 2**62 micro-units / cents
``txn_id_missing``            null or blank ``txn_id``
``txn_id_reserved``           ``txn_id`` starting with ``~`` (reserved for virtual rows)
``txn_id_duplicate``          repeated ``txn_id`` that is not an invoice pair
``invoice_sign``              an invoice pair whose two rows have opposite ``qty`` signs
``invoice_before_physical``   an invoice dated before the physical row it replaces (in the
                              input or the ledger)
``invoice_exceeds_physical``  an invoice with more ``qty`` (in absolute value) than its
                              physical row (in the input, the opening or the ledger)
``item_id_missing``           null or blank ``item_id``
``date_missing``              null ``date``
``qty_missing``               null ``qty``
``qty_zero``                  ``qty`` 0 on a row whose ``kind`` is not ``revaluation``
``revaluation_qty``           a ``revaluation`` row with ``qty`` other than 0
``amount_missing``            null ``amount`` where amounts are required
``amount_sign``               ``amount`` with the opposite sign of ``qty``
``cost_share_negative``       a negative ``cost_share``
``status_invalid``            ``status`` other than ``financial`` / ``physical``
``seq_missing``               null ``seq`` in a given ``seq`` column
``marked_to_on_receipt``      ``marked_to`` on a row that is not an issue
``marked_to_unknown``         ``marked_to`` names no row of the input nor of ``known``
``marked_to_other_group``     ``marked_to`` names a row of another item or dimension values
``marked_to_not_receipt``     ``marked_to`` names an issue (or a ``qty`` 0 row)
``order_kind_mixed``          rows of one order, some of kind ``transfer`` and some not
``transfer_other_item``       a transfer order whose rows name more than one item
``method_unknown``            item table: a valuation method invclose does not know
``item_duplicate``            item table: two rows for one item and ``valid_from``
``item_inconsistent``         item table: rows of one item differ in more than the dated cost
``negative_cost``             item table: a negative standard or default cost
``accounts_duplicate``        accounts mapping: two rows for one (``kind``, ``item_group``)
============================  ==================================================================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

import pandera.polars as pa
import polars as pl
from pandera.config import ValidationDepth, config_context
from pandera.errors import SchemaErrors

from invclose.config import Method, parse_date
from invclose.errors import ClosedPeriodError, ConfigError, InputValidationError, first_named
from invclose.io import is_paths, name_files, read_raw_files, to_polars
from invclose.schemas import (
    FINANCIAL,
    PHYSICAL,
    STATUSES,
    VIRTUAL_PREFIX,
    accounts_schema,
    input_schema,
    item_schema,
    joins_order,
    required_input,
)

__all__ = [
    "FAILURE_COLUMNS",
    "normalize_accounts",
    "normalize_items",
    "normalize_transactions",
    "parse_closing_date",
]

#: Rows shown in an error message; the rest are counted ("... and N more").
MAX_SHOWN = 20
REVALUATION = "revaluation"

_ROW = "__invclose_row"
_KEY = "__invclose_key"

#: Columns of ``InputValidationError.failures`` for transactions (items use ``item_id`` and
#: the accounts mapping ``key`` in place of ``txn_id``).
FAILURE_COLUMNS: dict[str, pl.DataType] = {
    "row": pl.Int64(),
    "txn_id": pl.String(),
    "column": pl.String(),
    "check": pl.String(),
    "value": pl.String(),
    "hint": pl.String(),
}

# Text columns where a blank string means "not given".
_BLANK_IS_NULL = frozenset(
    {
        "txn_id",
        "item_id",
        "status",
        "marked_to",
        "order_id",
        "kind",
        "inventory_account",
        "offset_account",
        "method",
        "item_group",
        "variance_account",
    }
)
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


def parse_closing_date(value: object) -> dt.date:
    """Parse the closing date of a close: a ``date``, a ``datetime`` or an ISO string.

    Raises
    ------
    ConfigError
        If ``value`` is not a date.

    Examples
    --------
    >>> from invclose.validate import parse_closing_date
    >>> parse_closing_date("2025-01-31")
    datetime.date(2025, 1, 31)
    """
    return parse_date(value, "closing date")


# --------------------------------------------------------------------------- coercion


@dataclass
class _RowCheck:
    """A vectorised per-row failure: rows where ``mask`` is true fail ``check``."""

    mask: pl.Expr
    check: str
    hint: str


@dataclass
class _Coerced:
    expr: pl.Expr
    row_checks: list[_RowCheck] = field(default_factory=list)
    column_failure: tuple[str, str, str] | None = None  # (check, value, hint)


def _article(word: str) -> str:
    """The indefinite article before ``word`` as spelled (by its first letter).

    >>> _article("amount"), _article("inventory_account"), _article("qty")
    ('an', 'an', 'a')
    """
    return "an" if word[:1].lower() in "aeiou" else "a"


def _describe(target: pl.DataType) -> str:
    if isinstance(target, pl.Decimal):
        return f"an exact decimal with at most {target.scale} places"
    if target == pl.Date:
        return "a date"
    if target == pl.Int64:
        return "a whole number (int64)"
    if target == pl.Boolean:
        return "true or false"
    return "text"


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.str.strip_chars() == "").then(None).otherwise(expr)


def _clean(name: str) -> str:
    """Name of the stage-1 column holding text column ``name`` cleaned (see ``_cleaned``)."""
    return f"__invclose_in_{name}"


def _cleaned(name: str, target: pl.DataType) -> pl.Expr:
    """Stage 1 for a text column: values to parse are stripped, blanks become null."""
    col = pl.col(name)
    if target != pl.String:
        return _blank_to_null(col.str.strip_chars())
    return _blank_to_null(col) if name in _BLANK_IS_NULL else col


def _coerce(name: str, dtype: pl.DataType, target: pl.DataType) -> _Coerced:
    """How to turn input column ``name`` of ``dtype`` into ``target``, and what can fail."""
    col = pl.col(name)
    present = col.is_not_null()
    wrong_dtype = (
        "dtype",
        str(dtype),
        f"{name!r} must be {_describe(target)}; got a column of dtype {dtype}: "
        "convert it before passing it in",
    )
    if dtype == pl.Null:
        return _Coerced(pl.lit(None, dtype=target))
    if target == pl.String:
        if dtype == pl.String:
            return _Coerced(pl.col(_clean(name)))
        if isinstance(dtype, pl.Categorical | pl.Enum) or dtype.is_integer():
            text = col.cast(pl.String)
            return _Coerced(_blank_to_null(text) if name in _BLANK_IS_NULL else text)
        return _Coerced(pl.lit(None, dtype=target), column_failure=wrong_dtype)
    if target == pl.Date:
        return _coerce_date(name, dtype, wrong_dtype)
    if isinstance(target, pl.Decimal):
        return _coerce_decimal(name, dtype, target, wrong_dtype)
    if target == pl.Int64:
        return _coerce_int(name, dtype, wrong_dtype)
    if target == pl.Boolean:
        if dtype == pl.Boolean:
            return _Coerced(col)
        hint = f"{name!r} must be true or false"
        if dtype == pl.String:
            text = pl.col(_clean(name)).str.to_lowercase()
            value = pl.when(text.is_in(_TRUE)).then(True).when(text.is_in(_FALSE)).then(False)
            bad = text.is_not_null() & value.is_null()
            return _Coerced(value, [_RowCheck(bad, "not_a_boolean", hint)])
        if dtype.is_integer():
            value = pl.when(col == 1).then(True).when(col == 0).then(False)
            return _Coerced(value, [_RowCheck(present & value.is_null(), "not_a_boolean", hint)])
        return _Coerced(pl.lit(None, dtype=target), column_failure=wrong_dtype)
    msg = f"internal: no coercion to {target}"  # pragma: no cover
    raise AssertionError(msg)  # pragma: no cover


def _coerce_date(name: str, dtype: pl.DataType, wrong: tuple[str, str, str]) -> _Coerced:
    col = pl.col(name)
    if dtype == pl.Date:
        return _Coerced(col)
    if isinstance(dtype, pl.Datetime):
        has_time = col.is_not_null() & (col.dt.truncate("1d") != col)
        hint = f"{name!r} has a time of day; pass plain dates (e.g. convert with .dt.date())"
        return _Coerced(
            pl.when(has_time).then(None).otherwise(col.dt.date()),
            [_RowCheck(has_time, "not_a_date", hint)],
        )
    if dtype == pl.String:
        text = pl.col(_clean(name))
        iso = text.str.contains(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
        parsed = pl.when(iso).then(text.str.to_date("%Y-%m-%d", strict=False))
        bad = text.is_not_null() & ~iso
        no_such_day = iso & parsed.is_null()
        hint = f"write {name!r} as an ISO date 'YYYY-MM-DD' (e.g. '2025-01-31')"
        day_hint = (
            f"{name!r} names no day of the calendar (YYYY-MM-DD: check the month and the day)"
        )
        return _Coerced(
            parsed,
            [_RowCheck(bad, "not_a_date", hint), _RowCheck(no_such_day, "not_a_date", day_hint)],
        )
    return _Coerced(pl.lit(None, dtype=pl.Date), column_failure=wrong)


def _coerce_decimal(
    name: str, dtype: pl.DataType, target: pl.Decimal, wrong: tuple[str, str, str]
) -> _Coerced:
    col = pl.col(name)
    scale = target.scale
    present = col.is_not_null()
    places = f"{name!r} allows at most {scale} decimal places"
    too_many = (
        f"{places}; values are never rounded silently: round them at the source "
        "(float columns: invclose.decimalize)"
    )
    out_of_range = f"{name!r} does not fit Decimal(38, {scale})"
    if dtype.is_float():
        hint = (
            f"{name!r} holds binary floats, which cannot represent money and quantities exactly; "
            f"convert explicitly with invclose.decimalize(df) (rounds half away from zero to "
            f"{scale} places), or pass Decimal or text values"
        )
        return _Coerced(pl.lit(None, dtype=target), column_failure=("float_type", str(dtype), hint))
    if isinstance(dtype, pl.Decimal) or dtype.is_integer():
        cast = col.cast(target, strict=False)
        overflow = present & cast.is_null()
        checks = [_RowCheck(overflow, "out_of_range", out_of_range)]
        if isinstance(dtype, pl.Decimal) and (dtype.scale or 0) > scale:
            inexact = present & cast.is_not_null() & (cast != col)
            checks.append(_RowCheck(inexact, "too_many_decimals", too_many))
            cast = pl.when(inexact).then(None).otherwise(cast)
        return _Coerced(cast, checks)
    if dtype == pl.String:
        text = pl.col(_clean(name))
        # ASCII digits only: \d also matches the digits of other scripts ('١٠', '１０').
        plain = text.str.contains(r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)$")
        fraction = text.str.extract(r"\.([0-9]*)$", 1)
        decimals = fraction.str.strip_chars_end("0").str.len_chars().fill_null(0)
        fits_scale = plain & (decimals <= scale)
        cast = pl.when(fits_scale).then(text.cast(target, strict=False))
        not_number = (
            f"write {name!r} as a plain decimal number with '.' as the decimal point and no "
            "thousands separator, currency sign or exponent (e.g. '-12.50')"
        )
        return _Coerced(
            cast,
            [
                _RowCheck(text.is_not_null() & ~plain, "not_a_number", not_number),
                _RowCheck(plain & (decimals > scale), "too_many_decimals", too_many),
                _RowCheck(fits_scale & cast.is_null(), "out_of_range", out_of_range),
            ],
        )
    return _Coerced(pl.lit(None, dtype=target), column_failure=wrong)


def _coerce_int(name: str, dtype: pl.DataType, wrong: tuple[str, str, str]) -> _Coerced:
    col = pl.col(name)
    present = col.is_not_null()
    whole = f"{name!r} must be a whole number"
    out_of_range = f"{name!r} does not fit a 64-bit integer"
    if dtype.is_integer():
        cast = col.cast(pl.Int64, strict=False)
        return _Coerced(cast, [_RowCheck(present & cast.is_null(), "out_of_range", out_of_range)])
    if dtype == pl.String:
        text = pl.col(_clean(name))
        integral = text.str.contains(r"^[+-]?[0-9]+$")
        cast = pl.when(integral).then(text.cast(pl.Int64, strict=False))
        return _Coerced(
            cast,
            [
                _RowCheck(text.is_not_null() & ~integral, "not_an_integer", whole),
                _RowCheck(integral & cast.is_null(), "out_of_range", out_of_range),
            ],
        )
    if dtype.is_float() or isinstance(dtype, pl.Decimal):
        cast = col.cast(pl.Int64, strict=False)
        exact = cast.cast(dtype, strict=False) == col
        bad = present & (cast.is_null() | ~exact.fill_null(False))
        return _Coerced(
            pl.when(bad).then(None).otherwise(cast), [_RowCheck(bad, "not_an_integer", whole)]
        )
    return _Coerced(pl.lit(None, dtype=pl.Int64), column_failure=wrong)


@dataclass
class _Prepared:
    """The coerced frame (helper columns ``_ROW`` and ``_KEY`` first) and the failures so far."""

    frame: pl.DataFrame
    failures: list[pl.LazyFrame]
    failed_columns: set[str]
    #: "; the table has columns that are not read: ... (a misspelling?)", or "" when none.
    unread_note: str = ""


def _empty_failures(key: str) -> pl.DataFrame:
    schema = dict(FAILURE_COLUMNS)
    return pl.DataFrame(schema={(key if c == "txn_id" else c): t for c, t in schema.items()})


def _column_failure(
    key: str, column: str, check: str, value: str | None, hint: str
) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "row": [None],
            key: [None],
            "column": [column],
            "check": [check],
            "value": [value],
            "hint": [hint],
        },
        schema={(key if c == "txn_id" else c): t for c, t in FAILURE_COLUMNS.items()},
    )


def _row_failures(
    base: pl.LazyFrame,
    key: str,
    mask: pl.Expr,
    column: str,
    check: str,
    value: pl.Expr,
    hint: str | pl.Expr,
) -> pl.LazyFrame:
    """Rows of ``base`` (with ``_ROW`` and ``_KEY``) where ``mask`` holds, as failures."""
    return base.filter(mask.fill_null(False)).select(
        pl.col(_ROW).cast(pl.Int64).alias("row"),
        pl.col(_KEY).cast(pl.String).alias(key),
        pl.lit(column, dtype=pl.String).alias("column"),
        pl.lit(check, dtype=pl.String).alias("check"),
        value.cast(pl.String).alias("value"),
        (hint if isinstance(hint, pl.Expr) else pl.lit(hint, dtype=pl.String)).alias("hint"),
    )


def readable_dates(dates: pl.Series) -> pl.Series:
    """``dates`` as Dates where they can be read (ISO text, dates, datetimes), else null.

    For naming rows of input that failed validation by their dates (a refusal of rows in a
    closed period joins the validation failures instead of waiting for their correction).

    >>> import polars as pl
    >>> readable_dates(pl.Series([" 2025-01-20", "20/01/2025", None])).to_list()
    [datetime.date(2025, 1, 20), None, None]
    """
    if dates.dtype == pl.Date:
        return dates
    if isinstance(dates.dtype, pl.Datetime):
        return dates.dt.date()
    if dates.dtype == pl.String:
        return dates.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    return pl.repeat(None, dates.len(), dtype=pl.Date, eager=True)


def dated_rows(raw: pl.DataFrame) -> pl.DataFrame | None:
    """``txn_id`` and ``date`` (:func:`readable_dates`) of input that failed validation, the
    rows whose dates can be read; ``None`` when it has no such columns."""
    if not {"txn_id", "date"} <= set(raw.columns):
        return None
    return raw.select(
        txn_id=pl.col("txn_id").cast(pl.String, strict=False),
        date=readable_dates(raw["date"]),
    ).filter(pl.col("date").is_not_null())


def with_closed_period(error: InputValidationError, closed: ClosedPeriodError) -> ClosedPeriodError:
    """One error naming the rows refused in a closed period (``closed``) and the validation
    failures (``error``) of the same input, so that one correction of it suffices."""
    found = [e.failures for e in (error, closed) if e.failures is not None]
    failures = pl.concat(found, how="diagonal_relaxed") if found else None
    return ClosedPeriodError(f"{closed}\n{error}", failures)


def id_failures(
    frame: pl.DataFrame, column: str, check: str, value: pl.Expr, hint: str | pl.Expr
) -> pl.DataFrame:
    """Failures (``FAILURE_COLUMNS``) for the rows of ``frame``, named by ``txn_id`` only.

    For checks after validation, where input row numbers are gone (``row`` is null).
    """
    return frame.select(
        pl.lit(None, pl.Int64).alias("row"),
        "txn_id",
        pl.lit(column).alias("column"),
        pl.lit(check).alias("check"),
        value.cast(pl.String).alias("value"),
        (hint if isinstance(hint, pl.Expr) else pl.lit(hint)).alias("hint"),
    )


def _prepare(
    raw: pl.DataFrame,
    schema: dict[str, pl.DataType],
    *,
    key: str,
    key_of: Callable[[dict[str, pl.Expr]], pl.Expr],
    required: Sequence[str],
    missing_hints: dict[str, str],
    defaults: dict[str, pl.Expr],
) -> _Prepared:
    """Coerce ``raw`` to ``schema``; collect missing columns and coercion failures.

    ``key_of`` builds the row key shown in failures (e.g. the ``txn_id``) from the coerced
    column expressions; ``key`` names that column of the failures frame. Text columns are
    cleaned in a first pass, then every value and every failure mask is computed in one
    second pass, so no parsing step runs twice.
    """
    failures: list[pl.LazyFrame] = []
    failed: set[str] = set()
    exprs: dict[str, pl.Expr] = {}
    pending: list[tuple[str, _RowCheck]] = []
    cleaned: list[pl.Expr] = []
    # Columns nothing here reads: named beside a missing required column, they are likely
    # the same column misspelt (an accounts file with "inv" for "inventory_account").
    unread = [c for c in raw.columns if c not in schema]
    unread_note = (
        "; the table has columns that are not read: "
        + ", ".join(repr(c) for c in unread[:10])
        + (" ..." if len(unread) > 10 else "")
        + " (a misspelling?)"
        if unread
        else ""
    )
    for name, target in schema.items():
        if name not in raw.columns:
            if name in required:
                failed.add(name)
                hint = missing_hints.get(name) or (
                    f"add {_article(name)} {name!r} column ({_describe(target)}); it is required"
                )
                failures.append(
                    _column_failure(key, name, "column_missing", None, hint + unread_note)
                )
            exprs[name] = defaults.get(name, pl.lit(None)).cast(target).alias(name)
            continue
        dtype = raw.schema[name]
        if dtype == pl.String:
            cleaned.append(_cleaned(name, target).alias(_clean(name)))
        coerced = _coerce(name, dtype, target)
        if coerced.column_failure is not None:
            check, value, hint = coerced.column_failure
            failed.add(name)
            failures.append(_column_failure(key, name, check, value, hint))
        exprs[name] = coerced.expr.cast(target).alias(name)
        pending.extend((name, rc) for rc in coerced.row_checks)
    masks = [
        rc.mask.fill_null(False).alias(f"__invclose_mask{i}") for i, (_, rc) in enumerate(pending)
    ]
    computed = (
        raw.lazy()
        .with_row_index(_ROW)
        .with_columns(cleaned)
        .select(
            pl.col(_ROW),
            key_of(exprs).cast(pl.String).alias(_KEY),
            *exprs.values(),
            *masks,
        )
        .collect()
    )
    for i, (name, rc) in enumerate(pending):
        mask = computed[f"__invclose_mask{i}"]
        if not mask.any():
            continue
        failing = computed.filter(mask).select(_ROW, _KEY)
        failures.append(
            failing.with_columns(raw[name].filter(mask).cast(pl.String).alias("__value"))
            .lazy()
            .pipe(_row_failures, key, pl.lit(True), name, rc.check, pl.col("__value"), rc.hint)
        )
    frame = computed.select(pl.col(_ROW), pl.col(_KEY), *schema)
    return _Prepared(frame, failures, failed, unread_note)


# --------------------------------------------------------------------------- pandera checks


def _check(name: str, expr: pl.Expr) -> pa.Check:
    """A pandera check that passes where ``expr`` (null counts as a pass) is true."""

    def fn(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(expr.fill_null(True).alias(data.key))

    check = pa.Check(fn, name=name, ignore_na=False)
    # Keep the expression on the check, so valid input is confirmed in one pass.
    setattr(check, _EXPR_ATTRIBUTE, expr.fill_null(True))
    return check


_EXPR_ATTRIBUTE = "_invclose_expression"


def _all_checks_pass(frame: pl.DataFrame, schema: pa.DataFrameSchema) -> bool:
    """One vectorised pass over every check: pandera only runs when something fails.

    pandera then collects every failure case for the report; on valid input (the nightly
    case) its per-check overhead is skipped.
    """
    exprs = [
        getattr(check, _EXPR_ATTRIBUTE)
        for column in schema.columns.values()
        for check in column.checks
        if hasattr(check, _EXPR_ATTRIBUTE)
    ]
    known = sum(len(column.checks) for column in schema.columns.values())
    if not exprs or len(exprs) != known:
        return False
    return bool(frame.select(pl.all_horizontal(exprs).all()).item())


def _not_null(name: str, column: str) -> pa.Check:
    return _check(name, pl.col(column).is_not_null())


def _run_pandera(
    frame: pl.DataFrame, schema: pa.DataFrameSchema, key: str, hints: dict[str, str]
) -> pl.LazyFrame:
    """Validate ``frame`` lazily; its failure cases as failure rows."""
    if _all_checks_pass(frame, schema):
        return _empty_failures(key).lazy()
    try:
        # Validation must not be switched off by PANDERA_* environment settings.
        with config_context(
            validation_enabled=True, validation_depth=ValidationDepth.SCHEMA_AND_DATA
        ):
            schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = pl.DataFrame(exc.failure_cases)
    else:
        return _empty_failures(key).lazy()
    keys = frame.select(pl.col(_ROW).cast(pl.Int64).alias("row"), pl.col(_KEY).alias(key))
    return (
        cases.lazy()
        .select(
            pl.col("index").cast(pl.Int64).alias("row"),
            pl.col("column").cast(pl.String),
            pl.col("check").cast(pl.String),
            pl.col("failure_case").cast(pl.String).alias("value"),
        )
        .join(keys.lazy(), on="row", how="left")
        .select(
            "row",
            key,
            "column",
            "check",
            "value",
            pl.col("check")
            .replace_strict(hints, default=None, return_dtype=pl.String)
            .alias("hint"),
        )
    )


# --------------------------------------------------------------------------- failures


def _finish_failures(
    parts: list[pl.LazyFrame], failed_columns: set[str], key: str, columns: Sequence[str]
) -> pl.DataFrame:
    """One frame of failures: first failure per (row, column) cell, sorted by row."""
    template = _empty_failures(key)
    if not parts:
        return template
    failures = pl.concat([template.lazy(), *parts], how="vertical_relaxed")
    order = {c: i for i, c in enumerate(columns)}
    return (
        failures.filter(pl.col("row").is_null() | ~pl.col("column").is_in(sorted(failed_columns)))
        .unique(subset=["row", "column"], keep="first", maintain_order=True)
        .with_columns(
            pl.col("column")
            .replace_strict(order, default=len(order), return_dtype=pl.Int64)
            .alias("__order")
        )
        .sort(["row", "__order"], nulls_last=False, maintain_order=True)
        .drop("__order")
        .collect()
    )


def _raise(failures: pl.DataFrame, what: str, key: str) -> NoReturn:
    raise InputValidationError(failure_message(failures, what, key), failures)


def failure_message(
    failures: pl.DataFrame,
    what: str,
    key: str,
    numbering: str = "row numbers count input rows from 0",
) -> str:
    """The text of an :class:`InputValidationError` listing ``failures`` (at most
    :data:`MAX_SHOWN`): each with its row number and ``key`` value when it has a row, its
    ``key`` value alone when only that is known (``row`` null), else its column."""
    n = failures.height
    numbered = failures.filter(pl.col("row").is_not_null())["row"].n_unique()
    named = failures.filter(pl.col("row").is_null() & pl.col(key).is_not_null())[key].n_unique()
    rows = numbered + named
    lines = []
    for f in failures.head(MAX_SHOWN).iter_rows(named=True):
        if f["check"] == "column_missing":
            found = "no such column"
        else:
            found = "found " + ("null" if f["value"] is None else repr(f["value"]))
        ident = "null" if f[key] is None else repr(f[key])
        if f["row"] is not None and f.get("file") is not None:
            where = (
                f"row {f['row']} ({key} {ident}; {f['file']} row {f['file_row']}), "
                f"column {f['column']!r}"
            )
        elif f["row"] is not None:
            where = f"row {f['row']} ({key} {ident}), column {f['column']!r}"
        elif f[key] is not None and f.get("file") is not None:
            where = f"{key} {ident} ({f['file']} row {f['file_row']}), column {f['column']!r}"
        elif f[key] is not None:
            where = f"{key} {ident}, column {f['column']!r}"
        else:
            where = f"column {f['column']!r}"
        hint = f" Fix: {f['hint']}." if f["hint"] else ""
        lines.append(f"  - {where} [{f['check']}]: {found}.{hint}")
    if n > MAX_SHOWN:
        lines.append(f"  ... and {n - MAX_SHOWN} more")
    problems = "problem" if n == 1 else "problems"
    in_rows = f" in {rows} row{'s' if rows != 1 else ''}" if rows else ""
    return (
        f"invalid {what}: {n} {problems}{in_rows} ({numbering}; "
        f"every failure is in this error's .failures DataFrame):\n" + "\n".join(lines)
    )


# --------------------------------------------------------------------------- transactions

_TXN_HINTS = {
    "txn_id_missing": "every row needs a non-empty txn_id",
    "txn_id_reserved": (
        f"txn_id values starting with {VIRTUAL_PREFIX!r} are reserved for invclose's virtual "
        "rows; rename the transaction"
    ),
    "item_id_missing": "every row needs an item_id",
    "date_missing": "every row needs a date (financial date; physical date for physical rows)",
    "qty_missing": "every row needs a qty (> 0 receipt, < 0 issue)",
    "qty_zero": (
        "qty must not be 0 (> 0 receipt, < 0 issue); only kind='revaluation' rows have qty 0: "
        "drop the row or correct its qty or kind"
    ),
    "revaluation_qty": "a kind='revaluation' row changes value only: its qty must be 0",
    "amount_missing": (
        "close() needs the posted amount on every row; fill it, or compute posted amounts "
        "with invclose.post_costs()"
    ),
    "amount_sign": (
        "amount must have the sign of qty, or be 0 (receipts carry positive value, issues negative)"
    ),
    "cost_share_negative": (
        "cost_share weighs a production output's part of its order's cost: 0 or more (all 0 "
        "or empty in an order means shares by posted amounts, else quantities)"
    ),
    "status_invalid": f"status must be one of {', '.join(STATUSES)} (empty means {FINANCIAL})",
    "seq_missing": (
        "a given seq column needs a value on every row, in every file read (a file without "
        "the column leaves its rows without one); or drop the column everywhere to post in "
        "row order"
    ),
}
_DUPLICATE_HINT = (
    "txn_id must be unique; the only repeat allowed is an invoice: exactly two rows with the "
    "same txn_id, item and dimensions, one 'physical' and one 'financial' (which replaces it)"
)
_INVOICE_SIGN_HINT = "an invoice must have the qty sign of the physical row it replaces"
INVOICE_EXCEEDS_HINT = (
    "an invoice carries at most the quantity of the physical row it replaces (a partial "
    "invoice carries the invoiced quantity and the rest stays physical as a new row); post "
    "the quantity beyond it as a row of its own"
)
INVOICE_BEFORE_HINT = (
    "an invoice is dated on or after the physical row it replaces (the goods are received or "
    "shipped before they are invoiced): correct the date of one of the two rows"
)
_MARK_HINTS = {
    "marked_to_on_receipt": "only issues (qty < 0) may be marked; clear marked_to on this row",
    "marked_to_unknown": (
        "marked_to must be the txn_id of a receipt in this input or open from the opening close"
    ),
    "marked_to_other_group": (
        "the marked receipt belongs to another item or other dimension values; marking never "
        "crosses an (item, dimensions) group"
    ),
    "marked_to_not_receipt": "marked_to must name a receipt (qty > 0), not an issue",
}


def _transaction_schema(
    schema: dict[str, pl.DataType], *, require_amount: bool
) -> pa.DataFrameSchema:
    qty, amount, kind = pl.col("qty"), pl.col("amount"), pl.col("kind")
    is_revaluation = (kind == REVALUATION).fill_null(False)
    checks: dict[str, list[pa.Check]] = {
        "txn_id": [
            _not_null("txn_id_missing", "txn_id"),
            _check("txn_id_reserved", ~pl.col("txn_id").str.starts_with(VIRTUAL_PREFIX)),
        ],
        "item_id": [_not_null("item_id_missing", "item_id")],
        "date": [_not_null("date_missing", "date")],
        "qty": [
            _not_null("qty_missing", "qty"),
            _check("qty_zero", (qty != 0) | is_revaluation),
            _check("revaluation_qty", ~is_revaluation | (qty == 0)),
        ],
        "amount": [
            *([_not_null("amount_missing", "amount")] if require_amount else []),
            _check("amount_sign", ~(((qty > 0) & (amount < 0)) | ((qty < 0) & (amount > 0)))),
        ],
        "cost_share": [_check("cost_share_negative", pl.col("cost_share") >= 0)],
        "status": [_check("status_invalid", pl.col("status").is_in(list(STATUSES)))],
        "seq": [_not_null("seq_missing", "seq")],
    }
    return pa.DataFrameSchema(
        {
            name: pa.Column(dtype, nullable=True, checks=checks.get(name, []))
            for name, dtype in schema.items()
        },
        strict=False,
        name="transactions",
    )


def _known_rows(known: pl.DataFrame | pl.LazyFrame, dims: Sequence[str]) -> pl.DataFrame:
    frame = known.collect() if isinstance(known, pl.LazyFrame) else known
    needed = ["txn_id", "item_id", *dims, "qty"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        msg = f"internal: the known rows lack the columns {missing}"
        raise ConfigError(msg)
    closed = pl.col("known_closed") if "known_closed" in frame.columns else pl.lit(False)
    return frame.select(
        pl.col("txn_id").cast(pl.String),
        pl.col("item_id").cast(pl.String),
        *[pl.col(d).cast(pl.String) for d in dims],
        pl.col("qty").cast(pl.Decimal(38, 6), strict=False),
        closed.fill_null(False).alias("known_closed"),
    )


def _repeated(ids: pl.Series) -> pl.Series:
    """The non-null values of ``ids`` that occur more than once.

    Equal ids hash alike, so when every hash is distinct no id repeats and the string
    group-by (seconds at 1e7 rows) is skipped; otherwise it decides exactly.

    >>> import polars as pl
    >>> _repeated(pl.Series(["a", "b", "a", None, None])).to_list()
    ['a']
    """
    if ids.hash().n_unique() == ids.len():
        return ids.clear()
    return (
        ids.to_frame("txn_id")
        .lazy()
        .group_by("txn_id")
        .len()
        .filter((pl.col("len") > 1) & pl.col("txn_id").is_not_null())
        .collect()["txn_id"]
        .rechunk()
    )


def linked_to_orders(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``frame`` that join their order's links (:func:`schemas.joins_order`)."""
    return frame.filter(joins_order())


def with_order_rules(linked: pl.DataFrame) -> pl.DataFrame:
    """``linked`` (:func:`linked_to_orders`) with the rules of orders broken by each row's
    order: ``order_kind_mixed`` (some rows of kind ``transfer``, some not; §9.1) and
    ``transfer_other_item`` (a transfer order naming several items; contract §1).

    >>> import polars as pl
    >>> rows = pl.DataFrame({"txn_id": ["T1", "P1", "T2", "T3"], "item_id": ["A", "A", "A", "B"],
    ...     "order_id": ["O1", "O1", "O2", "O2"],
    ...     "kind": ["transfer", "production", "transfer", "transfer"]})
    >>> with_order_rules(rows).select("order_kind_mixed", "transfer_other_item").rows()
    [(True, False), (True, False), (False, True), (False, True)]
    """
    by = "order_id"
    transfer = pl.col("kind").fill_null("") == "transfer"
    return linked.with_columns(
        (transfer.any().over(by) & (~transfer).any().over(by)).alias("order_kind_mixed"),
        (transfer.all().over(by) & (pl.col("item_id").n_unique().over(by) > 1)).alias(
            "transfer_other_item"
        ),
    )


#: The rules of orders (:func:`with_order_rules`): per check, the column a failure names and
#: the fix, for the order of each row.
ORDER_RULES: dict[str, tuple[str, pl.Expr]] = {
    "order_kind_mixed": (
        "kind",
        pl.format(
            "the linked rows of order {} must all be transfers (kind 'transfer') or none of "
            "them (a production order: 'consumption' issues, 'production' receipts); give them "
            "one kind",
            pl.col("order_id"),
        ),
    ),
    "transfer_other_item": (
        "item_id",
        pl.format(
            "a transfer moves one item, but order {} names several; give its rows one item_id, "
            "or make it a production order ('consumption' issues, 'production' receipts)",
            pl.col("order_id"),
        ),
    ),
}


def refuse_orders_broken_with(batch: pl.DataFrame, earlier: pl.DataFrame, holder: str) -> None:
    """Refuse rows of ``batch`` that break the rules of orders (:func:`with_order_rules`)
    together with the ``earlier`` rows of the same orders (``txn_id``, ``item_id``,
    ``order_id``, ``kind``) that ``holder`` ("the ledger", "the opening") holds: an order's
    legs may come in several batches or months, which the validation of one input does not
    see together. An earlier row the batch repeats (an invoice, the whole history again)
    counts once, as the batch gives it.
    """
    columns = ["txn_id", "item_id", "order_id", "kind"]
    earlier = earlier.filter(
        pl.col("order_id").is_in(batch["order_id"].drop_nulls().implode())
        & ~pl.col("txn_id").is_in(batch["txn_id"].implode())
    )
    if earlier.is_empty():
        return
    rows = pl.concat(
        [
            batch.select(columns).with_columns(new=pl.lit(True)),
            earlier.select(columns).with_columns(new=pl.lit(False)),
        ]
    )
    checked = with_order_rules(linked_to_orders(rows)).filter(pl.col("new"))
    found = [
        id_failures(
            checked.filter(pl.col(check)),
            column,
            check,
            pl.col(column).fill_null("(none)"),
            pl.concat_str(pl.lit(f"with the rows of the order {holder} holds: "), hint),
        )
        for check, (column, hint) in ORDER_RULES.items()
    ]
    failures = pl.concat(found)
    if failures.height:
        ids = failures["txn_id"].unique(maintain_order=True)
        listed = first_named(ids)
        msg = (
            f"{failures.height} row(s) break the rules of an order with its rows {holder} "
            f"already holds: {listed}. The whole input is rejected. Hint: {failures['hint'][0]}."
        )
        raise InputValidationError(msg, failures)


def _order_failures(frame: pl.DataFrame, key: str) -> list[pl.LazyFrame]:
    """The rules of orders (:func:`with_order_rules`) over the rows of one input."""
    linked = linked_to_orders(frame)
    if linked.is_empty():
        return []
    checked = with_order_rules(linked).lazy()
    return [
        _row_failures(
            checked, key, pl.col(check), column, check, pl.col(column).fill_null("(none)"), hint
        )
        for check, (column, hint) in ORDER_RULES.items()
    ]


def _cross_row_checks(
    frame: pl.DataFrame, dims: Sequence[str], known: pl.DataFrame | None, as_of: dt.date | None
) -> tuple[list[pl.LazyFrame], pl.Series]:
    """Duplicate / invoice-pair and marking failures, and the ``_ROW`` numbers to drop."""
    lf = frame.lazy()
    key = "txn_id"
    txn = pl.col("txn_id")
    # The window logic runs only on the (usually few) rows whose txn_id repeats.
    repeated_ids = _repeated(frame["txn_id"])
    repeated = frame.filter(txn.is_in(repeated_ids.implode()))
    by = "txn_id"
    same_group = pl.all_horizontal([pl.col(c).n_unique().over(by) == 1 for c in ("item_id", *dims)])
    statuses = ((pl.col("status") == PHYSICAL).sum().over(by) == 1) & (
        (pl.col("status") == FINANCIAL).sum().over(by) == 1
    )
    pair = (pl.len().over(by) == 2) & same_group & statuses
    physical_qty = pl.col("qty").filter(pl.col("status") == PHYSICAL).first().over(by)
    physical_date = pl.col("date").filter(pl.col("status") == PHYSICAL).first().over(by)
    invoice = pair & (pl.col("status") == FINANCIAL)
    repeated = repeated.with_columns(
        pair.alias("__pair"),
        (pair & (pl.col("qty").sign().n_unique().over(by) > 1)).alias("__sign_mismatch"),
        (invoice & (pl.col("qty").abs() > physical_qty.abs())).alias("__over_invoiced"),
        (invoice & (pl.col("date") < physical_date)).alias("__invoiced_before"),
    )
    # The invoice replaces its physical row, unless it is dated after ``as_of``: on that day
    # the goods were received (or shipped) but not yet invoiced.
    replaced = pl.lit(PHYSICAL)
    if as_of is not None:
        invoice_date = pl.col("date").filter(pl.col("status") == FINANCIAL).first().over(by)
        replaced = pl.when(invoice_date > as_of).then(pl.lit(FINANCIAL)).otherwise(replaced)
    drop_rows = repeated.filter(pl.col("__pair") & (pl.col("status") == replaced))[_ROW]
    failures = [
        _row_failures(
            repeated.lazy(),
            key,
            ~pl.col("__pair"),
            "txn_id",
            "txn_id_duplicate",
            txn,
            _DUPLICATE_HINT,
        ),
        _row_failures(
            repeated.lazy(),
            key,
            pl.col("__sign_mismatch"),
            "qty",
            "invoice_sign",
            pl.col("qty"),
            _INVOICE_SIGN_HINT,
        ),
        _row_failures(
            repeated.lazy(),
            key,
            pl.col("__over_invoiced"),
            "qty",
            "invoice_exceeds_physical",
            pl.col("qty"),
            INVOICE_EXCEEDS_HINT,
        ),
        _row_failures(
            repeated.lazy(),
            key,
            pl.col("__invoiced_before"),
            "date",
            "invoice_before_physical",
            pl.col("date").cast(pl.String),
            INVOICE_BEFORE_HINT,
        ),
    ]
    drop = pl.col(_ROW).is_in(drop_rows.implode())
    # On the rows kept: an invoice replaces its physical row, whose kind no longer counts.
    failures.extend(_order_failures(frame.filter(~drop), key))

    # Marking: targets are the rows kept (the invoice replaces its physical row), then rows
    # known from an earlier close that this input does not repeat.
    marked_rows = frame.filter(pl.col("marked_to").is_not_null())
    if marked_rows.is_empty():
        return failures, drop_rows
    names = marked_rows["marked_to"].unique().implode()
    target_cols = ["txn_id", "item_id", *dims, "qty", "known_closed"]
    targets = (
        lf.filter(~drop & txn.is_in(names))
        .with_columns(known_closed=pl.lit(False))
        .select(target_cols)
    )
    if known is not None:
        known_targets = _known_rows(known, dims).lazy().filter(txn.is_in(names))
        targets = pl.concat([targets, known_targets], how="vertical_relaxed")
    targets = (
        targets.unique(subset=["txn_id"], keep="first", maintain_order=True)
        .rename({c: f"__t_{c}" for c in target_cols})
        .with_columns(pl.lit(True).alias("__t_found"))
    )
    marked = (
        marked_rows.lazy()
        .join(targets, left_on="marked_to", right_on="__t_txn_id", how="left")
        .collect()
        .lazy()
    )
    mark = pl.col("marked_to")
    found = pl.col("__t_found").fill_null(False)
    other_group = ~pl.all_horizontal(
        [pl.col(c).eq_missing(pl.col(f"__t_{c}")) for c in ("item_id", *dims)]
    )
    # A receipt an earlier close closed is known by its id only (it is settled already).
    open_target = found & ~pl.col("__t_known_closed").fill_null(False)
    checks = {
        "marked_to_on_receipt": pl.col("qty") >= 0,
        "marked_to_unknown": ~found,
        "marked_to_other_group": open_target & other_group,
        "marked_to_not_receipt": open_target & (pl.col("__t_qty") <= 0),
    }
    failures.extend(
        _row_failures(marked, key, mask, "marked_to", check, mark, _MARK_HINTS[check])
        for check, mask in checks.items()
    )
    return failures, drop_rows


#: Bound on the sum of absolute amounts (cents) and of absolute quantities (micro-units) of
#: one settlement group: the kernel computes in 64-bit integers, and running sums, their
#: differences and the opening's values must stay inside that range with room to spare.
GROUP_LIMIT = 2**62


def oversized(frame: pl.DataFrame, group: Sequence[str], size: pl.Expr) -> pl.Expr | None:
    """The rows of groups whose ``size`` (non-negative, Int128) adds up past ``GROUP_LIMIT``.

    ``None`` when the whole frame stays inside the bound: one sum settles the usual case, and
    the groups are summed only when it does not.
    """
    total = frame.select(size.sum()).item()
    if total is None or total <= GROUP_LIMIT:
        return None
    return size.sum().over(group) > GROUP_LIMIT


def _magnitude_failures(frame: pl.DataFrame, dims: Sequence[str]) -> list[pl.LazyFrame]:
    """Rows of groups whose amounts or quantities are too large for 64-bit cents / micro-units."""
    failures = []
    for column, unit in (("amount", "cent"), ("qty", "micro-unit")):
        mask = oversized(
            frame, ["item_id", *dims], pl.col(column).reinterpret(dtype=pl.Int128).abs()
        )
        if mask is None:
            continue
        hint = (
            f"the {column} values of this item and financial dimension add up (in absolute "
            f"value) to more than 2**62 {unit}s, which the close cannot compute exactly in "
            "64-bit integers: check the row for a mistyped value, or split the item"
        )
        failures.append(
            _row_failures(
                frame.lazy(),
                "txn_id",
                mask,
                column,
                "too_large",
                pl.col(column),
                hint,
            )
        )
    return failures


def normalize_transactions(
    data: object,
    *,
    dimensions: Sequence[str] = (),
    require_amount: bool = True,
    known: pl.DataFrame | None = None,
    as_of: dt.date | None = None,
    keep_invoice_pairs: bool = False,
) -> pl.DataFrame:
    """Validate transactions and return them as the canonical frame.

    Parameters
    ----------
    data
        A Polars DataFrame or LazyFrame, a pandas DataFrame, a PyArrow Table, or a path / glob
        to Parquet or CSV files (read by :func:`invclose.io.read_transactions`). It is never
        modified.
    dimensions
        Financial dimension columns; each must be present (text; integer ids are turned into
        text).
    require_amount
        Whether every row needs an ``amount`` (``close``); ``post_costs`` fills missing ones.
    known
        Rows known from an earlier close (``txn_id``, ``item_id``, the dimensions, ``qty``):
        ``marked_to`` may name one of them instead of a row of ``data``.
    as_of
        The run's closing date, if any: an invoice dated after it does not replace its
        physical row yet (on that date the row was physical).
    keep_invoice_pairs
        Keep both rows of an invoice pair (still validated as one): ``post_costs`` replays
        the physical row at its own place in posting order and the invoice at its own.

    Returns
    -------
    polars.DataFrame
        Exactly the columns of :func:`invclose.schemas.input_schema` for ``dimensions``, in
        that order and with those dtypes (``qty`` ``Decimal(38, 6)``, ``amount``
        ``Decimal(38, 2)``, ``date`` ``Date``, ``seq`` ``Int64``, text as ``String``), one row
        per input row in input order, except that:

        * **unknown columns are dropped** (only the contract's columns and the configured
          dimensions are kept);
        * optional columns that are absent become typed nulls; ``status`` defaults to
          ``financial`` (also where null or blank) and ``seq`` to the row position 0..n-1 when
          the column is absent;
        * blank text in ``txn_id``, ``item_id``, ``status``, ``marked_to``, ``order_id``,
          ``kind`` and the account columns counts as null (dimension values are kept as
          given);
        * of an **invoice pair** (two rows with the same ``txn_id``, item and dimensions, one
          ``physical`` and one ``financial``) only the financial row is kept: the invoice
          replaces the physical row (with ``as_of``, only an invoice dated on or before it;
          otherwise the physical row is kept; with ``keep_invoice_pairs``, both).

        Text is parsed exactly: numbers by their digits (never through floats, never
        rounded), dates as ISO ``YYYY-MM-DD``. Decimal, integer, date and datetime (at
        midnight) columns are taken as they are; binary-float ``qty`` / ``amount`` /
        ``cost_share`` columns are refused (convert them with :func:`invclose.decimalize`).

    Raises
    ------
    InputValidationError
        Listing every failure (up to 20 in the message, all of them in ``.failures``: a Polars
        frame with ``row``, ``txn_id``, ``column``, ``check``, ``value``, ``hint``). The
        checks are listed in this module's docstring.
    ConfigError
        If a dimension name collides with a contract column.

    Examples
    --------
    >>> import polars as pl
    >>> from invclose.validate import normalize_transactions
    >>> raw = pl.DataFrame({"txn_id": ["R1", "I1"], "item_id": "A", "qty": ["10", "-4"],
    ...                     "amount": ["100.00", "-40"], "date": ["2025-01-02", "2025-01-05"]})
    >>> df = normalize_transactions(raw)
    >>> for row in df.select("txn_id", "qty", "amount", "status", "seq").rows():
    ...     print(row)
    ('R1', Decimal('10.000000'), Decimal('100.00'), 'financial', 0)
    ('I1', Decimal('-4.000000'), Decimal('-40.00'), 'financial', 1)
    >>> normalize_transactions(raw.with_columns(qty=pl.lit("0")))
    Traceback (most recent call last):
    ...
    invclose.errors.InputValidationError: invalid transactions: 2 problems in 2 rows ...
    """
    dims = _check_dimensions(dimensions)
    schema = input_schema(dims)
    required = required_input(dims, require_amount)
    files: list[tuple[str, int]] = []
    if is_paths(data):
        raw, files = read_raw_files(data, required, "transactions")  # type: ignore[arg-type]
    else:
        raw = to_polars(data, "transactions", required)
    missing_hints = {
        d: f"{d!r} is a configured financial dimension: add the column or remove it from dimensions"
        for d in dims
    }
    prepared = _prepare(
        raw,
        schema,
        key="txn_id",
        key_of=lambda e: e["txn_id"],
        required=required,
        missing_hints=missing_hints,
        defaults={"status": pl.lit(FINANCIAL), "seq": pl.col(_ROW)},
    )
    frame = prepared.frame.with_columns(pl.col("status").fill_null(FINANCIAL))
    parts = list(prepared.failures)
    parts.append(
        _run_pandera(
            frame, _transaction_schema(schema, require_amount=require_amount), "txn_id", _TXN_HINTS
        )
    )
    parts.extend(_magnitude_failures(frame, dims))
    cross, drop_rows = _cross_row_checks(frame, dims, known, as_of)
    parts.extend(cross)
    failures = _finish_failures(parts, prepared.failed_columns, "txn_id", list(schema))
    if failures.height:
        _raise(name_files(failures, files), "transactions", "txn_id")
    if keep_invoice_pairs:
        return frame.select(list(schema))
    return frame.filter(~pl.col(_ROW).is_in(drop_rows.implode())).select(list(schema))


def _check_dimensions(dimensions: Sequence[str]) -> tuple[str, ...]:
    dims = (dimensions,) if isinstance(dimensions, str) else tuple(str(d) for d in dimensions)
    clash = [d for d in dims if d in input_schema(())]
    if clash:
        msg = f"dimension columns {clash} collide with transaction columns; rename them"
        raise ConfigError(msg)
    if len(set(dims)) != len(dims):
        msg = f"dimensions must not repeat a column: {dims}"
        raise ConfigError(msg)
    return dims


# --------------------------------------------------------------------------- items, accounts

_METHODS = tuple(m.value for m in Method)


def normalize_items(items: object | None) -> pl.DataFrame | None:
    """Validate the item table (contract §2) and return its canonical columns.

    Columns are those of :func:`invclose.schemas.item_schema`; only ``item_id`` is required.
    ``method`` is matched like :func:`invclose.config.parse_method` (case and surrounding
    blanks ignored) and null means "the close's ``method``"; ``include_physical_value`` is
    null where absent or blank, meaning "the close's ``include_physical_value``" (text
    ``true``/``false``/``yes``/``no``/``1``/``0`` is accepted). Unknown columns are dropped.
    Several rows of one item are allowed only as dated standard costs: they must differ in
    ``valid_from`` and agree on everything but ``standard_cost``.

    Raises
    ------
    InputValidationError
        Listing every failure; ``.failures`` has ``item_id`` in place of ``txn_id``. An unknown
        method is named with the items using it and the list of valid methods.

    Examples
    --------
    >>> import polars as pl
    >>> from invclose.validate import normalize_items
    >>> normalize_items(pl.DataFrame({"item_id": ["A", "B"], "method": ["FIFO", None]})).rows()
    [('A', 'fifo', None, None, None, None, None), ('B', None, None, None, None, None, None)]
    """
    if items is None:
        return None
    schema = item_schema()
    raw = to_polars(items, "items")
    prepared = _prepare(
        raw,
        schema,
        key="item_id",
        key_of=lambda e: e["item_id"],
        required=["item_id"],
        missing_hints={},
        defaults={},
    )
    # A null include_physical_value, like a null method, means "the close's keyword".
    frame = prepared.frame.with_columns(
        pl.col("method").str.strip_chars().str.to_lowercase(),
    )
    valid = ", ".join(_METHODS)
    hints = {
        "item_id_missing": "every row of the item table needs an item_id",
        "method_unknown": f"method must be one of: {valid} (or empty for the close's method)",
        "negative_cost": "standard_cost and default_cost must not be negative",
    }
    pandera_schema = pa.DataFrameSchema(
        {
            "item_id": pa.Column(
                pl.String, nullable=True, checks=[_not_null("item_id_missing", "item_id")]
            ),
            "method": pa.Column(
                pl.String,
                nullable=True,
                checks=[_check("method_unknown", pl.col("method").is_in(list(_METHODS)))],
            ),
            "standard_cost": pa.Column(
                schema["standard_cost"],
                nullable=True,
                checks=[_check("negative_cost", pl.col("standard_cost") >= 0)],
            ),
            "default_cost": pa.Column(
                schema["default_cost"],
                nullable=True,
                checks=[_check("negative_cost", pl.col("default_cost") >= 0)],
            ),
        },
        strict=False,
        name="items",
    )
    parts = [*prepared.failures, _run_pandera(frame, pandera_schema, "item_id", hints)]
    lf = frame.lazy()
    by = ["item_id"]
    dup = pl.col("item_id").is_not_null() & (pl.len().over(["item_id", "valid_from"]) > 1)
    parts.append(
        _row_failures(
            lf,
            "item_id",
            dup,
            "valid_from",
            "item_duplicate",
            pl.col("valid_from"),
            "an item may repeat only with different valid_from dates (dated standard costs)",
        )
    )
    for column in ("method", "include_physical_value", "item_group", "default_cost"):
        differs = pl.col("item_id").is_not_null() & (pl.col(column).n_unique().over(by) > 1)
        parts.append(
            _row_failures(
                lf,
                "item_id",
                differs,
                column,
                "item_inconsistent",
                pl.col(column),
                f"rows of one item may differ only in valid_from and standard_cost; "
                f"give every row of the item the same {column}",
            )
        )
    failures = _finish_failures(parts, prepared.failed_columns, "item_id", list(schema))
    if failures.height:
        _raise(failures, "item table", "item_id")
    return frame.select(list(schema))


def normalize_accounts(accounts: object | None) -> pl.DataFrame | None:
    """Validate the accounts mapping (contract §1) and return its canonical columns.

    Columns are those of :func:`invclose.schemas.accounts_schema`. ``inventory_account`` and
    ``offset_account`` are required columns; ``kind``, ``item_group`` and
    ``variance_account`` may be absent (null ``kind`` / ``item_group`` match any). Integer
    account numbers become text, blank text counts as null, unknown columns are dropped. Two
    rows for the same (``kind``, ``item_group``) are an error (``accounts_duplicate``).

    Raises
    ------
    InputValidationError
        Listing every failure; ``.failures`` has ``key`` (``kind|item_group``) in place of
        ``txn_id``.

    Examples
    --------
    >>> import polars as pl
    >>> from invclose.validate import normalize_accounts
    >>> normalize_accounts(pl.DataFrame({"kind": ["sale"], "inventory_account": [1400],
    ...                                  "offset_account": ["5000"]})).rows()
    [('sale', None, '1400', '5000', None)]
    """
    if accounts is None:
        return None
    schema = accounts_schema()
    raw = to_polars(accounts, "accounts")
    prepared = _prepare(
        raw,
        schema,
        key="key",
        key_of=lambda e: pl.concat_str(
            e["kind"].fill_null("*"), pl.lit("|"), e["item_group"].fill_null("*")
        ),
        required=["inventory_account", "offset_account"],
        missing_hints={},
        defaults={},
    )
    frame = prepared.frame
    dup = pl.len().over(["kind", "item_group"]) > 1
    parts = [
        *prepared.failures,
        _row_failures(
            frame.lazy(),
            "key",
            dup,
            "kind",
            "accounts_duplicate",
            pl.col(_KEY),
            # A misspelt item_group column is not read, so rows of one kind for different
            # groups look the same: name the columns left unread.
            "each (kind, item_group) pair may appear once in the mapping; merge the rows"
            + prepared.unread_note,
        ),
    ]
    failures = _finish_failures(parts, prepared.failed_columns, "key", list(schema))
    if failures.height:
        _raise(failures, "accounts mapping", "key")
    return frame.select(list(schema))
