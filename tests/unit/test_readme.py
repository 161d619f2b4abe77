"""The README's Python blocks run as written, one after the other, from a fresh clone's root."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_quick_start_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _python_blocks()
    assert blocks, "README has no python block"
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        namespace: dict[str, object] = {}
        exec(compile(blocks[0], "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    # The summary of the hand-checked January close (sample_data/README.md).
    assert "total cost delta +11.50" in out
    assert (tmp_path / "out" / "jan" / "manifest.json").exists()
    feb = namespace["feb"]
    assert feb.lock_date.isoformat() == "2025-02-28"
    # February keeps each item's own method (PAINT is lifo, GLUE lifo_date), not the default.
    methods = dict(feb.balances.select("item_id", "method").unique().rows())  # type: ignore[attr-defined]
    assert methods["PAINT"] == "lifo"
    assert methods["GLUE"] == "lifo_date"


def test_every_python_block_runs_after_the_ones_before(tmp_path: Path) -> None:
    # Each block may use the names of the blocks before it (the quick start's settings), and
    # nothing else: a block naming a variable defined nowhere (accounts=acc) fails here.
    blocks = _python_blocks()
    assert len(blocks) >= 3
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    cwd = Path.cwd()
    os.chdir(tmp_path)
    namespace: dict[str, object] = {}
    try:
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    # The batched close of the sample is the in-memory one (the block asserts the id).
    assert (tmp_path / "out" / "jan-batched" / "manifest.json").exists()
    # The ledger block: post, close, recalculate, reverse the close with its recalculation.
    books = namespace["books"]
    history = books.history()  # type: ignore[attr-defined]
    assert history.select("kind", "status").rows() == [
        ("post", "active"),
        ("close", "reversed"),
        ("recalculation", "reversed"),
        ("reversal", "active"),
        ("reversal", "active"),
    ]
    assert books.verify()["ok"].all()  # type: ignore[attr-defined]
    books.disconnect()  # type: ignore[attr-defined]
