"""``invclose ledger <verb> --db``: every verb on success and on bad input.

Success: exit 0 and a number that only a working verb prints, computed by hand from JANUARY
(text and ``--json``). Bad input: exit 2, a plain message on stderr naming the problem, nothing
on stdout, no traceback, and the file as it was (``snapshot``).

JANUARY at site S1, by hand (fifo): R1 buys 2 A for 20.00, S1 sells 1 A posted at 11.00. The
close at 2025-01-31 settles S1 against R1 at 10.00 a unit: 1 settlement, S1's cost falls by
1.00 (cost delta -1.00), A holds 1 unit worth 10.00. Inventory account 1400 holds
20.00 - 11.00 = 9.00 after posting and 9.00 + 1.00 = 10.00 after the close.
"""

from __future__ import annotations

import inspect
import json
import shlex
import shutil
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner, Result

import invclose
from invclose.cli import main
from invclose.console import console
from invclose.ledger import Ledger
from invclose.ledger.cli import ledger_app
from tests.ledger.helpers import ACCOUNTS, CONFIG, day, gl_balance, rows

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]

JANUARY = rows(
    ("R1", "A", day(1, 3), 2, "20.00", "purchase"),
    ("S1", "A", day(1, 9), -1, "-11.00", "sale"),
)

#: How each starting state is built (Python API) from an empty ledger of ``CONFIG``.
STATES: dict[str, Callable[[Ledger], object]] = {
    "empty": lambda b: None,
    "posted": lambda b: b.post(JANUARY),
    "recalculated": lambda b: (b.post(JANUARY), b.recalculate("2025-01-20")),
    "closed": lambda b: (b.post(JANUARY), b.close("2025-01-31", comment="January")),
    "recalculated_then_closed": lambda b: (
        b.post(JANUARY),
        b.recalculate("2025-01-10"),
        b.close("2025-01-31"),
    ),
}


class Templates:
    """The ledger file of each state, built on first use and kept for the module."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths: dict[str, Path] = {}
        self.snapshots: dict[str, object] = {}

    def path(self, state: str) -> Path:
        if state not in self.paths:
            path = self.root / f"{state}.duckdb"
            with Ledger(path, config=CONFIG) as books:
                STATES[state](books)
            self.paths[state] = path
        return self.paths[state]

    def snapshot(self, state: str) -> object:
        if state not in self.snapshots:
            self.snapshots[state] = snapshot(self.path(state))
        return self.snapshots[state]


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    return Templates(tmp_path_factory.mktemp("templates"))


@pytest.fixture
def make_db(tmp_path: Path, templates: Templates) -> Callable[[str], Path]:
    """``books.duckdb`` in ``tmp_path`` in a state of STATES, or ``missing`` / ``not_a_ledger``."""

    def make(state: str) -> Path:
        db = tmp_path / "books.duckdb"
        if state == "not_a_ledger":
            ACCOUNTS.write_csv(db)
        elif state != "missing":
            shutil.copyfile(templates.path(state), db)
        return db

    return make


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Input files for the verbs: good, backdated, invalid and unreadable."""
    names = ("accounts.csv", "jan.parquet", "short.parquet", "late.parquet", "zero.csv")
    names += ("nocols.csv", "garbage.parquet", "missing.csv")
    paths = {name.split(".")[0]: tmp_path / name for name in names}
    ACCOUNTS.write_csv(paths["accounts"])
    JANUARY.write_parquet(paths["jan"])
    rows(("S2", "A", day(1, 20), -3, "-30.00", "sale")).write_parquet(paths["short"])
    rows(("R2", "A", day(1, 20), 1, "9.00", "purchase")).write_parquet(paths["late"])
    paths["zero"].write_text(
        "txn_id,item_id,site,date,qty,amount,kind\nZ1,A,S1,2025-02-03,0,1.00,purchase\n"
    )
    paths["nocols"].write_text("foo,bar\n1,2\n")
    paths["garbage"].write_text("not parquet")
    return paths


def invoke(*args: object) -> Result:
    """Run ``invclose ledger ARGS`` in process; no exception may escape (no traceback)."""
    result = runner.invoke(ledger_app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception,
        result.output,
    )
    assert "Traceback" not in result.output
    return result


def ok(*args: object) -> Result:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def snapshot(db: Path) -> object:
    """What the file holds: row counts of every table and the runs (a ledger), else its bytes.

    A refused verb writes nothing: no table gains or loses a row, and no run (the hash chain
    over every run's inputs and outputs) appears or changes status.
    """
    if not db.exists() or db.read_bytes()[8:12] != b"DUCK":
        return db.read_bytes() if db.exists() else None
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "ORDER BY table_name"
        ).fetchall()
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone() for (t,) in tables}
        runs = con.execute("SELECT run_id, status, hash FROM runs ORDER BY run_id").fetchall()
    finally:
        con.close()
    return counts, runs


def gl_1400(db: Path) -> Decimal:
    with Ledger(db, read_only=True) as books:
        return gl_balance(books, "1400")


# ---------------------------------------------------------------------------- success


def test_init_creates_the_ledger_with_its_configuration(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    db = tmp_path / "books.duckdb"
    args = ("init", "--db", db, "--dimensions", "site", "--accounts", files["accounts"])
    assert "ready (dimensions: ['site'])" in ok(*args).stdout
    with Ledger(db, read_only=True) as books:
        assert books.dimensions == ("site",)
        assert books.history().height == 0
    # The same configuration again is a no-op; --json tells machines what the file holds.
    facts = json.loads(ok(*args, "--json").stdout)
    assert facts == {"db": str(db.resolve()), "dimensions": ["site"], "method": "fifo"}


@pytest.mark.parametrize("as_json", [False, True])
def test_post_posts_the_rows_with_their_vouchers(
    make_db: Callable[[str], Path], files: dict[str, Path], as_json: bool
) -> None:
    db = make_db("empty")
    result = ok("post", "--db", db, files["jan"], *(["--json"] if as_json else []))
    if as_json:
        assert json.loads(result.stdout) == {"run_id": 1, "rows": 2}
    else:
        assert result.stdout == "posted as run 1\n"
    assert gl_1400(db) == Decimal("9.00")  # 20.00 bought - 11.00 sold


def test_check_lists_what_a_close_would_not_settle(
    make_db: Callable[[str], Path], files: dict[str, Path]
) -> None:
    db = make_db("posted")
    ok("post", "--db", db, files["short"])
    before = snapshot(db)
    # R1's 2 units cover S1 (1) and 1 of S2's 3: 2 units of S2 are short, on-hand is -2.
    found = json.loads(ok("check", "--db", db, "--date", "2025-01-31", "--json").stdout)
    assert {(r["code"], r["txn_id"], r["qty"]) for r in found} == {
        ("insufficient_receipts", "S2", "2.000000"),
        ("negative_on_hand", None, "-2.000000"),
    }
    strict = invoke("check", "--db", db, "--date", "2025-01-31", "--strict")
    assert strict.exit_code == 1  # the findings are warnings
    assert "insufficient_receipts" in strict.stdout
    assert strict.stderr.strip() == (
        "--strict: the log has 2 warning or error row(s): insufficient_receipts (1), "
        "negative_on_hand (1); exit 1"
    )
    assert snapshot(db) == before  # check writes nothing


def test_check_prints_every_message_in_full(
    make_db: Callable[[str], Path], files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the stateless check: a table whose messages are never cut (a Polars frame cut
    # them at 60 characters, hiding the why and the fix).
    monkeypatch.setattr(console, "_width", 400)
    db = make_db("posted")
    ok("post", "--db", db, files["short"])
    found = json.loads(ok("check", "--db", db, "--date", "2025-01-31", "--json").stdout)
    messages = {r["code"]: r["message"] for r in found}
    assert len(messages["insufficient_receipts"]) > 200
    shown = ok("check", "--db", db, "--date", "2025-01-31").stdout
    assert "pre-close check at 2025-01-31: 2 finding(s)" in shown
    for message in messages.values():
        assert message in shown


def test_errors_speak_of_the_command_line_not_of_python(
    make_db: Callable[[str], Path], files: dict[str, Path]
) -> None:
    result = invoke("post", "--db", make_db("posted"), files["zero"])
    assert result.exit_code == 2
    assert "(row numbers count input rows from 0):" in result.stderr
    assert ".failures" not in result.stderr  # a DataFrame only a Python caller has


def test_close_settles_adjusts_and_locks(make_db: Callable[[str], Path]) -> None:
    db = make_db("posted")  # the text summary: test_ledger_verbs
    args = ("close", "--db", db, "--date", "2025-01-31", "--comment", "January", "--json")
    facts = json.loads(ok(*args).stdout)
    assert facts["kind"] == "close"
    assert facts["closing_date"] == facts["lock_date"] == "2025-01-31"
    assert (facts["settlements"], facts["adjustments"]) == (1, 1)
    assert facts["total_cost_delta"] == "-1.00"
    assert facts["log"] == []
    assert gl_1400(db) == Decimal("10.00")
    with Ledger(db, read_only=True) as books:
        assert books.lock_date == day(1, 31)


@pytest.mark.parametrize("as_json", [False, True])
def test_recalculate_adjusts_without_locking(make_db: Callable[[str], Path], as_json: bool) -> None:
    db = make_db("posted")
    args = ("recalculate", "--db", db, "--date", "2025-01-20", "--items", "A")
    result = ok(*args, *(["--json"] if as_json else []))
    if as_json:
        facts = json.loads(result.stdout)
        assert facts["kind"] == "recalculation"
        assert facts["lock_date"] is None
        assert (facts["settlements"], facts["adjustments"]) == (0, 1)
        assert facts["total_cost_delta"] == "-1.00"
    else:
        assert "recalculation at 2025-01-20" in result.stdout
        assert "total cost delta -1.00" in result.stdout
    assert gl_1400(db) == Decimal("10.00")
    with Ledger(db, read_only=True) as books:
        assert books.lock_date is None


def test_reverse_undoes_the_latest_close(make_db: Callable[[str], Path]) -> None:
    db = make_db("closed")  # runs: 1 post, 2 close; --json: test_ledger_verbs
    with Ledger(db, read_only=True) as books:
        close_id = books.history()["close_id"][1]
    assert ok("reverse", "--db", db, "--comment", "redo").stdout == (
        f"reversed close {close_id} of 2025-01-31 (run 2) by run 3\n"
        "no close in force: nothing is locked\n"
    )
    assert gl_1400(db) == Decimal("9.00")
    with Ledger(db, read_only=True) as books:
        assert books.lock_date is None
        assert books.history()["status"].to_list() == ["active", "reversed", "active"]


def test_reverse_names_the_close_it_reversed_and_the_date_still_closed(
    make_db: Callable[[str], Path],
) -> None:
    db = make_db("closed")  # runs: 1 post, 2 close at 2025-01-31
    ok("close", "--db", db, "--date", "2025-02-28", "--comment", "February")  # run 3
    with Ledger(db, read_only=True) as books:
        february = books.history()["close_id"][2]
    assert ok("reverse", "--db", db).stdout == (
        f"reversed close {february} of 2025-02-28 (run 3) by run 4\n"
        "closing date in force: 2025-01-31\n"
    )


@pytest.mark.parametrize("as_json", [False, True])
def test_reverse_recalculations_cancels_those_from_the_date(
    make_db: Callable[[str], Path], as_json: bool
) -> None:
    db = make_db("recalculated")  # runs: 1 post, 2 recalculation at 2025-01-20
    flag = ["--json"] if as_json else []
    with Ledger(db, read_only=True) as books:
        run_id = books.history()["close_id"][1]
    result = ok("reverse-recalculations", "--db", db, "--from-date", "2025-01-15", *flag)
    if as_json:
        assert json.loads(result.stdout) == {
            "reversal_runs": [3],
            "reversed": [
                {
                    "reversal_run": 3,
                    "run_id": 2,
                    "kind": "recalculation",
                    "date": "2025-01-20",
                    "close_id": run_id,
                }
            ],
            "lock_date": None,
        }
    else:
        assert result.stdout == (
            f"reversed recalculation {run_id} of 2025-01-20 (run 2) by run 3\n"
            "no close in force: nothing is locked\n"
        )
    assert gl_1400(db) == Decimal("9.00")
    again = ok("reverse-recalculations", "--db", db, "--from-date", "2025-01-15", *flag)
    if as_json:
        assert json.loads(again.stdout) == {"reversal_runs": [], "reversed": [], "lock_date": None}
    else:
        assert again.stdout == (
            "nothing to cancel: no recalculation in force on or after that date\n"
        )


@pytest.mark.parametrize("as_json", [False, True])
def test_adjust_on_hand_moves_the_open_value(make_db: Callable[[str], Path], as_json: bool) -> None:
    db = make_db("closed")  # R1's open unit carries 10.00
    args = ("adjust-on-hand", "--db", db, "A", "--dims", "site=S1", "--new-value", "4.00")
    result = ok(*args, "--comment", "count", *(["--json"] if as_json else []))
    # R1: posted 20.00, 10.00 settled to S1 + the new 4.00 on hand = 14.00, adjustment -6.00.
    if as_json:
        assert json.loads(result.stdout) == [
            {
                "txn_id": "R1",
                "posted_amount": "20.00",
                "settled_amount": "14.00",
                "adjustment": "-6.00",
            }
        ]
    else:
        assert "-6.00" in result.stdout
        assert "14.00" in result.stdout
    assert gl_1400(db) == Decimal("4.00")


def test_history_lists_every_operation(make_db: Callable[[str], Path]) -> None:
    db = make_db("closed")
    assert "January" in ok("history", "--db", db).stdout
    runs = json.loads(ok("history", "--db", db, "--json").stdout)
    assert [(r["run_id"], r["kind"], r["status"]) for r in runs] == [
        (1, "post", "active"),
        (2, "close", "active"),
    ]
    post, close = runs
    assert post["transactions"] == 2
    assert (close["comment"], close["lock_date"]) == ("January", "2025-01-31")
    assert (close["settlements"], close["cost_delta_total"]) == (1, "-1.00")


def test_verify_checks_the_file(make_db: Callable[[str], Path]) -> None:
    db = make_db("closed")
    assert "hash_chain" in ok("verify", "--db", db).stdout
    checks = json.loads(ok("verify", "--db", db, "--json").stdout)
    assert {c["check"] for c in checks} == {
        "hash_chain",
        "subledger_equals_gl",
        "vouchers_balanced",
        "quantity_conserved",
        "value_conserved",
        "carried_values",
    }
    assert all(c["ok"] for c in checks)
    # A voucher line changed behind the ledger's back: verify fails with exit 1.
    con = duckdb.connect(str(db))
    con.execute("UPDATE vouchers SET debit = debit + 1 WHERE debit > 0 AND account = '1400'")
    con.close()
    failed = invoke("verify", "--db", db, "--json")
    assert failed.exit_code == 1
    assert not all(c["ok"] for c in json.loads(failed.stdout))


def test_sql_answers_a_query(make_db: Callable[[str], Path]) -> None:
    db = make_db("closed")
    query = "select balance from gl_by_account where account = '1400'"
    assert "10.00" in ok("sql", "--db", db, query).stdout
    assert json.loads(ok("sql", "--db", db, query, "--json").stdout) == [{"balance": "10.00"}]


# ---------------------------------------------------------------------------- bad input

MISSING_DB = "ledger file not found"
#: (state of --db, arguments ({db} and the names of ``files`` are filled in), expected text)
BAD = [
    ("missing", "init --db {db} --method hifo", "unknown valuation method 'hifo'"),
    ("missing", "init --db {db} --accounts {missing}", "file not found"),
    ("closed", "init --db {db} --dimensions site --method lifo", "another configuration"),
    ("not_a_ledger", "init --db {db}", "is not a DuckDB file"),
    ("posted", "post --db {db} {missing}", "file not found"),
    ("closed", "post --db {db} {late}", "closing date 2025-01-31 were refused"),
    ("posted", "post --db {db} {zero}", "qty must not be 0"),
    ("posted", "post --db {db} {nocols}", "add a 'txn_id' column"),
    ("posted", "post --db {db} {garbage}", "cannot read"),
    ("posted", "post --db {db} {jan}", "repeat a txn_id the ledger already holds"),
    ("missing", "post --db {db} {jan}", MISSING_DB),
    ("posted", "check --db {db} --date 31/01/2025", "a date such as '2025-01-31'; got '31/01"),
    ("closed", "check --db {db} --date 2025-01-15", "after the latest closing date 2025-01-31"),
    ("missing", "check --db {db} --date 2025-01-31", MISSING_DB),
    ("closed", "close --db {db} --date 2025-01-15", "after the latest closing date 2025-01-31"),
    ("posted", "close --db {db} --date 2025-02-30", "got '2025-02-30'"),
    ("posted", "close --db {db}", "Missing option '--date'"),
    ("posted", "recalculate --db {db} --date 2025-01-20 --items ZZZ", "hold: 'ZZZ'"),
    ("closed", "recalculate --db {db} --date 2025-01-20", "latest closing date 2025-01-31"),
    ("recalculated", "recalculate --db {db} --date 2025-01-15", "2025-01-20 is in force"),
    ("posted", "reverse --db {db}", "nothing to reverse"),
    ("recalculated", "reverse --db {db}", "only recalculations are in force"),
    ("recalculated", "reverse-recalculations --db {db} --from-date xx", "got 'xx'"),
    (
        "recalculated_then_closed",
        "reverse-recalculations --db {db} --from-date 2025-01-01",
        "must be cancelled first",
    ),
    ("posted", "adjust-on-hand --db {db} A --dims site=S1 --new-value 5 --comment c", "a close"),
    ("closed", "adjust-on-hand --db {db} ZZZ --dims site=S1 --new-value 5 --comment c", "'ZZZ'"),
    ("closed", "adjust-on-hand --db {db} A --dims site=S1 --new-value abc --comment c", "'abc'"),
    (
        "closed",
        "adjust-on-hand --db {db} A --dims site=S1 --new-value 1e30 --comment c",
        "beyond what the close computes exactly",
    ),
    ("closed", "adjust-on-hand --db {db} A --dims siteS1 --new-value 5 --comment c", "'siteS1'"),
    (
        "closed",
        "adjust-on-hand --db {db} A --dims site=S1 --new-value 5 --comment=",
        "needs a comment",
    ),
    ("missing", "history --db {db}", MISSING_DB),
    ("not_a_ledger", "history --db {db}", "not a ledger file"),
    ("missing", "verify --db {db}", MISSING_DB),
    ("closed", "reconcile --db {db} --as-of 31/01/2025", "a date such as '2025-01-31'; got '31/01"),
    ("missing", "reconcile --db {db}", MISSING_DB),
    ("closed", "sql --db {db} 'select nonsense from nowhere'", "query failed"),
    ("closed", "sql --db {db} 'delete from runs'", "one SELECT statement"),
    ("missing", "sql --db {db} 'select 1'", MISSING_DB),
]


@pytest.mark.parametrize(
    ("state", "command", "needle"),
    BAD,
    ids=[f"{c.split()[0]}-{s}-{i}" for i, (s, c, _) in enumerate(BAD)],
)
def test_bad_input_exits_2_with_a_plain_message_and_changes_nothing(
    make_db: Callable[[str], Path],
    templates: Templates,
    files: dict[str, Path],
    state: str,
    command: str,
    needle: str,
) -> None:
    db = make_db(state)
    before = templates.snapshot(state) if state in STATES else snapshot(db)
    args = [arg.format(db=db, **files) for arg in shlex.split(command)]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert needle in result.stderr, result.stderr
    assert result.stdout == ""
    assert snapshot(db) == before


def test_every_verb_has_bad_input_cases_and_json() -> None:
    verbs = {command.name for command in ledger_app.registered_commands}
    assert verbs == {command.split()[0] for _, command, _ in BAD}
    for command in ledger_app.registered_commands:
        assert command.callback is not None
        assert "as_json" in inspect.signature(command.callback).parameters, command.name


@pytest.mark.parametrize(
    ("state", "args", "needle"),
    [
        ("missing", ["history", "--db", "{db}"], MISSING_DB),
        ("closed", ["sql", "--db", "{db}", "select nonsense from nowhere"], "query failed"),
        ("closed", ["close", "--db", "{db}", "--date", "2025-01-15"], "latest closing date"),
    ],
)
def test_the_entry_point_exits_2_without_a_traceback(
    make_db: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    state: str,
    args: list[str],
    needle: str,
) -> None:
    """``invclose ledger ...`` through ``invclose.cli.main``, the installed script's entry."""
    db = make_db(state)
    monkeypatch.setattr(sys, "argv", ["invclose", "ledger", *(a.format(db=db) for a in args)])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2
    out, err = capsys.readouterr()
    assert needle in err
    assert out == ""
    assert "Traceback" not in err
    assert not (state == "missing" and db.exists())


# ---------------------------------------------------------------------------- a whole period


def test_ledger_verbs(tmp_path: Path) -> None:
    db = str(tmp_path / "books.duckdb")
    accounts = tmp_path / "accounts.csv"
    ACCOUNTS.write_csv(accounts)
    january = tmp_path / "jan.parquet"
    JANUARY.write_parquet(january)
    late = tmp_path / "late.parquet"
    rows(("R2", "A", day(1, 20), 1, "9.00", "purchase")).write_parquet(late)

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(ledger_app, list(args))
        return result.exit_code, result.output

    assert run("init", "--db", db, "--dimensions", "site", "--accounts", str(accounts))[0] == 0
    assert run("post", "--db", db, str(january)) == (0, "posted as run 1\n")
    code, out = run("close", "--db", db, "--date", "2025-01-31", "--comment", "January")
    assert code == 0, out
    assert "close at 2025-01-31" in out
    assert "total cost delta -1.00" in out
    code, out = run("post", "--db", db, str(late))
    assert code == 2
    assert "closing date 2025-01-31" in out
    code, out = run("verify", "--db", db)
    assert code == 0, out
    assert "hash_chain" in out
    code, out = run("history", "--db", db)
    assert code == 0
    assert "January" in out
    code, out = run("sql", "--db", db, "select sum(difference) as d from reconciliation")
    assert code == 0
    assert "0.00" in out
    code, out = run("reverse", "--db", db, "--comment", "redo", "--json")
    assert code == 0
    facts = json.loads(out)
    assert facts["reversal_runs"] == [3]
    assert [(r["run_id"], r["kind"], r["date"]) for r in facts["reversed"]] == [
        (2, "close", "2025-01-31")
    ]
    assert facts["lock_date"] is None
    code, out = run("reverse", "--db", db)
    assert code == 2
    assert "nothing to reverse" in out


def test_ledger_shows_an_html_summary(tmp_path: Path) -> None:
    import invclose

    sample = ROOT / "sample_data"
    config = invclose.CloseConfig(
        dimensions=["site"],
        items=pl.read_csv(sample / "items.csv"),
        accounts=pl.read_csv(sample / "accounts.csv", infer_schema=False),
    )
    books = invclose.Ledger(tmp_path / "b.duckdb", config=config)
    books.post(invclose.read_transactions(sample / "transactions.parquet", dimensions=["site"]))
    books.close("2025-01-31")
    html = books._repr_html_()
    books.disconnect()
    assert "locked through: 2025-01-31" in html
    assert "<td>close</td>" in html
    # The January close's total cost delta (sample_data/README.md): 11.50.
    assert "<td>11.50</td>" in html


def test_close_names_the_lapse_lines_its_summary_does_not_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tests/ledger/test_posting.py's case: include physical value, FIFO. R1 1 @ 10.00; PS
    # shipped physically at -11.00 on 10 January and invoiced on 2 February (posted before
    # the January close). The close moves PS to 10.00 (+1.00 on 31 January, in its result)
    # and takes that back on 2 February, where the invoice lapses it: voucher <close>-L1,
    # 1400 credit 1.00 and 5000 debit 1.00: 2 lines, debit 1.00. The printout showed only
    # the result's voucher (2 lines, 1.00), as if it were the whole run.
    monkeypatch.setattr(console, "_width", 300)
    config = invclose.CloseConfig(
        method="fifo", dimensions=["site"], accounts=ACCOUNTS, include_physical_value=True
    )
    db = tmp_path / "books.duckdb"
    with Ledger(db, config=config) as books:
        books.post(
            rows(
                ("R1", "A", day(1, 3), "1", "10.00", "purchase"),
                ("PS", "A", day(1, 10), "-1", "-11.00", "sale", "physical"),
            )
        )
        books.post(rows(("PS", "A", day(2, 2), "-1", "-11.50", "sale")))
    shown = ok("close", "--db", db, "--date", "2025-01-31").stdout
    lapse = next(line for line in shown.splitlines() if line.startswith("Lapses"))
    assert "also posted 2 line(s), debit 1.00, on invoices' dates" in lapse
    with Ledger(db, read_only=True) as books:
        close_id = books.history()["close_id"].drop_nulls()[-1]
    assert f"vouchers {close_id}-L*" in lapse


def test_adjust_on_hand_reaches_a_dimension_value_with_blanks_or_a_comma(tmp_path: Path) -> None:
    # "S1 " (a trailing blank) and "S1,2" are financial dimensions of their own, which the
    # name=value pairs cannot spell (they strip blanks and split on commas); a JSON object
    # can (review 58). R1 2 @ 10.00 at "S1 ", R2 1 @ 5.00 at "S1,2", R3 1 @ 6.00 without a
    # site (JSON null, review 60); each group set to a new value.
    db = tmp_path / "books.duckdb"
    receipts = rows(
        ("R1", "A", day(1, 3), 2, "20.00", "purchase"),
        ("R2", "A", day(1, 4), 1, "5.00", "purchase"),
        ("R3", "A", day(1, 5), 1, "6.00", "purchase"),
    ).with_columns(site=pl.Series(["S1 ", "S1,2", None]))
    with Ledger(db, config=CONFIG) as books:
        books.post(receipts)
        books.close("2025-01-31")

    def adjust(dims: str, *value: str) -> Result:
        return invoke("adjust-on-hand", "--db", db, "A", "--dims", dims, *value, "--comment", "c")

    def moved(dims: str, *value: str) -> list[dict[str, str]]:
        result = adjust(dims, *value, "--json")
        assert result.exit_code == 0, result.output
        return list(json.loads(result.stdout))

    # The stripped "S1" is no group of this ledger.
    assert adjust("site=S1 ", "--new-value", "30.00").exit_code == 2
    assert moved('{"site": "S1 "}', "--new-value", "30.00") == [
        {"txn_id": "R1", "posted_amount": "20.00", "settled_amount": "30.00", "adjustment": "10.00"}
    ]
    assert moved('{"site": "S1,2"}', "--adjustment", "-1.00") == [
        {"txn_id": "R2", "posted_amount": "5.00", "settled_amount": "4.00", "adjustment": "-1.00"}
    ]
    # 30.00 (R1) + 4.00 (R2) + 6.00 (R3)
    assert gl_balance_of(db, "1400") == Decimal("40.00")
    assert moved('{"site": null}', "--new-value", "8.00") == [
        {"txn_id": "R3", "posted_amount": "6.00", "settled_amount": "8.00", "adjustment": "2.00"}
    ]
    assert gl_balance_of(db, "1400") == Decimal("42.00")
    bad = adjust('{"site": 1}', "--adjustment", "1.00")
    assert bad.exit_code == 2
    assert "object of text values" in bad.stderr


def gl_balance_of(db: Path, account: str) -> Decimal:
    with Ledger(db, read_only=True) as books:
        return gl_balance(books, account)
