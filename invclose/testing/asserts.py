"""Exact equality of result tables: money to the cent, quantities to the micro-unit.

>>> import polars as pl
>>> from decimal import Decimal as D
>>> from invclose.testing.asserts import assert_frames_equal_exact
>>> a = pl.DataFrame({"txn_id": ["x", "y"], "amount": [D("1.00"), D("2.00")]})
>>> assert_frames_equal_exact(a, a.reverse(), ["txn_id"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

__all__ = ["assert_frames_equal_exact"]

_MAX_LISTED = 20


def _canon(value: Any) -> Any:
    """A hashable, exactly comparable form of one cell (lists become tuples).

    Decimals compare as exact numbers (``Decimal("1.0") == Decimal("1.00")``); scale
    differences are a dtype matter, checked with ``check_dtypes``. Binary floats are refused.
    """
    if isinstance(value, list):
        return tuple(_canon(v) for v in value)
    if isinstance(value, float):
        msg = "binary floats are not allowed in exact comparisons"
        raise TypeError(msg)
    return value


def _sort_token(value: Any) -> Any:
    """A sort key for one cell that puts nulls first and handles tuples."""
    if value is None:
        return (0, ())
    if isinstance(value, tuple):
        return (2, tuple(_sort_token(v) for v in value))
    return (1, value)


def _rows_by_key(
    frame: pl.DataFrame, key_cols: Sequence[str], value_cols: Sequence[str]
) -> dict[tuple[Any, ...], list[tuple[Any, ...]]]:
    out: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for row in frame.select([*key_cols, *value_cols]).iter_rows():
        key = tuple(_canon(v) for v in row[: len(key_cols)])
        values = tuple(_canon(v) for v in row[len(key_cols) :])
        out.setdefault(key, []).append(values)
    for rows in out.values():
        rows.sort(key=lambda r: tuple(_sort_token(v) for v in r))
    return out


def _fmt(cols: Sequence[str], values: tuple[Any, ...]) -> str:
    return ", ".join(
        f"{c}={v!s}" if v is not None else f"{c}=null" for c, v in zip(cols, values, strict=True)
    )


def assert_frames_equal_exact(
    left: pl.DataFrame,
    right: pl.DataFrame,
    key_cols: Sequence[str],
    *,
    check_dtypes: bool = False,
    left_name: str = "left",
    right_name: str = "right",
) -> None:
    """Assert that two frames hold the same rows, whatever their order.

    Both frames must have the same columns (order ignored). Rows are matched on
    ``key_cols`` (nulls are values); every other column must be exactly equal (Decimal to the
    last digit, no tolerance, lists element by element). Repeated keys are compared as sorted
    multisets. On failure the message lists the keys missing on either side and, for keys on
    both, the differing rows.

    Parameters
    ----------
    left, right
        The frames to compare.
    key_cols
        Columns identifying a row; the frames are sorted by them before comparing.
    check_dtypes
        Also require identical dtypes per column.
    left_name, right_name
        How the two sides are named in the message (e.g. ``kernel`` and ``reference``).
    """
    key_cols = list(key_cols)
    lcols, rcols = set(left.columns), set(right.columns)
    if lcols != rcols:
        msg = (
            f"column sets differ: only in {left_name}: {sorted(lcols - rcols)}, "
            f"only in {right_name}: {sorted(rcols - lcols)}"
        )
        raise AssertionError(msg)
    missing_keys = [c for c in key_cols if c not in lcols]
    if missing_keys:
        msg = f"key columns {missing_keys} are not in the frames"
        raise AssertionError(msg)
    if check_dtypes:
        bad = {
            c: (left.schema[c], right.schema[c])
            for c in left.columns
            if left.schema[c] != right.schema[c]
        }
        if bad:
            msg = f"dtypes differ ({left_name}, {right_name}): {bad}"
            raise AssertionError(msg)

    value_cols = [c for c in left.columns if c not in key_cols]
    lrows = _rows_by_key(left, key_cols, value_cols)
    rrows = _rows_by_key(right, key_cols, value_cols)
    if lrows == rrows:
        return

    problems: list[str] = []
    keys = sorted(set(lrows) | set(rrows), key=lambda k: tuple(_sort_token(v) for v in k))
    for key in keys:
        lv, rv = lrows.get(key, []), rrows.get(key, [])
        if lv == rv:
            continue
        where = _fmt(key_cols, key)
        if not rv:
            problems.extend(f"  only in {left_name}:  [{where}] {_fmt(value_cols, v)}" for v in lv)
        elif not lv:
            problems.extend(f"  only in {right_name}: [{where}] {_fmt(value_cols, v)}" for v in rv)
        else:
            problems.append(f"  differs at [{where}]:")
            problems.extend(f"    {left_name}:  {_fmt(value_cols, v)}" for v in lv)
            problems.extend(f"    {right_name}: {_fmt(value_cols, v)}" for v in rv)
    shown = problems[:_MAX_LISTED]
    more = len(problems) - len(shown)
    msg = (
        f"frames differ ({left.height} rows in {left_name}, {right.height} in {right_name}; "
        f"keys {key_cols}):\n"
        + "\n".join(shown)
        + (f"\n  ... and {more} more lines" if more else "")
    )
    raise AssertionError(msg)
