"""Where the close spends its time: cProfile of one ``invclose.close`` (issue 7).

    python -m benchmarks.profile_close --rows 1e6 --shape uniform --method fifo
    python -m benchmarks.profile_close --path benchmarks/results/tmp/uniform-1e6-s7.parquet --json

Prints the top functions inside ``invclose`` by cumulative time, and the top functions
overall by own time (Polars and numba work shows as builtin calls there). ``--json`` prints
one JSON object instead (used by ``bench_close --profile``); ``--pstats FILE`` keeps the raw
profile for ``snakeviz`` or ``python -m pstats``. One untimed warm-up close runs first so the
numba cache load is not in the profile.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from pathlib import Path
from typing import Any

import polars as pl

import invclose
from benchmarks import datagen
from benchmarks.worker import accounts_catch_all


def _where(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    if filename == "~":
        return name
    marker = "/invclose/"
    short = filename[filename.rfind(marker) + 1 :] if marker in filename else Path(filename).name
    return f"{short}:{line}({name})"


def hotspots(stats: pstats.Stats, top: int) -> dict[str, list[dict[str, Any]]]:
    """Top ``invclose`` functions by cumulative time and all functions by own time."""
    package = str(Path(invclose.__file__).resolve().parent) + "/"
    rows = []
    for func, (cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": _where(func),
                "inside_invclose": str(Path(func[0]).resolve()).startswith(package),
                "ncalls": nc,
                "primitive_calls": cc,
                "tottime_s": round(tt, 4),
                "cumtime_s": round(ct, 4),
            }
        )
    inside = sorted((r for r in rows if r["inside_invclose"]), key=lambda r: -r["cumtime_s"])
    own = sorted(rows, key=lambda r: -r["tottime_s"])
    return {"invclose_by_cumtime": inside[:top], "all_by_tottime": own[:top]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_close")
    p.add_argument("--rows", default="1e6")
    p.add_argument("--shape", default="uniform", choices=datagen.SHAPES)
    p.add_argument("--method", default="fifo")
    p.add_argument("--path", default=None, help="a Parquet dataset instead of generating one")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--json", action="store_true")
    p.add_argument("--pstats", default=None, help="write the raw profile here")
    args = p.parse_args(argv)
    if args.path:
        df = pl.read_parquet(args.path)
        shape = Path(args.path).name.split("-")[0]
    else:
        df = datagen.generate(datagen.parse_rows(args.rows), args.shape)
        shape = args.shape
    dims = datagen.dimensions(shape if shape in datagen.SHAPES else "uniform")
    accounts = accounts_catch_all()
    invclose.close(
        datagen.generate(2000, "uniform"),
        datagen.CLOSE_DATE,
        method=args.method,
        dimensions=["site"],
        accounts=accounts,
    )
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    invclose.close(df, datagen.CLOSE_DATE, method=args.method, dimensions=dims, accounts=accounts)
    profiler.disable()
    wall = time.perf_counter() - start
    if args.pstats:
        profiler.dump_stats(args.pstats)
    stats = pstats.Stats(profiler)
    spots = hotspots(stats, args.top)
    if args.json:
        print(
            json.dumps({"rows": df.height, "wall_s": wall, "invclose": invclose.__file__, **spots})
        )
        return
    print(f"close {args.method} {shape} {df.height:,} rows: {wall:.2f} s under cProfile\n")
    print(f"top {args.top} inside invclose by cumulative time")
    print(f"{'cum s':>8} {'own s':>8} {'calls':>7}  function")
    for r in spots["invclose_by_cumtime"]:
        print(f"{r['cumtime_s']:8.3f} {r['tottime_s']:8.3f} {r['ncalls']:7d}  {r['function']}")
    print(f"\ntop {args.top} overall by own time")
    for r in spots["all_by_tottime"]:
        print(f"{r['cumtime_s']:8.3f} {r['tottime_s']:8.3f} {r['ncalls']:7d}  {r['function']}")


if __name__ == "__main__":
    main()
