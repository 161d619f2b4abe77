"""Shared test configuration: hypothesis profiles.

Profiles (select with ``HYPOTHESIS_PROFILE``; default ``ci`` when ``CI=true``, else ``dev``):

* ``dev``: 30 examples per property, for the edit-test loop;
* ``ci``: 200 examples per property (per parametrised method).

Neither has a deadline: the oracle is deliberately slow and the first kernel call compiles.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}

settings.register_profile("dev", max_examples=30, **_COMMON)
settings.register_profile("ci", max_examples=200, **_COMMON)

_default_profile = "ci" if os.environ.get("CI", "").strip().lower() == "true" else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default_profile))


def pytest_itemcollected(item: pytest.Item) -> None:
    """Every test under ``tests/property/`` is a property test (``-m property`` selects it)
    even when its module forgets the marker, as one did (review 62)."""
    if "property" in item.path.parent.parts[-1:]:
        item.add_marker(pytest.mark.property)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Property tests first: under ``-n auto`` the slowest tests start while the others fill
    the workers in, instead of one of them finishing alone at the end (stable otherwise)."""
    items.sort(key=lambda item: item.get_closest_marker("property") is None)
