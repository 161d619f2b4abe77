"""Reading transactions (invclose.io.read_transactions) and the float conversion (decimalize)."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import invclose
import invclose.batched
from invclose.errors import InputFileNotFoundError, InputValidationError
from invclose.io import decimalize, read_transactions
from invclose.schemas import input_schema
from invclose.validate import normalize_transactions

D = Decimal

CSV = """txn_id,item_id,site,date,qty,amount,status,seq,marked_to,extra
R1,A,S1,2025-01-02,10,100.00,,1,,x
I1,A,S1,2025-01-05,-4.5,-45.10,financial,2,R1,y
P1,A,S1,2025-01-06,0.000001,0.01,physical,3,,z
"""


def expected_frame() -> pl.DataFrame:
    """The canonical frame of ``CSV``, written by hand."""
    rows = {
        "txn_id": ["R1", "I1", "P1"],
        "item_id": ["A", "A", "A"],
        "date": [dt.date(2025, 1, 2), dt.date(2025, 1, 5), dt.date(2025, 1, 6)],
        "qty": [D("10"), D("-4.5"), D("0.000001")],
        "amount": [D("100.00"), D("-45.10"), D("0.01")],
        "status": ["financial", "financial", "physical"],
        "seq": [1, 2, 3],
        "site": ["S1", "S1", "S1"],
        "marked_to": [None, "R1", None],
    }
    schema = input_schema(["site"])
    frame = pl.DataFrame(rows, schema_overrides={c: schema[c] for c in rows})
    return frame.select(
        [
            (pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in schema.items()
        ]
    )


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    path = tmp_path / "transactions.csv"
    path.write_text(CSV)
    return path


def test_csv_is_read_exactly(csv_path: Path) -> None:
    out = read_transactions(csv_path, dimensions=["site"])
    assert_frame_equal(out, expected_frame())
    assert_frame_equal(read_transactions(str(csv_path), dimensions=["site"]), expected_frame())


def test_csv_never_rounds_through_floats(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "txn_id,item_id,date,qty,amount\n"
        "R1,A,2025-01-02,0.1,0.30\n"
        "R2,A,2025-01-02,123456789012.123456,98765432109876.54\n"
    )
    out = read_transactions(path)
    assert out["qty"].to_list() == [D("0.1"), D("123456789012.123456")]
    assert out["amount"].to_list() == [D("0.30"), D("98765432109876.54")]


def test_csv_with_too_many_decimals_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("txn_id,item_id,date,qty,amount\nR1,A,2025-01-02,1,1.005\n")
    with pytest.raises(InputValidationError) as info:
        read_transactions(path)
    assert "row 0 (txn_id 'R1'), column 'amount' [too_many_decimals]" in str(info.value)


def test_parquet_gives_the_same_frame(csv_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "transactions.parquet"
    pl.read_csv(csv_path, infer_schema=False).write_parquet(path)
    assert_frame_equal(read_transactions(path, dimensions=["site"]), expected_frame())
    typed = tmp_path / "typed.parquet"
    expected_frame().write_parquet(typed)
    assert_frame_equal(read_transactions(typed, dimensions=["site"]), expected_frame())


def test_glob_directory_and_list_of_files(csv_path: Path, tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    whole = pl.read_csv(csv_path, infer_schema=False)
    whole.head(1).write_parquet(parts / "2025-01-a.parquet")
    whole.slice(1, 2).write_csv(parts / "2025-01-b.csv")
    expected = expected_frame()
    assert_frame_equal(read_transactions(str(parts / "2025-01-*"), dimensions=["site"]), expected)
    assert_frame_equal(read_transactions(parts, dimensions=["site"]), expected)
    files = [parts / "2025-01-a.parquet", parts / "2025-01-b.csv"]
    assert_frame_equal(read_transactions(files, dimensions=["site"]), expected)


def test_row_numbers_count_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("txn_id,item_id,date,qty,amount\nR1,A,2025-01-02,1,1\n")
    (tmp_path / "b.csv").write_text("txn_id,item_id,date,qty,amount\nR2,A,2025-01-02,0,1\n")
    with pytest.raises(InputValidationError) as err:
        read_transactions(str(tmp_path / "*.csv"))
    # Row 1 of the two files read together, and row 0 of b.csv, which is named.
    assert f"row 1 (txn_id 'R2'; {tmp_path / 'b.csv'} row 0), column 'qty'" in str(err.value)


def test_a_float_file_among_several_is_named(tmp_path: Path) -> None:
    # Two Parquet files read together: b.parquet holds amount as Float64. The files are
    # concatenated before validation, which could name only the column, not the file.
    exact = pl.DataFrame(
        {"txn_id": ["R1"], "item_id": ["A"], "date": [dt.date(2025, 1, 2)], "qty": [D("1")]}
    ).with_columns(amount=pl.lit(D("1.00"), dtype=pl.Decimal(38, 2)))
    exact.write_parquet(tmp_path / "a.parquet")
    exact.with_columns(txn_id=pl.lit("R2"), amount=pl.lit(1.0)).write_parquet(
        tmp_path / "b.parquet"
    )
    with pytest.raises(InputValidationError) as raised:
        read_transactions(str(tmp_path / "*.parquet"))
    message = str(raised.value)
    assert f"{tmp_path / 'b.parquet'} holds 'amount' as Float64" in message
    assert "a.parquet" not in message
    assert "invclose.decimalize" in message
    failures = raised.value.failures
    assert failures is not None
    assert failures.select("column", "check").rows() == [("amount", "float_type")]


def test_in_memory_frames_are_accepted(csv_path: Path) -> None:
    raw = pl.read_csv(csv_path, infer_schema=False)
    expected = expected_frame()
    for source in (raw, raw.lazy(), raw.to_pandas(), raw.to_arrow()):
        assert_frame_equal(read_transactions(source, dimensions=["site"]), expected)
    assert_frame_equal(normalize_transactions(csv_path, dimensions=["site"]), expected)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no file matches"):
        read_transactions(str(tmp_path / "*.parquet"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_transactions(tmp_path / "absent.csv")


def test_unknown_file_type(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    path.write_text("not a spreadsheet")
    with pytest.raises(InputValidationError, match=r"unknown file type.*\.parquet"):
        read_transactions(path)


# --------------------------------------------------------------------------- decimalize


def test_decimalize_rounds_the_shortest_repr_half_away_from_zero() -> None:
    df = pl.DataFrame(
        {
            "txn_id": ["a", "b", "c", "d", "e", "f"],
            "qty": [1.0000005, -1.0000005, 5e-7, 4.9e-7, 2.0, 1e-300],
            "amount": [2.675, -2.675, 0.125, 1.005, -0.005, 1e15],
        }
    )
    before = df.clone()
    out = decimalize(df)
    assert_frame_equal(df, before)
    assert out.schema == pl.Schema(
        {"txn_id": pl.String(), "qty": pl.Decimal(38, 6), "amount": pl.Decimal(38, 2)}
    )
    # float 2.675 is 2.67499999999999982236431605997495353221893310546875; its shortest
    # repr "2.675" is what is rounded, so it becomes 2.68 (and 1.005 becomes 1.01).
    assert out["amount"].to_list() == [
        D("2.68"),
        D("-2.68"),
        D("0.13"),
        D("1.01"),
        D("-0.01"),
        D("1000000000000000.00"),
    ]
    assert out["qty"].to_list() == [
        D("1.000001"),
        D("-1.000001"),
        D("0.000001"),
        D("0.000000"),
        D("2.000000"),
        D("0.000000"),
    ]


def test_decimalize_leaves_exact_and_absent_columns_alone() -> None:
    df = pl.DataFrame({"qty": ["1.5"], "amount": [D("2.50")], "other": [0.1]})
    out = decimalize(df)
    assert_frame_equal(out, df)


def test_decimalize_cost_share_custom_scales_and_float32() -> None:
    df = pl.DataFrame(
        {
            "cost_share": [0.3333335],
            "price": pl.Series([0.1], dtype=pl.Float32),
        }
    )
    out = decimalize(df, columns=("cost_share", "price"), scales={"price": 3})
    assert out["cost_share"].to_list() == [D("0.333334")]
    assert out["price"].to_list() == [D("0.100")]  # float32 0.1 is read as "0.1"


def test_decimalize_needs_a_scale_for_other_columns() -> None:
    with pytest.raises(InputValidationError, match="no scale for column 'price'"):
        decimalize(pl.DataFrame({"price": [1.5]}), columns=("price",))


def test_decimalize_rejects_nan_and_infinity() -> None:
    df = pl.DataFrame({"txn_id": ["a", "b", "c"], "qty": [1.0, float("nan"), float("inf")]})
    with pytest.raises(InputValidationError) as info:
        decimalize(df)
    message = str(info.value)
    assert "row 1 (txn_id 'b'), column 'qty'" in message
    assert "row 2 (txn_id 'c'), column 'qty'" in message


def test_decimalize_pandas_then_validate() -> None:
    frame = pd.DataFrame(
        {
            "txn_id": ["R1", "I1"],
            "item_id": ["A", "A"],
            "date": ["2025-01-02", "2025-01-03"],
            "qty": [3.0, -1.0],
            "amount": [10.005, np.nan],
        }
    )
    before = frame.copy()
    with pytest.raises(InputValidationError, match="decimalize"):
        normalize_transactions(frame, require_amount=False)
    out = normalize_transactions(decimalize(frame), require_amount=False)
    pd.testing.assert_frame_equal(frame, before)
    assert out["qty"].to_list() == [D("3"), D("-1")]
    assert out["amount"].to_list() == [D("10.01"), None]


def _oracle(value: float, places: int) -> Decimal:
    with decimal.localcontext() as ctx:
        ctx.prec = 80
        return Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@given(
    st.lists(
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e25, max_value=1e25),
        min_size=1,
        max_size=50,
    )
)
def test_decimalize_equals_decimal_of_repr(values: list[float]) -> None:
    out = decimalize(pl.DataFrame({"qty": values, "amount": values}))
    assert out["qty"].to_list() == [_oracle(v, 6) for v in values]
    assert out["amount"].to_list() == [_oracle(v, 2) for v in values]


def test_unreadable_files_are_input_errors(tmp_path: Path) -> None:
    # One reader for every file: a damaged file is an InputValidationError naming it, and a
    # path naming no file is one too (still a FileNotFoundError for existing handlers).
    corrupt = tmp_path / "t.parquet"
    corrupt.write_bytes(b"PAR1 not parquet")
    with pytest.raises(InputValidationError, match=rf"^cannot read {corrupt}: .*; it is damaged"):
        read_transactions(corrupt)
    empty = tmp_path / "t.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputValidationError, match=rf"^cannot read {empty}: .*; the file is empty"):
        read_transactions(empty)
    # A zero-byte Parquet part (a failed writer's) gets Parquet advice, not a header row's.
    hollow = tmp_path / "part-0.parquet"
    hollow.write_bytes(b"")
    with pytest.raises(InputValidationError, match=r"no Parquet footer\): write it again") as err:
        read_transactions(hollow)
    assert "header row" not in str(err.value)
    with pytest.raises(InputValidationError, match="no such file") as missing:
        read_transactions(tmp_path / "absent.csv")
    assert isinstance(missing.value, FileNotFoundError)


class _ArrowStream:
    """Only ``__arrow_c_stream__``: converted by Polars without invclose seeing the types."""

    def __init__(self, table: object) -> None:
        self.table = table

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self.table.__arrow_c_stream__(requested_schema)  # type: ignore[attr-defined]


def test_decimals_wider_than_38_digits_are_input_errors_naming_the_column() -> None:
    # Polars panicked (pyo3_runtime.PanicException, past `except Exception`) on decimal256:
    # Decimal(100.1) is the float's 48 digits, 100.099999999999994315658113919198513031005859375,
    # which PyArrow infers as decimal256(48, 45).
    import pyarrow as pa

    base = {"txn_id": ["R1"], "item_id": ["A"], "date": [dt.date(2025, 1, 2)], "qty": [D("1")]}
    frame = pd.DataFrame({**base, "amount": [Decimal(100.1)]})  # noqa: RUF032 - the point
    with pytest.raises(InputValidationError, match=r"'amount' \(decimal256\(48, 45\)\)") as wide:
        read_transactions(frame)
    assert wide.value.failures is not None
    assert wide.value.failures.select("column", "check", "value").rows() == [
        ("amount", "dtype", "decimal256(48, 45)")
    ]
    assert "at most 38 digits" in str(wide.value)
    table = pa.table(
        {**base, "qty": pa.array([D("1")], pa.decimal256(40, 6)), "amount": [D("100.10")]}
    )
    for source in (table, table.to_batches()[0]):
        with pytest.raises(InputValidationError, match=r"'qty' \(decimal256\(40, 6\)\)"):
            read_transactions(source)
    # A source only Polars looks into: its panic is caught around the conversion alone.
    with pytest.raises(InputValidationError, match="decimal128 rather than decimal256"):
        read_transactions(_ArrowStream(table))
    # 38 digits are fine.
    ok = pd.DataFrame({**base, "amount": [D("100.10")]})
    assert read_transactions(ok)["amount"].to_list() == [D("100.10")]


def test_read_transactions_keeps_an_invoice_pair_for_the_close_to_choose(tmp_path: Path) -> None:
    # R1 10 @ 100.00; P1 received physically on 25 January (4, price 48.00) and invoiced on
    # 3 February (4 @ 50.00). Read from a file, both rows of P1 stay, so a close on 31 January
    # still sees P1 physical (4 units, 48.00) and one on 28 February sees it invoiced: 14
    # units for 150.00. The reader used to keep the invoice alone, and the January close,
    # which leaves an invoice dated after it out, then lost P1 altogether.
    from invclose.views import register_views

    rows = pl.DataFrame(
        {
            "txn_id": ["R1", "P1", "P1"],
            "item_id": ["A"] * 3,
            "date": [dt.date(2025, 1, 5), dt.date(2025, 1, 25), dt.date(2025, 2, 3)],
            "qty": [Decimal(10), Decimal(4), Decimal(4)],
            "amount": [Decimal("100.00"), Decimal("48.00"), Decimal("50.00")],
            "status": ["financial", "physical", "financial"],
            "seq": [1, 2, 3],
        },
        schema_overrides={"qty": pl.Decimal(38, 6), "amount": pl.Decimal(38, 2)},
    )
    path = tmp_path / "tx.parquet"
    rows.write_parquet(path)
    read = invclose.read_transactions(path)
    assert read.select("txn_id", "status").rows() == [
        ("R1", "financial"),
        ("P1", "physical"),
        ("P1", "financial"),
    ]
    balance = ("qty", "value", "physical_qty", "physical_value")
    jan = invclose.close(read, "2025-01-31")
    assert jan.balances.select(balance).rows() == [
        (Decimal(10), Decimal("100.00"), Decimal(4), Decimal("48.00"))
    ]
    feb = invclose.close(read, "2025-02-28")
    assert feb.balances.select(balance).rows() == [
        (Decimal(14), Decimal("150.00"), Decimal(0), Decimal("0.00"))
    ]
    # The views read a path the same way: inventory on 31 January holds P1 physically.
    views = register_views(None, jan, transactions=path)
    on_hand = views.sql(
        "select qty, value, physical_qty, physical_value from inventory_value('2025-01-31')"
    ).fetchall()
    assert on_hand == [(Decimal(10), Decimal("100.00"), Decimal(4), Decimal("48.00"))]


def _two_site_files(folder: Path, second_site_column: str | None) -> None:
    """a.parquet: item A at site S1; b.parquet: item B at S2, its site column named
    ``second_site_column`` (None: no such column)."""
    folder.mkdir()
    first = pl.DataFrame(
        {"txn_id": ["A1"], "item_id": ["A"], "date": [dt.date(2025, 1, 2)]}
    ).with_columns(
        qty=pl.lit(Decimal("1")), amount=pl.lit(Decimal("10.00")), seq=0, site=pl.lit("S1")
    )
    first.write_parquet(folder / "a.parquet")
    second = first.with_columns(txn_id=pl.lit("B1"), item_id=pl.lit("B"), seq=1).drop("site")
    if second_site_column is not None:
        second = second.with_columns(pl.lit("S2").alias(second_site_column))
    second.write_parquet(folder / "b.parquet")


@pytest.mark.parametrize("second", [None, "Site"])
def test_a_file_of_several_without_a_dimension_column_is_refused_by_name(
    tmp_path: Path, second: str | None
) -> None:
    """Files are aligned by column name: B's rows would be closed at a null site (and the
    batched close, whose DuckDB ignores case, would read "Site" as site: another result)."""
    folder = tmp_path / "month"
    _two_site_files(folder, second)
    near = " (it has 'Site')" if second else ""
    expected = f"b.parquet lacks 'site'{near}"
    for attempt in (
        lambda: read_transactions(folder, dimensions=["site"]),
        lambda: invclose.close(folder, "2025-01-31", dimensions=["site"], method="fifo"),
        lambda: invclose.batched.close_batched(
            folder, "2025-01-31", tmp_path / "out", dimensions=["site"], method="fifo"
        ),
    ):
        with pytest.raises(InputValidationError, match=re.escape(expected)) as err:
            attempt()
        failures = err.value.failures
        assert failures is not None
        assert failures.select("column", "check").rows() == [("site", "column_missing")]
        assert failures["value"].str.ends_with("b.parquet").all()
    assert not (tmp_path / "out").exists()
    if second is None:  # without site as a dimension, the two files read together
        assert read_transactions(folder).height == 2


def test_the_batched_close_refuses_a_column_spelt_in_another_case(tmp_path: Path) -> None:
    folder = tmp_path / "month"
    _two_site_files(folder, "site")
    frame = pl.read_parquet(folder / "b.parquet").rename({"qty": "Qty"})
    frame.write_parquet(folder / "b.parquet")
    with pytest.raises(InputValidationError, match=r"b\.parquet lacks 'qty' \(it has 'Qty'\)"):
        invclose.batched.close_batched(
            folder, "2025-01-31", tmp_path / "out", dimensions=["site"], method="fifo"
        )
    frame.with_columns(qty=pl.col("Qty")).write_parquet(folder / "b.parquet")
    with pytest.raises(InputValidationError, match=r"'Qty' and 'qty'"):
        invclose.batched.close_batched(
            folder, "2025-01-31", tmp_path / "out", dimensions=["site"], method="fifo"
        )


def test_pandas_and_lazy_inputs_that_cannot_be_read_are_named(tmp_path: Path) -> None:
    frame = pd.DataFrame([["R1", "A", "2025-01-02", "1", "10.00", "x"]])
    frame.columns = pd.Index(["txn_id", "item_id", "date", "qty", "amount", "qty"])
    with pytest.raises(InputValidationError, match="more than one column named 'qty'"):
        read_transactions(frame)
    mixed = pd.DataFrame(
        {"txn_id": ["R1", "R2"], "item_id": ["A", 7], "date": ["2025-01-02"] * 2}
    ).assign(qty=["1", "1"], amount=["1.00", "1.00"])
    with pytest.raises(InputValidationError, match=r"in column\(s\) 'item_id'"):
        read_transactions(mixed)
    with pytest.raises(InputFileNotFoundError, match="LazyFrame could not be collected"):
        read_transactions(pl.scan_parquet(tmp_path / "missing.parquet"))


def test_a_column_spelt_in_another_case_in_one_file_of_several_is_refused(tmp_path: Path) -> None:
    """b.parquet's 'Status' would be read as a null status (financial) beside a.parquet's
    'status': its physical row would close as financial."""
    folder = tmp_path / "month"
    _two_site_files(folder, "site")
    a = pl.read_parquet(folder / "a.parquet").with_columns(status=pl.lit("financial"))
    a.write_parquet(folder / "a.parquet")
    b = pl.read_parquet(folder / "b.parquet").with_columns(Status=pl.lit("physical"))
    b.write_parquet(folder / "b.parquet")
    with pytest.raises(InputValidationError, match="has 'Status' where another file has"):
        invclose.close(folder, "2025-01-31", dimensions=["site"], method="fifo")


def test_blank_lines_of_a_csv_are_no_rows(tmp_path: Path) -> None:
    # An export with Windows line endings, a blank line between the rows and one at the end:
    # two rows (Polars read each blank line as a row of nulls, refused for its null txn_id).
    path = tmp_path / "export.csv"
    path.write_bytes(
        b"txn_id,item_id,date,qty,amount\r\nR1,A,2025-01-02,1,10.00\r\n\r\n"
        b"S1,A,2025-01-03,-1,-10.00\r\n\r\n"
    )
    rows = read_transactions(path)
    assert rows.select("txn_id", "qty", "amount").rows() == [
        ("R1", Decimal("1.000000"), Decimal("10.00")),
        ("S1", Decimal("-1.000000"), Decimal("-10.00")),
    ]


def test_a_csv_with_another_separator_is_named_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "semicolons.csv"
    path.write_text("txn_id;item_id;date;qty;amount\nR1;A;2025-01-02;1;10.00\n")
    with pytest.raises(InputValidationError) as err:
        read_transactions(path)
    text = str(err.value)
    assert "separated by ';'" in text
    assert "invclose reads CSV separated by commas" in text


def test_a_semicolon_csv_with_decimal_commas_is_named_with_the_fix(tmp_path: Path) -> None:
    # "1,5" has a comma: read with commas the row has more fields than its header, which
    # failed with Polars' "found more fields than defined in 'Schema'".
    path = tmp_path / "semicolons.csv"
    path.write_text("txn_id;item_id;date;qty;amount\nR1;A;2025-01-02;1,5;10,00\n")
    with pytest.raises(InputValidationError) as err:
        read_transactions(path)
    text = str(err.value)
    assert "separated by ';'" in text
    assert "decimal points" in text
    assert "more fields" not in text


def test_a_csv_header_naming_a_column_twice_is_refused(tmp_path: Path) -> None:
    # Polars reads the second 'amount' as 'amount_duplicated_0' and the close would have read
    # the first one alone (10.00), ignoring the other (20.00).
    path = tmp_path / "twice.csv"
    path.write_text("txn_id,item_id,date,qty,amount,amount\nR1,A,2025-01-02,1,10.00,20.00\n")
    with pytest.raises(InputValidationError, match=r"header names 'amount' more than once"):
        read_transactions(path)
    # A repeated configured dimension is refused too; a repeated column nothing reads (a
    # note) is left unread like any other, and a column literally named like Polars' renaming
    # of a repeat is no repeat.
    path.write_text("txn_id,item_id,date,qty,amount,site,site\nR1,A,2025-01-02,1,1.00,S1,S2\n")
    with pytest.raises(InputValidationError, match=r"header names 'site' more than once"):
        read_transactions(path, dimensions=["site"])
    path.write_text("txn_id,item_id,date,qty,amount,note,note\nR1,A,2025-01-02,1,1.00,x,y\n")
    assert read_transactions(path)["amount"].to_list() == [Decimal("1.00")]
    path.write_text(
        "txn_id,item_id,date,qty,amount,site,site_duplicated_0\nR1,A,2025-01-02,1,1.00,S1,S2\n"
    )
    assert read_transactions(path, dimensions=["site"])["site"].to_list() == ["S1"]


def _receipt_and_issue() -> pl.DataFrame:
    """R1 receives 1 of A for 10.00, S1 issues it."""
    return pl.DataFrame(
        {
            "txn_id": ["R1", "S1"],
            "item_id": ["A", "A"],
            "date": [dt.date(2025, 1, 2), dt.date(2025, 1, 3)],
            "qty": [Decimal("1"), Decimal("-1")],
            "amount": [Decimal("10.00"), Decimal("-10.00")],
        }
    )


def test_a_glob_reads_the_folders_it_matches(tmp_path: Path) -> None:
    # data/* matches a.parquet and the folder sub/ (with b.parquet): both files' rows, as a
    # folder given by name reads them; data/** matches sub/ and its file: read once.
    rows = _receipt_and_issue()
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    rows.head(1).write_parquet(data / "a.parquet")
    rows.tail(1).write_parquet(data / "sub" / "b.parquet")
    for pattern in ("*", "**"):
        read = read_transactions(str(data / pattern))
        assert sorted(read["txn_id"].to_list()) == ["R1", "S1"], pattern


def test_a_file_without_the_seq_of_the_others_gets_the_fix_that_works(tmp_path: Path) -> None:
    # a.parquet has seq, b.parquet not: b's row has no seq. The fix said only "drop the
    # column", where adding it to b is what makes the files agree.
    day = dt.date(2025, 1, 2)
    pl.DataFrame(
        {"txn_id": ["R1"], "item_id": ["A"], "date": [day], "qty": ["1"], "amount": ["10.00"],
         "seq": [1]}
    ).write_parquet(tmp_path / "a.parquet")  # fmt: skip
    pl.DataFrame(
        {"txn_id": ["S1"], "item_id": ["A"], "date": [day], "qty": ["-1"], "amount": ["-10.00"]}
    ).write_parquet(tmp_path / "b.parquet")
    with pytest.raises(InputValidationError, match="seq_missing") as err:
        read_transactions(tmp_path)
    assert "in every file read (a file without the column leaves its rows without one)" in (
        " ".join(str(err.value).split())
    )


def test_a_decimal_infinity_or_nan_in_pandas_is_named_by_row() -> None:
    # Decimal NaN would convert to a null (then reported as an amount to fill) and an infinity
    # failed the conversion without naming a row; a signalling NaN raised decimal's own
    # InvalidOperation. Each is named: row (from 0), txn_id, column and value.
    frame = pd.DataFrame(
        {
            "txn_id": ["R1", "R2", "S1", "S2", "S3"],
            "item_id": ["A"] * 5,
            "date": [dt.date(2025, 1, 2)] * 5,
            "qty": [Decimal("1"), Decimal("2"), Decimal("NaN"), Decimal("-1"), Decimal("-1")],
            "amount": [
                Decimal("Infinity"),
                Decimal("20.00"),
                Decimal("-5.00"),
                Decimal("sNaN"),
                None,
            ],
        }
    )
    with pytest.raises(InputValidationError, match=r"Decimal Infinity or NaN") as refused:
        invclose.close(frame, "2025-01-31")
    failures = refused.value.failures
    assert failures is not None
    assert sorted(failures.select("row", "txn_id", "column", "check", "value").rows()) == [
        (0, "R1", "amount", "not_a_number", "Infinity"),
        (2, "S1", "qty", "not_a_number", "NaN"),
        (3, "S2", "amount", "not_a_number", "sNaN"),
    ]
    # None is a missing value, named as such once the numbers are finite.
    finite = frame.assign(
        qty=[Decimal("1"), Decimal("2"), Decimal("-1"), Decimal("-1"), Decimal("-1")],
        amount=[Decimal("10.00"), Decimal("20.00"), Decimal("-5.00"), Decimal("-5.00"), None],
    )
    with pytest.raises(InputValidationError) as missing:
        invclose.close(finite, "2025-01-31")
    failures = missing.value.failures
    assert failures is not None
    assert failures.select("row", "txn_id", "check").rows() == [(4, "S3", "amount_missing")]


@pytest.mark.parametrize("missing", [None, pd.NA, pd.NaT, np.nan])
def test_a_decimal_infinity_or_nan_after_a_missing_value_is_named(missing: object) -> None:
    # The column's first value is missing (pandas' NA, NaT, None or a float NaN): the check
    # still finds that the column holds decimals (review 60: after pd.NA the infinity gave
    # the conversion's row-less message, after pd.NaT the NaN read as a value to fill).
    for bad, shown in ((Decimal("Infinity"), "Infinity"), (Decimal("NaN"), "NaN")):
        frame = pd.DataFrame(
            {
                "txn_id": ["R1", "R2"],
                "item_id": ["A", "A"],
                "date": [dt.date(2025, 1, 2)] * 2,
                "qty": [Decimal("1"), Decimal("1")],
                "amount": pd.Series([missing, bad], dtype=object),
            }
        )
        with pytest.raises(InputValidationError, match="Decimal Infinity or NaN") as refused:
            invclose.close(frame, "2025-01-31")
        failures = refused.value.failures
        assert failures is not None
        assert failures.select("row", "txn_id", "check", "value").rows() == [
            (1, "R2", "not_a_number", shown)
        ]


def test_a_folder_leaves_out_names_starting_with_underscore_or_dot(tmp_path: Path) -> None:
    # A Spark job's output folder: its part files, a _SUCCESS marker and _temporary/ holding
    # an unfinished copy of the same rows (read, they were 100,000 repeated ids; review 59),
    # and a hidden editor file. Spark, Hive and PyArrow read p0 and p1 only; so does invclose.
    rows = _receipt_and_issue()
    spark = tmp_path / "spark"
    (spark / "_temporary" / "0").mkdir(parents=True)
    rows.head(1).write_parquet(spark / "p0.parquet")
    rows.tail(1).write_parquet(spark / "p1.parquet")
    rows.write_parquet(spark / "_temporary" / "0" / "part-0.parquet")
    rows.write_csv(spark / ".p0.csv")
    (spark / "_SUCCESS").write_text("")
    assert sorted(read_transactions(spark)["txn_id"].to_list()) == ["R1", "S1"]
    # The same through a glob: ``spark/*`` matched _temporary itself and read its copy,
    # ``spark/**`` the files in it (review 62). A name the pattern spells out is read.
    for pattern in ("*", "**", "**/*.parquet"):
        read = read_transactions(str(spark / pattern))
        assert sorted(read["txn_id"].to_list()) == ["R1", "S1"], pattern
    spelt = read_transactions(str(spark / "_temporary" / "*" / "*.parquet"))
    assert sorted(spelt["txn_id"].to_list()) == ["R1", "S1"]
    # A name spelt out after a wildcard, and a "..", are read (review 63: refused as hidden).
    after = read_transactions(str(tmp_path / "sp*" / "_temporary" / "0" / "*.parquet"))
    assert sorted(after["txn_id"].to_list()) == ["R1", "S1"]
    up = read_transactions(str(spark / "_temporary" / "*" / ".." / ".." / "p*.parquet"))
    assert sorted(up["txn_id"].to_list()) == ["R1", "S1"]
    with pytest.raises(InputFileNotFoundError, match=r"names starting with _ or \."):
        read_transactions(str(spark / "_*"))


def test_pandas_labels_that_are_not_text_or_repeat_are_read(tmp_path: Path) -> None:
    # A note column labelled 0 (an integer) with a null: Polars names it "0", which the
    # null scan looked up in pandas and failed (KeyError, review 61). A frame indexed [0, 0]
    # (pd.concat without ignore_index) lost the decimal256 message.
    frame = _receipt_and_issue().to_pandas(use_pyarrow_extension_array=False)
    frame["qty"] = [Decimal("1"), Decimal("-1")]
    frame["amount"] = [Decimal("10.00"), Decimal("-10.00")]
    frame[0] = ["note", None]
    result = invclose.close(frame, "2025-01-31")
    assert result.balances.select("qty", "value").rows() == [(Decimal("0.000000"), Decimal("0.00"))]
    wide = frame.set_axis([0, 0], axis=0).assign(amount=[Decimal(100.1), Decimal("-10.00")])  # noqa: RUF032 - the float's 48 digits
    with pytest.raises(InputValidationError, match=r"'amount' \(decimal256"):
        invclose.close(wide, "2025-01-31")


def test_a_failure_in_a_folder_names_its_file_and_its_row_there(tmp_path: Path) -> None:
    # Three monthly files of 2, 3 and 2 rows: a bad quantity on the second row of the second
    # file is row 3 of the concatenated input (2 + 1), and row 1 of 2025-02.csv (review 59 #6:
    # the message named row 3 only, which no file has as its bad row).
    folder = tmp_path / "extract"
    folder.mkdir()
    header = "txn_id,item_id,date,qty,amount\n"
    (folder / "2025-01.csv").write_text(
        header + "R1,A,2025-01-02,5,50.00\nS1,A,2025-01-03,-1,-10.00\n"
    )
    (folder / "2025-02.csv").write_text(
        header + "R2,A,2025-02-02,5,50.00\nS2,A,2025-02-03,lots,-10.00\nS3,A,2025-02-04,-1,-10.00\n"
    )
    (folder / "2025-03.csv").write_text(header + "R3,A,2025-03-02,5,50.00\nS4,A,2025-03-05,-1,x\n")
    with pytest.raises(InputValidationError) as err:
        read_transactions(folder)
    message = str(err.value)
    assert f"row 3 (txn_id 'S2'; {folder / '2025-02.csv'} row 1), column 'qty'" in message
    # The last file: S4 is row 2 + 3 + 1 = 6 of the input, row 1 of its own file.
    assert f"row 6 (txn_id 'S4'; {folder / '2025-03.csv'} row 1), column 'amount'" in message
    failures = err.value.failures
    assert failures is not None
    assert failures.select("txn_id", "row", "file_row").rows() == [("S2", 3, 1), ("S4", 6, 1)]
    assert failures["file"].to_list() == [str(folder / "2025-02.csv"), str(folder / "2025-03.csv")]
    # One file: numbered as before, no file named.
    with pytest.raises(InputValidationError) as one:
        read_transactions(folder / "2025-02.csv")
    assert "row 1 (txn_id 'S2'), column 'qty'" in str(one.value)
    assert one.value.failures is not None
    assert "file" not in one.value.failures.columns
