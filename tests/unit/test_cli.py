"""The command line, run as a user would: a subprocess, its output and its exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invclose", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_prints_the_sample_close_summary() -> None:
    proc = run("demo")
    assert proc.returncode == 0, proc.stderr
    # Hand calculation in sample_data/README.md: COGS rises by 11.50 over 6 adjustments.
    assert "6 transactions, total cost delta +11.50" in proc.stdout
    assert "insufficient_receipts" in proc.stdout


def test_close_writes_tables_and_sql_reads_them(tmp_path: Path) -> None:
    out = tmp_path / "jan"
    proc = run(
        "close",
        str(SAMPLE / "transactions.csv"),
        "--date",
        "2025-01-31",
        "--items",
        str(SAMPLE / "items.csv"),
        "--dimensions",
        "site",
        "--accounts",
        str(SAMPLE / "accounts.csv"),
        "--out",
        str(out),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    assert facts["settlements"] == 11
    assert facts["total_cost_delta"] == "11.50"
    sql = run(
        "sql",
        str(out),
        "select count(*) as n from settlements where principle = 'marking'",
        "--json",
    )
    assert sql.returncode == 0, sql.stderr
    assert json.loads(sql.stdout) == [{"n": 1}]


def test_strict_exits_1_on_warnings() -> None:
    proc = run(
        "close",
        str(SAMPLE / "transactions.csv"),
        "--date",
        "2025-01-31",
        "--items",
        str(SAMPLE / "items.csv"),
        "--dimensions",
        "site",
        "--accounts",
        str(SAMPLE / "accounts.csv"),
        "--strict",
    )
    # The sample has an insufficient_receipts warning (BOLT at S2).
    assert proc.returncode == 1


def test_check_lists_findings() -> None:
    proc = run(
        "check",
        str(SAMPLE / "transactions.csv"),
        "--date",
        "2025-01-31",
        "--items",
        str(SAMPLE / "items.csv"),
        "--dimensions",
        "site",
        "--accounts",
        str(SAMPLE / "accounts.csv"),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    codes = {row["code"] for row in json.loads(proc.stdout)}
    assert {"insufficient_receipts", "negative_on_hand"} <= codes


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("close", "missing.csv", "--date", "2025-01-31"), "no such file"),
        # A usage error of typer (its own copy of click) shows itself and exits 2.
        (("close", "sample_data/transactions.csv", "--no-such-option"), "No such option"),
        (("check", "missing.csv", "--date", "2025-01-31"), "no such file"),
        (("check", "sample_data/transactions.csv", "--date", "2025-13-45"), "closing date"),
        (("demo", "--data", "/nonexistent-sample"), "sample_data/ not found"),
        (("close", "sample_data/transactions.csv", "--date", "31/01/2025"), "closing date"),
        (
            ("close", "sample_data/transactions.csv", "--date", "2025-01-31", "--method", "hifo"),
            "unknown valuation method",
        ),
        (
            (
                "close",
                "sample_data/transactions.csv",
                "--date",
                "2025-01-31",
                "--dimensions",
                "site",
            ),
            "account",
        ),
        (
            (
                "close",
                "sample_data/transactions.parquet",
                "--date",
                "2025-01-31",
                "--batch-rows",
                "5",
            ),
            "give --out DIR",
        ),
        (
            (
                "close",
                "sample_data/transactions.csv",
                "--date",
                "2025-01-31",
                "--batch-rows",
                "5",
                "--out",
                "/tmp/invclose-cli-never-written",
            ),
            "Parquet files only",
        ),
    ],
)
def test_bad_input_exits_2_with_a_plain_message(args: tuple[str, ...], needle: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_close_in_batches_writes_the_same_close(tmp_path: Path) -> None:
    out = tmp_path / "batched"
    args = ["--items", str(SAMPLE / "items.csv"), "--dimensions", "site"]
    args += ["--accounts", str(SAMPLE / "accounts.csv")]
    proc = run(
        "close", str(SAMPLE / "transactions.parquet"), "--date", "2025-01-31", *args,
        "--batch-rows", "3", "--out", str(out), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    # The same hand-checked numbers as the in-memory close of the sample (sample_data/README).
    assert facts["settlements"] == 11
    assert facts["total_cost_delta"] == "11.50"
    assert facts["batches"] > 1
    sql = run("sql", str(out), "select count(*) as n from adjustments", "--json")
    assert json.loads(sql.stdout) == [{"n": 6}]


def test_bad_rows_are_named(tmp_path: Path) -> None:
    bad = pl.read_csv(SAMPLE / "transactions.csv", infer_schema=False).with_columns(
        qty=pl.when(pl.col("txn_id") == "S-002").then(pl.lit("0")).otherwise(pl.col("qty"))
    )
    path = tmp_path / "bad.csv"
    bad.write_csv(path)
    proc = run("close", str(path), "--date", "2025-01-31", "--dimensions", "site")
    assert proc.returncode == 2
    assert "S-002" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_text_that_looks_like_markup_is_printed_as_it_is(tmp_path: Path) -> None:
    # A txn_id "[/x]" repeated: the error names it and its check tag ([txn_id_duplicate]);
    # rich markup would have crashed on the closing tag or swallowed the tag.
    bad = pl.read_csv(SAMPLE / "transactions.csv", infer_schema=False)
    bad = pl.concat([bad, bad.head(1)]).with_columns(
        txn_id=pl.when(pl.col("txn_id") == bad["txn_id"][0])
        .then(pl.lit("[/x]"))
        .otherwise("txn_id")
    )
    path = tmp_path / "bad.csv"
    bad.write_csv(path)
    proc = run("close", str(path), "--date", "2025-01-31", "--dimensions", "site")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "(txn_id '[/x]'), column 'txn_id' [txn_id_duplicate]" in proc.stderr.replace("\n", " ")
    out = tmp_path / "jan"
    assert run("demo", "--out", str(out)).returncode == 0
    proc = run("sql", str(out), "select '[/x] [bold]' as text")
    assert proc.returncode == 0, proc.stderr
    assert "[/x] [bold]" in proc.stdout


def test_sql_with_a_bad_query_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "jan"
    assert run("demo", "--out", str(out)).returncode == 0
    proc = run("sql", str(out), "select nonsense from nowhere")
    assert proc.returncode == 2
    assert "query failed" in proc.stderr


def test_compare_prints_cost_of_goods_per_method() -> None:
    proc = run(
        "compare",
        str(SAMPLE / "transactions.csv"),
        "--date",
        "2025-01-31",
        "--dimensions",
        "site",
        "--methods",
        "fifo,lifo",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    rows = {(r["item_id"], r["method"]): r["cost_of_goods"] for r in json.loads(proc.stdout)}
    # PAINT, by hand (tests/unit/test_compare.py): fifo 108.50, lifo 119.00.
    assert rows[("PAINT", "fifo")] == "108.50"
    assert rows[("PAINT", "lifo")] == "119.00"


def test_compare_with_an_unknown_method_exits_2() -> None:
    proc = run(
        "compare", str(SAMPLE / "transactions.csv"), "--date", "2025-01-31", "--methods", "hifo"
    )
    assert proc.returncode == 2
    assert "unknown valuation method" in proc.stderr


#: Files no reader can take, and what the message must say: each is refused by the one shared
#: reader (invclose.io.read_raw) as "cannot read <path>: <reason>; <fix>", exit status 2.
UNREADABLE: dict[str, tuple[bytes, str]] = {
    "corrupt.parquet": (b"PAR1 this is not a parquet file", "damaged or not Parquet"),
    "quotes.csv": (
        b'txn_id,item_id,date,qty,amount\nR1,"A,2025-01-02,10,1.00\nR2,B",x,"y\n',
        "every quoted field is closed",
    ),
    "latin1.csv": (b"txn_id,item_id,date,qty,amount\nR1,Caf\xe9,2025-01-02,1,1.00\n", "UTF-8"),
    "empty.csv": (b"", "the file is empty"),
}


@pytest.mark.parametrize("name", sorted(UNREADABLE))
@pytest.mark.parametrize("command", ["close", "check", "compare", "close --accounts"])
def test_unreadable_file_exits_2_naming_it(tmp_path: Path, name: str, command: str) -> None:
    content, fix = UNREADABLE[name]
    path = tmp_path / name
    path.write_bytes(content)
    if command == "close --accounts":
        args = ["close", str(SAMPLE / "transactions.csv"), "--accounts", str(path)]
    else:
        args = [command, str(path)]
    proc = run(*args, "--date", "2025-01-31")
    assert proc.returncode == 2, proc.stderr
    text = " ".join(proc.stderr.split())  # rich may wrap the line
    assert f"cannot read {path}:" in text
    assert fix in text
    assert "Traceback" not in proc.stderr


def test_item_and_account_files_of_any_name_are_read_as_csv(tmp_path: Path) -> None:
    # --items and --accounts name one file each: Parquet by its name, anything else is CSV
    # (items.dat was read so before the shared reader; it was refused as an unknown type).
    items = tmp_path / "items.dat"
    items.write_text((SAMPLE / "items.csv").read_text())
    accounts = tmp_path / "accounts"
    accounts.write_text((SAMPLE / "accounts.csv").read_text())
    args = ("--date", "2025-01-31", "--dimensions", "site", "--json")
    named = run(
        "check",
        str(SAMPLE / "transactions.csv"),
        *args,
        "--items",
        str(items),
        "--accounts",
        str(accounts),
    )
    plain = run(
        "check",
        str(SAMPLE / "transactions.csv"),
        *args,
        "--items",
        str(SAMPLE / "items.csv"),
        "--accounts",
        str(SAMPLE / "accounts.csv"),
    )
    assert named.returncode == plain.returncode == 0, named.stderr
    assert named.stdout == plain.stdout
