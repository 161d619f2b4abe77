"""Validation at the boundary (invclose.validate): every bad input is named, nothing is patched."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from invclose.config import Method
from invclose.errors import ConfigError, InputValidationError
from invclose.schemas import accounts_schema, input_schema, item_schema
from invclose.validate import (
    FAILURE_COLUMNS,
    normalize_accounts,
    normalize_items,
    normalize_transactions,
    parse_closing_date,
)

D = Decimal


def good(**overrides: list[object]) -> pl.DataFrame:
    """Three valid rows as text, the way a CSV arrives; ``overrides`` replace whole columns."""
    data: dict[str, list[object]] = {
        "txn_id": ["R1", "I1", "R2"],
        "item_id": ["A", "A", "A"],
        "site": ["S1", "S1", "S1"],
        "date": ["2025-01-02", "2025-01-05", "2025-01-06"],
        "qty": ["10", "-4", "2.5"],
        "amount": ["100.00", "-40.00", "30"],
    }
    data.update(overrides)
    return pl.DataFrame(data)


def rejected(df: pl.DataFrame, **kwargs: object) -> InputValidationError:
    """Run the validation expecting an error; also check the input was not modified."""
    before = df.clone()
    with pytest.raises(InputValidationError) as info:
        normalize_transactions(df, **kwargs)  # type: ignore[arg-type]
    assert_frame_equal(df, before)
    err = info.value
    assert err.failures is not None
    assert err.failures.columns == list(FAILURE_COLUMNS)
    return err


def assert_names(err: InputValidationError, check: str, column: str, txn_ids: list[str]) -> None:
    """The message and the failures frame name the check, the column and the rows."""
    message = str(err)
    assert f"[{check}]" in message
    assert f"column '{column}'" in message
    failures = err.failures
    assert failures is not None
    hits = failures.filter((pl.col("check") == check) & (pl.col("column") == column))
    assert sorted(hits["txn_id"].to_list()) == sorted(txn_ids)
    for txn_id in txn_ids:
        assert f"(txn_id '{txn_id}')" in message
    assert hits["hint"].null_count() == 0


# --------------------------------------------------------------------------- positive


def test_canonical_columns_dtypes_and_defaults() -> None:
    raw = good(extra=["x", "y", "z"])
    out = normalize_transactions(raw, dimensions=["site"])
    assert out.schema == pl.Schema(input_schema(["site"]))
    expected = pl.DataFrame(
        {
            "txn_id": ["R1", "I1", "R2"],
            "item_id": ["A", "A", "A"],
            "date": [dt.date(2025, 1, 2), dt.date(2025, 1, 5), dt.date(2025, 1, 6)],
            "qty": [D("10.000000"), D("-4.000000"), D("2.500000")],
            "amount": [D("100.00"), D("-40.00"), D("30.00")],
            "status": ["financial", "financial", "financial"],
            "seq": [0, 1, 2],
            "site": ["S1", "S1", "S1"],
        },
        schema_overrides={"qty": pl.Decimal(38, 6), "amount": pl.Decimal(38, 2)},
    )
    assert_frame_equal(out.select(expected.columns), expected)
    assert "extra" not in out.columns  # unknown columns are dropped
    for column in ("marked_to", "order_id", "cost_share", "kind", "inventory_account"):
        assert out[column].null_count() == 3


def test_status_null_and_blank_default_to_financial_and_seq_is_kept() -> None:
    raw = good(status=[None, "", "physical"], seq=[30, 10, 20])
    out = normalize_transactions(raw, dimensions=["site"])
    assert out["status"].to_list() == ["financial", "financial", "physical"]
    assert out["seq"].to_list() == [30, 10, 20]


def test_typed_input_is_taken_as_is() -> None:
    raw = pl.DataFrame(
        {
            "txn_id": ["R1", "I1"],
            "item_id": pl.Series(["A", "A"], dtype=pl.Categorical),
            "date": [dt.date(2025, 1, 2), dt.date(2025, 1, 3)],
            "qty": pl.Series([D("1.5"), D("-1.5")], dtype=pl.Decimal(10, 1)),
            "amount": [3, -3],
            "seq": pl.Series([5, 6], dtype=pl.UInt8),
            "site": [1, 2],
            "kind": ["purchase", "sale"],
        }
    )
    out = normalize_transactions(raw, dimensions=["site"])
    assert out["qty"].to_list() == [D("1.500000"), D("-1.500000")]
    assert out["amount"].to_list() == [D("3.00"), D("-3.00")]
    assert out["seq"].to_list() == [5, 6]
    assert out["site"].to_list() == ["1", "2"]  # integer ids become text
    assert out["item_id"].to_list() == ["A", "A"]


def test_decimal_with_larger_scale_is_accepted_when_exact() -> None:
    raw = good(amount=["100.00", "-40.00", "30.00"]).with_columns(
        pl.col("amount").cast(pl.Decimal(38, 4))
    )
    out = normalize_transactions(raw, dimensions=["site"])
    assert out["amount"].to_list() == [D("100.00"), D("-40.00"), D("30.00")]


def test_trailing_zeros_beyond_the_scale_are_exact() -> None:
    out = normalize_transactions(
        good(qty=["10.000000000", "-4", "2.5"], amount=["100.0000", "-40", "30"]),
        dimensions=["site"],
    )
    assert out["qty"][0] == D("10")
    assert out["amount"][0] == D("100")


def test_midnight_datetimes_become_dates() -> None:
    raw = good().with_columns(pl.col("date").str.to_datetime("%Y-%m-%d"))
    out = normalize_transactions(raw, dimensions=["site"])
    assert out["date"].to_list() == [dt.date(2025, 1, 2), dt.date(2025, 1, 5), dt.date(2025, 1, 6)]


def test_pandas_arrow_and_lazy_inputs_give_the_same_frame() -> None:
    raw = good(seq=["1", "2", "3"])
    expected = normalize_transactions(raw, dimensions=["site"])
    as_pandas = raw.to_pandas()
    pandas_before = as_pandas.copy()
    assert_frame_equal(normalize_transactions(as_pandas, dimensions=["site"]), expected)
    pd.testing.assert_frame_equal(as_pandas, pandas_before)
    assert_frame_equal(normalize_transactions(raw.to_arrow(), dimensions=["site"]), expected)
    assert_frame_equal(normalize_transactions(raw.lazy(), dimensions=["site"]), expected)


def test_pandas_with_decimal_objects_and_dates() -> None:
    frame = pd.DataFrame(
        {
            "txn_id": ["R1", "I1"],
            "item_id": ["A", "A"],
            "date": [dt.date(2025, 1, 2), dt.date(2025, 1, 3)],
            "qty": [D("2"), D("-1.25")],
            "amount": [D("10.00"), D("-6.25")],
        }
    )
    out = normalize_transactions(frame)
    assert out["qty"].to_list() == [D("2"), D("-1.25")]
    assert out["amount"].to_list() == [D("10.00"), D("-6.25")]
    assert out["date"].to_list() == [dt.date(2025, 1, 2), dt.date(2025, 1, 3)]


def test_arrow_decimal_table() -> None:
    table = pa.table(
        {
            "txn_id": ["R1"],
            "item_id": ["A"],
            "date": pa.array([dt.date(2025, 1, 2)]),
            "qty": pa.array([D("3.000")], pa.decimal128(12, 3)),
            "amount": pa.array([D("9.99")], pa.decimal128(12, 2)),
        }
    )
    out = normalize_transactions(table)
    assert out.row(0)[:5] == ("R1", "A", dt.date(2025, 1, 2), D("3"), D("9.99"))


def test_invoice_pair_collapses_to_the_financial_row() -> None:
    raw = pl.DataFrame(
        {
            "txn_id": ["P1", "I1", "P1"],
            "item_id": ["A", "A", "A"],
            "date": ["2025-01-02", "2025-01-03", "2025-01-10"],
            "qty": ["5", "-1", "3"],
            "amount": ["50.00", "-10.00", "33.00"],
            "status": ["physical", None, "financial"],
        }
    )
    before = raw.clone()
    out = normalize_transactions(raw)
    assert_frame_equal(raw, before)
    assert out.select("txn_id", "date", "qty", "amount", "status", "seq").rows() == [
        ("I1", dt.date(2025, 1, 3), D("-1"), D("-10.00"), "financial", 1),
        ("P1", dt.date(2025, 1, 10), D("3"), D("33.00"), "financial", 2),
    ]


def test_revaluation_row_has_qty_zero_and_any_amount_sign() -> None:
    raw = good(
        txn_id=["R1", "V1", "V2"],
        qty=["10", "0", "0"],
        amount=["100.00", "-5.00", "7.00"],
        kind=[None, "revaluation", "revaluation"],
    )
    out = normalize_transactions(raw, dimensions=["site"])
    assert out["qty"].to_list() == [D("10"), D("0"), D("0")]


def test_amount_may_be_null_or_absent_when_not_required() -> None:
    raw = good(amount=["100.00", None, None])
    assert normalize_transactions(raw, dimensions=["site"], require_amount=False)[
        "amount"
    ].to_list() == [D("100.00"), None, None]
    out = normalize_transactions(raw.drop("amount"), dimensions=["site"], require_amount=False)
    assert out["amount"].dtype == pl.Decimal(38, 2)
    assert out["amount"].null_count() == 3


def test_zero_amount_is_allowed_on_receipts_and_issues() -> None:
    out = normalize_transactions(good(amount=["0", "0.00", "-0"]), dimensions=["site"])
    assert out["amount"].to_list() == [D("0")] * 3


def test_marked_to_a_receipt_of_the_same_group() -> None:
    raw = good(marked_to=[None, "R1", None])
    out = normalize_transactions(raw, dimensions=["site"])
    assert out["marked_to"].to_list() == [None, "R1", None]


def test_marked_to_a_receipt_known_from_an_earlier_close() -> None:
    known = pl.DataFrame(
        {"txn_id": ["OLD"], "item_id": ["A"], "site": ["S1"], "qty": [D("5")]},
        schema_overrides={"qty": pl.Decimal(38, 6)},
    )
    raw = good(marked_to=[None, "OLD", None])
    out = normalize_transactions(raw, dimensions=["site"], known=known)
    assert out["marked_to"][1] == "OLD"


def test_marked_to_the_invoice_of_a_physical_receipt() -> None:
    raw = pl.DataFrame(
        {
            "txn_id": ["P1", "P1", "I1"],
            "item_id": ["A", "A", "A"],
            "date": ["2025-01-02", "2025-01-04", "2025-01-05"],
            "qty": ["5", "5", "-2"],
            "amount": ["50.00", "55.00", "-20.00"],
            "status": ["physical", "financial", "financial"],
            "marked_to": [None, None, "P1"],
        }
    )
    assert normalize_transactions(raw)["txn_id"].to_list() == ["P1", "I1"]


def test_empty_frame_is_valid() -> None:
    out = normalize_transactions(good().head(0), dimensions=["site"])
    assert out.height == 0
    assert out.schema == pl.Schema(input_schema(["site"]))


def test_parse_closing_date() -> None:
    assert parse_closing_date("2025-01-31") == dt.date(2025, 1, 31)
    # A datetime at midnight (a pandas Timestamp of a day) is that day; one with a time of day
    # is refused like a transaction date with one: a close locks whole days.
    assert parse_closing_date(dt.datetime(2025, 1, 31)) == dt.date(2025, 1, 31)
    with pytest.raises(ConfigError, match=r"time of day .*'2025-01-31'"):
        parse_closing_date(dt.datetime(2025, 1, 31, 12))
    # A pandas Timestamp one nanosecond past midnight has a time of day its datetime hides.
    with pytest.raises(ConfigError, match=r"time of day"):
        parse_closing_date(pd.Timestamp("2025-01-31 00:00:00.000000001"))
    assert parse_closing_date(pd.Timestamp("2025-01-31")) == dt.date(2025, 1, 31)
    with pytest.raises(ConfigError, match="closing date"):
        parse_closing_date("31/01/2025")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("column", ["txn_id", "item_id", "date", "qty", "amount"])
def test_missing_required_column(column: str) -> None:
    err = rejected(good().drop(column), dimensions=["site"])
    assert f"column '{column}' [column_missing]" in str(err)
    assert err.failures is not None
    assert err.failures.filter(pl.col("check") == "column_missing")["column"].to_list() == [column]


def test_missing_dimension_column() -> None:
    err = rejected(good().drop("site"), dimensions=["site"])
    assert "column 'site' [column_missing]" in str(err)
    assert "financial dimension" in str(err)


def test_dimension_named_like_a_contract_column_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="collide"):
        normalize_transactions(good(), dimensions=["kind"])


@pytest.mark.parametrize("value", ["2025/01/05", "05.01.2025", "2025-02-30", "2025-1-5", "soon"])
def test_date_that_is_not_iso(value: str) -> None:
    err = rejected(good(date=["2025-01-02", value, "2025-01-06"]), dimensions=["site"])
    assert_names(err, "not_a_date", "date", ["I1"])
    assert repr(value) in str(err)
    assert "YYYY-MM-DD" in str(err)


def test_datetime_with_a_time_of_day() -> None:
    raw = good().with_columns(
        pl.Series("date", [dt.datetime(2025, 1, 2), dt.datetime(2025, 1, 5, 13, 30), None])
    )
    err = rejected(raw, dimensions=["site"])
    assert_names(err, "not_a_date", "date", ["I1"])
    assert_names(err, "date_missing", "date", ["R2"])


@pytest.mark.parametrize("value", ["1,5", "abc", "1e3", "--4", "4-", "$4"])
def test_qty_text_that_is_not_a_number(value: str) -> None:
    err = rejected(good(qty=["10", value, "2.5"]), dimensions=["site"])
    assert_names(err, "not_a_number", "qty", ["I1"])
    assert repr(value) in str(err)


def test_amount_text_that_is_not_a_number() -> None:
    err = rejected(good(amount=["100.00", "-40,00", "1 000"]), dimensions=["site"])
    assert_names(err, "not_a_number", "amount", ["I1", "R2"])


@pytest.mark.parametrize("column", ["qty", "amount"])
def test_float_columns_are_rejected_with_a_decimalize_hint(column: str) -> None:
    raw = good().with_columns(pl.col(column).cast(pl.Float64))
    err = rejected(raw, dimensions=["site"])
    assert f"column '{column}' [float_type]" in str(err)
    assert "invclose.decimalize(df)" in str(err)
    assert err.failures is not None
    assert err.failures["row"].to_list() == [None]  # one failure for the column, not per row


def test_float_cost_share_is_rejected() -> None:
    raw = good().with_columns(cost_share=pl.lit(0.5))
    err = rejected(raw, dimensions=["site"])
    assert "column 'cost_share' [float_type]" in str(err)


def test_unsupported_dtype() -> None:
    raw = good().with_columns(qty=pl.lit(True))
    err = rejected(raw, dimensions=["site"])
    assert "column 'qty' [dtype]" in str(err)


def test_qty_zero() -> None:
    err = rejected(good(qty=["10", "0", "0.000"]), dimensions=["site"])
    assert_names(err, "qty_zero", "qty", ["I1", "R2"])


def test_revaluation_with_a_quantity() -> None:
    raw = good(kind=[None, None, "revaluation"], amount=["100.00", "-40.00", "5.00"])
    err = rejected(raw, dimensions=["site"])
    assert_names(err, "revaluation_qty", "qty", ["R2"])


def test_qty_with_more_than_six_decimals() -> None:
    err = rejected(good(qty=["10", "-4", "2.0000001"]), dimensions=["site"])
    assert_names(err, "too_many_decimals", "qty", ["R2"])


def test_qty_decimal_column_with_more_than_six_decimals() -> None:
    raw = good(qty=["10", "-4", "2.0000001"]).with_columns(pl.col("qty").cast(pl.Decimal(38, 7)))
    err = rejected(raw, dimensions=["site"])
    assert_names(err, "too_many_decimals", "qty", ["R2"])


def test_amount_with_more_than_two_decimals_is_not_rounded() -> None:
    # Polars' own text -> Decimal(38, 2) cast would give 1.00 (or 1.01): never accepted silently.
    err = rejected(good(amount=["100.00", "-1.005", "30.001"]), dimensions=["site"])
    assert_names(err, "too_many_decimals", "amount", ["I1", "R2"])
    assert "'-1.005'" in str(err)


def test_amount_decimal_column_with_more_than_two_decimals() -> None:
    raw = good(amount=["100.00", "-40.005", "30.010"]).with_columns(
        pl.col("amount").cast(pl.Decimal(38, 3))
    )
    err = rejected(raw, dimensions=["site"])
    assert_names(err, "too_many_decimals", "amount", ["I1"])


def test_negative_cost_share() -> None:
    err = rejected(good(cost_share=["1", "-0.5", "0"]), dimensions=["site"])
    assert_names(err, "cost_share_negative", "cost_share", ["I1"])


def test_value_out_of_range() -> None:
    err = rejected(good(qty=["10", "-4", "1" * 33]), dimensions=["site"])
    assert_names(err, "out_of_range", "qty", ["R2"])


def test_amount_null_when_required() -> None:
    err = rejected(good(amount=["100.00", None, ""]), dimensions=["site"])
    assert_names(err, "amount_missing", "amount", ["I1", "R2"])


def test_amount_with_the_opposite_sign_of_qty() -> None:
    err = rejected(good(amount=["-100.00", "40.00", "30"]), dimensions=["site"])
    assert_names(err, "amount_sign", "amount", ["R1", "I1"])


def test_status_not_financial_or_physical() -> None:
    err = rejected(good(status=["financial", "Invoiced", "PHYSICAL"]), dimensions=["site"])
    assert_names(err, "status_invalid", "status", ["I1", "R2"])


def test_txn_id_null_or_empty() -> None:
    err = rejected(good(txn_id=["R1", None, "  "]), dimensions=["site"])
    assert "[txn_id_missing]" in str(err)
    assert err.failures is not None
    missing = err.failures.filter(pl.col("check") == "txn_id_missing")
    assert missing["row"].to_list() == [1, 2]
    assert "row 1 (txn_id null), column 'txn_id'" in str(err)
    assert "row 2 (txn_id null), column 'txn_id'" in str(err)


def test_txn_id_reserved_prefix() -> None:
    err = rejected(good(txn_id=["R1", "~wac:x", "R2"]), dimensions=["site"])
    assert_names(err, "txn_id_reserved", "txn_id", ["~wac:x"])


def test_duplicate_txn_id() -> None:
    err = rejected(good(txn_id=["R1", "I1", "R1"]), dimensions=["site"])
    assert_names(err, "txn_id_duplicate", "txn_id", ["R1", "R1"])


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"status": ["physical", "financial", "physical"]}, "two physical rows and an invoice"),
        (
            {
                "status": ["physical", "financial", None],
                "txn_id": ["P", "P", "X"],
                "item_id": ["A", "B", "A"],
            },
            "other item",
        ),
        (
            {
                "status": ["physical", "financial", None],
                "txn_id": ["P", "P", "X"],
                "site": ["S1", "S2", "S1"],
            },
            "other dimension",
        ),
        ({"status": ["physical", "physical", None], "txn_id": ["P", "P", "X"]}, "both physical"),
    ],
)
def test_repeated_txn_id_that_is_not_an_invoice_pair(
    overrides: dict[str, list[object]], reason: str
) -> None:
    base: dict[str, list[object]] = {
        "txn_id": ["P", "P", "P"],
        "qty": ["5", "5", "5"],
        "amount": ["5", "5", "5"],
    }
    base.update(overrides)
    err = rejected(good(**base), dimensions=["site"])
    assert err.failures is not None
    dup = err.failures.filter(pl.col("check") == "txn_id_duplicate")
    assert set(dup["txn_id"].to_list()) == {"P"}, reason
    assert "(txn_id 'P'), column 'txn_id' [txn_id_duplicate]" in str(err)


def test_invoice_with_the_opposite_sign() -> None:
    raw = good(
        txn_id=["P", "P", "R2"],
        status=["physical", "financial", None],
        qty=["5", "-5", "1"],
        amount=["5", "-5", "1"],
    )
    err = rejected(raw, dimensions=["site"])
    assert_names(err, "invoice_sign", "qty", ["P", "P"])


def test_an_invoice_dated_before_its_physical_row_is_refused() -> None:
    # P received physically on the 5th, its invoice dated the 2nd: a close on the 3rd took
    # the invoice as stock nobody had received yet (review 64). Invoiced the same day is fine.
    raw = good(
        txn_id=["P", "P", "R2"],
        status=["physical", "financial", None],
        date=["2025-01-05", "2025-01-02", "2025-01-06"],
        qty=["5", "5", "1"],
        amount=["5", "6", "1"],
    )
    err = rejected(raw, dimensions=["site"])
    assert_names(err, "invoice_before_physical", "date", ["P"])
    assert "found '2025-01-02'" in str(err)
    same_day = raw.with_columns(date=pl.Series(["2025-01-05", "2025-01-05", "2025-01-06"]))
    assert normalize_transactions(same_day, dimensions=["site"]).height == 2


def test_an_invoice_of_more_than_its_physical_row_is_refused() -> None:
    # P received 5 physically; an invoice of 7 would put 2 units in stock nobody received.
    # A partial invoice (3 of 5) is fine: the rest stays physical as a new row.
    raw = good(
        txn_id=["P", "P", "R2"],
        status=["physical", "financial", None],
        qty=["5", "7", "1"],
        amount=["5", "7", "1"],
    )
    err = rejected(raw, dimensions=["site"])
    assert_names(err, "invoice_exceeds_physical", "qty", ["P"])
    assert "found '7.000000'" in str(err)
    partial = good(
        txn_id=["P", "P", "R2"],
        status=["physical", "financial", None],
        qty=["5", "3", "1"],
        amount=["5", "3", "1"],
    )
    assert normalize_transactions(partial, dimensions=["site"]).height == 2


def test_digits_of_other_scripts_are_not_numbers_and_a_day_off_the_calendar_is_named() -> None:
    # Arabic-Indic and full-width digits match a regex's \d but no decimal reads them: they
    # were reported as out_of_range ("does not fit Decimal(38, 6)"). 30 February is written
    # as an ISO date; the hint said to write it as one.
    err = rejected(good(qty=["١٠", "-4", "１０"], date=["2025-01-02", "2025-02-30", "2025-01-06"]))
    assert_names(err, "not_a_number", "qty", ["R1", "R2"])
    assert_names(err, "not_a_date", "date", ["I1"])
    assert "names no day of the calendar (YYYY-MM-DD: check the month and the day)" in str(err)


def test_marked_to_on_a_receipt() -> None:
    err = rejected(good(marked_to=[None, None, "R1"]), dimensions=["site"])
    assert_names(err, "marked_to_on_receipt", "marked_to", ["R2"])


def test_marked_to_an_unknown_txn_id() -> None:
    known = pl.DataFrame({"txn_id": ["OLD"], "item_id": ["A"], "site": ["S1"], "qty": [D("1")]})
    err = rejected(good(marked_to=[None, "NOPE", None]), dimensions=["site"], known=known)
    assert_names(err, "marked_to_unknown", "marked_to", ["I1"])
    assert "'NOPE'" in str(err)


def test_marked_to_a_receipt_of_another_item() -> None:
    raw = good(item_id=["B", "A", "A"], marked_to=[None, "R1", None])
    err = rejected(raw, dimensions=["site"])
    assert_names(err, "marked_to_other_group", "marked_to", ["I1"])


def test_marked_to_a_receipt_of_other_dimension_values() -> None:
    raw = good(site=["S2", "S1", "S1"], marked_to=[None, "R1", None])
    err = rejected(raw, dimensions=["site"])
    assert_names(err, "marked_to_other_group", "marked_to", ["I1"])


def test_marked_to_a_known_row_of_another_group() -> None:
    known = pl.DataFrame({"txn_id": ["OLD"], "item_id": ["A"], "site": ["S9"], "qty": ["5"]})
    err = rejected(good(marked_to=[None, "OLD", None]), dimensions=["site"], known=known)
    assert_names(err, "marked_to_other_group", "marked_to", ["I1"])


def test_marked_to_an_issue() -> None:
    raw = good(
        txn_id=["R1", "I1", "I2"],
        qty=["10", "-4", "-1"],
        amount=["100", "-40", "-10"],
        marked_to=[None, None, "I1"],
    )
    err = rejected(raw, dimensions=["site"])
    assert_names(err, "marked_to_not_receipt", "marked_to", ["I2"])


def test_item_id_null() -> None:
    err = rejected(good(item_id=["A", None, ""]), dimensions=["site"])
    assert_names(err, "item_id_missing", "item_id", ["I1", "R2"])


@pytest.mark.parametrize(
    ("seq", "check"), [(["1", "x", "3"], "not_an_integer"), (["1", None, "3"], "seq_missing")]
)
def test_bad_seq(seq: list[object], check: str) -> None:
    err = rejected(good(seq=seq), dimensions=["site"])
    assert_names(err, check, "seq", ["I1"])


def test_unsupported_input_type() -> None:
    with pytest.raises(InputValidationError, match="unsupported input"):
        normalize_transactions({"txn_id": ["R1"]})


def test_all_failures_are_collected_in_one_error() -> None:
    raw = good(
        txn_id=["R1", "~I1", "R1"],
        date=["2025-01-02", "2025-13-01", "2025-01-06"],
        qty=["10", "0", "x"],
        amount=["-1", "-40.001", "30"],
        status=["financial", "physical", "wrong"],
    )
    err = rejected(raw, dimensions=["site"])
    assert err.failures is not None
    got = set(err.failures.select("row", "column", "check").iter_rows())
    assert got == {
        (0, "txn_id", "txn_id_duplicate"),
        (0, "amount", "amount_sign"),
        (1, "txn_id", "txn_id_reserved"),
        (1, "date", "not_a_date"),
        (1, "qty", "qty_zero"),
        (1, "amount", "too_many_decimals"),
        (2, "txn_id", "txn_id_duplicate"),
        (2, "qty", "not_a_number"),
        (2, "status", "status_invalid"),
    }
    assert str(err).startswith("invalid transactions: 9 problems in 3 rows")


def test_message_shows_twenty_failures_then_counts_the_rest() -> None:
    n = 25
    raw = pl.DataFrame(
        {
            "txn_id": [f"T{i}" for i in range(n)],
            "item_id": ["A"] * n,
            "date": ["2025-01-02"] * n,
            "qty": ["0"] * n,
            "amount": ["0"] * n,
        }
    )
    err = rejected(raw)
    message = str(err)
    assert "(txn_id 'T19')" in message
    assert "(txn_id 'T20')" not in message
    assert "... and 5 more" in message
    assert err.failures is not None
    assert err.failures.height == n


def test_pandas_input_is_not_modified_on_error() -> None:
    frame = good(qty=["10", "0", "2.5"]).to_pandas()
    before = frame.copy()
    with pytest.raises(InputValidationError, match=r"\(txn_id 'I1'\), column 'qty'"):
        normalize_transactions(frame, dimensions=["site"])
    pd.testing.assert_frame_equal(frame, before)


# --------------------------------------------------------------------------- items, accounts


def test_items_canonical_with_defaults() -> None:
    items = pl.DataFrame(
        {
            "item_id": ["A", "B", "C"],
            "method": [" FIFO", None, "standard"],
            "standard_cost": [None, None, "12.50"],
            "valid_from": [None, None, "2025-01-01"],
            "note": ["x", "y", "z"],
        }
    )
    before = items.clone()
    out = normalize_items(items)
    assert_frame_equal(items, before)
    assert out is not None
    assert out.schema == pl.Schema(item_schema())
    assert out.rows() == [
        # Absent include_physical_value stays null: the close's keyword applies.
        ("A", "fifo", None, None, None, None, None),
        ("B", None, None, None, None, None, None),
        ("C", "standard", None, None, D("12.50"), None, dt.date(2025, 1, 1)),
    ]


def test_items_none() -> None:
    assert normalize_items(None) is None
    assert normalize_accounts(None) is None


def test_items_include_physical_value_from_text() -> None:
    items = pl.DataFrame({"item_id": ["A", "B", "C"], "include_physical_value": ["true", "", "0"]})
    out = normalize_items(items)
    assert out is not None
    assert out["include_physical_value"].to_list() == [True, None, False]


def test_items_unknown_method_names_the_items_and_the_valid_methods() -> None:
    items = pl.DataFrame({"item_id": ["A", "B", "C"], "method": ["fifo", "avco", "hifo"]})
    with pytest.raises(InputValidationError) as info:
        normalize_items(items)
    message = str(info.value)
    assert "(item_id 'B'), column 'method' [method_unknown]" in message
    assert "(item_id 'C'), column 'method' [method_unknown]" in message
    for method in Method:
        assert method.value in message
    assert info.value.failures is not None
    assert info.value.failures["item_id"].to_list() == ["B", "C"]


def test_items_dated_standard_costs_and_duplicates() -> None:
    dated = pl.DataFrame(
        {
            "item_id": ["S", "S"],
            "method": ["standard", "standard"],
            "standard_cost": ["10.00", "11.00"],
            "valid_from": ["2025-01-01", "2025-02-01"],
        }
    )
    out = normalize_items(dated)
    assert out is not None
    assert out.height == 2
    with pytest.raises(InputValidationError, match=r"\(item_id 'S'\).*\[item_duplicate\]"):
        normalize_items(dated.with_columns(valid_from=pl.lit("2025-01-01")))
    with pytest.raises(InputValidationError, match=r"\[item_inconsistent\]"):
        normalize_items(dated.with_columns(method=pl.Series(["standard", "fifo"])))


def test_items_bad_values() -> None:
    items = pl.DataFrame(
        {
            "item_id": ["A", None, "C"],
            "standard_cost": ["1.234", "1", "-2"],
            "include_physical_value": ["maybe", "no", "yes"],
        }
    )
    with pytest.raises(InputValidationError) as info:
        normalize_items(items)
    assert info.value.failures is not None
    got = set(info.value.failures.select("row", "column", "check").iter_rows())
    assert got == {
        (0, "include_physical_value", "not_a_boolean"),
        (0, "standard_cost", "too_many_decimals"),
        (1, "item_id", "item_id_missing"),
        (2, "standard_cost", "negative_cost"),
    }


def test_items_float_costs_are_rejected() -> None:
    with pytest.raises(InputValidationError, match="decimalize"):
        normalize_items(pl.DataFrame({"item_id": ["A"], "default_cost": [1.5]}))


def test_accounts_canonical() -> None:
    accounts = pl.DataFrame(
        {
            "kind": ["sale", None],
            "inventory_account": [1400, 1400],
            "offset_account": ["5000", "5100"],
        }
    )
    out = normalize_accounts(accounts.to_pandas())
    assert out is not None
    assert out.schema == pl.Schema(accounts_schema())
    assert out.rows() == [
        ("sale", None, "1400", "5000", None),
        (None, None, "1400", "5100", None),
    ]


def test_a_missing_column_names_the_columns_that_are_not_read() -> None:
    # "inv" / "off" / "group" are not the mapping's column names: the failure for each missing
    # required column names them, so the misspelling shows; a table whose required columns
    # are all there is not told about the columns it has beside them.
    misspelt = pl.DataFrame({"kind": ["sale"], "group": ["HW"], "inv": ["1400"], "off": ["5000"]})
    with pytest.raises(InputValidationError) as caught:
        normalize_accounts(misspelt)
    hints = caught.value.failures.filter(pl.col("check") == "column_missing")["hint"].to_list()
    assert len(hints) == 2
    for hint in hints:
        assert hint.endswith("not read: 'group', 'inv', 'off' (a misspelling?)")
    complete = pl.DataFrame(
        {"kind": ["sale"], "inventory_account": ["1400"], "offset_account": ["5000"], "x": ["1"]}
    )
    assert normalize_accounts(complete) is not None


def test_accounts_missing_column_and_duplicate_keys() -> None:
    with pytest.raises(InputValidationError, match=r"column 'offset_account' \[column_missing\]"):
        normalize_accounts(pl.DataFrame({"kind": ["sale"], "inventory_account": ["1400"]}))
    duplicated = pl.DataFrame(
        {
            "kind": ["sale", "sale"],
            "item_group": [None, ""],
            "inventory_account": ["1400", "1401"],
            "offset_account": ["5000", "5000"],
        }
    )
    with pytest.raises(InputValidationError) as info:
        normalize_accounts(duplicated)
    assert "(key 'sale|*'), column 'kind' [accounts_duplicate]" in str(info.value)


def test_a_misspelt_item_group_column_is_named_beside_the_duplicates() -> None:
    # "group" is not read, so the two sale rows (meant for groups G1 and G2) both match every
    # group: the duplicate's fix names the unread column instead of only "merge the rows".
    misspelt = pl.DataFrame(
        {
            "kind": ["sale", "sale"],
            "group": ["G1", "G2"],
            "inventory_account": ["1400", "1401"],
            "offset_account": ["5000", "5001"],
        }
    )
    with pytest.raises(InputValidationError) as info:
        normalize_accounts(misspelt)
    text = str(info.value)
    assert "[accounts_duplicate]" in text
    assert "merge the rows; the table has columns that are not read: 'group' (a misspelling?)" in (
        text.replace("\n", " ")
    )


def test_repeated_ids_are_exact_even_when_every_hash_collides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from invclose.validate import _repeated

    ids = pl.Series("txn_id", ["T1", "T2", "T3", "T2", None, None])
    # Distinct hashes prove there is no repeat; here every id "collides", so the exact
    # group-by must decide: only T2 repeats (nulls never count).
    monkeypatch.setattr(pl.Series, "hash", lambda self, *a, **k: pl.Series([1] * self.len()))
    assert _repeated(ids).to_list() == ["T2"]
    assert _repeated(pl.Series("txn_id", ["A", "B", "C"])).to_list() == []


def test_no_repeated_ids_when_all_differ() -> None:
    from invclose.validate import _repeated

    assert _repeated(pl.Series("txn_id", [f"T{i}" for i in range(1000)])).to_list() == []


def test_groups_too_large_for_64_bit_cents_are_named() -> None:
    # 2**62 cents = 46,116,860,184,273,879.04. Item A's amounts add up to 3 x 2e16 = 6e16 in
    # absolute value (each row alone would fit): all its rows are named. Item B's 12 units of
    # 1.00 are fine, and so are A's quantities.
    df = good(
        item_id=["A", "A", "A"],
        amount=["20000000000000000.00", "-20000000000000000.00", "20000000000000000.00"],
    )
    df = pl.concat([df, good(txn_id=["B1", "B2", "B3"], item_id=["B", "B", "B"])])
    err = rejected(df, dimensions=["site"])
    assert_names(err, "too_large", "amount", ["R1", "I1", "R2"])
    assert err.failures is not None
    assert err.failures.height == 3
    # 9.3e12 units are beyond 2**62 micro-units (4.6e12 units): the quantity is named.
    err = rejected(good(qty=["9300000000000", "-4", "2.5"]), dimensions=["site"])
    assert_names(err, "too_large", "qty", ["R1", "I1", "R2"])


# --------------------------------------------------------------------------- orders (§9.1)


def _orders(items: list[str], orders: list[str | None], kinds: list[str | None]) -> pl.DataFrame:
    """Rows R1 (receipt of 10), then T1..Tn of one unit each, alternately issue and receipt."""
    n = len(items)
    return pl.DataFrame(
        {
            "txn_id": ["R1", *[f"T{k}" for k in range(1, n)]],
            "item_id": items,
            "site": ["S1"] * n,
            "date": ["2025-01-02"] * n,
            "qty": ["10", *(["-1", "1"] * n)[: n - 1]],
            "amount": ["100.00", *(["-10.00", "10.00"] * n)[: n - 1]],
            "order_id": orders,
            "kind": kinds,
        }
    )


def test_an_order_of_transfer_and_production_rows_is_rejected() -> None:
    # close-semantics §9.1: "The linked rows of one order must agree on whether their kind is
    # transfer; a mix is rejected." O1's issue T1 is a transfer, its receipt T2 a production
    # output; O2 is a production order, R1 a purchase whose order_id links nothing.
    raw = _orders(
        ["A", "A", "A", "A", "C"],
        ["O2", "O1", "O1", "O2", "O2"],
        ["purchase", "transfer", "production", "consumption", "production"],
    )
    err = rejected(raw, dimensions=["site"])
    assert_names(err, "order_kind_mixed", "kind", ["T1", "T2"])
    assert "order O1" in str(err)
    assert err.failures is not None
    assert set(err.failures["check"]) == {"order_kind_mixed"}


def test_a_transfer_order_of_two_items_is_rejected() -> None:
    # Contract §1: order_id ties "a transfer's issue and receipt (same item)". O1 ships A and
    # receives B; O2 moves A; O3 (production) turns A into C.
    raw = _orders(
        ["A", "A", "B", "A", "A", "A", "C"],
        [None, "O1", "O1", "O2", "O2", "O3", "O3"],
        [None, "transfer", "transfer", "transfer", "transfer", "consumption", "production"],
    )
    err = rejected(raw, dimensions=["site"])
    assert_names(err, "transfer_other_item", "item_id", ["T1", "T2"])
    assert "order O1 names several" in str(err)
    assert err.failures is not None
    assert set(err.failures["check"]) == {"transfer_other_item"}


def test_valid_orders_pass() -> None:
    raw = _orders(
        ["A", "A", "A", "A", "C"],
        ["O9", "O1", "O1", "O2", "O2"],
        ["purchase", "transfer", "transfer", "consumption", "production"],
    )
    assert normalize_transactions(raw, dimensions=["site"]).height == 5


def test_the_order_rules_read_an_invoice_not_the_physical_row_it_replaces() -> None:
    # O1: transfer issue T1, and receipt T2 posted physical without a kind, then invoiced as a
    # transfer. The invoice replaces the physical row, so the order is all transfers.
    raw = pl.DataFrame(
        {
            "txn_id": ["R1", "T1", "T2", "T2"],
            "item_id": ["A"] * 4,
            "site": ["S1", "S1", "S2", "S2"],
            "date": ["2025-01-02", "2025-01-03", "2025-01-04", "2025-01-05"],
            "qty": ["10", "-1", "1", "1"],
            "amount": ["100.00", "-10.00", "10.00", "10.00"],
            "status": ["financial", "financial", "physical", "financial"],
            "order_id": [None, "O1", "O1", "O1"],
            "kind": [None, "transfer", None, "transfer"],
        }
    )
    kept = normalize_transactions(raw, dimensions=["site"])
    assert kept.select("txn_id", "kind").rows() == [
        ("R1", None),
        ("T1", "transfer"),
        ("T2", "transfer"),
    ]
