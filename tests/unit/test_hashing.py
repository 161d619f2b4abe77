"""Stable row hashes and order-independent content ids."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from invclose import hashing
from invclose.errors import InvcloseError
from invclose.hashing import canonical_text, content_id, row_hashes
from invclose.schemas import MONEY, QTY

D = Decimal

FIXED_SCHEMA = {
    "txn_id": pl.String(),
    "qty": QTY,
    "amount": MONEY,
    "date": pl.Date(),
    "kind": pl.String(),
    "adjusted_against": pl.List(pl.String()),
    "seq": pl.Int64(),
    "is_virtual": pl.Boolean(),
    "note": pl.String(),
}
FIXED_ROW = {
    "txn_id": ["T1"],
    "qty": [D("2.5")],
    "amount": [None],
    "date": [dt.date(2025, 1, 31)],
    "kind": [""],
    "adjusted_against": [["R1", None, ""]],
    "seq": [7],
    "is_virtual": [False],
    "note": ["é|x"],
}
# The canonical text, written out by hand from the format in invclose.hashing's docstring:
# null -> "-", else "<utf-8 byte length>:<text>"; fields joined by "|"; Decimal at its scale;
# ISO date; list as "[" + element fields joined by "|" + "]" (then length-prefixed itself).
FIXED_TEXT = "2:T1|8:2.500000|-|10:2025-01-31|0:|11:[2:R1|-|0:]|1:7|5:false|4:é|x"
# sha256 of FIXED_TEXT's UTF-8 bytes, computed once and frozen: a change means every stored
# row_hash (and so every close_id) would change.
FIXED_SHA256 = "4e5aeea45cda9d7719f28884a31fcf1a38e3eb76826b20b3f6896542f78817f9"
FIXED_MD5 = "7a31689aa2f01deed21f065aea99e13d"


@pytest.fixture
def fixed() -> pl.DataFrame:
    return pl.DataFrame(FIXED_ROW, schema=FIXED_SCHEMA)


def test_canonical_text_of_fixed_row(fixed: pl.DataFrame) -> None:
    assert canonical_text(fixed, list(FIXED_SCHEMA)).to_list() == [FIXED_TEXT]


def test_fixed_row_hash_is_frozen(fixed: pl.DataFrame) -> None:
    assert hashlib.sha256(FIXED_TEXT.encode("utf-8")).hexdigest() == FIXED_SHA256
    assert hashlib.md5(FIXED_TEXT.encode("utf-8")).hexdigest() == FIXED_MD5
    hashes = row_hashes(fixed, list(FIXED_SCHEMA))
    assert hashes.name == "row_hash"
    assert hashes.dtype == pl.String
    assert hashes.to_list() == [FIXED_SHA256]
    assert row_hashes(fixed, list(FIXED_SCHEMA), algorithm="md5").to_list() == [FIXED_MD5]


@given(st.lists(st.text(), max_size=40))
def test_sha256_hex_is_the_standard_sha256_of_each_text(texts: list[str]) -> None:
    # hashlib (OpenSSL) is the independent reference for the vectorised plugin.
    got = hashing.sha256_hex(pl.Series(texts, dtype=pl.String))
    assert got.name == "row_hash"
    assert got.to_list() == [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]


def test_column_order_and_selection_matter(fixed: pl.DataFrame) -> None:
    a = row_hashes(fixed, ["txn_id", "kind"]).item()
    b = row_hashes(fixed, ["kind", "txn_id"]).item()
    assert a != b
    assert a == hashlib.sha256(b"2:T1|0:").hexdigest()


def test_null_and_empty_string_are_distinct() -> None:
    frame = pl.DataFrame({"s": ["", None, "-", "0:"]}, schema={"s": pl.String})
    assert canonical_text(frame, ["s"]).to_list() == ["0:", "-", "1:-", "2:0:"]
    assert row_hashes(frame, ["s"]).n_unique() == 4


def test_lists_null_empty_and_null_elements_are_distinct() -> None:
    frame = pl.DataFrame(
        {"l": [None, [], [""], [None], ["a", "b"], ["a|1:b"]]},
        schema={"l": pl.List(pl.String)},
    )
    assert canonical_text(frame, ["l"]).to_list() == [
        "-",
        "2:[]",
        "4:[0:]",
        "3:[-]",
        "9:[1:a|1:b]",
        "9:[5:a|1:b]",
    ]
    assert row_hashes(frame, ["l"]).n_unique() == 6


def test_separators_inside_values_cannot_collide() -> None:
    frame = pl.DataFrame({"a": ["x|1:y", "x"], "b": ["z", "y|1:z"]})
    texts = canonical_text(frame, ["a", "b"]).to_list()
    assert texts == ["5:x|1:y|1:z", "1:x|5:y|1:z"]
    assert row_hashes(frame, ["a", "b"]).n_unique() == 2


def test_decimals_at_their_fixed_scale() -> None:
    frame = pl.DataFrame(
        {"m": [D("2.5"), D("0"), D("-0.05")], "q": [D("2.5"), D("0"), D("-0.05")]},
        schema={"m": MONEY, "q": QTY},
    )
    assert canonical_text(frame, ["m", "q"]).to_list() == [
        "4:2.50|8:2.500000",
        "4:0.00|8:0.000000",
        "5:-0.05|9:-0.050000",
    ]


def test_other_supported_dtypes() -> None:
    frame = pl.DataFrame(
        {
            "i": [-3, None],
            "u": [7, 8],
            "b": [True, None],
            "c": ["x", "y"],
            "n": [None, None],
            "d": [dt.date(5, 1, 1), None],
        },
        schema={
            "i": pl.Int32,
            "u": pl.UInt8,
            "b": pl.Boolean,
            "c": pl.Categorical(),
            "n": pl.Null,
            "d": pl.Date,
        },
    )
    assert canonical_text(frame, frame.columns).to_list() == [
        "2:-3|1:7|4:true|1:x|-|10:0005-01-01",
        "-|1:8|-|1:y|-|-",
    ]


@pytest.mark.parametrize(
    ("frame", "columns", "needle"),
    [
        (pl.DataFrame({"f": [1.5]}), ["f"], "no canonical text"),
        (pl.DataFrame({"t": [dt.datetime(2025, 1, 1)]}), ["t"], "no canonical text"),
        (pl.DataFrame({"a": ["x"]}), ["b"], "not in the frame"),
        (pl.DataFrame({"a": ["x"]}), [], "at least one column"),
    ],
)
def test_refuses_what_has_no_canonical_text(
    frame: pl.DataFrame, columns: list[str], needle: str
) -> None:
    with pytest.raises(InvcloseError, match=needle):
        row_hashes(frame, columns)


def test_unknown_algorithm() -> None:
    with pytest.raises(InvcloseError, match="algorithm"):
        row_hashes(pl.DataFrame({"a": ["x"]}), ["a"], algorithm="sha1")  # type: ignore[arg-type]


def test_empty_frame() -> None:
    out = row_hashes(pl.DataFrame(schema={"a": pl.String}), ["a"])
    assert out.len() == 0
    assert out.dtype == pl.String


def test_row_hash_depends_only_on_its_row_and_keeps_order() -> None:
    n = 100_000
    frame = pl.DataFrame(
        {
            "txn_id": [f"T{i}" for i in range(n)],
            "amount": [D(i) / 100 for i in range(n)],
        },
        schema={"txn_id": pl.String, "amount": MONEY},
    )
    hashes = row_hashes(frame, ["txn_id", "amount"])
    assert hashes.len() == n
    for i in (0, 1, 12_345, n - 1):
        amount = f"{D(i) / 100:.2f}"
        text = f"{len(f'T{i}')}:T{i}|{len(amount)}:{amount}"
        assert hashes[i] == hashlib.sha256(text.encode()).hexdigest()
        assert row_hashes(frame.slice(i, 1), ["txn_id", "amount"]).item() == hashes[i]
    shuffled = frame.with_row_index("pos").sample(fraction=1.0, shuffle=True, seed=7)
    again = row_hashes(shuffled, ["txn_id", "amount"])
    assert (again == hashes.gather(shuffled["pos"])).all()


def test_a_frame_hashed_in_slices_gives_each_row_its_own_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Slices of 3 rows: the first has no nulls and one text length, the second a null and
    # several lengths, the third one all-null column and a single row left over. Every row's
    # text is written out by hand from the format (null "-", else "<bytes>:<text>").
    monkeypatch.setattr(hashing, "ROW_HASH_SLICE", 3)
    texts_built: list[int] = []
    build = hashing.canonical_text

    def counted(frame: pl.DataFrame, columns: list[str]) -> pl.Series:
        texts_built.append(frame.height)
        return build(frame, columns)

    monkeypatch.setattr(hashing, "canonical_text", counted)
    ids = ["A1", "B2", "C3", "D", None, "Fé", "G7", "H8", "I9", "J10"]
    qty = [1, 2, 3, -40, 5, None, None, None, None, 6]
    frame = pl.DataFrame({"id": ids, "q": qty}, schema={"id": pl.String, "q": pl.Int64})

    def field(value: object) -> str:
        if value is None:
            return "-"
        text = str(value)
        return f"{len(text.encode())}:{text}"

    expected = [
        hashlib.sha256(f"{field(i)}|{field(q)}".encode()).hexdigest()
        for i, q in zip(ids, qty, strict=True)
    ]
    hashes = row_hashes(frame, ["id", "q"])
    assert hashes.to_list() == expected
    assert hashes.n_chunks() == 1
    assert texts_built == [3, 3, 3, 1]  # the texts of one slice at a time
    assert hashes.name == "row_hash"


def test_content_id_is_order_independent() -> None:
    hashes = pl.Series(["b" * 64, "a" * 64, "c" * 64])
    first = content_id(hashes, "cfg", "2025-01-31")
    assert first == content_id(hashes.reverse(), "cfg", "2025-01-31")
    assert first == content_id(hashes.sort(), "cfg", "2025-01-31")
    assert first.startswith("C")
    assert len(first) == 17


def test_content_id_is_sensitive_to_content_parts_and_multiplicity() -> None:
    hashes = pl.Series(["a" * 64, "b" * 64])
    base = content_id(hashes, "cfg")
    assert base != content_id(hashes, "cfg2")
    assert base != content_id(hashes)
    assert base != content_id(pl.Series(["a" * 64, "b" * 64, "b" * 64]), "cfg")
    assert base != content_id(pl.Series(["a" * 64]), "cfg")
    # parts are length-prefixed: moving text between parts changes the id
    assert content_id(hashes, "ab", "c") != content_id(hashes, "a", "bc")
    assert content_id(hashes, "cfg", prefix="R") == "R" + base[1:]


def test_content_id_value_is_frozen() -> None:
    # sha256 over each sorted hash + "\n", then per part "\x1e<byte length>:<part>".
    raw = b"a" * 64 + b"\n" + b"b" * 64 + b"\n" + b"\x1e3:cfg" + b"\x1e10:2025-01-31"
    expected = "C" + hashlib.sha256(raw).hexdigest()[:16]
    assert expected == "C1666edeae1ffec8c"
    assert content_id(pl.Series(["b" * 64, "a" * 64]), "cfg", "2025-01-31") == expected


def test_content_id_of_no_rows_and_nulls() -> None:
    empty = content_id(pl.Series([], dtype=pl.String), "cfg")
    assert empty == "C" + hashlib.sha256(b"\x1e3:cfg").hexdigest()[:16]
    with pytest.raises(InvcloseError, match="nulls"):
        content_id(pl.Series(["a", None]), "cfg")
