"""The command line, run as a user would: a subprocess, its output and its exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner, Result

import invclose
from invclose.cli import app, main
from invclose.console import console

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
    # All six adjusted rows are issues (sample_data/README.md); the inventory accounts move
    # by the adjustments in their own signs: 1400 +0.50, 1410 -12.00 = -11.50.
    assert (facts["issues_cost_delta"], facts["receipts_cost_delta"]) == ("11.50", "0.00")
    assert facts["inventory_change"] == "-11.50"
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
    # The sample has an insufficient_receipts warning (BOLT at S2), and negative on-hand
    # there. The reason goes to standard error, for a pipeline's log (review 59).
    assert proc.returncode == 1
    assert "--strict: the log has" in proc.stderr
    assert "insufficient_receipts (1)" in proc.stderr


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
        *[
            (
                (
                    "close",
                    "sample_data/transactions.parquet",
                    "--date",
                    "2025-01-31",
                    "--dimensions",
                    "site",
                    "--accounts",
                    "sample_data/accounts.csv",
                    "--out",
                    "sample_data/accounts.csv/out",  # under a file: nothing can be created
                    *batched,
                ),
                "cannot write an invclose result to sample_data/accounts.csv/out",
            )
            for batched in ((), ("--batch-rows", "5"))
        ],
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
    proc = run("sql", str(out), "select * from inventory_value('2025-01-15')")
    assert proc.returncode == 2
    assert "register_views" in proc.stderr.replace("\n", " ")


def test_sql_walks_the_lineage_of_a_written_close(tmp_path: Path) -> None:
    # The sample's S-001 (BOLT S1) is costed FIFO from P-001 and P-002.
    out = tmp_path / "jan"
    assert run("demo", "--out", str(out)).returncode == 0
    proc = run("sql", str(out), "select txn_id, depth from lineage('S-001')", "--csv")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["txn_id,depth", "S-001,0", "P-001,1", "P-002,1"]


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


# ---------------------------------------------------------------------------- review fixes
# In process (typer's CliRunner) at a fixed console width of 80 columns, except where the
# test needs a real process (what reaches a piped stderr).

runner = CliRunner()
CLOSE_ARGS = ("--date", "2025-01-31", "--dimensions", "site")
WITH_ACCOUNTS = ("--accounts", str(SAMPLE / "accounts.csv"))


@pytest.fixture
def width(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Set the width of the command line's console (80 columns unless told)."""

    def set_width(columns: int) -> None:
        monkeypatch.setattr(console, "_width", columns)

    set_width(80)
    return set_width


def cli(*args: object) -> Result:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def entry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """``invclose ARGS`` through ``main`` (the installed script): exit status, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["invclose", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    out, err = capsys.readouterr()
    return int(stopped.value.code or 0), out, " ".join(err.split())


def test_check_exits_2_where_the_close_would_fail(
    width: Callable[[int], None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Without --accounts the 5 sales with a cost change have no account (review: exit 0).
    data = SAMPLE / "transactions.csv"
    closed, _, _ = entry(monkeypatch, capsys, "close", str(data), *CLOSE_ARGS)
    check = cli("check", data, *CLOSE_ARGS)
    assert closed == check.exit_code == 2
    assert "a close at 2025-01-31 would fail: 5 error row(s) (missing_account)" in " ".join(
        check.stderr.split()
    )
    assert "missing_account" in check.stdout  # the list is still printed
    found = cli("check", data, *CLOSE_ARGS, "--json")
    assert found.exit_code == 2
    assert sum(r["level"] == "error" for r in json.loads(found.stdout)) == 5
    # With the accounts only warnings are left: 0, and 1 with --strict (as close --strict).
    assert cli("check", data, *CLOSE_ARGS, *WITH_ACCOUNTS).exit_code == 0
    assert cli("check", data, *CLOSE_ARGS, *WITH_ACCOUNTS, "--strict").exit_code == 1


def test_check_and_compare_continue_from_an_opening(tmp_path: Path) -> None:
    # February alone: S-005 sells 5 BOLT at S1. Only the January close knows what is still on
    # hand (sample_data/README.md): BOLT 5 units at S1 and -10 at S2 (S-101 still open),
    # GLUE 15, PAINT 7. Without it the sale has no receipt (insufficient_receipts).
    jan = tmp_path / "jan"
    close = cli("close", SAMPLE / "transactions.csv", *CLOSE_ARGS, *WITH_ACCOUNTS, "--out", jan)
    assert close.exit_code == 0, close.output
    feb = tmp_path / "feb.csv"
    feb.write_text(
        "txn_id,item_id,site,date,qty,amount,status,seq,kind\n"
        "S-005,BOLT,S1,2025-02-03,-5,-10.00,financial,18,sale\n"
    )
    args = ("--date", "2025-02-28", "--dimensions", "site", "--json")
    alone = cli("check", feb, *args, *WITH_ACCOUNTS)
    continued = cli("check", feb, *args, *WITH_ACCOUNTS, "--opening", jan)
    assert alone.exit_code == continued.exit_code == 0, continued.output

    def found(result: Result) -> set[tuple[str, str, str | None]]:
        return {(r["code"], r["site"], r["txn_id"]) for r in json.loads(result.stdout)}

    assert found(alone) == {
        ("insufficient_receipts", "S1", "S-005"),
        ("negative_on_hand", "S1", None),
    }
    assert found(continued) == {  # January's S2 shortage carries on; S-005 is covered
        ("insufficient_receipts", "S2", "S-101"),
        ("negative_on_hand", "S2", None),
    }

    def ending(*extra: object) -> dict[str, str]:
        result = cli("compare", feb, *args, "--methods", "fifo", *extra)
        assert result.exit_code == 0, result.output
        return {r["item_id"]: r["ending_qty"] for r in json.loads(result.stdout)}

    assert ending() == {"BOLT": "-5.000000"}
    assert ending("--opening", jan) == {
        "BOLT": "-10.000000",  # S1: 5 - 5; S2: -10
        "GLUE": "15.000000",
        "PAINT": "7.000000",
    }


def test_compare_takes_items_and_include_physical_value(tmp_path: Path) -> None:
    # BOLT at S1 under lifo, by hand: S-003 is marked to P-001 (5.00); the other 190 units
    # take P-002 (100 for 120.00) and 90 of P-001 (90.00). With physical value, P-003 (50 for
    # 65.00, physical) is the last receipt: 50 of P-001 at 1.00 become 50 at 1.30, +15.00.
    items = tmp_path / "items.csv"
    items.write_text("item_id,include_physical_value\nBOLT,true\n")

    def bolt(*extra: object) -> str:
        result = cli(
            "compare", SAMPLE / "transactions.csv", *CLOSE_ARGS, "--methods", "lifo", "--json",
            *extra,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        rows = {r["item_id"]: r["cost_of_goods"] for r in json.loads(result.stdout)}
        return str(rows["BOLT"])

    assert bolt() == "259.00"  # with S2: 44.00 (33.00 settled + 11.00 kept)
    assert bolt("--include-physical-value") == bolt("--items", items) == "274.00"


def test_sql_prints_a_wide_table_unwrapped(tmp_path: Path, width: Callable[[int], None]) -> None:
    out = tmp_path / "jan"
    assert cli("demo", "--out", out).exit_code == 0
    result = cli("sql", out, "select repeat('x', 40) as a, repeat('y', 40) as b")
    assert result.exit_code == 0, result.output
    # Polars drew the row on one line of about 90 characters; the console must not cut it
    # at 80 columns.
    assert any(("x" * 40) in line and ("y" * 40) in line for line in result.stdout.splitlines())


def test_sql_never_splits_a_number_over_two_lines(
    tmp_path: Path, width: Callable[[int], None]
) -> None:
    # Fourteen money columns of -102.45 are wider than a 60-column terminal: Polars fitted
    # the table to 160 characters by wrapping inside cells ("-102.4" over "5").
    out = tmp_path / "jan"
    assert cli("demo", "--out", out).exit_code == 0
    width(60)
    columns = ", ".join(f"-102.45::decimal(38, 2) as money_column_{k}" for k in range(14))
    result = cli("sql", out, f"select {columns}")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    row = [line for line in lines if "-102.4" in line]
    assert len(row) == 1
    assert row[0].count("-102.45") == 14
    assert any("money_column_13" in line for line in lines)


def test_sql_says_when_it_shows_only_some_rows_and_keeps_whole_texts(
    tmp_path: Path, width: Callable[[int], None]
) -> None:
    out = tmp_path / "jan"
    assert cli("demo", "--out", out).exit_code == 0
    query = "select i, repeat('word ', 20) || 'reason' as message from range(250) t(i)"
    shown = cli("sql", out, query)
    assert shown.exit_code == 0, shown.output
    # 250 rows: the first 200 in the table, then one plain line saying so (polars used to
    # put a row of dots in the middle, and cut texts at 60 characters).
    assert "showing the first 200 of 250 rows" in shown.stdout
    assert "199" in shown.stdout
    assert "│ 249" not in shown.stdout
    assert "reason" in shown.stdout
    every = cli("sql", out, query, "--csv")
    assert every.exit_code == 0, every.output
    lines = every.stdout.splitlines()
    assert lines[0] == "i,message"
    assert len(lines) == 251
    assert lines[-1].startswith("249,")
    assert lines[-1].endswith("reason")


def test_compare_never_cuts_a_method_name(width: Callable[[int], None]) -> None:
    result = cli("compare", SAMPLE / "transactions.csv", *CLOSE_ARGS)
    assert result.exit_code == 0, result.output
    methods = [line.split("│")[2].strip() for line in result.stdout.splitlines() if "BOLT" in line]
    assert methods == ["fifo", "lifo", "lifo_date", "weighted_average", "weighted_average_date"]
    assert "…" not in result.stdout  # no cell is cut
    assert "258.49" in result.stdout  # weighted average: BOLT's cost of goods in full


def test_progress_writes_nothing_to_a_piped_stderr() -> None:
    demo = run("demo")
    assert demo.returncode == 0
    assert demo.stderr == ""  # was "\n": the progress bar's leftover line
    failed = run("close", str(SAMPLE / "transactions.csv"), *CLOSE_ARGS)
    assert failed.returncode == 2
    assert failed.stderr.startswith("error: 5 transaction(s) must post an adjustment")


def test_progress_lines_go_to_a_log_and_off_writes_none() -> None:
    args = ("close", str(SAMPLE / "transactions.parquet"), *CLOSE_ARGS, *WITH_ACCOUNTS)
    logged = run(*args, "--progress", "lines")
    assert logged.returncode == 0, logged.stderr
    lines = logged.stderr.splitlines()
    # The sample's 17 rows: validated, settled, then done when their tables are made.
    assert [line.split(", ")[:2] for line in lines] == [
        ["invclose closing: validate", "0 of 17 rows (0%)"],
        ["invclose closing: settle and cost", "0 of 17 rows (0%)"],
        ["invclose closing: assemble", "17 of 17 rows (100%)"],
    ]
    assert all(line.endswith(" s") for line in lines)  # seconds since the start
    assert logged.stdout == run(*args).stdout  # the summary itself is unchanged
    quiet = run(*args, "--progress", "off")
    assert quiet.returncode == 0
    assert quiet.stderr == ""
    wrong = run(*args, "--progress", "sometimes")
    assert wrong.returncode == 2
    assert "sometimes" in wrong.stderr


def test_json_summary_writes_a_zero_total_with_two_places(tmp_path: Path) -> None:
    # On January 2nd only P-201 is posted: nothing to adjust, the total change is 0.00.
    early = ("--date", "2025-01-02", "--dimensions", "site", "--json")
    memory = cli("close", SAMPLE / "transactions.parquet", *early)
    batched = cli(
        "close", SAMPLE / "transactions.parquet", *early, "--batch-rows", "5",
        "--out", tmp_path / "b",
    )  # fmt: skip
    assert memory.exit_code == batched.exit_code == 0, batched.output
    assert json.loads(memory.stdout)["adjustments"] == 0
    assert json.loads(memory.stdout)["total_cost_delta"] == "0.00"
    assert json.loads(batched.stdout)["total_cost_delta"] == "0.00"


def test_compare_refuses_an_empty_method_list() -> None:
    for empty in ("", " , "):
        result = cli("compare", SAMPLE / "transactions.csv", *CLOSE_ARGS, "--methods", empty)
        assert result.exit_code == 2
        assert result.stdout == ""
        assert "--methods names no method" in result.stderr


def test_errors_name_the_options_of_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(SAMPLE / "transactions.csv")
    code, _, err = entry(monkeypatch, capsys, "close", data, *CLOSE_ARGS)
    assert code == 2
    assert "pass --accounts FILE with a row for these keys" in err
    assert "accounts=" not in err
    floats = tmp_path / "floats.parquet"
    pl.read_csv(SAMPLE / "transactions.csv").write_parquet(floats)  # amount as Float64
    code, _, err = entry(monkeypatch, capsys, "close", str(floats), *CLOSE_ARGS)
    assert code == 2
    assert "store the column as a decimal or text type in the file" in err
    assert "decimalize(df)" not in err
    assert "(row numbers count input rows from 0):" in err
    assert ".failures" not in err
    no_amount = tmp_path / "no_amount.csv"
    no_amount.write_text("txn_id,item_id,date,qty\nR1,A,2025-01-02,1\n")
    code, _, err = entry(monkeypatch, capsys, "close", str(no_amount), "--date", "2025-01-31")
    assert code == 2
    assert "add an 'amount' column" in err
    # The Python API keeps its own wording.
    with pytest.raises(invclose.InvcloseError, match=r"pass accounts= with a row"):
        invclose.close(invclose.read_transactions(data, dimensions=["site"]), "2025-01-31",
                       dimensions=["site"])  # fmt: skip


def test_accounts_without_a_column_ask_for_an_inventory_account() -> None:
    accounts = pl.DataFrame({"kind": ["sale"], "offset_account": ["5000"]})
    data = invclose.read_transactions(SAMPLE / "transactions.csv", dimensions=["site"])
    with pytest.raises(invclose.InvcloseError) as refused:
        invclose.close(data, "2025-01-31", dimensions=["site"], accounts=accounts)
    assert "add an 'inventory_account' column" in str(refused.value)


def test_help_shows_no_bool_metavar_and_plain_text() -> None:
    for command in ("close", "check", "compare", "sql"):
        text = cli(command, "--help").stdout
        flags = [line for line in text.splitlines() if "--json" in line or "--strict" in line]
        assert flags
        assert not any("<bool>" in line for line in flags), flags
    # --help itself, of the app, its commands, the ledger group and the ledger's commands.
    for command in ([], ["close"], ["demo"], ["ledger"], ["ledger", "close"], ["ledger", "sql"]):
        text = cli(*command, "--help").stdout
        helps = [line for line in text.splitlines() if "--help" in line]
        assert len(helps) == 1, command
        assert "<bool>" not in helps[0], (command, helps[0])
    assert "print the rows as JSON" in cli("sql", "--help").stdout
    ledger_sql = cli("ledger", "sql", "--help").stdout
    assert "``" not in ledger_sql
    assert "reconciliation" in ledger_sql


def test_the_item_table_means_what_the_library_reads_and_a_typo_is_named(tmp_path: Path) -> None:
    """include_physical_value in --items is parsed by the library's validation: "y" is true
    (BOLT under lifo with physical value: 274.00, by hand in the test above) and "ture" is
    refused, where the command line used to read both as false (259.00)."""
    items = tmp_path / "items.csv"

    def bolt(flag: str) -> Result:
        items.write_text(f"item_id,include_physical_value\nBOLT,{flag}\n")
        return cli(
            "compare", SAMPLE / "transactions.csv", *CLOSE_ARGS, "--methods", "lifo", "--json",
            "--items", items,
        )  # fmt: skip

    result = bolt("y")
    assert result.exit_code == 0, result.output
    assert {r["item_id"]: r["cost_of_goods"] for r in json.loads(result.stdout)}["BOLT"] == "274.00"
    items.write_text("item_id,include_physical_value\nBOLT,ture\n")
    proc = run(
        "compare", str(SAMPLE / "transactions.csv"), *CLOSE_ARGS, "--methods", "lifo",
        "--items", str(items),
    )  # fmt: skip
    assert proc.returncode == 2
    assert "[not_a_boolean]: found 'ture'" in proc.stderr


def test_bad_transactions_and_a_bad_item_table_come_in_one_error(tmp_path: Path) -> None:
    bad = pl.read_csv(SAMPLE / "transactions.csv", infer_schema=False).with_columns(
        qty=pl.when(pl.col("txn_id") == "S-002").then(pl.lit("0")).otherwise(pl.col("qty"))
    )
    path = tmp_path / "bad.csv"
    bad.write_csv(path)
    items = tmp_path / "items.csv"
    items.write_text("item_id,method\nBOLT,fifoo\n")
    proc = run("close", str(path), *CLOSE_ARGS, "--items", str(items))
    assert proc.returncode == 2
    assert "S-002" in proc.stderr
    assert "fifoo" in proc.stderr


def test_writing_a_close_over_its_opening_is_refused(tmp_path: Path) -> None:
    jan = tmp_path / "jan"
    first = run("close", str(SAMPLE / "transactions.csv"), *CLOSE_ARGS, *WITH_ACCOUNTS,
                "--out", str(jan))  # fmt: skip
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in jan.iterdir()}
    proc = run(
        "close", str(SAMPLE / "transactions.csv"), "--date", "2025-02-28", "--dimensions",
        "site", *WITH_ACCOUNTS, "--opening", str(jan), "--out", f"{jan}/../jan",
    )  # fmt: skip
    assert proc.returncode == 2
    assert "is the --opening directory" in proc.stderr
    assert {p.name: p.read_bytes() for p in jan.iterdir()} == before


def test_an_empty_extract_is_a_warning_that_strict_fails_on(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("txn_id,item_id,date,qty,amount\n")
    proc = run("close", str(empty), "--date", "2025-01-31", "--strict")
    assert proc.returncode == 1
    assert "nothing_to_close" in proc.stdout
    assert proc.stderr.strip() == (
        "--strict: the log has 1 warning or error row(s): nothing_to_close (1); exit 1"
    )


def test_a_reader_that_stops_early_is_no_error(tmp_path: Path) -> None:
    # `invclose sql DIR "..." | head -1`: the pipe closes after the first line, while the
    # command still writes 200 rows of a table. It exited 1 (rich's status for a closed pipe,
    # the status of --strict's warnings); a reader that stops early is no error of the command.
    out = tmp_path / "jan"
    accounts = ("--accounts", str(SAMPLE / "accounts.csv"))
    closed = run(
        "close", str(SAMPLE / "transactions.csv"), *CLOSE_ARGS, *accounts, "--out", str(out)
    )
    assert closed.returncode == 0, closed.stderr
    query = "select s.* from settlements s, range(2000)"
    for extra in ((), ("--csv",), ("--json",)):
        with _piped("sql", str(out), query, *extra) as proc:
            assert proc.stdout is not None
            assert proc.stderr is not None
            assert proc.stdout.readline()
            proc.stdout.close()
            assert proc.wait(timeout=120) == 0, extra
            assert proc.stderr.read() == b"", extra


def _piped(*args: str) -> subprocess.Popen[bytes]:
    """``invclose ARGS`` started with its standard output and error on pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", "invclose", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _status_with_a_closed(stream: str, *args: str) -> int:
    """Exit status of ``invclose ARGS`` whose standard output or error is closed at once."""
    with _piped(*args) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        closed, other = (
            (proc.stdout, proc.stderr) if stream == "out" else (proc.stderr, proc.stdout)
        )
        closed.close()
        other.read()
        return proc.wait(timeout=120)


def test_a_closed_pipe_keeps_the_status_of_the_command(tmp_path: Path) -> None:
    # A reader that has gone changes nothing of what the command did: bad input is still 2
    # (with its message unread), --strict's warnings still 1 (the sample's check warns
    # insufficient_receipts), whichever stream is closed.
    bad = tmp_path / "bad.csv"
    bad.write_text("txn_id,item_id,date,qty,amount\nR1,A,2025-01-02,0,1.00\n")
    refused = ("close", str(bad), "--date", "2025-01-31")
    assert _status_with_a_closed("err", *refused) == 2
    assert _status_with_a_closed("out", *refused) == 2
    accounts = ("--accounts", str(SAMPLE / "accounts.csv"))
    strict = ("check", str(SAMPLE / "transactions.csv"), *CLOSE_ARGS, *accounts, "--strict")
    assert _status_with_a_closed("out", *strict) == 1
    assert _status_with_a_closed("out", *strict, "--json") == 1
    assert run(*strict).returncode == 1


def test_json_splits_the_settlements_as_the_summary_does(tmp_path: Path) -> None:
    # Weighted average: R1 2 @ 10.00 and R2 2 @ 14.00 average 12.00; S1 (1 sold at 12.00)
    # settles against the virtual closing receipt (1 piece), and the virtual closing issue
    # takes both receipts (2 pieces, qty 4, 48.00). The summary counts the pair apart; the
    # JSON gave only "settlements": 3 (review 58).
    source = tmp_path / "tx.csv"
    source.write_text(
        "txn_id,item_id,date,qty,amount\n"
        "R1,A,2025-01-02,2,20.00\nR2,A,2025-01-03,2,28.00\nS1,A,2025-01-04,-1,-12.00\n"
    )
    out = cli("close", source, "--date", "2025-01-31", "--method", "weighted_average", "--json")
    assert out.exit_code == 0, out.output
    facts = json.loads(out.stdout)
    assert (facts["settlements"], facts["settlement_pieces"], facts["closing_pair_pieces"]) == (
        3,
        1,
        2,
    )
    # The batched close's JSON has the same split (review 60).
    parquet = tmp_path / "tx.parquet"
    invclose.read_transactions(source).write_parquet(parquet)
    args = ("close", parquet, "--date", "2025-01-31", "--method", "weighted_average")
    batched = cli(*args, "--batch-rows", "2", "--out", tmp_path / "out", "--json")
    assert batched.exit_code == 0, batched.output
    split = json.loads(batched.stdout)
    assert (split["settlement_pieces"], split["closing_pair_pieces"]) == (1, 2)


def test_an_out_that_cannot_take_a_result_is_refused_before_the_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # --out names a file: refused before anything is read (the transactions given do not
    # exist, and the error is about --out), not after a close that may run for minutes
    # (review 59).
    taken = tmp_path / "items.csv"
    taken.write_text("item_id\nA\n")
    missing = str(tmp_path / "missing.parquet")
    code, _, err = entry(
        monkeypatch, capsys, "close", missing, "--date", "2025-01-31", "--out", str(taken)
    )
    assert code == 2
    assert "cannot write an invclose result to" in err
    assert "missing.parquet" not in err
    assert taken.read_text() == "item_id\nA\n"
