"""CloseResult: construction, Parquet round trip, tamper detection, DuckDB views, summaries."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

import invclose
from invclose.errors import InvcloseError
from invclose.result import CloseResult, read_result
from invclose.schemas import MONEY, QTY, RESULT_TABLES, conform, empty_table, table_schema
from invclose.store import parquet as store_parquet
from invclose.store.duckdb import register_result
from tests.helpers import ACCOUNTS

D = Decimal
DIMS = ("site",)
CID = "C0123456789abcdef"
DATE = dt.date(2025, 1, 31)


def _frame(table: str, rows: dict[str, list[object]]) -> pl.DataFrame:
    """A result table from a few hand-written columns (the rest typed nulls)."""
    height = len(next(iter(rows.values())))
    data = {"close_id": [CID] * height, **rows}
    schema = {c: t for c, t in table_schema(table, DIMS).items() if c in data}
    return conform(pl.DataFrame(data, schema=schema), table, DIMS)


def _vouchers(lines: list[tuple[str, str, str, str]]) -> pl.DataFrame:
    """Voucher lines ``(txn_id, account, debit, credit)`` of one voucher."""
    return _frame(
        "vouchers",
        {
            "voucher_id": ["V-A"] * len(lines),
            "line_no": list(range(1, len(lines) + 1)),
            "posting_date": [DATE] * len(lines),
            "account": [a for _, a, _, _ in lines],
            "debit": [D(d) for _, _, d, _ in lines],
            "credit": [D(c) for _, _, _, c in lines],
            "txn_id": [t for t, _, _, _ in lines],
        },
    )


BALANCED_LINES = [
    ("I1", "1400", "0.00", "1.50"),
    ("I1", "5000", "1.50", "0.00"),
    ("R3", "1400", "2.00", "0.00"),
    ("R3", "6000", "0.00", "2.00"),
    ("I2", "1410", "0.75", "0.00"),
    ("I2", "5000", "0.00", "0.75"),
]


def _tables() -> dict[str, pl.DataFrame]:
    tables = {t: empty_table(t, DIMS) for t in RESULT_TABLES}
    tables["settlements"] = _frame(
        "settlements",
        {
            "settlement_date": [DATE, DATE],
            "issue_txn_id": ["I1", "I2"],
            "receipt_txn_id": ["R1", "R2"],
            "item_id": ["A", "B"],
            "site": ["S1", "S2"],
            "qty": [D("3"), D("1.5")],
            "amount": [D("30.00"), D("7.25")],
            "principle": ["fifo", "fifo"],
        },
    )
    tables["adjustments"] = _frame(
        "adjustments",
        {
            "txn_id": ["I1", "R3", "I2"],
            "item_id": ["A", "A", "B"],
            "site": ["S1", "S1", "S2"],
            "qty": [D("-3"), D("2"), D("-1.5")],
            "adjustment": [D("-1.50"), D("2.00"), D("0.75")],
            "cost_delta": [D("1.50"), D("2.00"), D("-0.75")],
            "adjustment_date": [DATE] * 3,
            "inventory_account": ["1400", "1400", "1410"],
            "offset_account": ["5000", "6000", "5000"],
            "adjusted_against": [None, ["R1", "R2"], []],
        },
    )
    tables["vouchers"] = _vouchers(BALANCED_LINES)
    tables["log"] = _frame(
        "log",
        {
            "level": ["warning", "warning", "warning", "warning", "info"],
            "code": [
                "insufficient_receipts",
                "insufficient_receipts",
                "receipt_not_invoiced",
                "negative_on_hand",
                "marking_ignored",
            ],
            "item_id": ["A", "A", "B", "B", None],
            "site": ["S1", "S1", "S2", "S2", None],
            "txn_id": ["I9", "I10", "R5", None, "I7"],
            "qty": [D("2"), D("1"), D("4"), None, None],
            "message": ["m1", "m2", "m3", "m4", "m5"],
        },
    )
    tables["balances"] = _frame(
        "balances",
        {
            "item_id": ["A", "B"],
            "site": ["S1", "S2"],
            "method": ["fifo", "fifo"],
            "qty": [D("10"), D("2.5")],
            "value": [D("1234567.89"), D("12.35")],
            "open_receipts": [2, 1],
            "unit_cost": [D("123456.789"), D("4.94")],
        },
    )
    tables["open_items"] = _frame(
        "open_items",
        {
            "txn_id": ["R1", "~wac:2025-01-31:B:S2:receipt"],
            "item_id": ["A", "B"],
            "date": [DATE, DATE],
            "qty": [D("10"), D("2.5")],
            "amount": [D("100.00"), D("12.35")],
            "status": ["financial", "financial"],
            "seq": [1, 99],
            "site": ["S1", "S2"],
            "open_qty": [D("10"), D("2.5")],
            "open_value": [D("1234567.89"), D("12.35")],
            "carried_value": [D("1234567.89"), D("12.35")],
            "is_virtual": [False, True],
        },
    )
    tables["closed_items"] = _frame(
        "closed_items",
        {"txn_id": ["I1", "I2"], "row_hash": ["ab" * 32, "cd" * 32], "closed_by": [CID, CID]},
    )
    tables["cost_flow"] = _frame(
        "cost_flow",
        {
            "from_txn_id": ["R1", "R2"],
            "to_txn_id": ["I1", "I2"],
            "qty": [D("3"), D("1.5")],
            "amount": [D("31.50"), D("6.50")],
            "kind": ["settlement", "settlement"],
        },
    )
    return tables


def _result(**overrides: object) -> CloseResult:
    fields: dict[str, object] = {
        "close_id": CID,
        "closing_date": DATE,
        "run_kind": "close",
        "dimensions": DIMS,
        "config_fingerprint": "method=fifo\ndimensions=site",
        "lock_date": DATE,
        **_tables(),
    }
    fields.update(overrides)
    if "close_id" in overrides:
        # Every row carries its run's close_id (read_result checks it against the manifest).
        for name in RESULT_TABLES:
            frame = fields[name]
            assert isinstance(frame, pl.DataFrame)
            fields[name] = frame.with_columns(close_id=pl.lit(overrides["close_id"]))
    return CloseResult(**fields)  # type: ignore[arg-type]


@pytest.fixture
def result() -> CloseResult:
    return _result()


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------ construction


def test_tables_in_result_order(result: CloseResult) -> None:
    tables = result.tables()
    assert tuple(tables) == RESULT_TABLES
    assert tables["adjustments"] is result.adjustments
    assert "rows: settlements=2, adjustments=3" in repr(result)


def test_constructor_normalises_identity() -> None:
    res = _result(closing_date="2025-01-31", dimensions=["site"], lock_date=None)
    assert res.closing_date == DATE
    assert res.dimensions == ("site",)
    assert res.lock_date is None


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"run_kind": "rerun"}, "run_kind"),
        ({"close_id": ""}, "close_id"),
        ({"closing_date": "31/01/2025"}, "closing date"),
        ({"log": empty_table("log", DIMS).with_columns(extra=pl.lit(1))}, "unexpected columns"),
        ({"balances": empty_table("balances", ())}, "missing columns ['site']"),
        (
            {"settlements": empty_table("settlements", DIMS).cast({"amount": pl.Float64})},
            "settlements.amount",
        ),
        ({"cost_flow": empty_table("cost_flow", DIMS).lazy()}, "LazyFrame"),
    ],
)
def test_constructor_rejects_bad_input(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(InvcloseError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        _result(**overrides)


def test_equals(result: CloseResult) -> None:
    assert result.equals(_result())
    assert not result.equals(_result(close_id="C2"))
    assert not result.equals(_result(vouchers=_vouchers(BALANCED_LINES[:2])))
    assert not result.equals("not a result")


# ------------------------------------------------------------------ Parquet round trip


def test_write_read_round_trip_is_bit_identical(result: CloseResult, tmp_path: Path) -> None:
    out = result.write(tmp_path / "jan")
    assert out == tmp_path / "jan"
    back = read_result(out)
    assert back.equals(result)
    for table in RESULT_TABLES:
        mine, theirs = getattr(result, table), getattr(back, table)
        assert theirs.schema == mine.schema, table
        assert theirs.equals(mine), table
    assert back.adjustments["adjusted_against"].to_list() == [None, ["R1", "R2"], []]
    assert back.balances["value"].to_list() == [D("1234567.89"), D("12.35")]
    assert back.metadata() == result.metadata()


def test_manifest_contents(result: CloseResult, tmp_path: Path) -> None:
    out = result.write(tmp_path / "jan")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "invclose-result"
    assert manifest["format_version"] == 1
    assert manifest["close_id"] == CID
    assert manifest["closing_date"] == "2025-01-31"
    assert manifest["run_kind"] == "close"
    assert manifest["dimensions"] == ["site"]
    assert manifest["config_fingerprint"] == "method=fifo\ndimensions=site"
    assert manifest["lock_date"] == "2025-01-31"
    assert isinstance(manifest["invclose_version"], str)
    assert manifest["invclose_version"]
    assert list(manifest["tables"]) == list(RESULT_TABLES)
    for table, entry in manifest["tables"].items():
        assert entry["file"] == f"{table}.parquet"
        assert entry["rows"] == getattr(result, table).height
        data = (out / entry["file"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", *(f"{t}.parquet" for t in RESULT_TABLES)]
    )


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        # An earlier lock would let a later close post into January.
        ("lock_date", "2024-12-31", "must lock that date, not 2024-12-31"),
        ("close_id", "Cdeadbeefdeadbeef", f"rows carry close_id '{CID}'"),
        ("closing_date", "2024-12-31", "after the closing date"),
    ],
)
def test_a_manifest_that_disagrees_with_its_tables_is_refused(
    result: CloseResult, tmp_path: Path, field: str, value: str, problem: str
) -> None:
    out = result.write(tmp_path / "jan")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest[field] = value
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InvcloseError, match=r"manifest\.json does not match its tables") as caught:
        read_result(out)
    assert problem in str(caught.value)
    # The SQL views over the files (invclose sql DIR) refuse it too, reading one column each.
    with pytest.raises(InvcloseError, match=r"manifest\.json does not match its tables") as viewed:
        register_result(duckdb.connect(), out)
    assert problem in str(viewed.value)


def test_write_is_deterministic(result: CloseResult, tmp_path: Path) -> None:
    a = (result.write(tmp_path / "a") / "manifest.json").read_text()
    b = (_result().write(tmp_path / "b") / "manifest.json").read_text()
    assert a == b


def test_recalculation_without_lock_round_trips(tmp_path: Path) -> None:
    res = _result(run_kind="recalculation", close_id="R00000000000000aa", lock_date=None)
    back = read_result(res.write(tmp_path / "r"))
    assert back.run_kind == "recalculation"
    assert back.lock_date is None
    assert back.equals(res)


def test_no_dimensions_round_trip(tmp_path: Path) -> None:
    tables = {t: empty_table(t, ()) for t in RESULT_TABLES}
    res = CloseResult(CID, DATE, "close", (), "fp", DATE, **tables)
    back = read_result(res.write(tmp_path / "nodims"))
    assert back.dimensions == ()
    assert back.equals(res)


# ------------------------------------------------------------------ tampering


def test_edited_parquet_file_is_detected(result: CloseResult, tmp_path: Path) -> None:
    out = result.write(tmp_path / "jan")
    file = out / "adjustments.parquet"
    edited = pl.read_parquet(file).with_columns(
        pl.when(pl.col("txn_id") == "I1")
        .then(pl.lit(D("-9.99"), dtype=MONEY))
        .otherwise(pl.col("adjustment"))
        .alias("adjustment")
    )
    edited.write_parquet(file)
    with pytest.raises(InvcloseError, match=r"adjustments\.parquet does not match its sha256"):
        read_result(out)


def test_flipped_byte_is_detected(result: CloseResult, tmp_path: Path) -> None:
    out = result.write(tmp_path / "jan")
    file = out / "vouchers.parquet"
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))
    with pytest.raises(InvcloseError, match=r"vouchers\.parquet"):
        read_result(out)


def test_missing_file_and_manifest_are_detected(result: CloseResult, tmp_path: Path) -> None:
    out = result.write(tmp_path / "jan")
    (out / "log.parquet").unlink()
    with pytest.raises(InvcloseError, match=r"log\.parquet is missing"):
        read_result(out)
    (out / "manifest.json").unlink()
    with pytest.raises(InvcloseError, match=r"manifest\.json is missing"):
        read_result(out)
    with pytest.raises(InvcloseError, match="not a directory"):
        read_result(tmp_path / "nowhere")


def _rewrite_manifest(out: Path, change: dict[str, object]) -> None:
    path = out / "manifest.json"
    manifest = json.loads(path.read_text())
    for key, value in change.items():
        target = manifest
        *parents, last = key.split("/")
        for p in parents:
            target = target[p]
        target[last] = value
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"tables/log/rows": 99}, "manifest says 99"),
        ({"tables/log/file": "../log.parquet"}, "damaged entry for table 'log'"),
        ({"format": "something-else"}, "not an invclose result manifest"),
        ({"format_version": 99}, "upgrade invclose"),
        ({"closing_date": "yesterday"}, "damaged manifest"),
        ({"dimensions": ["warehouse"]}, "missing columns"),
    ],
)
def test_tampered_manifest_is_detected(
    result: CloseResult, tmp_path: Path, change: dict[str, object], needle: str
) -> None:
    out = result.write(tmp_path / "jan")
    _rewrite_manifest(out, change)
    with pytest.raises(InvcloseError, match=needle):
        read_result(out)


def test_wrong_schema_with_matching_hash_is_detected(result: CloseResult, tmp_path: Path) -> None:
    out = result.write(tmp_path / "jan")
    file = out / "cost_flow.parquet"
    pl.read_parquet(file).cast({"amount": pl.Float64}).write_parquet(file)
    _rewrite_manifest(
        out, {"tables/cost_flow/sha256": hashlib.sha256(file.read_bytes()).hexdigest()}
    )
    with pytest.raises(InvcloseError, match=r"cost_flow\.amount: dtype Float64"):
        read_result(out)


def test_a_result_written_before_the_order_state_columns_reads_them_as_null(
    result: CloseResult, tmp_path: Path
) -> None:
    out = result.write(tmp_path / "jan")
    file = out / "open_items.parquet"
    pl.read_parquet(file).drop("unfed_qty", "unfed_change").write_parquet(file)
    _rewrite_manifest(
        out, {"tables/open_items/sha256": hashlib.sha256(file.read_bytes()).hexdigest()}
    )
    read = read_result(out)
    assert read.open_items.schema == result.open_items.schema
    assert read.open_items.height == result.open_items.height > 0
    assert read.open_items["unfed_qty"].null_count() == read.open_items.height
    assert read.open_items["unfed_change"].null_count() == read.open_items.height


def test_a_result_lacking_only_one_order_state_column_is_damaged(
    result: CloseResult, tmp_path: Path
) -> None:
    out = result.write(tmp_path / "jan")
    file = out / "open_items.parquet"
    pl.read_parquet(file).drop("unfed_change").write_parquet(file)
    _rewrite_manifest(
        out, {"tables/open_items/sha256": hashlib.sha256(file.read_bytes()).hexdigest()}
    )
    with pytest.raises(InvcloseError, match="unfed_change"):
        read_result(out)


# ------------------------------------------------------------------ atomic writes


def test_overwrite_existing_result(result: CloseResult, tmp_path: Path) -> None:
    out = result.write(tmp_path / "jan")
    second = _result(close_id="C2", vouchers=_vouchers(BALANCED_LINES[:2]))
    second.write(out)
    back = read_result(out)
    assert back.close_id == "C2"
    assert back.vouchers.height == 2
    assert _leftovers(tmp_path) == []


def test_refuses_to_overwrite_a_result_that_holds_other_files(
    result: CloseResult, tmp_path: Path
) -> None:
    # A result replaced in place takes its whole directory with it: a nested result written
    # into it and a note beside the tables must stop the write, not vanish with the old one.
    out = result.write(tmp_path / "jan")
    _result(close_id="C2").write(out / "feb")
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(InvcloseError, match=r"also holds feb, notes\.txt"):
        _result(close_id="C3").write(out)
    assert read_result(out).close_id == CID
    assert read_result(out / "feb").close_id == "C2"
    assert (out / "notes.txt").read_text() == "keep me"
    assert _leftovers(tmp_path) == []


def test_overwrite_without_rename_exchange(
    result: CloseResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_parquet, "_rename_exchange", lambda a, b: False)
    out = result.write(tmp_path / "jan")
    _result(close_id="C3").write(out)
    assert read_result(out).close_id == "C3"
    assert _leftovers(tmp_path) == []


def test_failed_write_keeps_previous_result(
    result: CloseResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = result.write(tmp_path / "jan")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_write = pl.DataFrame.write_parquet
    calls = {"n": 0}

    def failing(self: pl.DataFrame, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            msg = "disk full"
            raise OSError(msg)
        real_write(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pl.DataFrame, "write_parquet", failing)
    with pytest.raises(OSError, match="disk full"):
        _result(close_id="C9").write(out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert read_result(out).close_id == CID
    assert _leftovers(tmp_path) == []


def test_refuses_to_overwrite_foreign_directory(result: CloseResult, tmp_path: Path) -> None:
    foreign = tmp_path / "reports"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(InvcloseError, match="refusing to overwrite"):
        result.write(foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    assert _leftovers(tmp_path) == []

    file = tmp_path / "a_file"
    file.write_text("x")
    with pytest.raises(InvcloseError, match="not a directory"):
        result.write(file)


def test_writes_into_empty_or_new_nested_directory(result: CloseResult, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert read_result(result.write(empty)).equals(result)
    nested = tmp_path / "a" / "b" / "c"
    assert read_result(result.write(str(nested))).equals(result)


# ------------------------------------------------------------------ DuckDB


def _types(con: duckdb.DuckDBPyConnection, view: str) -> dict[str, str]:
    return {row[0]: row[1] for row in con.sql(f"DESCRIBE {view}").fetchall()}


def test_to_duckdb_registers_tables_and_auditor_views(result: CloseResult) -> None:
    con = result.to_duckdb()
    names = {row[0] for row in con.sql("SELECT view_name FROM duckdb_views()").fetchall()}
    assert {*RESULT_TABLES, "unsettled", "gl_by_account", "reconciliation"} <= names
    for table in RESULT_TABLES:
        (count,) = con.sql(f"SELECT count(*) FROM {table}").fetchall()[0]  # type: ignore[misc]
        assert count == getattr(result, table).height
    con.close()


def test_duckdb_reads_decimals_and_lists_natively(result: CloseResult) -> None:
    con = result.to_duckdb()
    adj = _types(con, "adjustments")
    assert adj["adjustment"] == "DECIMAL(38,2)"
    assert adj["cost_delta"] == "DECIMAL(38,2)"
    assert adj["qty"] == "DECIMAL(38,6)"
    assert adj["adjusted_against"] == "VARCHAR[]"
    assert _types(con, "vouchers")["debit"] == "DECIMAL(38,2)"
    assert _types(con, "gl_by_account")["balance"] == "DECIMAL(38,2)"
    assert _types(con, "reconciliation")["difference"] == "DECIMAL(38,2)"
    got = con.sql(
        "SELECT txn_id, adjustment, adjusted_against FROM adjustments ORDER BY txn_id"
    ).fetchall()
    assert got == [
        ("I1", D("-1.50"), None),
        ("I2", D("0.75"), []),
        ("R3", D("2.00"), ["R1", "R2"]),
    ]
    con.close()


def test_extreme_decimals_round_trip_parquet_and_duckdb(tmp_path: Path) -> None:
    big = D("123456789012345678901234567890123456.78")  # 38 digits, the DuckDB maximum
    tables = _tables()
    tables["cost_flow"] = _frame(
        "cost_flow",
        {
            "from_txn_id": ["R1", "R2"],
            "to_txn_id": ["I1", "I2"],
            "qty": [D("12345678901234567890123456789012.123456"), D("0.000001")],
            "amount": [big, -big],
            "kind": ["settlement", "transfer"],
        },
    )
    res = _result(cost_flow=tables["cost_flow"])
    back = read_result(res.write(tmp_path / "big"))
    assert back.cost_flow.equals(res.cost_flow)
    assert back.cost_flow["amount"].to_list() == [big, -big]
    out = back.sql("SELECT amount, qty FROM cost_flow ORDER BY amount")
    assert out.schema == {"amount": MONEY, "qty": QTY}
    assert out["amount"].to_list() == [-big, big]
    assert out["qty"].to_list() == [D("0.000001"), D("12345678901234567890123456789012.123456")]
    con = register_result(duckdb.connect(), tmp_path / "big")
    assert con.sql("SELECT max(amount) FROM cost_flow").fetchall()[0] == (big,)
    assert _types(con, "cost_flow")["amount"] == "DECIMAL(38,2)"
    con.close()


def test_reconciliation_balanced(result: CloseResult) -> None:
    rec = result.sql("SELECT * FROM reconciliation")
    assert rec.columns == ["account", "adjustment_total", "voucher_net", "difference"]
    assert rec.rows() == [
        ("1400", D("0.50"), D("0.50"), D("0.00")),
        ("1410", D("0.75"), D("0.75"), D("0.00")),
    ]
    assert (rec["difference"] == 0).all()


def test_reconciliation_shows_unbalanced_accounts() -> None:
    lines = [line for line in BALANCED_LINES if line[1] != "1410"]  # I2's inventory line lost
    lines[2] = ("R3", "1400", "2.01", "0.00")  # and R3 debited one cent too much
    lines.append(("X1", "1999", "5.00", "0.00"))  # a line no adjustment explains
    res = _result(vouchers=_vouchers(lines))
    rec = res.sql("SELECT account, adjustment_total, voucher_net, difference FROM reconciliation")
    assert rec.rows() == [
        ("1400", D("0.50"), D("0.51"), D("-0.01")),
        ("1410", D("0.75"), D("0.00"), D("0.75")),
        ("1999", D("0.00"), D("5.00"), D("-5.00")),
    ]


def test_reconciliation_counts_offset_side_of_shared_accounts() -> None:
    # Two rows whose offset account is the other's inventory account.
    adjustments = _frame(
        "adjustments",
        {
            "txn_id": ["T1", "T2"],
            "item_id": ["A", "A"],
            "site": ["S1", "S2"],
            "adjustment": [D("-4.00"), D("4.00")],
            "cost_delta": [D("4.00"), D("4.00")],
            "inventory_account": ["1400", "1410"],
            "offset_account": ["1410", "1400"],
        },
    )
    vouchers = _vouchers(
        [
            ("T1", "1400", "0.00", "4.00"),
            ("T1", "1410", "4.00", "0.00"),
            ("T2", "1410", "4.00", "0.00"),
            ("T2", "1400", "0.00", "4.00"),
        ]
    )
    res = _result(adjustments=adjustments, vouchers=vouchers)
    rec = res.sql("SELECT account, adjustment_total, voucher_net, difference FROM reconciliation")
    assert rec.rows() == [
        ("1400", D("-8.00"), D("-8.00"), D("0.00")),
        ("1410", D("8.00"), D("8.00"), D("0.00")),
    ]


def test_gl_by_account(result: CloseResult) -> None:
    gl = result.sql("SELECT * FROM gl_by_account")
    assert gl.columns == ["account", "debit", "credit", "balance"]
    assert gl.rows() == [
        ("1400", D("2.00"), D("1.50"), D("0.50")),
        ("1410", D("0.75"), D("0.00"), D("0.75")),
        ("5000", D("1.50"), D("0.75"), D("0.75")),
        ("6000", D("0.00"), D("2.00"), D("-2.00")),
    ]
    assert gl["balance"].sum() == 0


def test_unsettled_view(result: CloseResult) -> None:
    uns = result.sql("SELECT code, txn_id FROM unsettled ORDER BY txn_id")
    assert uns.rows() == [
        ("insufficient_receipts", "I10"),
        ("insufficient_receipts", "I9"),
        ("receipt_not_invoiced", "R5"),
    ]
    assert result.sql("SELECT * FROM unsettled").columns == result.log.columns


def test_sql_returns_polars_and_wraps_errors(result: CloseResult) -> None:
    out = result.sql("SELECT item_id, sum(amount) AS amount FROM settlements GROUP BY 1 ORDER BY 1")
    assert isinstance(out, pl.DataFrame)
    assert out.rows() == [("A", D("30.00")), ("B", D("7.25"))]
    with pytest.raises(InvcloseError, match="SQL query failed"):
        result.sql("SELECT * FROM no_such_table")


def test_to_duckdb_on_given_connection_with_schemas(result: CloseResult) -> None:
    con = duckdb.connect()
    other = _result(close_id="C2", vouchers=_vouchers(BALANCED_LINES[:2]))
    assert result.to_duckdb(con, schema="jan") is con
    other.to_duckdb(con, schema="feb")
    assert con.sql("SELECT count(*) FROM jan.vouchers").fetchall()[0] == (6,)
    assert con.sql("SELECT count(*) FROM feb.vouchers").fetchall()[0] == (2,)
    rec = con.sql("SELECT account, difference FROM feb.reconciliation ORDER BY 1").fetchall()
    # feb has only I1's two lines: 1400 expects 0.50 but carries -1.50; 1410 nothing
    assert rec == [("1400", D("2.00")), ("1410", D("0.75"))]
    con.close()


def test_register_from_directory(result: CloseResult, tmp_path: Path) -> None:
    out = result.write(tmp_path / "jan")
    db = tmp_path / "audit.duckdb"
    con = duckdb.connect(str(db))
    register_result(con, out, schema="jan")
    assert con.sql("SELECT count(*) FROM jan.adjustments").fetchall()[0] == (3,)
    assert _types(con, "jan.balances")["value"] == "DECIMAL(38,2)"
    con.close()
    # The views read the files by path, so they survive reopening the database file.
    con = duckdb.connect(str(db))
    assert con.sql("SELECT sum(difference) FROM jan.reconciliation").fetchall()[0] == (D("0.00"),)
    con.close()
    # A modified file is refused before any view is made.
    pl.read_parquet(out / "log.parquet").head(1).write_parquet(out / "log.parquet")
    with pytest.raises(InvcloseError, match=r"log\.parquet does not match"):
        register_result(duckdb.connect(), out)


# ------------------------------------------------------------------ summaries


def test_summary_numbers(result: CloseResult) -> None:
    text = result.summary()
    assert "invclose close at 2025-01-31" in text
    assert CID in text
    assert "dimensions: site" in text
    assert "lock date: 2025-01-31" in text
    # items A, B; groups (A,S1), (B,S2)
    assert "2 items in 2 groups" in text
    # 2 pieces, 3 + 1.5 = 4.5 units, 30.00 + 7.25 = 37.25
    assert "2 pieces, qty 4.5, amount 37.25" in text
    # cost_delta 1.50 + 2.00 - 0.75 = 2.75: issues I1, I2 1.50 - 0.75 = +0.75 (more cost of
    # goods), receipt R3 +2.00 (more inventory value). Inventory value: the adjustments in
    # their own signs, -1.50 + 2.00 + 0.75 = +1.25 (1400 +0.50, 1410 +0.75 in the vouchers).
    assert "total cost delta +2.75 (issues +0.75, receipts +2.00)" in text
    assert "inventory value +1.25" in text
    assert "Findings     5 rows" in text
    lines = text.splitlines()

    def line_with(*words: str) -> str:
        found = [ln for ln in lines if all(w in ln.split() for w in words)]
        assert len(found) == 1, (words, text)
        return found[0]

    assert line_with("warning", "insufficient_receipts", "2")
    assert line_with("warning", "receipt_not_invoiced", "1")
    assert line_with("info", "marking_ignored", "1")
    assert "1 voucher, 6 lines" in text
    assert line_with("1400", "2.00", "1.50", "0.50")
    assert line_with("6000", "0.00", "2.00", "-2.00")
    assert line_with("total", "4.25", "4.25", "0.00")
    # balances: qty 10 + 2.5, value 1,234,567.89 + 12.35
    assert "2 groups, qty 12.5, value 1,234,580.24" in text
    assert "Open items   2 (1 virtual); closed items 2; cost-flow edges 2" in text
    assert len(lines) <= 30


def test_summary_of_empty_result() -> None:
    tables = {t: empty_table(t, ()) for t in RESULT_TABLES}
    res = CloseResult(CID, DATE, "recalculation", (), "fp", None, **tables)
    text = res.summary()
    assert "invclose recalculation at 2025-01-31" in text
    assert "lock date: none" in text
    assert "0 items in 0 groups (item)" in text
    assert "total cost delta 0.00 (issues 0.00, receipts 0.00)" in text
    assert "inventory value 0.00" in text
    assert "Findings     none" in text


def test_summary_counts_one_piece_in_the_singular() -> None:
    # One receipt of 2 @ 10.00, one issue of 1: one piece of 1 unit for 5.00.
    rows = pl.DataFrame(
        {
            "txn_id": ["R", "I"],
            "item_id": ["A", "A"],
            "date": [DATE, DATE],
            "qty": [D("2"), D("-1")],
            "amount": [D("10.00"), D("-5.00")],
        },
        schema_overrides={"qty": pl.Decimal(38, 6), "amount": pl.Decimal(38, 2)},
    )
    text = invclose.close(rows, DATE).summary()
    assert "Settlements  1 piece, qty 1, amount 5.00" in text


def test_repr_html(result: CloseResult) -> None:
    page = result._repr_html_()
    assert page.startswith("<div")
    assert CID in page
    assert "2025-01-31" in page
    assert "+2.75" in page
    assert "insufficient_receipts (warning) 2" in page
    assert "settlements 2" in page


def test_html_is_escaped() -> None:
    res = _result(close_id="<script>")
    assert "<script>" not in res._repr_html_()
    assert "&lt;script&gt;" in res._repr_html_()


def test_summary_counts_weighted_average_closing_pairs_apart() -> None:
    # Weighted average: R1 2 @ 10.00, R2 2 @ 14.00, I1 sells 2 posted -20.00. The average is
    # 48.00 / 4 = 12.00: I1 settles 2 against the virtual closing receipt at 24.00. R1 and R2
    # are settled into the virtual closing issue (qty 4, 20.00 + 28.00 = 48.00): that cost is
    # I1's piece and the 2 units still on hand, so adding it to I1's counted 72.00 of
    # "settlements" for 2 units sold. Adjustment of I1: 20.00 -> 24.00, cost delta +4.00, an
    # issue's; inventory -4.00.
    rows = pl.DataFrame(
        {
            "txn_id": ["R1", "R2", "I1"],
            "item_id": ["A"] * 3,
            "date": [dt.date(2025, 1, 2), dt.date(2025, 1, 3), dt.date(2025, 1, 4)],
            "qty": [D("2"), D("2"), D("-2")],
            "amount": [D("20.00"), D("28.00"), D("-20.00")],
        },
        schema_overrides={"qty": pl.Decimal(38, 6), "amount": pl.Decimal(38, 2)},
    )
    text = invclose.close(rows, DATE, method="weighted_average", accounts=ACCOUNTS).summary()
    assert "Settlements  1 piece, qty 2, amount 24.00" in text
    assert "and 2 closing-pair pieces (qty 4, amount 48.00)" in text
    assert "1 transaction, total cost delta +4.00 (issues +4.00, receipts 0.00)" in text
    assert "inventory value -4.00" in text


def test_summary_sums_the_accounts_it_does_not_list() -> None:
    # 22 inventory accounts (1400..1421) each debited 1.00 and one cost-of-goods account 5000
    # credited 22.00: 23 accounts, 20 listed (sorted as text: 1400..1419). The other three,
    # 1420 and 1421 (debit 2.00) and 5000 (credit 22.00), are one line, so the total line is
    # the sum of the lines shown: debit 20.00 + 2.00 = 22.00, credit 22.00.
    lines = []
    for k in range(22):
        lines += [(f"V{k}", f"14{k:02d}", "1.00", "0.00"), (f"V{k}", "5000", "0.00", "1.00")]
    res = _result(vouchers=_vouchers(lines))
    text = res.summary()
    rows = {ln.split()[0]: ln.split()[1:] for ln in text.splitlines() if ln.startswith("  ")}
    assert "1419" in rows
    assert not {"1420", "1421", "5000"} & rows.keys()
    more = next(ln for ln in text.splitlines() if "3 more accounts" in ln)
    assert more.split()[-3:] == ["2.00", "22.00", "-20.00"]
    assert rows["total"] == ["22.00", "22.00", "0.00"]
