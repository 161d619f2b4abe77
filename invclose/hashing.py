"""Stable content hashes of rows and of whole tables.

``close_id`` and ``closed_items.row_hash`` must be the same on every machine, in every process
and with every library version, so nothing here uses Polars' ``hash()`` (seeded and free to
change between releases). Instead every row is written as a **canonical text** and that text is
hashed with SHA-256, a standard digest: vectorised over the Arrow data by the ``polars-hash``
plugin (Rust's ``sha2``; :func:`sha256_hex`), which takes about 40 % of the CPU time DuckDB's
``sha256`` took for the same texts on a 1e6-row close. MD5, kept for callers that ask for it,
is DuckDB's.

Canonical row text
------------------
The fields of the chosen columns, in the order given, joined by ``|``. Each field is

* ``-`` when the value is null;
* ``<n>:<text>`` otherwise, where ``<text>`` is the value's text below and ``<n>`` the length of
  ``<text>`` in UTF-8 bytes (decimal digits). The length prefix makes the encoding injective:
  an empty string is ``0:``, distinct from null, and no value can fake a separator.

Value texts by dtype:

=====================  ===============================================================
String, Categorical    the string itself (UTF-8, no normalisation)
Decimal(p, s)          plain decimal at the column's fixed scale ``s``: ``2.500000``,
                       ``-0.05``, ``0.00`` (no exponent, no thousands separator)
Date                   ISO ``YYYY-MM-DD``
Int*, UInt*            base-10 integer, ``-`` sign for negatives
Boolean                ``true`` / ``false``
Null (all-null)        every value is null (``-``)
List(one of the above) ``[`` + element fields (same field encoding) joined by ``|`` + ``]``;
                       ``[]`` for an empty list
=====================  ===============================================================

Binary floats, datetimes, structs and nested lists are refused: they have no canonical text
here. Because a Decimal is written at its column's scale, conform frames to their schema
(:func:`invclose.schemas.conform`) before hashing.

Example: the row ``txn_id="T1", qty=Decimal(38,6) 2.5, amount=null, date=2025-01-31, kind=""``
has the canonical text ``2:T1|8:2.500000|-|10:2025-01-31|0:``, and its hash is the lowercase hex
SHA-256 of those UTF-8 bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

import duckdb
import polars as pl
import polars_hash

from invclose.errors import InvcloseError

__all__ = ["canonical_text", "content_id", "row_hashes", "sha256_hex"]

#: Text of a null field.
NULL_FIELD = "-"
#: Separator between fields (and between list elements).
FIELD_SEPARATOR = "|"

Algorithm = Literal["sha256", "md5"]


def _value_text(expr: pl.Expr, dtype: pl.DataType, column: str) -> pl.Expr:
    """The text of each value of ``expr`` (null where the value is null)."""
    if dtype == pl.String:
        return expr
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return expr.cast(pl.String)
    if isinstance(dtype, pl.Decimal):
        # Polars writes Decimals as plain fixed-point text at the dtype's scale.
        return expr.cast(pl.String)
    if dtype == pl.Date:
        return expr.dt.to_string("%Y-%m-%d")
    if dtype.is_integer():
        return expr.cast(pl.String)
    if dtype == pl.Boolean:
        return (
            pl.when(expr.is_null())
            .then(pl.lit(None, dtype=pl.String))
            .when(expr)
            .then(pl.lit("true"))
            .otherwise(pl.lit("false"))
        )
    if dtype == pl.Null:
        return pl.lit(None, dtype=pl.String)
    if isinstance(dtype, pl.List) and not isinstance(dtype.inner, pl.List | pl.Array):
        inner_dtype = dtype.inner
        if not isinstance(inner_dtype, pl.DataType):  # a bare class such as pl.String
            inner_dtype = inner_dtype()
        inner = _field(pl.element(), inner_dtype, column)
        return pl.concat_str(
            [pl.lit("["), expr.list.eval(inner).list.join(FIELD_SEPARATOR), pl.lit("]")]
        )
    msg = (
        f"column {column!r} has dtype {dtype}, which has no canonical text for hashing; "
        "use String, Decimal, Date, integer, Boolean or a List of those"
    )
    raise InvcloseError(msg)


#: A Date column spanning at most this many days is formatted once per day in its range.
_DATE_TABLE_DAYS = 1 << 16


def _date_texts(dates: pl.Series) -> pl.Series:
    """ISO texts of a Date column (null where null), each day in its range formatted once.

    A month of transactions has a few dozen distinct dates; formatting a million dates one
    by one costs more than a gather from a table of their texts.

    >>> import datetime as dt
    >>> import polars as pl
    >>> _date_texts(pl.Series([dt.date(2025, 1, 31), None, dt.date(2024, 12, 1)])).to_list()
    ['2025-01-31', None, '2024-12-01']
    """
    days = dates.cast(pl.Int32)
    lo, hi = days.min(), days.max()
    if not isinstance(lo, int) or not isinstance(hi, int) or hi - lo > _DATE_TABLE_DAYS:
        return dates.dt.to_string("%Y-%m-%d")
    table = pl.int_range(lo, hi + 1, dtype=pl.Int32, eager=True).cast(pl.Date)
    return table.dt.to_string("%Y-%m-%d").gather((days - lo).cast(pl.get_index_type()))


def _field(expr: pl.Expr, dtype: pl.DataType, column: str) -> pl.Expr:
    """One field of the canonical text: ``-`` for null, else ``<bytes>:<text>``."""
    text = _value_text(expr, dtype, column)
    return (
        pl.when(text.is_null())
        .then(pl.lit(NULL_FIELD))
        .otherwise(pl.concat_str([text.str.len_bytes().cast(pl.String), pl.lit(":"), text]))
    )


def canonical_text(frame: pl.DataFrame, columns: Sequence[str]) -> pl.Series:
    """The canonical text of every row over ``columns`` (see the module docstring).

    >>> import polars as pl
    >>> frame = pl.DataFrame({"a": ["x", "", None], "n": [1, 22, None]})
    >>> canonical_text(frame, ["a", "n"]).to_list()
    ['1:x|1:1', '0:|2:22', '-|-']
    """
    columns = list(columns)
    if not columns:
        msg = "row hashes need at least one column"
        raise InvcloseError(msg)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        msg = f"cannot hash rows: columns {missing} are not in the frame ({frame.columns})"
        raise InvcloseError(msg)
    schema = frame.schema
    n = frame.height
    # The general fields, in column order (this also refuses dtypes without a canonical text).
    fields = [_field(pl.col(c), schema[c], c) for c in columns]
    if n == 0:
        return frame.select(
            pl.concat_str(fields, separator=FIELD_SEPARATOR).alias("canonical_text")
        ).to_series()
    # The same text, built in one flat concatenation from each column's value texts, computed
    # once. A column of nulls is the literal "-"; a column without nulls needs no null branch;
    # a text of one byte length everywhere (fixed-width ids, ISO dates) gets its length prefix
    # as a literal, and other prefixes (with the separator before them) are picked from a small
    # table by length instead of formatting every length as text.
    general = {k for k, c in enumerate(columns) if isinstance(schema[c], pl.List | pl.Boolean)}
    counts = [pl.col(c).null_count().alias(str(k)) for k, c in enumerate(columns)]
    nulls = frame.select(counts).row(0)
    plain = {
        k
        for k, c in enumerate(columns)
        if k not in general and schema[c] != pl.Null and nulls[k] < n
    }
    texts = frame.select(
        [
            _value_text(pl.col(c), schema[c], c).alias(str(k))
            for k, c in enumerate(columns)
            if k in plain and schema[c] != pl.Date
        ]
    ).with_columns(
        _date_texts(frame[c]).alias(str(k))
        for k, c in enumerate(columns)
        if k in plain and schema[c] == pl.Date
    )
    longest_table = 4096  # longer texts format their lengths instead

    def prefixes(lengths: pl.Series, before: str, longest: int) -> list[pl.Series | str]:
        if longest > longest_table:
            return [before, lengths.cast(pl.String), ":"]
        table = pl.Series([f"{before}{size}:" for size in range(longest + 1)], dtype=pl.String)
        return [table.gather(lengths)]

    parts: list[pl.Series | pl.Expr | str] = []
    for k in range(len(columns)):
        sep = FIELD_SEPARATOR if k else ""
        if k in general:
            parts += [sep, fields[k]]
            continue
        if k not in plain:  # every value null
            parts.append(sep + NULL_FIELD)
            continue
        text = texts[str(k)]
        lengths = text.str.len_bytes()
        lo, hi = lengths.to_frame().select(pl.all().min(), pl.all().max().alias("hi")).row(0)
        if not nulls[k]:
            parts += [*([f"{sep}{lo}:"] if lo == hi else prefixes(lengths, sep, hi)), text]
            continue
        head = [f"{lo}:"] if lo == hi else prefixes(lengths, "", hi)
        field = pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in [*head, text]])
        parts += [sep, field.fill_null(pl.lit(NULL_FIELD))]
    merged: list[pl.Series | pl.Expr] = []
    pending = ""
    for part in parts:
        if isinstance(part, str):
            pending += part
            continue
        if pending:
            merged.append(pl.lit(pending))
            pending = ""
        merged.append(part)
    if not merged:  # every field a literal
        return pl.repeat(pending, n, dtype=pl.String, eager=True).alias("canonical_text")
    if pending:
        merged.append(pl.lit(pending))
    return frame.select(pl.concat_str(merged).alias("canonical_text")).to_series()


#: Rows whose canonical texts are built and hashed at a time: the texts of a large frame
#: never exist all at once (at 1e7 rows they would take some 2 GB beside the close).
ROW_HASH_SLICE = 1 << 20


def row_hashes(
    frame: pl.DataFrame,
    columns: Sequence[str],
    *,
    algorithm: Algorithm = "sha256",
    threads: int | None = None,
) -> pl.Series:
    """Lowercase hex SHA-256 (or MD5) of each row's canonical text over ``columns``.

    Stable across processes, machines and library versions: the text format is fixed (module
    docstring) and the digest is a standard one. Vectorised: Polars builds the texts and
    :func:`sha256_hex` hashes them (DuckDB for MD5), :data:`ROW_HASH_SLICE` rows at a time
    (a row's text does not depend on the other rows). Returns a String Series ``row_hash``
    of the frame's height, in one chunk. ``threads`` caps DuckDB's threads for MD5 (its
    default: one per core); SHA-256 runs on the calling thread.

    >>> import polars as pl
    >>> row_hashes(pl.DataFrame({"a": ["x"]}), ["a"]).item()[:16]
    '553f121d1ecef2a1'
    """
    if algorithm not in ("sha256", "md5"):
        msg = f"unknown hash algorithm {algorithm!r}; expected 'sha256' or 'md5'"
        raise InvcloseError(msg)
    texts = (
        canonical_text(frame.slice(start, ROW_HASH_SLICE), columns)
        for start in range(0, max(frame.height, 1), ROW_HASH_SLICE)
    )
    parts = [_hash_texts(text, algorithm, threads) for text in texts if text.len()]
    if not parts:
        return pl.Series("row_hash", [], dtype=pl.String)
    # One chunk: DuckDB hands back many, and a later gather of long strings across many
    # chunks is some 20x slower than this copy and a gather from one.
    return pl.concat(parts, rechunk=True)


def sha256_hex(texts: pl.Series) -> pl.Series:
    """Lowercase hex SHA-256 of the UTF-8 bytes of each of ``texts`` (String, no nulls).

    Named ``row_hash``, one chunk, in the order of ``texts``.

    >>> import polars as pl
    >>> sha256_hex(pl.Series(["", "a"])).str.slice(0, 8).to_list()
    ['e3b0c442', 'ca978112']
    """
    out = (
        pl.DataFrame({"t": texts.cast(pl.String)})
        .select(polars_hash.col("t").chash.sha2_256().alias("row_hash"))
        .to_series()
    )
    if out.len() != texts.len() or out.null_count() != texts.null_count():  # pragma: no cover
        msg = "internal: the SHA-256 plugin returned a different number of digests"
        raise AssertionError(msg)
    return out.rechunk()


def _hash_texts(text: pl.Series, algorithm: Algorithm, threads: int | None) -> pl.Series:
    """The hex digests of ``text`` (String, no nulls), in row order."""
    if algorithm == "sha256":
        return sha256_hex(text)
    texts = pl.DataFrame({"t": text})
    # Arrow string views hand the texts to DuckDB without a copy; a DuckDB that cannot read
    # them gets plain Arrow strings.
    levels = (pl.CompatLevel.newest(), pl.CompatLevel.oldest())
    for level in levels:
        con = duckdb.connect()
        try:
            # Insertion order is preserved by DuckDB for a plain projection (the default setting
            # preserve_insertion_order = true, set explicitly so a global change cannot break it).
            con.execute("SET preserve_insertion_order = true")
            if threads is not None:
                con.execute(f"SET threads = {int(threads)}")
            con.register("invclose_rows", texts.to_arrow(compat_level=level))
            hashed: pl.DataFrame = con.sql(
                f"SELECT {algorithm}(t) AS row_hash FROM invclose_rows"
            ).pl()
            break
        except duckdb.Error:
            if level is levels[-1]:
                raise
        finally:
            con.close()
    out = hashed.to_series().cast(pl.String).alias("row_hash")
    if out.len() != text.len():  # pragma: no cover - defensive
        msg = "internal: DuckDB returned a different number of row hashes"
        raise AssertionError(msg)
    return out


def _sorted_hashes(hashes: pl.Series) -> pl.Series:
    """``hashes`` in byte order; hex digests are sorted on an integer key first.

    For lowercase hex strings of one length, byte order is the order of their first 15 digits
    as an integer, with the full string breaking ties: the same order, without comparing a
    million long strings.
    """
    frame = pl.DataFrame({"h": hashes})
    is_hex = frame.select(
        (pl.col("h").str.len_bytes().n_unique() == 1)
        & pl.col("h").str.contains(r"^[0-9a-f]{15,}$").all()
    ).item()
    if not is_hex:
        return hashes.sort()
    key = pl.col("h").str.slice(0, 15).str.to_integer(base=16)
    return frame.sort(key, pl.col("h"))["h"]


def content_id(hashes: pl.Series, *parts: str, prefix: str = "C") -> str:
    """An order-independent id of a set of row hashes plus some extra text parts.

    The SHA-256 is taken over the UTF-8 bytes of: every hash followed by ``\\n``, in sorted
    (byte) order, duplicates kept; then for each part, in the order given, ``\\x1e`` +
    ``<byte length>:`` + the part. The id is ``prefix`` + the first 16 hex digits.

    >>> import polars as pl
    >>> a = content_id(pl.Series(["b1", "a2"]), "cfg")
    >>> a == content_id(pl.Series(["a2", "b1"]), "cfg") and a.startswith("C")
    True
    """
    if hashes.null_count():
        msg = "content_id: the hashes must not contain nulls"
        raise InvcloseError(msg)
    digest = hashlib.sha256()
    if hashes.len():
        joined = str(_sorted_hashes(hashes.cast(pl.String)).str.join("\n").item())
        digest.update(joined.encode("utf-8"))
        digest.update(b"\n")
    for part in parts:
        raw = str(part).encode("utf-8")
        digest.update(b"\x1e" + str(len(raw)).encode("ascii") + b":" + raw)
    return prefix + digest.hexdigest()[:16]


#: 32-bit words of each row hash summed per group by :func:`group_digests`.
_WORDS = 4


def group_digests(groups: pl.Series, hashes: pl.Series) -> pl.DataFrame:
    """One digest per group of hex row hashes: ``group`` and ``digest`` (hex SHA-256).

    A group's rows are summarised without sorting them: the row count and, for each of the
    four 32-bit words in the first 32 hex digits of the row hashes, the sum over the group's
    rows (an order-independent multiset hash). The digest is :func:`row_hashes` over
    ``group, rows, w0, w1, w2, w3`` (integers in base-10 text). Digests of different groups
    never depend on each other, so a run split into batches of whole groups yields the same
    digests.

    >>> import polars as pl
    >>> h = ["ab" * 32, "cd" * 32, "ef" * 32]
    >>> d = group_digests(pl.Series(["A", "B", "A"]), pl.Series(h))
    >>> d["group"].to_list(), d["digest"].str.len_bytes().to_list()
    (['A', 'B'], [64, 64])
    """
    frame = pl.DataFrame({"group": groups.cast(pl.String), "h": hashes.cast(pl.String)})
    if frame.height == 0:
        return pl.DataFrame(schema={"group": pl.String, "digest": pl.String})
    words = [f"w{k}" for k in range(_WORDS)]
    try:
        # 32-bit words: their sums fit an Int64 for up to 2**31 rows per group.
        split = frame.select(
            "group",
            *[
                pl.col("h").str.slice(8 * k, 8).str.to_integer(base=16).alias(w)
                for k, w in enumerate(words)
            ],
        )
    except pl.exceptions.InvalidOperationError as exc:
        msg = f"group_digests: row hashes must be hex digests ({exc})"
        raise InvcloseError(msg) from exc
    shortest = frame.select(pl.col("h").str.len_bytes().min()).item()
    if split.null_count().sum_horizontal().item() or int(shortest or 0) < 8 * _WORDS:
        msg = "group_digests: groups and hashes must not be null, hashes at least 32 hex digits"
        raise InvcloseError(msg)
    sums = (
        split.group_by("group")
        .agg(pl.len().cast(pl.Int64).alias("rows"), *[pl.col(w).sum() for w in words])
        .sort("group")
    )
    return sums.select("group", digest=row_hashes(sums, ["group", "rows", *words]))
