"""The examples in public docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "invclose",
    "invclose.close",
    "invclose.config",
    "invclose.costing",
    "invclose.hashing",
    "invclose.io",
    "invclose.validate",
    "invclose.kernel.matching",
    "invclose.kernel.levels",
    "invclose.kernel.prepare",
    "invclose.assemble",
    "invclose.ledger.digests",
    "invclose.result",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    failures, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failures == 0
    if name in {
        "invclose.close",
        "invclose.costing",
        "invclose.kernel.matching",
        "invclose.ledger.digests",
        "invclose.result",
    }:
        assert attempted > 0
