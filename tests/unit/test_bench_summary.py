"""benchmarks.bench_close.summarize: the growth rows, hand-calculated from made-up records."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.bench_close import summarize


def _close(rows: int, seconds: float, cpu: float) -> dict[str, Any]:
    return {
        "kind": "close",
        "rows": rows,
        "shape": "uniform",
        "method": "fifo",
        "close_s": seconds,
        "close_cpu_s": cpu,
        "read_s": 0.0,
        "write_s": 0.0,
        "peak_rss_bytes": 1,
    }


def _floor(rows: int, seconds: float) -> dict[str, Any]:
    return {"kind": "floor", "rows": rows, "shape": "uniform", "floor_s": seconds}


def test_growth_per_row_is_set_against_the_floors_own_growth() -> None:
    records = [
        _close(1_000_000, 2.0, 3.0),
        _close(10_000_000, 30.0, 48.0),
        _floor(1_000_000, 0.1),
        _floor(10_000_000, 1.6),
    ]
    (growth,) = summarize({"records": records})["growth"]
    # Per row: the close 3.0e-6 s at 1e7 against 2.0e-6 s at 1e6 -> 1.5 (CPU 4.8 / 3.0 -> 1.6);
    # the floor 1.6e-7 against 1.0e-7 -> 1.6; so the close grows 1.5 / 1.6 = 0.9375 of it.
    assert growth["span"] == "1e6->1e7"
    assert growth["growth"] == pytest.approx(1.5)
    assert growth["growth_cpu"] == pytest.approx(1.6)
    assert growth["growth_floor"] == pytest.approx(1.6)
    assert growth["growth_over_floor"] == pytest.approx(0.9375)


def test_growth_without_floors_has_no_floor_ratio() -> None:
    records = [_close(1_000_000, 2.0, 3.0), _close(10_000_000, 22.0, 33.0)]
    summary = summarize({"records": records})
    (growth,) = summary["growth"]
    assert growth["growth"] == pytest.approx(1.1)
    assert growth["growth_floor"] is None
    assert growth["growth_over_floor"] is None
    # The target stays on the close's own growth: 1.1 is within 1.3.
    check = next(c for c in summary["checks"] if c["check"].startswith("growth per row"))
    assert check["verdict"] == "met"
