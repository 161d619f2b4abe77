"""Write and read a result directory: one Parquet file per table plus ``manifest.json``.

Layout of a result directory::

    <dir>/
      manifest.json          what the directory holds (below)
      settlements.parquet    one file per result table, named <table>.parquet
      ...

``manifest.json`` is a JSON object::

    {
      "format": "invclose-result",
      "format_version": 1,
      "close_id": "C0123456789abcdef",
      "closing_date": "2025-01-31",
      "run_kind": "close",
      "dimensions": ["site"],
      "config_fingerprint": "...",
      "lock_date": "2025-01-31",            # or null
      "invclose_version": "0.1.0",
      "tables": {
        "settlements": {"file": "settlements.parquet", "rows": 12, "sha256": "<hex>"},
        ...
      }
    }

Writing is atomic: the files go into a hidden temporary sibling directory which is then renamed
onto the target (an existing result directory is swapped out in one ``renameat2`` exchange on
Linux, else renamed aside and removed). A non-empty directory that is not an invclose result is
never overwritten. Reading verifies the SHA-256 of every file against the manifest (hashing the
very bytes it then parses), the row counts and the exact schema of each table.

Nothing here computes: the caller (:mod:`invclose.result`) supplies the frames and metadata.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import hashlib
import io
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from invclose.errors import InvcloseError
from invclose.schemas import RESULT_TABLES, table_schema

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "invclose-result"
FORMAT_VERSION = 1
_CHUNK = 1 << 20


def table_file(table: str) -> str:
    """File name of result table ``table`` inside a result directory."""
    return f"{table}.parquet"


def file_sha256(path: str | Path) -> str:
    """Lowercase hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def schema_problems(frame: pl.DataFrame, table: str, dims: Sequence[str]) -> list[str]:
    """Differences between ``frame``'s schema and result table ``table``'s; empty if equal.

    Column order counts: results are written and compared in the canonical order.
    """
    expected = table_schema(table, dims)
    actual = frame.schema
    problems: list[str] = []
    missing = [c for c in expected if c not in actual]
    extra = [c for c in actual if c not in expected]
    if missing:
        problems.append(f"{table}: missing columns {missing}")
    if extra:
        problems.append(f"{table}: unexpected columns {extra}")
    problems.extend(
        f"{table}.{c}: dtype {actual[c]}, expected {t}"
        for c, t in expected.items()
        if c in actual and actual[c] != t
    )
    if not problems and list(actual) != list(expected):
        problems.append(f"{table}: columns out of order {list(actual)}, expected {list(expected)}")
    return problems


# --------------------------------------------------------------------------- manifest


def is_result_dir(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding an invclose result manifest."""
    try:
        read_manifest(path)
    except InvcloseError:
        return False
    return True


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The parsed ``manifest.json`` of result directory ``path`` (format checked, files not)."""
    root = Path(path)
    if not root.is_dir():
        msg = f"no invclose result at {root}: not a directory"
        raise InvcloseError(msg)
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        msg = f"{root} is not an invclose result: {MANIFEST_NAME} is missing"
        raise InvcloseError(msg)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"{manifest_path} is not a readable invclose manifest: {exc}"
        raise InvcloseError(msg) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        msg = f"{manifest_path} is not an invclose result manifest (no format {FORMAT_NAME!r})"
        raise InvcloseError(msg)
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        msg = (
            f"{manifest_path} has format_version {version!r}; this invclose reads up to "
            f"{FORMAT_VERSION} (upgrade invclose to read it)"
        )
        raise InvcloseError(msg)
    if not isinstance(manifest.get("tables"), dict):
        msg = f"{manifest_path} is damaged: it has no 'tables' object"
        raise InvcloseError(msg)
    dims = manifest.get("dimensions")
    if not isinstance(dims, list) or not all(isinstance(d, str) for d in dims):
        msg = f"{manifest_path} is damaged: 'dimensions' must be a list of column names"
        raise InvcloseError(msg)
    return manifest


#: Columns later versions added to a table, which a result written before them lacks: read
#: as null (for ``open_items``' order state, close-semantics §9.1: "fully fed").
LATER_COLUMNS: dict[str, tuple[str, ...]] = {"open_items": ("unfed_qty", "unfed_change")}


def _with_later_columns(frame: pl.DataFrame, table: str, dims: Sequence[str]) -> pl.DataFrame:
    """``frame`` with the :data:`LATER_COLUMNS` it lacks added as nulls, if it lacks all."""
    later = LATER_COLUMNS.get(table, ())
    if not later or any(c in frame.columns for c in later):
        return frame
    schema = table_schema(table, dims)
    return frame.with_columns(pl.lit(None, schema[c]).alias(c) for c in later)


def _table_entry(manifest: Mapping[str, Any], table: str, root: Path) -> tuple[Path, int, str]:
    """The file path, row count and sha256 the manifest records for ``table``."""
    entry = manifest["tables"].get(table)
    if not isinstance(entry, dict):
        msg = f"{root / MANIFEST_NAME} does not list table {table!r}"
        raise InvcloseError(msg)
    name, rows, sha = entry.get("file"), entry.get("rows"), entry.get("sha256")
    # The file name is fixed by the table name, so a manifest can never point outside the dir.
    if name != table_file(table) or not isinstance(rows, int) or not isinstance(sha, str):
        msg = f"{root / MANIFEST_NAME} has a damaged entry for table {table!r}: {entry!r}"
        raise InvcloseError(msg)
    return root / name, rows, sha


def manifest_identity(
    manifest: Mapping[str, Any], path: str | Path
) -> tuple[str, str, dt.date, dt.date | None]:
    """(``close_id``, ``run_kind``, closing date, lock date) of a result's manifest; a
    manifest without them, or with dates that are not ISO dates, is refused as damaged."""
    try:
        lock = manifest.get("lock_date")
        return (
            str(manifest["close_id"]),
            str(manifest["run_kind"]),
            dt.date.fromisoformat(manifest["closing_date"]),
            dt.date.fromisoformat(lock) if lock is not None else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"invclose result at {path} has a damaged manifest: {exc!r}"
        raise InvcloseError(msg) from exc


def identity_problems(
    manifest_identity: tuple[str, str, dt.date, dt.date | None],
    other_ids: Mapping[str, str],
    latest_open: dt.date | None,
) -> list[str]:
    """What disagrees between a result's identity and its tables (empty when nothing does).

    ``manifest_identity`` is (``close_id``, ``run_kind``, closing date, lock date);
    ``other_ids`` a ``close_id`` other than the run's found in a table, by table name;
    ``latest_open`` the latest date of the open items. Every row carries the run's
    ``close_id``; a close locks its closing date, and no run locks a later date; the open
    rows are dated on or before the closing date.

    >>> import datetime as dt
    >>> identity_problems(("C1", "close", dt.date(2025, 1, 31), dt.date(2025, 1, 30)), {}, None)
    ['a close at 2025-01-31 must lock that date, not 2025-01-30']
    """
    _close_id, run_kind, closing, lock = manifest_identity
    problems = [f"{table} rows carry close_id {other!r}" for table, other in other_ids.items()]
    if run_kind == "close" and lock != closing:
        problems.append(f"a close at {closing.isoformat()} must lock that date, not {lock}")
    if lock is not None and lock > closing:
        problems.append(f"lock date {lock.isoformat()} after the closing date")
    if latest_open is not None and latest_open > closing:
        problems.append(f"open items dated {latest_open.isoformat()}, after the closing date")
    return problems


def refuse_identity_problems(
    path: str | Path, close_id: str, closing: dt.date, problems: Sequence[str]
) -> None:
    """Raise when :func:`identity_problems` found any."""
    if problems:
        msg = (
            f"invclose result at {path}: manifest.json does not match its tables "
            f"(close_id {close_id!r}, closing date {closing.isoformat()}): "
            + "; ".join(problems)
            + ". Write the result again from its close, or restore the manifest."
        )
        raise InvcloseError(msg)


def verify_files(path: str | Path, manifest: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Check that every table file exists and matches the manifest's SHA-256; return manifest.

    Used when tables are exposed straight from the files (DuckDB views) without loading them.
    """
    root = Path(path)
    manifest = dict(manifest) if manifest is not None else read_manifest(root)
    problems = []
    for table in RESULT_TABLES:
        file, _rows, sha = _table_entry(manifest, table, root)
        if not file.is_file():
            problems.append(f"{file.name} is missing")
        elif file_sha256(file) != sha:
            problems.append(f"{file.name} does not match its sha256 in the manifest")
    if problems:
        msg = f"invclose result at {root} is damaged or was modified: " + "; ".join(problems)
        raise InvcloseError(msg)
    return manifest


# --------------------------------------------------------------------------- read


def read_result_dir(path: str | Path) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    """Read a result directory: its manifest and every table, all verified.

    Raises :class:`~invclose.errors.InvcloseError` naming every file that is missing, does not
    match its SHA-256 or row count, cannot be parsed, or does not have its table's schema.
    """
    root = Path(path)
    manifest = read_manifest(root)
    dims: list[str] = manifest["dimensions"]
    tables: dict[str, pl.DataFrame] = {}
    problems: list[str] = []
    for table in RESULT_TABLES:
        file, rows, sha = _table_entry(manifest, table, root)
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            problems.append(f"{file.name} is missing")
            continue
        if hashlib.sha256(data).hexdigest() != sha:
            problems.append(f"{file.name} does not match its sha256 in the manifest")
            continue
        try:
            frame = pl.read_parquet(io.BytesIO(data))
        except Exception as exc:  # a file with the right hash that fails to parse
            problems.append(f"{file.name} cannot be read as Parquet: {exc}")
            continue
        if frame.height != rows:
            problems.append(f"{file.name} has {frame.height} rows, the manifest says {rows}")
        frame = _with_later_columns(frame, table, dims)
        problems.extend(schema_problems(frame, table, dims))
        tables[table] = frame
    if problems:
        msg = f"invclose result at {root} is damaged or was modified: " + "; ".join(problems)
        raise InvcloseError(msg)
    return manifest, tables


# --------------------------------------------------------------------------- write


def _check_target(target: Path) -> None:
    """Refuse a target that is a file, or a non-empty directory that is not a result."""
    if not os.path.lexists(target):
        return
    if not target.is_dir():
        msg = f"cannot write an invclose result to {target}: it exists and is not a directory"
        raise InvcloseError(msg)
    if any(target.iterdir()) and not is_result_dir(target):
        msg = (
            f"refusing to overwrite {target}: it is a non-empty directory that is not an "
            f"invclose result (no invclose {MANIFEST_NAME}); write to a new or empty directory"
        )
        raise InvcloseError(msg)
    # The new result replaces the whole directory: anything else in it would be lost.
    own = {MANIFEST_NAME, *(table_file(t) for t in RESULT_TABLES)}
    others = sorted(p.name for p in target.iterdir() if p.name not in own)
    if others:
        listed = ", ".join(others[:10]) + (
            f" and {len(others) - 10} more" if len(others) > 10 else ""
        )
        msg = (
            f"refusing to overwrite the invclose result at {target}: it also holds {listed}, "
            "which writing a result there would delete; move them, or write to another directory"
        )
        raise InvcloseError(msg)


def check_target(path: str | Path) -> Path:
    """``path`` as a result target, refused before any work when a result cannot go there
    (a file, or a non-empty directory that is not a result or holds other files)."""
    target = Path(path).expanduser()
    if target.is_symlink():
        # A link to the result (out/current -> out/2025-01, a mounted volume) is followed:
        # the directory it names is replaced, and the link keeps naming it. Swapping the link
        # itself left the old result where it points and a real directory in its place. A
        # link that loops stays as given, and is refused as no directory.
        with contextlib.suppress(OSError, RuntimeError):
            target = target.resolve()
    _check_target(target)
    return target


def sibling_dir(target: Path, kind: str) -> Path:
    """A fresh hidden directory beside ``target`` (``.<name>.<kind>-<uuid>``) for the files
    before they are published; a place that cannot be written is named by ``target``."""
    made = target.parent / f".{target.name}.{kind}-{uuid.uuid4().hex}"
    try:
        made.mkdir(parents=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        msg = (
            f"cannot write an invclose result to {target}: {reason} (creating a directory "
            f"beside it, in {target.parent}); write to a directory you can create files in"
        )
        raise InvcloseError(msg) from None
    return made


def _fsync_dir(path: Path) -> None:
    """Flush a directory entry to disk where the platform allows it."""
    if sys.platform == "win32":  # pragma: no cover - no directory fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _rename_exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    renameat2.restype = ctypes.c_int
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return bool(rc == 0)


def _publish(tmp: Path, target: Path) -> None:
    """Move the finished directory ``tmp`` onto ``target`` atomically."""
    _check_target(target)  # again, right before the swap
    if not os.path.lexists(target):
        try:
            os.rename(tmp, target)
        except OSError as exc:  # created meanwhile by someone else
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            _check_target(target)
        else:
            return
    if _rename_exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous result
        return
    # Fallback (non-Linux or no renameat2): rename the old result aside, then the new in place.
    aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex}")
    os.rename(target, aside)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def write_result_dir(
    path: str | Path, tables: Mapping[str, pl.DataFrame], metadata: Mapping[str, Any]
) -> Path:
    """Write ``tables`` and a manifest with ``metadata`` to directory ``path``, atomically.

    ``metadata`` must be JSON-serialisable and include ``dimensions``. Returns the path of the
    written directory. An existing invclose result (or an empty directory) at ``path`` is
    replaced in one step; anything else at ``path`` is refused with an
    :class:`~invclose.errors.InvcloseError`.
    """

    def fill(tmp: Path) -> dict[str, int]:
        rows = {}
        for table, frame in tables.items():
            frame.write_parquet(tmp / table_file(table), compression="zstd", statistics=True)
            rows[table] = frame.height
        return rows

    return publish_result_dir(path, fill, metadata)


def publish_result_dir(
    path: str | Path,
    fill: Callable[[Path], Mapping[str, int]],
    metadata: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
) -> Path:
    """Let ``fill`` write the table files into a fresh directory, then publish it atomically.

    ``fill(tmp)`` writes ``<table>.parquet`` for every result table into ``tmp`` and returns
    the row count of each; the manifest (with each file's SHA-256) is written here. ``metadata``
    may be a function, called after ``fill`` (a batched close only knows its id at the end).
    If ``fill`` raises, nothing at ``path`` changes.
    """
    target = check_target(path)
    tmp = sibling_dir(target, "tmp")
    try:
        rows = fill(tmp)
        entries: dict[str, dict[str, Any]] = {}
        for table, count in rows.items():
            file = tmp / table_file(table)
            _fsync_file(file)
            entries[table] = {"file": file.name, "rows": count, "sha256": file_sha256(file)}
        manifest: dict[str, Any] = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION}
        manifest.update(metadata() if callable(metadata) else metadata)
        manifest["tables"] = entries
        manifest_path = tmp / MANIFEST_NAME
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _fsync_file(manifest_path)
        _fsync_dir(tmp)
        _publish(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(target.parent)
    return target
