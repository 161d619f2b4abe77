"""A plain ``pip install .`` has every package ``import invclose`` needs.

The README's first command installs only the core dependencies; CI installs the ``dev`` extra,
so a module imported at load time but listed only in an extra passes CI and crashes a user's
first ``invclose demo`` (scipy did: imported by the cycle solver, listed only in extras).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Import names whose distribution is named otherwise.
DISTRIBUTION = {"polars_hash": "polars-hash"}
#: What only the tests load (hypothesis comes with the ``dev`` extra).
OPTIONAL_MODULES = {"invclose/testing/"}


def core_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        re.split(r"[\s<>=!~\[;]", spec, maxsplit=1)[0].lower() for spec in project["dependencies"]
    }


def load_time_imports(path: Path) -> set[str]:
    """Top-level packages imported when ``path`` is loaded (not inside functions or
    ``if TYPE_CHECKING:`` blocks)."""
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)

    visit(ast.parse(path.read_text()).body)
    return found


def test_every_package_imported_at_load_time_is_a_core_dependency() -> None:
    core = core_dependencies()
    missing = {}
    for path in sorted((ROOT / "invclose").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if any(relative.startswith(optional) for optional in OPTIONAL_MODULES):
            continue
        for name in load_time_imports(path):
            if name in sys.stdlib_module_names or name in ("invclose", "__future__"):
                continue
            if DISTRIBUTION.get(name, name).lower() not in core:
                missing.setdefault(DISTRIBUTION.get(name, name), []).append(relative)
    assert missing == {}, f"imported at load time but not in [project].dependencies: {missing}"


def test_the_check_sees_a_load_time_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nimport scipy.sparse\nif TYPE_CHECKING:\n"
        "    import pandas\ndef f():\n    import altair\n"
    )
    assert load_time_imports(module) == {"typing", "scipy"}
