"""Same inputs and configuration give bit-identical outputs, whatever the thread count."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import invclose

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, polars as pl, invclose
tx = invclose.read_transactions("sample_data/transactions.parquet", dimensions=["site"])
result = invclose.close(
    tx, "2025-01-31", dimensions=["site"], items=pl.read_csv("sample_data/items.csv"),
    accounts=pl.read_csv("sample_data/accounts.csv", infer_schema=False),
)
result.write(sys.argv[1])
"""


def _close_with_threads(threads: int, out: Path) -> invclose.CloseResult:
    env = {**os.environ, "POLARS_MAX_THREADS": str(threads), "NUMBA_NUM_THREADS": str(threads)}
    subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out)], cwd=ROOT, env=env, check=True, timeout=300
    )
    return invclose.read_result(out)


def test_one_and_two_threads_give_identical_tables(tmp_path: Path) -> None:
    one = _close_with_threads(1, tmp_path / "one")
    two = _close_with_threads(2, tmp_path / "two")
    assert one.close_id == two.close_id
    for name, table in one.tables().items():
        assert table.equals(two.tables()[name]), name
    # And the written files are byte-identical, table by table.
    for name in one.tables():
        a = (tmp_path / "one" / f"{name}.parquet").read_bytes()
        b = (tmp_path / "two" / f"{name}.parquet").read_bytes()
        assert a == b, name
