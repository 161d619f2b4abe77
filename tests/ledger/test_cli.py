"""``invclose ledger <verb> --db``: the sub-application the main command line mounts."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from invclose.ledger.cli import ledger_app
from tests.ledger.helpers import ACCOUNTS, day, rows

runner = CliRunner()


def test_ledger_verbs(tmp_path: Path) -> None:
    db = str(tmp_path / "books.duckdb")
    accounts = tmp_path / "accounts.csv"
    ACCOUNTS.write_csv(accounts)
    january = tmp_path / "jan.parquet"
    rows(
        ("R1", "A", day(1, 3), 2, "20.00", "purchase"),
        ("S1", "A", day(1, 9), -1, "-11.00", "sale"),
    ).write_parquet(january)
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
    assert run("reverse", "--db", db, "--comment", "redo")[0] == 0
    code, out = run("reverse", "--db", db)
    assert code == 2
    assert "nothing to reverse" in out


def test_ledger_shows_an_html_summary(tmp_path: Path) -> None:
    import polars as pl

    import invclose

    sample = Path(__file__).resolve().parents[2] / "sample_data"
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
