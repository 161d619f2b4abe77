"""The README's quick start runs as written."""

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
