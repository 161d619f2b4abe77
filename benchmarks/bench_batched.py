"""Larger than memory: the batched close of a Parquet dataset, with its peak RSS (issue 7).

    python -m benchmarks.bench_batched --rows 1e7 --batch-rows 1e6        # one size
    python -m benchmarks.bench_batched --rows 1e8 --batch-rows 2e6 --check-rows 2e6

The dataset is written in chunks of one million rows (``datagen.generate`` of shape
``families`` with a different seed per chunk, items, transactions and orders prefixed by the
chunk), one Parquet file per chunk, so that generating it never holds more than a chunk. The
close runs in a child process (``invclose.batched.close_batched`` on the directory) whose peak
RSS is ``VmHWM`` (``benchmarks.worker.peak_rss``: ``ru_maxrss`` would include the parent's
peak); the run reports time, rows per second, batches, peak RSS and
the table sizes.

``--check-rows N`` first closes the first N rows of the dataset both ways, in memory and in
batches, and compares every table (sorted) and the ``close_id``: the batched close must write
exactly the in-memory close's rows. Results go to ``benchmarks/results/batched-<stamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import polars as pl

from benchmarks import datagen
from benchmarks.worker import MB, accounts_catch_all, exit_with_parent, peak_rss

RESULTS = Path(__file__).resolve().parent / "results"
CHUNK = 1_000_000


def write_dataset(rows: int, folder: Path) -> Path:
    """``rows`` rows of shape ``families`` as Parquet chunks under ``folder`` (cached)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(0, (rows + CHUNK - 1) // CHUNK):
        file = folder / f"chunk-{k:05d}.parquet"
        if file.exists():
            continue
        size = min(CHUNK, rows - k * CHUNK)
        frame = datagen.generate(size, "families", seed=1000 + k)
        prefix = pl.lit(f"C{k:04d}-")
        frame.with_columns(
            item_id=prefix + pl.col("item_id"),
            txn_id=prefix + pl.col("txn_id"),
            order_id=prefix + pl.col("order_id"),
        ).write_parquet(file.with_suffix(".tmp"))
        file.with_suffix(".tmp").rename(file)
    return folder


def _close_child(
    source: list[str], out: str, batch_rows: int, memory_limit: str, queue: Any
) -> None:
    from invclose.batched import close_batched

    exit_with_parent()
    start = time.perf_counter()
    stages: list[dict[str, Any]] = []

    def log(event: Any) -> None:
        # One line per batch: a long run that is stopped still tells its pace and memory.
        if event.stage in ("plan", "assemble", "write"):
            peak = peak_rss() / MB
            stages.append(
                {
                    "seconds": round(time.perf_counter() - start, 1),
                    "stage": event.stage,
                    "batch": event.parts_done,
                    "peak_rss_mb": round(peak),
                }
            )
            print(
                f"  {time.perf_counter() - start:7.0f} s  {event.stage:<8} batch "
                f"{event.parts_done}/{event.parts_total}  rows {event.rows_done:,}/"
                f"{event.rows_total:,}  peak RSS {peak:,.0f} MB",
                flush=True,
            )

    done = close_batched(
        source,
        datagen.CLOSE_DATE,
        out,
        batch_rows=batch_rows,
        memory_limit=memory_limit,
        method="fifo",
        dimensions=["site"],
        accounts=accounts_catch_all(),
        progress=log,
    )
    seconds = time.perf_counter() - start
    peak_mb = peak_rss() / MB
    queue.put(
        {
            "seconds": seconds,
            "peak_rss_mb": peak_mb,
            "batches": done.batches,
            "rows": done.rows,
            "close_id": done.close_id,
            "tables": done.table_rows,
            "peak_rss_by_stage": stages,
        }
    )


def run_batched(
    source: list[Path], out: Path, batch_rows: int, memory_limit: str = "1GB"
) -> dict[str, Any]:
    """The batched close in a fresh process: its own peak RSS, not the parent's."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(
        target=_close_child,
        args=([str(s) for s in source], str(out), batch_rows, memory_limit, queue),
    )
    child.start()
    report: dict[str, Any] = queue.get()
    child.join()
    return report


def check_identical(source: list[Path], work: Path, batch_rows: int) -> dict[str, Any]:
    """Close ``source`` in memory and in batches; compare every table after sorting."""
    import invclose
    from invclose.batched import close_batched
    from invclose.schemas import RESULT_TABLES

    kwargs: dict[str, Any] = {
        "method": "fifo",
        "dimensions": ["site"],
        "accounts": accounts_catch_all(),
    }
    frame = pl.read_parquet(source)
    in_memory = invclose.close(frame, datagen.CLOSE_DATE, **kwargs)
    out = work / "check"
    shutil.rmtree(out, ignore_errors=True)
    done = close_batched(source, datagen.CLOSE_DATE, out, batch_rows=batch_rows, **kwargs)
    batched = invclose.read_result(out)
    differing = [
        table
        for table in RESULT_TABLES
        if not getattr(batched, table)
        .sort(getattr(batched, table).columns, nulls_last=True)
        .equals(getattr(in_memory, table).sort(getattr(in_memory, table).columns, nulls_last=True))
    ]
    shutil.rmtree(out, ignore_errors=True)
    return {
        "rows": frame.height,
        "batches": done.batches,
        "same_close_id": batched.close_id == in_memory.close_id,
        "differing_tables": differing,
        "identical": not differing and batched.close_id == in_memory.close_id,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1e7")
    parser.add_argument("--batch-rows", default="1e6")
    parser.add_argument("--check-rows", default="2e6", help="0 to skip the identity check")
    parser.add_argument("--data-dir", default=str(RESULTS / "tmp"))
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB's share (close_batched)")
    args = parser.parse_args()
    rows, batch_rows = int(float(args.rows)), int(float(args.batch_rows))
    check_rows = int(float(args.check_rows))
    data = Path(args.data_dir)
    folder = write_dataset(rows, data / f"families-chunks-{rows:.0e}")
    files = sorted(folder.glob("chunk-*.parquet"))
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "node": platform.node(),
        },
        "rows": rows,
        "batch_rows": batch_rows,
        "memory_limit": args.memory_limit,
    }
    if check_rows:
        report["check"] = check_identical(files[: max(1, check_rows // CHUNK)], data, batch_rows)
        print("identity check:", report["check"])
    out = data / f"batched-out-{rows:.0e}"
    shutil.rmtree(out, ignore_errors=True)
    load_before = os.getloadavg()[0]
    report["close"] = run_batched(files, out, batch_rows, args.memory_limit)
    close = report["close"]
    # The machine is shared: the load says how much of the two cores the run really had.
    close["load_average_before_after"] = [load_before, os.getloadavg()[0]]
    close["rows_per_second"] = close["rows"] / close["seconds"]
    print(
        f"{close['rows']:,} rows in {close['batches']} batches: {close['seconds']:.0f} s "
        f"({close['rows_per_second']:,.0f} rows/s), peak RSS {close['peak_rss_mb']:,.0f} MB"
    )
    print("tables:", close["tables"])
    shutil.rmtree(out, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    path = RESULTS / f"batched-{stamp}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"written {path}")


if __name__ == "__main__":
    main()
