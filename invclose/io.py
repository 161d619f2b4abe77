"""Reading transactions, and the one explicit conversion of binary floats to exact decimals.

This module only reads and converts; every check lives in :mod:`invclose.validate`.

* :func:`read_transactions` reads Parquet or CSV files (a path, a glob, a directory or a list of
  them) or takes any in-memory frame, and returns the validated canonical frame.
  CSV files are read with every column as text and parsed exactly afterwards, so no value ever
  passes through a binary float.
* :func:`decimalize` turns binary-float columns (``qty``, ``amount``, ``cost_share``) into
  exact decimals. It is **the only place where invclose rounds float input**; validation
  rejects float money and quantity columns with a hint to call it.
* :func:`to_polars` is the small adapter shared with :mod:`invclose.validate`: any supported
  input becomes an eager Polars DataFrame, untouched otherwise.
"""

from __future__ import annotations

import decimal
import glob
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import numpy as np
import polars as pl

from invclose.errors import InputFileNotFoundError, InputValidationError, first_named
from invclose.schemas import accounts_schema, input_schema, item_schema

_T = TypeVar("_T")

#: File suffixes read as Parquet and as CSV (compared case-insensitively).
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")

#: Decimal places :func:`decimalize` rounds each contract column to.
DEFAULT_SCALES: dict[str, int] = {"qty": 6, "amount": 2, "cost_share": 6}

_PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- reading


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in (*PARQUET_SUFFIXES, *CSV_SUFFIXES):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def _hidden(path: Path, root: Path) -> bool:
    """Whether ``path`` lies under a name starting with ``_`` or ``.`` below ``root`` (as
    Spark, Hive and PyArrow read a dataset: ``_temporary/``, ``.hive-staging/`` hold a
    writer's unfinished copies, ``_SUCCESS`` is a marker).

    >>> _hidden(Path("d/_temporary/0/p.parquet"), Path("d")), _hidden(Path("d/p.csv"), Path("d"))
    (True, False)
    """
    return any(part.startswith(("_", ".")) for part in path.relative_to(root).parts)


def _files_under(folder: Path) -> list[Path]:
    """Every Parquet or CSV file under ``folder``, at any depth, sorted, except under names
    starting with ``_`` or ``.`` (:func:`_hidden`)."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and _suffix(p) in (*PARQUET_SUFFIXES, *CSV_SUFFIXES)
        and not _hidden(p, folder)
    )


def _wildcard_hidden(path: Path, pattern: str) -> bool:
    """Whether a wildcard of ``pattern`` matched a name of ``path`` starting with ``_`` or
    ``.`` (names the pattern spells out, ``_final`` or ``..``, are the caller's choice).

    Parts before a ``**`` match the pattern's parts one to one, parts after it from the end;
    what ``**`` itself matched is all wildcard.

    >>> _wildcard_hidden(Path("data/_temporary"), "data/*")
    True
    >>> _wildcard_hidden(Path("ex/2025-01/_final/t.csv"), "ex/2025-*/_final/*.csv")
    False
    >>> _wildcard_hidden(Path("data/a/_tmp/b/t.csv"), "data/**/t.csv")
    True
    """
    wanted, found = Path(pattern).parts, path.parts
    if "**" in wanted:
        first = wanted.index("**")
        last = len(wanted) - 1 - wanted[::-1].index("**")
        tail = len(wanted) - last - 1
        pairs = list(zip(wanted[:first], found[:first], strict=False))
        pairs += list(zip(wanted[last + 1 :], found[len(found) - tail :], strict=False))
        spanned = found[first : len(found) - tail]
    else:
        pairs, spanned = list(zip(wanted, found, strict=False)), ()
    matched = [name for spelt, name in pairs if glob.has_magic(spelt)] + list(spanned)
    return any(name.startswith(("_", ".")) and name not in (".", "..") for name in matched)


def _expand(source: _PathLike | Sequence[_PathLike]) -> list[Path]:
    """Paths named by ``source``: a file, a glob, a directory (every readable file under it).

    A directory a glob matches counts as a directory given by name (``data/*`` over
    ``data/2025-01/`` and ``data/2025-02/`` reads the files in both); a file named twice
    (``data/**`` matches a folder and its files) is read once.
    """
    if isinstance(source, str | os.PathLike):
        sources: Iterable[_PathLike] = [source]
    else:
        sources = source
    files: list[Path] = []
    for item in sources:
        text = os.fspath(item)
        if glob.has_magic(text):
            # What the wildcards match follows the folder rule: ``data/*`` does not read
            # ``data/_temporary`` (a name the pattern spells out, ``data/_old/*``, is read).
            matched = sorted(
                path
                for path in map(Path, glob.glob(text, recursive=True))
                if not _wildcard_hidden(path, text)
            )
            if not matched:
                msg = (
                    f"no file matches the pattern {text!r} (wildcards do not match names "
                    "starting with _ or .)"
                )
                raise InputFileNotFoundError(msg)
            for path in matched:
                if path.is_dir():
                    files.extend(_files_under(path))
                elif path.is_file():
                    files.append(path)
        elif Path(text).is_dir():
            under = _files_under(Path(text))
            if not under:
                msg = f"directory {text!r} holds no Parquet or CSV file"
                raise InputFileNotFoundError(msg)
            files.extend(under)
        elif Path(text).is_file():
            files.append(Path(text))
        else:
            msg = f"no such file: {text!r}"
            raise InputFileNotFoundError(msg)
    if not files:
        msg = f"no file to read in {source!r}"
        raise InputFileNotFoundError(msg)
    return list(dict.fromkeys(files))


def first_paragraph(exc: BaseException) -> str:
    """The first paragraph of an error's text on one line (Polars appends generic advice)."""
    return " ".join(str(exc).split("\n\n", 1)[0].split())


def _read_fix(path: Path, exc: BaseException) -> str:
    """What to do about a file that could not be read."""
    reason = str(exc).lower()
    if isinstance(exc, pl.exceptions.NoDataError) or (path.is_file() and not path.stat().st_size):
        if _suffix(path) in PARQUET_SUFFIXES:
            return "the file is empty (0 bytes, no Parquet footer): write it again, or remove it"
        return "the file is empty: give a header row and the rows"
    if "utf-8" in reason or "utf8" in reason or isinstance(exc, UnicodeDecodeError):
        return "save it as UTF-8 text (e.g. 'CSV UTF-8' in a spreadsheet), or as Parquet"
    if isinstance(exc, OSError):
        return "check the path and that the file can be read"
    if "precision" in reason:
        return "store decimals of at most 38 digits (decimal128, not decimal256)"
    if _suffix(path) in PARQUET_SUFFIXES:
        return "it is damaged or not Parquet: write it again, or give it as CSV"
    return (
        "check that every quoted field is closed and every row has the header's number of "
        "fields, or give it as Parquet"
    )


def guarded_read(path: _PathLike, read: Callable[[], _T]) -> _T:
    """Run ``read`` of the file ``path``; a failure becomes one clear InputValidationError.

    The one place where every reader of input files (the library, each command of the command
    line, the ledger's) turns Polars' and the system's errors into ``cannot read <path>:
    <reason>; <fix>``.
    """
    try:
        return read()
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        if isinstance(exc, FileNotFoundError) and not Path(path).exists():
            msg = f"no such file: {os.fspath(path)!r}"
            raise InputFileNotFoundError(msg) from None
        shown = os.fspath(path)
        msg = f"cannot read {shown}: {first_paragraph(exc)}; {_read_fix(Path(path), exc)}"
        raise InputValidationError(msg) from None


def _read_file(
    path: Path, *, other_as_csv: bool = False, reads: Sequence[str] = ()
) -> pl.DataFrame:
    """One Parquet or CSV file as it is; ``reads``: columns read besides the contract's (the
    financial dimensions), which a CSV header must not repeat either."""
    suffix = _suffix(path)
    if suffix in PARQUET_SUFFIXES:
        return guarded_read(path, lambda: pl.read_parquet(path))
    if suffix in CSV_SUFFIXES or other_as_csv:
        separator = "\t" if suffix == ".tsv" else ","
        # Every column as text: numbers and dates are parsed exactly by validation, so a
        # CSV value never passes through a binary float.
        try:
            frame = guarded_read(
                path, lambda: pl.read_csv(path, infer_schema=False, separator=separator)
            )
        except InputValidationError:
            # Rows that do not fit the header ("more fields than defined") of a file written
            # with another separator, e.g. ';' with decimal commas: its header says which.
            header = guarded_read(
                path, lambda: pl.read_csv(path, infer_schema=False, separator=separator, n_rows=0)
            )
            _refuse_other_separator(path, header, separator)
            raise
        _refuse_other_separator(path, frame, separator)
        _refuse_repeated_header(path, frame, separator, reads)
        # A blank line (an export's last line, often) holds no row: Polars reads it as a
        # row of nulls, which validation would refuse as a row without a txn_id.
        if frame.width:
            frame = frame.filter(~pl.all_horizontal(pl.all().is_null()))
        return frame
    valid = ", ".join((*PARQUET_SUFFIXES, *CSV_SUFFIXES))
    msg = f"cannot read {str(path)!r}: unknown file type; expected a name ending in {valid}"
    raise InputValidationError(msg)


def _refuse_other_separator(path: Path, frame: pl.DataFrame, separator: str) -> None:
    """A CSV read as one column whose name holds another separator was written with it."""
    if frame.width != 1:
        return
    name = frame.columns[0]
    found = next((s for s in (";", "\t", "|", ",") if s != separator and s in name), None)
    if found is None:
        return
    shown = {"\t": "tabs", ";": "';'", "|": "'|'", ",": "','"}[found]
    expected = "tabs" if separator == "\t" else "commas"
    msg = (
        f"cannot read {os.fspath(path)}: its header {name[:60]!r} is one column, its fields "
        f"separated by {shown}; invclose reads CSV separated by {expected} (a .tsv file by "
        "tabs): save the file with that separator"
        + (" and decimal points (10.50, not 10,50)" if found == ";" else "")
    )
    raise InputValidationError(msg)


def _refuse_repeated_header(
    path: Path, frame: pl.DataFrame, separator: str, reads: Sequence[str]
) -> None:
    """A CSV header naming a column invclose reads twice: Polars reads the second as
    ``<name>_duplicated_0``, and only the first would be read (a pandas frame with a repeated
    column is refused too). A repeated column nothing reads (a note) is left, as unread
    columns are."""
    if not any("_duplicated_" in name for name in frame.columns):
        return
    header = guarded_read(
        path,
        lambda: pl.read_csv(
            path, has_header=False, n_rows=1, infer_schema=False, separator=separator
        ),
    ).row(0)
    read = {*input_schema([]), *item_schema(), *accounts_schema(), *reads}
    seen = [name for name in header if name is not None]
    repeated = sorted({name for name in seen if seen.count(name) > 1 and name in read})
    if repeated:
        listed = ", ".join(repr(name) for name in repeated)
        msg = (
            f"cannot read {os.fspath(path)}: its header names {listed} more than once; give "
            "every column one name (which of the repeated columns holds the values?)"
        )
        raise InputValidationError(msg)


def read_one_file(path: _PathLike) -> pl.DataFrame:
    """One file as it is (no validation): Parquet by its name, anything else as CSV.

    For files a user names one by one (the command line's ``--items``, ``--accounts`` and
    ``ledger post``), whatever their name ends in; errors as :func:`read_raw`.
    """
    if not Path(path).is_file():
        msg = f"no such file: {os.fspath(path)!r}"
        raise InputFileNotFoundError(msg)
    return _read_file(Path(path), other_as_csv=True)


def _column_failures(check: str, found: Sequence[tuple[str, str]], hint: str) -> pl.DataFrame:
    """Failures (``FAILURE_COLUMNS``) of whole columns, no row: one per (column, value)."""
    from invclose.validate import FAILURE_COLUMNS  # validate reads its input through here

    return pl.DataFrame(
        {
            "row": [None] * len(found),
            "txn_id": [None] * len(found),
            "column": [column for column, _ in found],
            "check": [check] * len(found),
            "value": [value for _, value in found],
            "hint": [hint] * len(found),
        },
        schema=FAILURE_COLUMNS,
    )


def refuse_files_missing(
    columns_of: Mapping[str, Sequence[str]], required: Sequence[str], what: str
) -> None:
    """Refuse files that lack a ``required`` column, naming each file and column.

    Several files are aligned by column name, so a file without a required column (a
    configured dimension, ``qty`` spelt ``Qty``) would read as nulls there, or, by a reader
    that ignores case, as the other spelling: either way not what the file says.

    >>> refuse_files_missing({"a.csv": ["site"], "b.csv": ["Site"]}, ["site"], "transactions")
    Traceback (most recent call last):
    ...
    invclose.errors.InputValidationError: transactions: 1 file(s) lack required columns: b.csv ...
    """

    lacking: list[tuple[str, str, str]] = []
    for path, columns in columns_of.items():
        for name in required:
            if name in columns:
                continue
            near = [c for c in columns if c.lower() == name.lower()]
            lacking.append((path, name, f" (it has {near[0]!r})" if near else ""))
    if not lacking:
        return
    hint = (
        "every file must hold every required column and configured dimension, spelt exactly "
        "(files are aligned by column name: a missing one would read as nulls)"
    )
    failures = _column_failures("column_missing", [(name, path) for path, name, _ in lacking], hint)
    files = sorted({path for path, _, _ in lacking})
    listed = first_named([f"{path} lacks {name!r}{near}" for path, name, near in lacking], "; ")
    msg = f"{what}: {len(files)} file(s) lack required columns: {listed}. Hint: {hint}."
    raise InputValidationError(msg, failures)


def refuse_other_spellings(columns_of: Mapping[str, Sequence[str]], what: str) -> None:
    """Refuse a file that spells a column of another file in another case only ("Status"
    where the others have "status"): aligned by name, its values would be read as nulls
    under the other spelling (a status taken for financial), or by a reader that ignores case
    as that column.

    >>> refuse_other_spellings({"a.csv": ["status"], "b.csv": ["Status"]}, "transactions")
    Traceback (most recent call last):
    ...
    invclose.errors.InputValidationError: transactions: a.csv has 'status' where ...
    """
    every = {c for columns in columns_of.values() for c in columns}
    found = []
    for path, columns in columns_of.items():
        held = set(columns)
        for name in sorted(every - held):
            near = [c for c in columns if c.lower() == name.lower()]
            if near:
                found.append(f"{path} has {near[0]!r} where another file has {name!r}")
    if found:
        listed = first_named(found, "; ")
        msg = (
            f"{what}: {listed}; spell each column the same way in every file (files are "
            "aligned by column name)"
        )
        raise InputValidationError(msg)


def refuse_float_files(dtypes_of: Mapping[str, Mapping[str, Any]], what: str) -> None:
    """Refuse files of several that hold ``qty``, ``amount`` or ``cost_share`` as binary
    floats, naming each file (the validation of the files read together could name only the
    column).

    >>> import polars as pl
    >>> refuse_float_files(
    ...     {"a.parquet": {"amount": pl.Decimal(38, 2)}, "b.parquet": {"amount": pl.Float64()}},
    ...     "transactions",
    ... )
    Traceback (most recent call last):
    ...
    invclose.errors.InputValidationError: transactions: 1 file(s) hold binary floats: b.parquet ...
    """

    floats = [
        (path, name, dtype)
        for path, dtypes in dtypes_of.items()
        for name, dtype in dtypes.items()
        if name in DEFAULT_SCALES and dtype.is_float()
    ]
    if len(dtypes_of) < 2 or not floats:
        return
    hint = (
        "binary floats cannot represent money and quantities exactly; convert each such file "
        "with invclose.decimalize (e.g. invclose.decimalize(pl.read_parquet(path))"
        ".write_parquet(path)), or write Decimal or text values"
    )
    failures = _column_failures(
        "float_type", [(name, f"{dtype} in {path}") for path, name, dtype in floats], hint
    )
    files = sorted({path for path, _, _ in floats})
    listed = first_named(
        [f"{path} holds {name!r} as {dtype}" for path, name, dtype in floats], "; "
    )
    msg = f"{what}: {len(files)} file(s) hold binary floats: {listed}. Hint: {hint}."
    raise InputValidationError(msg, failures)


def read_raw(
    source: _PathLike | Sequence[_PathLike], required: Sequence[str] = (), what: str = "input"
) -> pl.DataFrame:
    """Read Parquet / CSV files as they are (no validation), concatenated in name order.

    CSV columns are all ``String``. Files with different columns are aligned by name (missing
    columns become nulls); row numbers of a later validation count across the files in the
    order they were read (sorted names for a glob or directory). When several files are read,
    each must hold every ``required`` column (:func:`refuse_files_missing`); one file is
    checked by the validation that reads it.

    A path that names no file raises :class:`~invclose.errors.InputFileNotFoundError` (also a
    ``FileNotFoundError``); a file that cannot be read (damaged Parquet, CSV that is empty,
    badly quoted or not UTF-8) raises :class:`~invclose.errors.InputValidationError`
    ``cannot read <path>: <reason>; <fix>``.
    """
    return read_raw_files(source, required, what)[0]


def read_raw_files(
    source: _PathLike | Sequence[_PathLike], required: Sequence[str] = (), what: str = "input"
) -> tuple[pl.DataFrame, list[tuple[str, int]]]:
    """:func:`read_raw`, and each file read with its number of rows, in the order read: to
    name the file and its own row number of a row of the concatenated frame
    (:func:`name_files`)."""
    paths = _expand(source)
    frames = [_wall_clock(_read_file(p, reads=required)) for p in paths]
    heights = [(str(p), f.height) for p, f in zip(paths, frames, strict=True)]
    if len(frames) == 1:
        return frames[0], heights
    columns_of = {str(p): f.columns for p, f in zip(paths, frames, strict=True)}
    refuse_files_missing(columns_of, required, what)
    refuse_other_spellings(columns_of, what)
    refuse_float_files({str(p): f.schema for p, f in zip(paths, frames, strict=True)}, what)
    try:
        return pl.concat(frames, how="diagonal_relaxed"), heights
    except pl.exceptions.PolarsError as exc:
        # Types no supertype joins (a list in one file, text in another): name them by file.
        kinds: dict[str, set[str]] = {}
        for frame in frames:
            for name, dtype in frame.schema.items():
                kinds.setdefault(name, set()).add(str(dtype))
        clashing = [name for name, seen in kinds.items() if len(seen) > 1]
        held = [
            f"{path} holds {name!r} as {frame.schema[name]}"
            for path, frame in zip(paths, frames, strict=True)
            for name in clashing
            if name in frame.columns
        ]
        msg = (
            f"{what}: the files cannot be read together ({first_paragraph(exc)}): "
            f"{first_named(held, '; ')}. Give each column one type in every file"
        )
        raise InputValidationError(msg) from None


def time_zone(dtype: pl.DataType | None) -> str | None:
    """The time zone of a zoned Datetime dtype (``None`` for any other).

    >>> time_zone(pl.Datetime("us", "Europe/Paris")), time_zone(pl.Date())
    ('Europe/Paris', None)
    """
    return dtype.time_zone if isinstance(dtype, pl.Datetime) else None


def _wall_clock(frame: pl.DataFrame) -> pl.DataFrame:
    """Zoned timestamps as their wall-clock time in their own zone: files in different zones
    (or zoned beside plain dates) then concatenate, and midnight in Paris stays that day.

    >>> import datetime as dt
    >>> paris = pl.DataFrame({"date": [dt.datetime(2025, 1, 31)]}).with_columns(
    ...     pl.col("date").dt.replace_time_zone("Europe/Paris"))
    >>> _wall_clock(paris)["date"].to_list()
    [datetime.datetime(2025, 1, 31, 0, 0)]
    """
    zoned = [c for c, t in frame.schema.items() if time_zone(t)]
    return frame.with_columns(pl.col(c).dt.replace_time_zone(None) for c in zoned)


def name_files(failures: pl.DataFrame, files: Sequence[tuple[str, int]]) -> pl.DataFrame:
    """``failures`` with the ``file`` each numbered row was read from and its ``file_row``
    there (from 0), when the rows came from several ``files`` (path, rows) concatenated in
    that order; unchanged for one file.

    >>> failures = pl.DataFrame({"row": [1, None, 4], "check": ["a", "b", "c"]})
    >>> name_files(failures, [("a.csv", 3), ("b.csv", 5)]).rows()
    [(1, 'a', 'a.csv', 1), (None, 'b', None, None), (4, 'c', 'b.csv', 1)]
    """
    if len(files) < 2 or "row" not in failures.columns:
        return failures
    ends = np.cumsum([rows for _, rows in files])
    starts = pl.Series(np.concatenate(([0], ends[:-1])), dtype=pl.Int64)
    numbered = failures["row"].cast(pl.Int64)
    index = pl.Series(np.searchsorted(ends, numbered.fill_null(0).to_numpy(), side="right"))
    index = index.clip(upper_bound=len(files) - 1).cast(pl.UInt32)
    names = pl.Series([path for path, _ in files], dtype=pl.String)
    return failures.with_columns(
        file=pl.when(numbered.is_not_null()).then(names.gather(index)),
        file_row=pl.when(numbered.is_not_null()).then(numbered - starts.gather(index)),
    )


def _is_pandas(data: object) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(data, pandas.DataFrame)


def is_paths(data: object) -> bool:
    if isinstance(data, str | os.PathLike):
        return True
    return (
        isinstance(data, list | tuple)
        and len(data) > 0
        and all(isinstance(x, str | os.PathLike) for x in data)
    )


#: Polars holds decimals of at most 38 digits (Int128); a wider Arrow decimal256 makes it panic.
_MAX_DECIMAL_DIGITS = 38


def _arrow_types(data: object) -> dict[str, Any]:
    """Arrow type of each column of a pandas frame (object columns as PyArrow infers them)."""
    pa = sys.modules.get("pyarrow")
    if pa is None:
        return {}
    if isinstance(data, pa.Table | pa.RecordBatch):
        return {field.name: field.type for field in data.schema}
    if not _is_pandas(data):
        return {}
    types: dict[str, Any] = {}
    for name in data.columns:  # type: ignore[attr-defined]
        column = data[name]  # type: ignore[index]
        arrow_dtype = getattr(column.dtype, "pyarrow_dtype", None)
        if arrow_dtype is not None:
            types[str(name)] = arrow_dtype
        elif column.dtype == object and _holds_decimals(column):
            try:  # one vectorised inference per decimal column, as the conversion makes
                types[str(name)] = pa.array(column, from_pandas=True).type
            except (pa.ArrowException, TypeError, ValueError, ArithmeticError):
                continue  # mixed values: the conversion itself reports them
    return types


def _refuse_repeated_pandas_columns(data: Any, what: str) -> None:
    """A pandas frame may hold two columns of one name; which one would be read is a guess."""
    repeated = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
    if repeated:
        listed = ", ".join(repr(c) for c in repeated)
        msg = f"{what}: the pandas DataFrame has more than one column named {listed}; keep one"
        raise InputValidationError(msg)


def _unconvertible_pandas_columns(data: Any) -> list[str]:
    """The columns of a pandas frame that do not convert to Polars one by one (the error
    path only: a failed conversion of the whole frame does not say which)."""
    named = []
    for name in data.columns:
        try:
            pl.from_pandas(data[[name]])
        except Exception:  # any failure names the column
            named.append(str(name))
    return named


def _holds_decimals(column: Any) -> bool:
    """Whether a pandas object column's first value is a Decimal (text columns are not
    inferred again: they cannot be decimal256, and inferring a million strings costs).

    pandas' missing-value test raises on a signalling ``Decimal('sNaN')``: a column holding
    one holds decimals.
    """
    try:
        # By position: an index repeating a label would give several values for it.
        first = column.reset_index(drop=True).first_valid_index()
    except decimal.InvalidOperation:
        return True
    return first is not None and isinstance(column.iloc[first], decimal.Decimal)


def _is_non_finite(value: object) -> bool:
    return isinstance(value, decimal.Decimal) and not value.is_finite()


_NON_FINITE = np.frompyfunc(_is_non_finite, 1, 1)

#: Rows named in the message of :func:`_refuse_non_finite_decimals` (all are in failures).
_SHOWN = 10


def _refuse_non_finite_decimals(
    data: Any, what: str, nulls: Mapping[str, np.ndarray] | None = None
) -> None:
    """Refuse ``Decimal('Infinity')`` and ``Decimal('NaN')`` values in a pandas frame's
    decimal columns, naming each row.

    Left to the conversion, an infinity fails it without a row ("'str' object cannot be
    interpreted as an integer") and a NaN becomes a null (reported as a missing value to
    fill, which it is not: it is a result of a computation that went wrong). Looking at a
    value costs a Python call, so after a conversion that worked only the rows it made null
    are looked at (``nulls``: their positions per column); after one that failed, every row.
    """
    from invclose.validate import FAILURE_COLUMNS  # validate reads its input through here

    ids = data["txn_id"] if "txn_id" in data.columns else None
    found = []
    for name in data.columns:
        column = data[name]
        if nulls is not None and str(name) not in nulls:
            continue
        if column.dtype != object:
            continue
        values = column.to_numpy()
        at = nulls[str(name)] if nulls is not None else np.arange(values.shape[0])
        rows = at[_NON_FINITE(values[at]).astype(bool)] if at.size else at
        if rows.size == 0:
            continue
        found.append(
            pl.DataFrame(
                {
                    "row": rows.astype(np.int64),
                    "txn_id": None if ids is None else [_text(ids.iat[r]) for r in rows],
                    "column": str(name),
                    "check": "not_a_number",
                    "value": [str(values[r]) for r in rows],
                    "hint": f"{name!r} must be a finite decimal; a Decimal Infinity or NaN is the "
                    "result of a computation gone wrong (a division by zero, a missing value "
                    "in a sum): correct it at its source",
                },
                schema=FAILURE_COLUMNS,
            )
        )
    if not found:
        return
    failures = pl.concat(found)
    shown = "; ".join(
        f"row {row} column {column!r}: {value}"
        for row, column, value in failures.select("row", "column", "value").head(_SHOWN).rows()
    )
    more = f" and {failures.height - _SHOWN} more" if failures.height > _SHOWN else ""
    msg = (
        f"{what}: {failures.height} value(s) are a Decimal Infinity or NaN, not an amount or "
        f"quantity: {shown}{more} (row numbers count input rows from 0); correct them at "
        "their source"
    )
    raise InputValidationError(msg, failures)


def _text(value: object) -> str | None:
    """A txn_id as text for a failure (None stays None)."""
    return None if value is None else str(value)


def _refuse_wide_decimals(data: object, what: str) -> None:
    """Refuse decimal columns wider than 38 digits (Arrow decimal256) before converting."""
    pa = sys.modules.get("pyarrow")
    if pa is None:
        return
    wide = {name: str(t) for name, t in _arrow_types(data).items() if pa.types.is_decimal256(t)}
    if wide:
        _wide_decimal_error(what, wide)


def _wide_decimal_error(what: str, wide: Mapping[str, str]) -> NoReturn:

    hint = (
        "give Decimal values of at most 38 digits (e.g. Decimal('100.10'), not Decimal(100.1), "
        "which holds the float's 48 digits) or a decimal128 column; convert floats with "
        "invclose.decimalize"
    )
    failures = _column_failures("dtype", list(wide.items()), hint)
    columns = ", ".join(f"{name!r} ({t})" for name, t in wide.items())
    msg = (
        f"{what}: column(s) {columns} are Arrow decimal256, which Polars cannot hold (its "
        f"decimals have at most {_MAX_DECIMAL_DIGITS} digits); {hint}"
    )
    raise InputValidationError(msg, failures)


def _converted(what: str, convert: Callable[[], _T]) -> _T:
    """Run a conversion to Polars; a panic inside Polars becomes an InputValidationError.

    Polars panics (``pyo3_runtime.PanicException``, a ``BaseException`` that escapes
    ``except Exception``) on an Arrow type it does not support, such as decimal256 in a
    source not checked beforehand. Only that exception is caught, and only here.
    """
    try:
        return convert()
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":
            raise
        msg = (
            f"{what}: the input could not be converted to Polars ({first_paragraph(exc)}); "
            "give each column a type Polars supports (decimals of at most 38 digits, "
            "decimal128 rather than decimal256)"
        )
        raise InputValidationError(msg) from None


def to_polars(
    data: object, what: str = "transactions", required: Sequence[str] = ()
) -> pl.DataFrame:
    """Any supported input as an eager Polars DataFrame (the input itself is never modified).

    Accepts a Polars DataFrame or LazyFrame, a pandas DataFrame, a PyArrow Table or
    RecordBatch, any object exporting an Arrow stream (``__arrow_c_stream__``), or a path,
    glob, directory or list of paths (see :func:`read_raw`, which checks that each of several
    files holds the ``required`` columns).
    """
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        try:
            return data.collect()
        except (pl.exceptions.PolarsError, OSError) as exc:
            msg = f"{what}: the LazyFrame could not be collected: {first_paragraph(exc)}"
            if isinstance(exc, FileNotFoundError):
                raise InputFileNotFoundError(msg) from None
            raise InputValidationError(msg) from None
    if is_paths(data):
        return read_raw(data, required, what)  # type: ignore[arg-type]
    if _is_pandas(data):
        _refuse_repeated_pandas_columns(data, what)
    try:
        _refuse_wide_decimals(data, what)
    except decimal.InvalidOperation:
        _refuse_non_finite_decimals(data, what)
        raise
    if _is_pandas(data):
        try:
            out = _converted(what, lambda: pl.from_pandas(data))  # type: ignore[arg-type]
        except InputValidationError:
            raise
        except Exception as exc:
            _refuse_non_finite_decimals(data, what)
            named = _unconvertible_pandas_columns(data)
            where = f" in column(s) {', '.join(repr(c) for c in named)}" if named else ""
            msg = (
                f"{what}: the pandas DataFrame could not be converted{where} ({exc}); "
                "give each column one type (e.g. no mix of numbers and text in an object column)"
            )
            raise InputValidationError(msg) from exc
        # A Decimal NaN converts to a null: look at the rows the conversion made null.
        # By position: Polars names a column 0 "0", which pandas does not know.
        nulls = {
            str(label): np.flatnonzero(converted.is_null().to_numpy())
            for label, converted in zip(data.columns, out.get_columns(), strict=True)  # type: ignore[attr-defined]
            if converted.null_count() and data[label].dtype == object  # type: ignore[index]
        }
        if nulls:
            _refuse_non_finite_decimals(data, what, nulls)
        return out
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(data, pa.Table | pa.RecordBatch):
        table = _converted(what, lambda: pl.from_arrow(data))
        assert isinstance(table, pl.DataFrame)
        return table
    if hasattr(data, "__arrow_c_stream__"):
        return _converted(what, lambda: pl.DataFrame(data))
    msg = (
        f"{what}: unsupported input of type {type(data).__name__}; pass a Polars DataFrame or "
        "LazyFrame, a pandas DataFrame, a PyArrow Table, or a path / glob to Parquet or CSV files"
    )
    raise InputValidationError(msg)


def read_transactions(
    source: object, *, dimensions: Sequence[str] = (), require_amount: bool = True
) -> pl.DataFrame:
    """Read and validate transactions into the canonical frame.

    Parameters
    ----------
    source
        A path to a Parquet or CSV file (``.parquet``, ``.pq``, ``.csv``, ``.csv.gz``,
        ``.tsv``), a glob such as ``"data/2025-*.parquet"``, a directory (every such file under
        it), a list of those, or any in-memory frame accepted by
        :func:`invclose.validate.normalize_transactions`. Several files are concatenated in
        name order. CSV files are read with every column as text and parsed exactly: numbers
        never pass through binary floats, and a value with more decimals than its column allows
        is an error.
    dimensions
        Financial dimension columns, which must be present.
    require_amount
        Whether ``amount`` must be given on every row (``True`` for ``close``).

    Returns
    -------
    polars.DataFrame
        Exactly the columns of :func:`invclose.schemas.input_schema` for ``dimensions``, see
        :func:`invclose.validate.normalize_transactions`; both rows of an invoice pair (a
        physical row and its invoice) are kept, and a close takes the one in force on its
        closing date.

    Raises
    ------
    InputValidationError
        Listing every failing row (row numbers count from 0 across the files read; with
        several files, each row also names its file and its row there), or
        ``cannot read <path>: <reason>; <fix>`` for a file that cannot be read.
    InputFileNotFoundError
        When the path, glob or directory names no file (an ``InputValidationError`` that is
        also a ``FileNotFoundError``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from invclose.io import read_transactions
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = path.write_text("txn_id,item_id,date,qty,amount\\nR1,A,2025-01-02,10,100.00\\n")
    >>> df = read_transactions(path)
    >>> df.select("txn_id", "qty", "amount", "status", "seq").rows()
    [('R1', Decimal('10.000000'), Decimal('100.00'), 'financial', 0)]
    """
    from invclose.validate import normalize_transactions  # validate imports this module

    # Both rows of an invoice pair: which one is in force depends on the date a close, a view
    # or a replay looks at (an invoice dated after a closing date leaves its physical row in
    # force on it), so a reader keeps them and each of those takes its own.
    return normalize_transactions(
        source,  # read there, which then knows the files each failing row came from
        dimensions=dimensions,
        require_amount=require_amount,
        keep_invoice_pairs=True,
    )


# --------------------------------------------------------------------------- decimalize

# Shortest round-trip text of a float, as Polars prints it: "2.675", "1e-7", "1.5e+20".
_FLOAT_TEXT = r"^(-?)(\d+)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$"
_RIGHT_PAD = "0" * 40


def _round_float_text(text: pl.Expr, scale: int) -> pl.Expr:
    """Round the decimal number written in ``text`` half away from zero to ``scale`` places.

    Exact and vectorised: the digits are shifted by string slicing (no float arithmetic),
    truncated after ``scale + 1`` places (enough for half-away-from-zero, which only looks at
    the next digit), read as ``Decimal(38, scale + 1)`` and rounded. Null where ``text`` is not
    a finite number or the value does not fit ``Decimal(38, scale)``.
    """
    parts = text.str.extract_groups(_FLOAT_TEXT)
    negative = parts.struct.field("1") == "-"
    int_digits = parts.struct.field("2")
    frac_digits = parts.struct.field("3").fill_null("")
    exponent = parts.struct.field("4").cast(pl.Int64, strict=False).fill_null(0)
    digits = pl.concat_str(int_digits, frac_digits)
    # Position of the decimal point inside ``digits`` (may be negative or past the end).
    point = int_digits.str.len_chars().cast(pl.Int64) + exponent
    keep = scale + 1
    tiny = point < -keep  # |value| < 10**-(scale+1): rounds to zero
    huge = point > 37 - scale  # does not fit Decimal(38, scale + 1)
    padded = pl.concat_str(pl.lit("0" * keep), digits, pl.lit(_RIGHT_PAD))
    shifted_point = point + keep
    int_part = padded.str.slice(0, shifted_point.clip(lower_bound=0))
    frac_part = padded.str.slice(shifted_point.clip(lower_bound=0), keep)
    exact = pl.concat_str(pl.lit("0"), int_part, pl.lit("."), frac_part).cast(
        pl.Decimal(38, keep), strict=False
    )
    magnitude = (
        pl.when(tiny)
        .then(pl.lit(0).cast(pl.Decimal(38, keep)))
        .when(huge)
        .then(None)
        .otherwise(exact)
        .round(scale, mode="half_away_from_zero")
        .cast(pl.Decimal(38, scale), strict=False)
    )
    return (
        pl.when(parts.struct.field("2").is_null())
        .then(None)
        .otherwise(pl.when(negative).then(-magnitude).otherwise(magnitude))
    )


def decimalize(
    df: object,
    columns: Sequence[str] = ("qty", "amount", "cost_share"),
    *,
    scales: Mapping[str, int] | None = None,
) -> pl.DataFrame:
    """Convert binary-float columns to exact decimals, rounding half away from zero.

    This is the **only** place where invclose rounds float input. Validation rejects float
    ``qty``, ``amount`` and ``cost_share`` columns, because a binary float cannot hold most
    decimal values exactly; call this function first to say how they are to be rounded.

    Each float is taken at its shortest round-trip decimal text (what ``repr`` prints: the
    float ``2.675``, stored as 2.67499999999999982236431605997495353221893310546875, is read as
    ``2.675``), then rounded half away from zero to the column's scale: 6 places for ``qty``
    and ``cost_share``, 2 for ``amount``. So ``2.675 -> 2.68``, ``-2.675 -> -2.68``,
    ``0.0000005 -> 0.000001``.

    Parameters
    ----------
    df
        Any frame accepted by :func:`to_polars` (Polars, pandas, PyArrow, a path). It is not
        modified; a new Polars DataFrame is returned.
    columns
        Columns to convert. Columns that are absent, or not of a float dtype (already exact:
        decimals, integers, strings), are left as they are.
    scales
        Decimal places per column, overriding :data:`DEFAULT_SCALES`; required for a float
        column not named there.

    Returns
    -------
    polars.DataFrame
        ``df`` with each converted column as ``Decimal(38, scale)``.

    Raises
    ------
    InputValidationError
        If a float is NaN or infinite, or does not fit ``Decimal(38, scale)``.

    Examples
    --------
    >>> import polars as pl
    >>> from invclose.io import decimalize
    >>> df = pl.DataFrame({"qty": [1.5, -2.0000005], "amount": [2.675, -0.125]})
    >>> out = decimalize(df)
    >>> out["qty"].to_list()
    [Decimal('1.500000'), Decimal('-2.000001')]
    >>> out["amount"].to_list()
    [Decimal('2.68'), Decimal('-0.13')]
    """
    frame = to_polars(df)
    wanted = dict(DEFAULT_SCALES)
    if scales:
        wanted.update({str(k): int(v) for k, v in scales.items()})
    exprs: list[pl.Expr] = []
    checks: list[tuple[str, int]] = []
    for name in columns:
        if name not in frame.columns or not frame.schema[name].is_float():
            continue
        if name not in wanted:
            msg = f"decimalize: no scale for column {name!r}; pass scales={{{name!r}: places}}"
            raise InputValidationError(msg)
        scale = wanted[name]
        if not 0 <= scale <= 30:
            msg = f"decimalize: scale of {name!r} must be between 0 and 30; got {scale}"
            raise InputValidationError(msg)
        exprs.append(_round_float_text(pl.col(name).cast(pl.String), scale).alias(name))
        checks.append((name, scale))
    if not exprs:
        return frame
    converted = frame.select(exprs)
    out = frame.with_columns(converted)
    ids = (
        frame["txn_id"].cast(pl.String, strict=False)
        if "txn_id" in frame.columns
        else pl.Series("txn_id", [None] * frame.height, dtype=pl.String)
    )
    parts = [
        pl.DataFrame(
            {"txn_id": ids, "value": frame[name].cast(pl.String), "converted": converted[name]}
        )
        .with_row_index("row")
        .filter(pl.col("value").is_not_null() & pl.col("converted").is_null())
        .select(
            pl.col("row").cast(pl.Int64),
            "txn_id",
            pl.lit(name).alias("column"),
            pl.lit("not_convertible").alias("check"),
            "value",
            pl.lit(
                f"NaN, infinite or too large for Decimal(38, {scale}): fix or drop the row"
            ).alias("hint"),
        )
        for name, scale in checks
    ]
    failures = pl.concat(parts)
    if failures.height:
        shown = "\n".join(
            f"  row {r['row']} (txn_id {r['txn_id']!r}), column {r['column']!r}: found {r['value']}"
            for r in failures.head(20).iter_rows(named=True)
        )
        more = f"\n  ... and {failures.height - 20} more" if failures.height > 20 else ""
        msg = (
            f"decimalize: {failures.height} value(s) are NaN, infinite or do not fit "
            f"Decimal(38, scale); fix or drop them first:\n{shown}{more}"
        )
        raise InputValidationError(msg, failures)
    return out
