"""The notebooks in ``notebooks/`` run top to bottom, and the helpers they use are right.

Each notebook is a jupytext percent script; it is converted with jupytext and executed with
nbclient on a ``python3`` kernel with the repository root as working directory. The four run
concurrently (one kernel each) to keep the suite fast. Each must finish without a cell error
and print its key number.

The helpers of ``invclose.notebook`` and the year generator (``sample_data/generate_year.py``)
are checked here too, since the notebooks stand on them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import invclose
from invclose.ledger import Ledger
from invclose.notebook import (
    close_months,
    cogs_by_period,
    known_at,
    lifo_reserve,
    month_ends,
    summary_html,
)
from tests.helpers import tx

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"
D = Decimal

#: Notebook -> lines its output must contain (hand-checked, see each notebook).
KEY_LINES: dict[str, list[str]] = {
    # sample_data/README.md: COGS rises by 11.50 in total.
    "01_quickstart.py": ["total cost delta: 11.50"],
    # FIFO - LIFO ending value: PAINT 10.50 + GLUE 7.50 + BOLT 1.00.
    "02_valuation_methods.py": ["LIFO reserve: 19.00"],
    # S-001 <- 95 of P-001 (95.00) + 55 of P-002 (66.00).
    "03_audit.py": ["largest sub-ledger vs GL difference: 0.00", "S-001 settled cost: 161.00"],
    # The year's inventory rebuilt from transactions + all adjustments equals December's
    # balances; a close continued from a written directory is the same close.
    "04_month_end_year.py": [
        "groups: 16, mismatches: 0",
        "same close as the chain: True",
    ],
}
NOTEBOOK_TIMEOUT = 240  # seconds per cell
#: How often a kernel that dies before its first reply is started (jupyter_client's message).
_KERNEL_STARTS = 3
_DIED_AT_START = "Kernel died before replying to kernel_info"


def _kernel_name() -> str:
    """The ``python3`` kernel; installs ipykernel's spec for this user if it is missing."""
    from jupyter_client.kernelspec import find_kernel_specs

    if "python3" not in find_kernel_specs():
        try:
            from ipykernel.kernelspec import install

            install(user=True)
        except Exception as exc:  # pragma: no cover - depends on the machine
            pytest.skip(f"no python3 Jupyter kernel and installing one failed: {exc!r}")
        if "python3" not in find_kernel_specs():  # pragma: no cover
            pytest.skip("no python3 Jupyter kernel spec, even after `ipykernel install --user`")
    return "python3"


async def _run_all(kernel: str, env: dict[str, str]) -> dict[str, Any]:
    import jupytext
    from nbclient import NotebookClient

    async def run(name: str) -> Any:
        for attempt in range(_KERNEL_STARTS):
            notebook = jupytext.read(ROOT / "notebooks" / name)
            client = NotebookClient(
                notebook,
                timeout=NOTEBOOK_TIMEOUT,
                kernel_name=kernel,
                resources={"metadata": {"path": str(ROOT)}},
            )
            try:
                await client.async_execute(env=env)
            except RuntimeError as exc:
                # Four kernels starting at once on two cores: one can die before it answers
                # (seen once in CI, before any cell ran). Starting it again is not a retry
                # of the notebook's cells: a cell error is a CellExecutionError and fails.
                if _DIED_AT_START not in str(exc) or attempt == _KERNEL_STARTS - 1:
                    raise
                continue
            return notebook
        raise AssertionError("unreachable")  # pragma: no cover

    names = list(KEY_LINES)
    done = await asyncio.gather(*(run(n) for n in names), return_exceptions=True)
    return dict(zip(names, done, strict=True))


@pytest.fixture(scope="module")
def executed() -> dict[str, Any]:
    pytest.importorskip("jupytext")
    pytest.importorskip("nbclient")
    pytest.importorskip("altair")
    kernel = _kernel_name()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    return asyncio.run(_run_all(kernel, env))


def _stdout(notebook: Any) -> str:
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stdout"
    )


@pytest.mark.parametrize("name", list(KEY_LINES))
def test_notebook_runs_and_prints_its_key_number(name: str, executed: dict[str, Any]) -> None:
    notebook = executed[name]
    if isinstance(notebook, BaseException):
        raise notebook
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert errors == []
    printed = _stdout(notebook).splitlines()
    for line in KEY_LINES[name]:
        assert line in printed, f"{name} did not print {line!r}; it printed {printed}"


@pytest.mark.parametrize("name", list(KEY_LINES))
def test_notebook_source_is_a_clean_percent_script(name: str) -> None:
    text = (ROOT / "notebooks" / name).read_text(encoding="utf-8")
    assert "format_name: percent" in text
    assert "# %%" in text
    # No outputs or execution counts are committed: the script has none by construction,
    # and no absolute path ties it to one machine.
    assert "execution_count" not in text
    assert str(ROOT) not in text


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def sample_tx() -> pl.DataFrame:
    return invclose.read_transactions(SAMPLE / "transactions.parquet", dimensions=["site"])


@pytest.fixture(scope="module")
def sample_settings() -> dict[str, Any]:
    return {
        "dimensions": ["site"],
        "items": pl.read_csv(SAMPLE / "items.csv"),
        "accounts": pl.read_csv(SAMPLE / "accounts.csv", infer_schema=False),
    }


def test_month_ends() -> None:
    assert month_ends(2024, [2, 12]) == [dt.date(2024, 2, 29), dt.date(2024, 12, 31)]
    assert len(month_ends(2025)) == 12


def test_known_at_keeps_a_physical_row_until_its_invoice(sample_tx: pl.DataFrame) -> None:
    invoice = sample_tx.filter(pl.col("txn_id") == "P-003").with_columns(
        status=pl.lit("financial"), date=pl.lit(dt.date(2025, 2, 5))
    )
    raw = pl.concat([sample_tx, invoice])
    assert known_at(raw, "2025-01-31").filter(pl.col("txn_id") == "P-003")["status"].to_list() == [
        "physical"
    ]
    assert known_at(raw.lazy(), dt.date(2025, 2, 28)).height == raw.height


def test_close_months_and_cogs_by_period(
    sample_tx: pl.DataFrame, sample_settings: dict[str, Any]
) -> None:
    jan, feb = close_months(sample_tx, month_ends(2025, [1, 2]), **sample_settings)
    assert feb.equals(invclose.close(sample_tx, "2025-02-28", opening=jan, **sample_settings))
    cogs = cogs_by_period(sample_tx, [jan, feb])
    # January: posted 425.50, the close adds 11.50 (sample_data/README.md). February: S-004
    # posted 6.00 and settled at 5 of P-002 = 6.00, nothing to adjust.
    assert cogs.rows() == [
        (dt.date(2025, 1, 2), dt.date(2025, 1, 31), D("273.000000"), D("425.50"),
         D("11.50"), D("437.00")),
        (dt.date(2025, 2, 1), dt.date(2025, 2, 28), D("5.000000"), D("6.00"), D("0.00"),
         D("6.00")),
    ]  # fmt: skip
    assert cogs.schema["cogs"] == pl.Decimal(38, 2)


def test_lifo_reserve(sample_tx: pl.DataFrame) -> None:
    comparison = invclose.compare(
        sample_tx, "2025-01-31", dimensions=["site"], methods=["fifo", "lifo"]
    )
    assert lifo_reserve(comparison).rows() == [
        ("BOLT", D("-5.00"), D("-6.00"), D("1.00")),
        ("GLUE", D("37.50"), D("30.00"), D("7.50")),
        ("PAINT", D("66.50"), D("56.00"), D("10.50")),
        ("total", D("99.00"), D("80.00"), D("19.00")),
    ]


def test_summary_html_reuses_the_result_html(
    sample_tx: pl.DataFrame, sample_settings: dict[str, Any]
) -> None:
    result = invclose.close(sample_tx, "2025-01-31", **sample_settings)
    page = summary_html(result, tables=["adjustments"], max_rows=2)
    assert page.startswith(result._repr_html_())
    assert "<h4>adjustments (first 2 of 6)</h4>" in page
    assert "close_id" not in page.split("</table></div>", 1)[1]


# --------------------------------------------------------------------------- the generated year


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("generate_year", SAMPLE / "generate_year.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_year"] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["generate_year"]
    return module


def test_generated_year_is_reproducible_and_valid() -> None:
    gen = _generator()
    frame = gen.simulate()
    committed = pl.read_parquet(SAMPLE / "year" / "transactions.parquet")
    assert frame.equals(committed), "sample_data/year is stale: run sample_data/generate_year.py"
    assert gen.items_table().equals(pl.read_csv(SAMPLE / "year" / "items.csv"))
    accounts = pl.read_csv(SAMPLE / "year" / "accounts.csv", infer_schema=False)
    assert gen.accounts_table().equals(accounts)
    # Valid input: read_transactions accepts it, invoice pairs and all (each close takes the
    # version of a pair in force on its closing date).
    canonical = invclose.read_transactions(committed, dimensions=["site"])
    pairs = committed.filter(pl.col("txn_id").is_duplicated())
    assert canonical.height == committed.height
    # What the year is made of.
    kinds = set(committed["kind"].unique())
    assert kinds == {"purchase", "sale", "transfer", "production", "consumption"}
    assert committed.height < 5000
    assert set(committed["site"].unique()) == {"HQ", "NORTH", "SOUTH"}
    assert committed.filter(pl.col("marked_to").is_not_null()).height >= 3
    assert pairs.filter(pl.col("status") == "physical").height >= 5
    transfers = committed.filter(pl.col("kind") == "transfer")
    assert (
        transfers.group_by("order_id").agg(pl.col("qty").sum())["qty"].to_list()
        == [D(0)] * transfers["order_id"].n_unique()
    )
    # Two levels: frames are consumed by the orders that make tents.
    consumed = committed.filter(pl.col("kind") == "consumption")
    assert {"TUBE", "BOLT", "FRAME", "FABRIC"} <= set(consumed["item_id"].unique())
    # Every kind maps to both accounts through a row without item group.
    by_kind = accounts.filter(pl.col("item_group").is_null() & pl.col("kind").is_not_null())
    assert set(by_kind["kind"]) == kinds
    assert accounts.filter(pl.col("kind").is_null() & pl.col("item_group").is_null()).height == 1


def test_generated_year_first_quarter_closes_month_by_month() -> None:
    year = SAMPLE / "year"
    results = close_months(
        pl.read_parquet(year / "transactions.parquet"),
        month_ends(2025, [1, 2, 3]),
        dimensions=["site"],
        items=pl.read_csv(year / "items.csv"),
        accounts=pl.read_csv(year / "accounts.csv", infer_schema=False),
    )
    for result in results:
        assert result.sql("select count(*) from reconciliation where difference <> 0").item() == 0
        assert result.adjustments.height > 0


def test_cogs_by_period_counts_a_sale_shipped_in_january_in_january(tmp_path: Path) -> None:
    # P1 buys 2 for 20.00 on 2 January; S1 ships 1 on 30 January (physical, posted -9.00) and
    # is invoiced on 5 February (financial, -9.00); S2 sells 1 on 10 February (-11.00).
    # January: the ledger posts S1's 9.00 to cost of goods when shipped; the January close
    # settles nothing (S1 is physical). February: the invoice takes the 9.00 back and posts
    # its own 9.00, S2 posts 11.00: 11.00 posted; FIFO settles S1 and S2 at 10.00 each:
    # adjustments +1.00 and -1.00, cogs 11.00 + 0.00. The helper counted S1 in February
    # (0.00 in January, 20.00 in February), against what the cost of goods account shows.
    accounts = {"inventory_account": ["1400"] * 4, "offset_account": ["2100"] + ["5000"] * 3}
    rows = tx(
        ("P1", "A", 2, 2, "20.00"),
        ("S1", "A", 30, -1, "-9.00", "physical"),
        ("S1", "A", dt.date(2025, 2, 5), -1, "-9.00"),
        ("S2", "A", dt.date(2025, 2, 10), -1, "-11.00"),
    ).with_columns(
        kind=pl.Series(["purchase", "sale", "sale", "sale"]),
        **{k: pl.Series(v) for k, v in accounts.items()},
    )
    jan = invclose.close(rows, "2025-01-31")
    feb = invclose.close(rows, "2025-02-28", opening=jan)
    cogs = cogs_by_period(rows, [jan, feb])
    assert cogs.select("issued_qty", "posted", "adjustment", "cogs").rows() == [
        (D("1.000000"), D("9.00"), D("0.00"), D("9.00")),
        (D("1.000000"), D("11.00"), D("0.00"), D("11.00")),
    ]
    # The period ledger's cost of goods account, month by month, says the same.
    with Ledger(tmp_path / "books.duckdb", config=invclose.CloseConfig(method="fifo")) as books:
        books.post(rows.filter(pl.col("date") <= dt.date(2025, 1, 31)))
        books.close("2025-01-31")
        books.post(rows.filter(pl.col("date") > dt.date(2025, 1, 31)))
        books.close("2025-02-28")
        gl = books.sql(
            "select month(posting_date) as m, sum(debit) - sum(credit) as cogs from vouchers "
            "where account = '5000' group by m order by m"
        )
    assert gl.rows() == [(1, D("9.00")), (2, D("11.00"))]
