"""One measurement in a fresh process: ``python -m benchmarks.worker '<json task>'``.

:mod:`benchmarks.bench_close` starts one of these per measurement, with the thread counts
set in its environment (``POLARS_MAX_THREADS`` and ``NUMBA_NUM_THREADS`` are read when the
libraries load, so they can only be set per process). The worker prints one JSON object on
its last line of standard output: the best and all timings, and its peak resident set size
(``VmHWM``, see :func:`peak_rss`: the peak of this process's own address space, import and
data included) plus the RSS held just before the timed work.

Tasks (``"task"`` key):

``close``    read the Parquet file, then ``invclose.close`` and ``result.write`` ``repeats``
             times (after one untimed warm-up close of 2,000 generated rows, so numba's cache
             load is not counted)
``floor``    the sort floor on the same frame: Polars sort on (item_id, dims, date, seq), Polars
             sort on a packed uint64 key computed beforehand, DuckDB ``ORDER BY`` fetched as Arrow
``hand``     a plain-Python row-by-row FIFO (dicts and deques, integer money)
``compare``  read two written results back and compare every table with ``DataFrame.equals``
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import resource
import shutil
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import polars as pl

MB = 1024 * 1024


def _rss_now() -> int:
    """Current resident set size in bytes (``VmRSS``)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def exit_with_parent() -> None:
    """Stop this process when the benchmark that started it dies.

    A measurement child outlives a killed parent (``kill`` of the parent does not reach it),
    and an orphaned 1e8-row close once kept a core busy for half an hour, under the next run's
    measurements. A daemon thread watches the parent id and exits once it changes.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def peak_rss() -> int:
    """Peak resident set size of this process in bytes: ``VmHWM`` of ``/proc/self/status``.

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries the parent's peak over into a
    child started by fork + exec (``subprocess``, ``multiprocessing`` spawn), so a child of a
    large parent would report the parent's peak. ``VmHWM`` belongs to the child's own address
    space. ``ru_maxrss`` only where there is no ``/proc``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def accounts_catch_all() -> pl.DataFrame:
    """An accounts mapping with one row matching every kind and item group."""
    return pl.DataFrame(
        {
            "kind": [None],
            "item_group": [None],
            "inventory_account": ["1400"],
            "offset_account": ["5000"],
        },
        schema={
            "kind": pl.String,
            "item_group": pl.String,
            "inventory_account": pl.String,
            "offset_account": pl.String,
        },
    )


#: CPU seconds (all threads of this process) of the latest ``_timed`` call. On a shared,
#: overloaded machine wall time includes waiting for a core; CPU time mostly does not.
_LAST_CPU = [0.0]
#: Of the same call: CPU seconds spent in the kernel (``ru_stime``, page faults above all) and
#: minor page faults (``ru_minflt``, each a first touch of a fresh page of memory).
_LAST_SYS = [0.0]
_LAST_FAULTS = [0]


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = time.process_time()
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    wall = time.perf_counter() - start
    _LAST_CPU[0] = time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_SELF)
    _LAST_SYS[0] = after.ru_stime - usage.ru_stime
    _LAST_FAULTS[0] = after.ru_minflt - usage.ru_minflt
    return wall, value


# ---------------------------------------------------------------------------- close


def task_close(task: dict[str, Any]) -> dict[str, Any]:
    import invclose
    from benchmarks import datagen

    date = dt.date.fromisoformat(task["date"])
    dims = task["dims"]
    accounts = accounts_catch_all()
    warm = datagen.generate(2000, "uniform")
    t_warm, _ = _timed(
        invclose.close,
        warm,
        datagen.CLOSE_DATE,
        method=task["method"],
        accounts=accounts,
        dimensions=["site"],
    )
    del warm
    out_dir = Path(task["out"]) if task.get("out") else None
    reads, closes, writes, closes_cpu, closes_sys, closes_faults = [], [], [], [], [], []
    counts: dict[str, int] = {}
    rss_before = 0
    for k in range(task["repeats"]):
        gc.collect()
        t_read, df = _timed(pl.read_parquet, task["path"])
        rss_before = max(rss_before, _rss_now())
        t_close, result = _timed(
            invclose.close, df, date, method=task["method"], dimensions=dims, accounts=accounts
        )
        closes_cpu.append(_LAST_CPU[0])
        closes_sys.append(_LAST_SYS[0])
        closes_faults.append(_LAST_FAULTS[0])
        reads.append(t_read)
        closes.append(t_close)
        if out_dir is not None:
            if out_dir.exists():
                shutil.rmtree(out_dir)
            t_write, _ = _timed(result.write, out_dir)
            writes.append(t_write)
        if k == 0:
            counts = {name: frame.height for name, frame in result.tables().items()}
        del df, result
    return {
        "warmup_s": t_warm,
        "read_s": min(reads),
        "close_s": min(closes),
        "write_s": min(writes) if writes else None,
        "close_all_s": closes,
        "close_cpu_s": min(closes_cpu),
        "close_cpu_all_s": closes_cpu,
        # Of the fastest close (page-fault time is where a VM's memory cost shows).
        "close_sys_s": closes_sys[closes.index(min(closes))],
        "close_minflt": closes_faults[closes.index(min(closes))],
        "close_sys_all_s": closes_sys,
        "close_minflt_all": closes_faults,
        "read_all_s": reads,
        "write_all_s": writes,
        "tables": counts,
        "rss_before_bytes": rss_before,
    }


# ---------------------------------------------------------------------------- floor


def packed_key(df: pl.DataFrame, dims: list[str]) -> tuple[pl.Series, dict[str, int]]:
    """The uint64 sort key (dense group code, day, seq rank) of §16.1, and its bit widths."""
    keys = ["item_id", *dims]
    gid = pl.struct(keys).rank("dense").cast(pl.UInt64) - 1
    day = pl.col("date").cast(pl.Int32) - pl.col("date").cast(pl.Int32).min()
    seq = pl.col("seq") - pl.col("seq").min()
    parts = df.select(gid=gid, day=day.cast(pl.UInt64), seq=seq.cast(pl.UInt64))
    bits = {c: max(1, int(parts[c].max() or 0).bit_length()) for c in parts.columns}
    if sum(bits.values()) > 64:
        msg = f"the packed key needs {sum(bits.values())} bits: {bits}"
        raise ValueError(msg)
    gid_np, day_np, seq_np = (parts[c].to_numpy() for c in ("gid", "day", "seq"))
    key = (gid_np << (bits["day"] + bits["seq"])) | (day_np << bits["seq"]) | seq_np
    return pl.Series("__key", key, dtype=pl.UInt64), bits


def task_floor(task: dict[str, Any]) -> dict[str, Any]:
    import duckdb

    df = pl.read_parquet(task["path"])
    dims = task["dims"]
    cols = ["item_id", *dims, "date", "seq"]
    t_key, (key, bits) = _timed(packed_key, df, dims)
    keyed = df.with_columns(key)
    con = duckdb.connect()
    con.register("tx", df)
    sql = f"SELECT * FROM tx ORDER BY {', '.join(cols)}"
    rss_before = _rss_now()
    runs: dict[str, list[float]] = {"polars_columns": [], "polars_packed": [], "duckdb": []}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(task["repeats"]):
        gc.collect()
        t, out = _timed(df.sort, cols)
        runs["polars_columns"].append(t)
        cpu["polars_columns"].append(_LAST_CPU[0])
        del out
        t, out = _timed(keyed.sort, "__key")
        runs["polars_packed"].append(t)
        cpu["polars_packed"].append(_LAST_CPU[0])
        del out
        t, out = _timed(lambda: con.sql(sql).to_arrow_table())
        runs["duckdb"].append(t)
        cpu["duckdb"].append(_LAST_CPU[0])
        del out
    best = {name: min(values) for name, values in runs.items()}
    return {
        "sorts": best,
        "sorts_all": runs,
        "floor_s": min(best.values()),
        "floor_by": min(best, key=best.__getitem__),
        "sorts_cpu": {name: min(values) for name, values in cpu.items()},
        "floor_cpu_s": min(min(values) for values in cpu.values()),
        "packed_key_s": t_key,
        "packed_bits": bits,
        "rss_before_bytes": rss_before,
    }


# ---------------------------------------------------------------------------- hand


def _cum(value: int, drawn: int, qty: int) -> int:
    """round(value * drawn / qty), half away from zero, in Python ints (value >= 0)."""
    return (2 * value * drawn + qty) // (2 * qty)


def hand_fifo(df: pl.DataFrame, dims: list[str], date: dt.date) -> dict[str, int]:
    """FIFO settlement written by hand: one pass over sorted rows, a queue per group.

    Financial rows dated on or before ``date`` take part. Receipts queue per (item, dims);
    an issue draws the oldest receipts; an issue that finds no stock waits and takes the next
    receipts of its group (negative stock). Pieces are priced like the library: the cumulative
    amount drawn from a receipt is round(V * c / Q), a piece is the difference.
    """
    ready = df.filter((pl.col("status") == "financial") & (pl.col("date") <= date)).select(
        pl.concat_str(["item_id", *dims], separator="|").alias("g"),
        "date",
        "seq",
        "txn_id",
        (pl.col("qty") * 1_000_000).cast(pl.Int64).alias("q"),
        (pl.col("amount") * 100).cast(pl.Int64).alias("v"),
    )
    rows = list(zip(*(ready[c].to_list() for c in ready.columns), strict=True))
    rows.sort(key=lambda r: (r[0], r[1], r[2], r[3]))
    receipts: dict[str, deque[list[Any]]] = {}
    waiting: dict[str, deque[list[Any]]] = {}
    pieces: list[tuple[str, str, int, int]] = []
    settled: dict[str, int] = {}

    def draw(issue: list[Any], queue: deque[list[Any]]) -> None:
        # issue: [txn_id, need]; receipt: [txn_id, open, qty, value, drawn, cum]
        while issue[1] > 0 and queue:
            rec = queue[0]
            take = min(issue[1], rec[1])
            rec[1] -= take
            rec[4] += take
            cum = _cum(rec[3], rec[4], rec[2])
            amount = cum - rec[5]
            rec[5] = cum
            issue[1] -= take
            pieces.append((issue[0], rec[0], take, amount))
            settled[issue[0]] = settled.get(issue[0], 0) + amount
            if rec[1] == 0:
                queue.popleft()

    for g, _date, _seq, txn, q, v in rows:
        if q > 0:
            queue = receipts.setdefault(g, deque())
            queue.append([txn, q, q, v, 0, 0])
            pending = waiting.get(g)
            while pending and queue:
                draw(pending[0], queue)
                if pending[0][1] == 0:
                    pending.popleft()
        elif q < 0:
            queue = receipts.setdefault(g, deque())
            issue = [txn, -q]
            if not waiting.get(g):
                draw(issue, queue)
            if issue[1] > 0:
                waiting.setdefault(g, deque()).append(issue)
    unsettled = sum(i[1] for pending in waiting.values() for i in pending)
    return {
        "rows": len(rows),
        "pieces": len(pieces),
        "settled_qty": sum(p[2] for p in pieces),
        "settled_amount": sum(p[3] for p in pieces),
        "adjusted_issues": len(settled),
        "unsettled_qty": unsettled,
    }


def task_hand(task: dict[str, Any]) -> dict[str, Any]:
    df = pl.read_parquet(task["path"])
    date = dt.date.fromisoformat(task["date"])
    rss_before = _rss_now()
    times, cpu, summary = [], [], {}
    for _ in range(task["repeats"]):
        gc.collect()
        t, summary = _timed(hand_fifo, df, task["dims"], date)
        times.append(t)
        cpu.append(_LAST_CPU[0])
    return {
        "hand_s": min(times),
        "hand_cpu_s": min(cpu),
        "hand_all_s": times,
        "summary": summary,
        "rss_before_bytes": rss_before,
    }


# ---------------------------------------------------------------------------- compare


def task_compare(task: dict[str, Any]) -> dict[str, Any]:
    import invclose

    a = invclose.read_result(task["a"])
    b = invclose.read_result(task["b"])
    ta, tb = a.tables(), b.tables()
    equal = {
        name: bool(ta[name].schema == tb[name].schema and ta[name].equals(tb[name])) for name in ta
    }
    return {"identical": all(equal.values()) and a.close_id == b.close_id, "tables": equal}


TASKS = {"close": task_close, "floor": task_floor, "hand": task_hand, "compare": task_compare}


def main() -> None:
    exit_with_parent()
    task = json.loads(sys.argv[1])
    out = TASKS[task["task"]](task)
    out["peak_rss_bytes"] = peak_rss()
    if "invclose" in sys.modules:
        out["invclose_file"] = sys.modules["invclose"].__file__
    out["threads"] = {
        "POLARS_MAX_THREADS": os.environ.get("POLARS_MAX_THREADS"),
        "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS"),
        "polars_thread_pool": pl.thread_pool_size(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
