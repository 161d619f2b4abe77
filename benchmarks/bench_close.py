"""The close against its sort floor and a hand-written FIFO, per method x shape x size (issue 7).

    python -m benchmarks.bench_close --rows 1e5,1e6 \\
        --methods fifo,lifo,lifo_date,weighted_average,weighted_average_date \\
        --shapes uniform,zipf,giant

For each size and shape the dataset is generated once (``benchmarks.datagen``, cached as
Parquet under ``--data-dir``). Then, each in a fresh process (:mod:`benchmarks.worker`):

* the **sort floor**: Polars sort on (item_id, dims, date, seq), Polars sort on a packed
  uint64 key computed beforehand, DuckDB ``ORDER BY`` fetched as Arrow; the floor is the best;
* up to ``--hand-max`` rows, a **hand-written FIFO** in plain Python (dicts and deques);
* per method, the **close** at ``--threads`` threads (best of ``--repeats``), with the Parquet
  read before it and ``result.write(dir)`` after it, and the peak RSS of the process;
* per method, the close again at ``--compare-threads`` threads, and a comparison of the two
  written results table by table (``DataFrame.equals``): runs must be bit-identical.

The table printed at the end gives the ratios against the issue's targets, and the whole run
(machine, versions, every timing) is saved as JSON under ``benchmarks/results/`` (compare
two runs with ``python -m benchmarks.compare A.json B.json``) plus a Markdown copy of the
table next to it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.datagen import (
    CLOSE_DATE,
    DEFAULT_SEED,
    SHAPES,
    dataset_path,
    dimensions,
    parse_rows,
    rows_label,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
METHODS = ("fifo", "lifo", "lifo_date", "weighted_average", "weighted_average_date")
ORDINAL = ("fifo", "lifo", "lifo_date")

#: The issue's targets.
FLOOR_TARGET = {
    "fifo": 2.0,
    "lifo": 2.0,
    "lifo_date": 2.0,
    "weighted_average": 1.5,
    "weighted_average_date": 2.5,
}
HAND_TARGET = 4.0  # close at least 4x faster than the hand-written FIFO (fifo/lifo/lifo_date)
HAND_TARGET_ROWS = 1_000_000
IO_TARGET = 1.5  # (Parquet read + result.write) <= 1.5 x close
GROWTH_TARGET = 1.3  # time per row at 1e7 <= 1.3 x time per row at 1e6
RSS_TARGET = 3 * 10**9  # bytes, at 1e7 rows
RSS_TARGET_ROWS = 10_000_000
GB = 10**9
MB = 10**6


# ---------------------------------------------------------------------------- machine


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def fresh_memory_cost(size: int = 512 * 1024 * 1024) -> dict[str, float]:
    """Time to touch ``size`` bytes of memory the process has never used, a page at a time.

    Every page a close allocates is first touched this way. On bare metal a fault costs well
    under a microsecond; in a virtual machine whose host backs guest memory lazily it can
    cost ten times more, and a close that grows by 10 GB then spends tens of CPU seconds in
    the kernel (``close_sys_s``). Recorded with every run so that runs on different machines
    (or days) can be compared.
    """
    import mmap

    import numpy as np

    page = mmap.PAGESIZE
    area = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        view = np.frombuffer(area, dtype=np.uint8)
        start = time.perf_counter()
        view[::page] = 1
        seconds = time.perf_counter() - start
        del view
    finally:
        area.close()
    return {
        "first_touch_gb_per_s": size / seconds / 1e9,
        "fault_us": seconds / (size // page) * 1e6,
    }


def machine_info() -> dict[str, Any]:
    """CPU, memory, load and library versions of this machine, JSON-ready."""
    import importlib.metadata

    import duckdb
    import numba
    import numpy
    import polars
    import pyarrow

    import invclose

    meminfo = {
        line.split(":")[0]: int(line.split()[1]) * 1024
        for line in _read("/proc/meminfo").splitlines()
        if line.split(":")[0] in ("MemTotal", "MemAvailable")
    }
    models = [
        line.split(":", 1)[1].strip()
        for line in _read("/proc/cpuinfo").splitlines()
        if line.startswith("model name")
    ]
    status = _git("status", "--porcelain")
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_model": models[0] if models else platform.processor(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_total_bytes": meminfo.get("MemTotal"),
        "memory_available_bytes": meminfo.get("MemAvailable"),
        "loadavg_start": list(os.getloadavg()),
        "fresh_memory": fresh_memory_cost(),
        "python": platform.python_version(),
        "versions": {
            "invclose": getattr(invclose, "__version__", None),
            "polars": polars.__version__,
            "numba": numba.__version__,
            "numpy": numpy.__version__,
            "duckdb": duckdb.__version__,
            "pyarrow": pyarrow.__version__,
            "polars-hash": importlib.metadata.version("polars-hash"),
        },
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty_files": len(status.splitlines()) if status is not None else None,
    }


# ---------------------------------------------------------------------------- running


class Run:
    """The run's records, saved to JSON after every measurement."""

    def __init__(self, path: Path, meta: dict[str, Any], config: dict[str, Any]) -> None:
        self.path = path
        self.data: dict[str, Any] = {"meta": meta, "config": config, "records": []}

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        record.setdefault("loadavg", list(os.getloadavg()))  # the machine is shared: keep it
        self.data["records"].append(record)
        self.save()
        return record

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str) + "\n", encoding="utf-8")
        tmp.replace(self.path)

    def find(self, kind: str, **keys: Any) -> dict[str, Any] | None:
        for rec in self.data["records"]:
            if rec["kind"] == kind and all(rec.get(k) == v for k, v in keys.items()):
                return rec
        return None


#: Where child processes import ``invclose`` and ``benchmarks`` from: the working tree, or a
#: snapshot of a commit (``--snapshot``), immune to edits made while the run goes on.
_LIB: dict[str, Any] = {"root": ROOT}


def make_snapshot(rev: str, data_dir: Path) -> tuple[Path, str]:
    """Extract ``invclose/`` at commit ``rev`` (``git archive``) plus these benchmark files."""
    commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    if not commit:
        msg = f"not a commit: {rev}"
        raise SystemExit(msg)
    dest = data_dir / f"snapshot-{commit[:12]}"
    if not (dest / "invclose" / "__init__.py").exists():
        tmp = data_dir / f".snapshot-{commit[:12]}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit, "invclose"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    bench = dest / "benchmarks"
    bench.mkdir(exist_ok=True)
    for file in (ROOT / "benchmarks").glob("*.py"):
        shutil.copy2(file, bench / file.name)
    return dest, commit


def child_env(threads: int) -> dict[str, str]:
    """Environment of a child process: thread counts, and the library root first on the path."""
    env = dict(os.environ)
    env["POLARS_MAX_THREADS"] = str(threads)
    env["NUMBA_NUM_THREADS"] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_LIB["root"]), env.get("PYTHONPATH")]))
    if _LIB.get("malloc_conf"):
        # Polars' jemalloc reads its options once, when the library loads.
        env["_RJEM_MALLOC_CONF"] = str(_LIB["malloc_conf"])
    return env


def run_worker(task: dict[str, Any], threads: int, timeout: float) -> dict[str, Any]:
    """Run one task of :mod:`benchmarks.worker` in a fresh process; its JSON or an error."""
    env = child_env(threads)
    cmd = [sys.executable, "-m", "benchmarks.worker", json.dumps(task)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            cwd=_LIB["root"],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return {"error": f"timeout after {timeout:.0f} s", "stderr": str(exc.stderr)[-4000:]}
    wall = time.perf_counter() - start
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {
            "error": f"exit status {proc.returncode}",
            "stderr": proc.stderr[-6000:],
            "wall_s": wall,
        }
    out: dict[str, Any] = json.loads(lines[-1])
    out["wall_s"] = wall
    return out


def ensure_dataset(
    run: Run, data_dir: Path, rows: int, shape: str, seed: int, timeout: float
) -> Path | None:
    path = dataset_path(data_dir, rows, shape, seed)
    if path.exists():
        if run.find("dataset", rows=rows, shape=shape) is None:
            run.add(
                {
                    "kind": "dataset",
                    "rows": rows,
                    "shape": shape,
                    "seed": seed,
                    "path": str(path),
                    "cached": True,
                    "bytes": path.stat().st_size,
                }
            )
        return path
    start = time.perf_counter()
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.datagen",
        "--rows",
        str(rows),
        "--shape",
        shape,
        "--seed",
        str(seed),
        "--out",
        str(data_dir),
    ]
    proc = subprocess.run(
        cmd,
        cwd=_LIB["root"],
        env=child_env(2),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    rec = {
        "kind": "dataset",
        "rows": rows,
        "shape": shape,
        "seed": seed,
        "path": str(path),
        "generate_s": time.perf_counter() - start,
    }
    if proc.returncode != 0:
        rec["error"] = f"exit status {proc.returncode}"
        rec["stderr"] = proc.stderr[-4000:]
    else:
        rec["bytes"] = path.stat().st_size
    run.add(rec)
    _say(f"dataset {shape} {rows_label(rows)}: {rec['generate_s']:.1f} s")
    return None if "error" in rec else path


def _say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def _fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def measure(args: argparse.Namespace, run: Run) -> None:
    data_dir = Path(args.data_dir)
    out_root = data_dir / "out"
    date = CLOSE_DATE.isoformat()
    for rows in args.rows:
        repeats = args.repeats[rows] if rows < 10_000_000 else args.repeats_large
        for shape in args.shapes:
            path = ensure_dataset(run, data_dir, rows, shape, args.seed, args.timeout)
            if path is None:
                continue
            dims = dimensions(shape)
            base = {"rows": rows, "shape": shape}
            task = {"path": str(path), "dims": dims, "date": date, "repeats": repeats}
            if not args.skip_floor:
                res = run_worker({"task": "floor", **task}, args.threads, args.timeout)
                run.add({"kind": "floor", **base, **res})
                _say(
                    f"floor {shape} {rows_label(rows)}: {_fmt_s(res.get('floor_s'))} s "
                    f"({res.get('floor_by', res.get('error'))})"
                )
            if rows <= args.hand_max:
                res = run_worker(
                    {"task": "hand", **task, "repeats": min(repeats, args.hand_repeats)},
                    args.threads,
                    args.timeout,
                )
                run.add({"kind": "hand", **base, **res})
                _say(f"hand fifo {shape} {rows_label(rows)}: {_fmt_s(res.get('hand_s'))} s")
            for method in args.methods:
                if f"{shape}:{method}" in args.skip:
                    continue
                key = {**base, "method": method}
                out_a = out_root / f"{shape}-{rows_label(rows)}-{method}-t{args.threads}"
                res = run_worker(
                    {"task": "close", **task, "method": method, "out": str(out_a)},
                    args.threads,
                    args.timeout,
                )
                run.add({"kind": "close", **key, "threads": args.threads, **res})
                if "error" in res:
                    _say(f"close {method} {shape} {rows_label(rows)}: FAILED {res['error']}")
                    continue
                _say(
                    f"close {method} {shape} {rows_label(rows)}: {res['close_s']:.3f} s "
                    f"(read {res['read_s']:.2f}, write {_fmt_s(res['write_s'])}, "
                    f"peak {res['peak_rss_bytes'] / MB:.0f} MB)"
                )
                if args.compare_threads and rows <= args.thread_max:
                    out_b = (
                        out_root / f"{shape}-{rows_label(rows)}-{method}-t{args.compare_threads}"
                    )
                    res_b = run_worker(
                        {
                            "task": "close",
                            **task,
                            "method": method,
                            "out": str(out_b),
                            "repeats": args.thread_repeats,
                        },
                        args.compare_threads,
                        args.timeout,
                    )
                    rec = {"kind": "threads", **key, "threads": args.compare_threads, **res_b}
                    if "error" not in res_b:
                        cmp_res = run_worker(
                            {"task": "compare", "a": str(out_a), "b": str(out_b)},
                            args.threads,
                            args.timeout,
                        )
                        rec["compare"] = cmp_res
                    run.add(rec)
                    _say(
                        f"  at {args.compare_threads} thread(s): "
                        f"{_fmt_s(res_b.get('close_s'))} s, identical: "
                        f"{rec.get('compare', {}).get('identical', res_b.get('error'))}"
                    )
                    shutil.rmtree(out_b, ignore_errors=True)
                shutil.rmtree(out_a, ignore_errors=True)
    if args.profile:
        profile(args, run)


def profile(args: argparse.Namespace, run: Run) -> None:
    rows = 1_000_000 if 1_000_000 in args.rows else max(args.rows)
    path = ensure_dataset(run, Path(args.data_dir), rows, "uniform", args.seed, args.timeout)
    if path is None:
        return
    env = child_env(args.threads)
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.profile_close",
        "--path",
        str(path),
        "--method",
        "fifo",
        "--json",
    ]
    proc = subprocess.run(
        cmd,
        cwd=_LIB["root"],
        env=env,
        capture_output=True,
        text=True,
        timeout=args.timeout,
        check=False,
    )
    rec: dict[str, Any] = {"kind": "profile", "rows": rows, "shape": "uniform", "method": "fifo"}
    if proc.returncode == 0 and proc.stdout.strip():
        rec.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    else:
        rec["error"] = f"exit status {proc.returncode}"
        rec["stderr"] = proc.stderr[-4000:]
    run.add(rec)
    _say(f"profile fifo uniform {rows_label(rows)} done")


# ---------------------------------------------------------------------------- report


def _verdict(value: float | None, limit: float, *, at_most: bool = True) -> str:
    if value is None:
        return "n/a"
    ok = value <= limit if at_most else value >= limit
    return "met" if ok else "NOT MET"


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    """Rows of the ratio table, growth rows and the list of target checks."""
    records = data["records"]

    def find(kind: str, **keys: Any) -> dict[str, Any] | None:
        for rec in records:
            if rec["kind"] == kind and all(rec.get(k) == v for k, v in keys.items()):
                return rec
        return None

    rows_out: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for rec in records:
        if "error" in rec:
            failures.append(
                {k: rec.get(k) for k in ("kind", "rows", "shape", "method", "error", "stderr")}
            )
        if rec["kind"] != "close" or "error" in rec:
            continue
        n, shape, method = rec["rows"], rec["shape"], rec["method"]
        floor = find("floor", rows=n, shape=shape)
        hand = find("hand", rows=n, shape=shape)
        thr = find("threads", rows=n, shape=shape, method=method, run=rec.get("run"))
        close_s = rec["close_s"]
        floor_s = floor.get("floor_s") if floor else None
        hand_s = hand.get("hand_s") if hand else None
        io_s = rec["read_s"] + (rec["write_s"] or 0.0) if rec.get("write_s") is not None else None
        row = {
            "rows": n,
            "shape": shape,
            "method": method,
            "close_s": close_s,
            "rows_per_s": n / close_s,
            "floor_s": floor_s,
            "floor_by": floor.get("floor_by") if floor else None,
            "close_over_floor": close_s / floor_s if floor_s else None,
            "floor_target": FLOOR_TARGET[method],
            "hand_s": hand_s,
            "hand_over_close": hand_s / close_s if hand_s else None,
            "read_s": rec["read_s"],
            "write_s": rec.get("write_s"),
            "io_over_close": io_s / close_s if io_s is not None else None,
            "peak_rss_bytes": rec["peak_rss_bytes"],
            "rss_before_bytes": rec.get("rss_before_bytes"),
            "close_1t_s": thr.get("close_s") if thr else None,
            "identical": (thr or {}).get("compare", {}).get("identical"),
            "load_1m": (rec.get("loadavg") or [None])[0],
            "close_cpu_s": rec.get("close_cpu_s"),
            "floor_cpu_s": floor.get("floor_cpu_s") if floor else None,
            "hand_cpu_s": hand.get("hand_cpu_s") if hand else None,
            "close_sys_s": rec.get("close_sys_s"),
            "close_minflt": rec.get("close_minflt"),
        }
        row["sys_share"] = (
            row["close_sys_s"] / row["close_cpu_s"]
            if row["close_sys_s"] is not None and row["close_cpu_s"]
            else None
        )
        row["close_over_floor_cpu"] = (
            row["close_cpu_s"] / row["floor_cpu_s"]
            if row["close_cpu_s"] and row["floor_cpu_s"]
            else None
        )
        row["speedup_2t"] = row["close_1t_s"] / close_s if row["close_1t_s"] is not None else None
        rows_out.append(row)
        label = f"{method} {shape} {rows_label(n)}"
        checks.append(
            {
                "check": f"close/floor {label}",
                "value": row["close_over_floor"],
                "limit": f"<= {FLOOR_TARGET[method]}",
                "verdict": _verdict(row["close_over_floor"], FLOOR_TARGET[method]),
            }
        )
        if method in ORDINAL and n == HAND_TARGET_ROWS:
            checks.append(
                {
                    "check": f"hand-written/close {label}",
                    "value": row["hand_over_close"],
                    "limit": f">= {HAND_TARGET}",
                    "verdict": _verdict(row["hand_over_close"], HAND_TARGET, at_most=False),
                }
            )
        checks.append(
            {
                "check": f"IO/close {label}",
                "value": row["io_over_close"],
                "limit": f"<= {IO_TARGET}",
                "verdict": _verdict(row["io_over_close"], IO_TARGET),
            }
        )
        if n >= RSS_TARGET_ROWS:
            checks.append(
                {
                    "check": f"peak RSS {label} (GB)",
                    "value": row["peak_rss_bytes"] / GB,
                    "limit": f"<= {RSS_TARGET / GB:.0f}",
                    "verdict": _verdict(row["peak_rss_bytes"], RSS_TARGET),
                }
            )
        if row["identical"] is not None:
            checks.append(
                {
                    "check": f"1 vs 2 threads bit-identical {label}",
                    "value": row["identical"],
                    "limit": "identical",
                    "verdict": "met" if row["identical"] else "NOT MET",
                }
            )
    rows_out.sort(
        key=lambda r: (
            r["rows"],
            SHAPES.index(r["shape"]) if r["shape"] in SHAPES else 99,
            METHODS.index(r["method"]),
        )
    )
    growth: list[dict[str, Any]] = []
    for row in rows_out:
        if row["rows"] != 1_000_000:
            continue
        for big in rows_out:
            if not (
                big["rows"] > row["rows"]
                and big["shape"] == row["shape"]
                and big["method"] == row["method"]
            ):
                continue
            g = (big["close_s"] / big["rows"]) / (row["close_s"] / row["rows"])
            g_cpu = (
                (big["close_cpu_s"] / big["rows"]) / (row["close_cpu_s"] / row["rows"])
                if big.get("close_cpu_s") and row.get("close_cpu_s")
                else None
            )
            # The floor's own growth: how much slower per row the machine sorted at the larger
            # size in this run (caches, memory, other load). A close that grows less than
            # that slows with size no more than a plain sort of its rows did (the floor is
            # timed separately, so this reads the run, it does not prove the algorithm).
            g_floor = (
                (big["floor_s"] / big["rows"]) / (row["floor_s"] / row["rows"])
                if big.get("floor_s") and row.get("floor_s")
                else None
            )
            span = f"1e6->{rows_label(big['rows'])}"
            growth.append(
                {
                    "shape": row["shape"],
                    "method": row["method"],
                    "span": span,
                    "growth": g,
                    "growth_cpu": g_cpu,
                    "growth_floor": g_floor,
                    "growth_over_floor": g / g_floor if g_floor else None,
                }
            )
            # The target is stated for 1e7; a smaller top size is checked as a proxy.
            checks.append(
                {
                    "check": f"growth per row {span} {row['method']} {row['shape']}",
                    "value": g,
                    "limit": f"<= {GROWTH_TARGET}",
                    "verdict": _verdict(g, GROWTH_TARGET),
                }
            )
    return {"rows": rows_out, "growth": growth, "checks": checks, "failures": failures}


def _cell(value: Any, fmt: str = "{:.2f}") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return fmt.format(value)


def _mark(value: float | None, limit: float, *, at_most: bool = True) -> str:
    if value is None:
        return "-"
    ok = value <= limit if at_most else value >= limit
    return f"{value:.2f} {'ok' if ok else 'X'}"


TABLE_HEAD = (
    "rows",
    "shape",
    "method",
    "close s",
    "Mrows/s",
    "floor s",
    "close/floor (target)",
    "close/floor CPU",
    "sys/CPU",
    "hand s",
    "hand/close (>=4)",
    "IO/close (<=1.5)",
    "peak RSS MB",
    "1T s",
    "1T/2T",
    "identical",
    "load",
)


def table_rows(summary: dict[str, Any]) -> list[list[str]]:
    out = []
    for r in summary["rows"]:
        hand_applies = r["method"] in ORDINAL and r["rows"] == HAND_TARGET_ROWS
        hand = (
            _mark(r["hand_over_close"], HAND_TARGET, at_most=False)
            if hand_applies
            else _cell(r["hand_over_close"])
        )
        floor_txt = _mark(r["close_over_floor"], r["floor_target"])
        out.append(
            [
                rows_label(r["rows"]),
                r["shape"],
                r["method"],
                _cell(r["close_s"], "{:.3f}"),
                _cell(r["rows_per_s"] / 1e6, "{:.2f}"),
                _cell(r["floor_s"], "{:.3f}"),
                f"{floor_txt} (<={r['floor_target']})",
                _cell(r.get("close_over_floor_cpu")),
                _cell(r.get("sys_share")),
                _cell(r["hand_s"], "{:.2f}"),
                hand,
                _mark(r["io_over_close"], IO_TARGET),
                _cell(r["peak_rss_bytes"] / MB, "{:.0f}"),
                _cell(r["close_1t_s"], "{:.3f}"),
                _cell(r["speedup_2t"]),
                _cell(r["identical"]),
                _cell(r["load_1m"], "{:.1f}"),
            ]
        )
    return out


def markdown(summary: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(TABLE_HEAD) + " |", "|" + "---|" * len(TABLE_HEAD)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(summary)]
    if summary["growth"]:
        lines += [
            "",
            "| shape | method | sizes | growth per row, wall (<= 1.3) | growth per row, CPU "
            "| floor's growth per row | close's growth / floor's |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {g['shape']} | {g['method']} | {g['span']} | "
            f"{_mark(g['growth'], GROWTH_TARGET)} | {_cell(g.get('growth_cpu'))} | "
            f"{_cell(g.get('growth_floor'))} | {_cell(g.get('growth_over_floor'))} |"
            for g in summary["growth"]
        ]
    met = sum(c["verdict"] == "met" for c in summary["checks"])
    missed = [c for c in summary["checks"] if c["verdict"] == "NOT MET"]
    lines += ["", f"Targets: {met} met, {len(missed)} not met."]
    lines += [
        f"- NOT MET: {c['check']} = {_cell(c['value'])} (target {c['limit']})" for c in missed
    ]
    for f in summary["failures"]:
        lines.append(
            f"- FAILED: {f['kind']} {f.get('method') or ''} {f.get('shape')} "
            f"{rows_label(f['rows']) if f.get('rows') else ''}: {f['error']}"
        )
    return "\n".join(lines) + "\n"


def print_table(summary: dict[str, Any]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text
        print(markdown(summary))
        return
    table = Table(title="invclose close vs floor and hand-written FIFO", show_lines=False)
    for head in TABLE_HEAD:
        table.add_column(head, justify="left" if head in ("shape", "method") else "right")
    for row in table_rows(summary):
        table.add_row(*row)
    console = Console(width=220)
    console.print(table)
    if summary["growth"]:
        growth = Table(title="growth of time per row from 1e6 (target <= 1.3 at 1e7)")
        for head in ("shape", "method", "sizes", "wall", "CPU", "floor", "wall / floor"):
            growth.add_column(head)
        for g in summary["growth"]:
            growth.add_row(
                g["shape"],
                g["method"],
                g["span"],
                _mark(g["growth"], GROWTH_TARGET),
                _cell(g.get("growth_cpu")),
                _cell(g.get("growth_floor")),
                _cell(g.get("growth_over_floor")),
            )
        console.print(growth)
    missed = [c for c in summary["checks"] if c["verdict"] == "NOT MET"]
    met = sum(c["verdict"] == "met" for c in summary["checks"])
    console.print(f"Targets: {met} met, {len(missed)} not met.")
    for c in missed:
        console.print(f"  NOT MET: {c['check']} = {_cell(c['value'])} (target {c['limit']})")
    for f in summary["failures"]:
        console.print(
            f"  FAILED: {f['kind']} {f.get('method') or ''} {f.get('shape')} "
            f"{f.get('rows')}: {f['error']}"
        )


# ---------------------------------------------------------------------------- main


def _csv(text: str, allowed: tuple[str, ...]) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if bad:
        msg = f"unknown {bad}; choose from {', '.join(allowed)}"
        raise argparse.ArgumentTypeError(msg)
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_close",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--rows", default="1e5,1e6", help="sizes, comma separated")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--shapes", default="uniform,zipf,giant")
    p.add_argument(
        "--repeats",
        default="3",
        help="best of N below 1e7 rows; a comma list gives one N per --rows entry (3,2)",
    )
    p.add_argument("--repeats-large", type=int, default=1, help="best of N at 1e7 rows and more")
    p.add_argument("--threads", type=int, default=2, help="threads of the main measurement")
    p.add_argument("--compare-threads", type=int, default=1, help="second thread count (0: skip)")
    p.add_argument("--thread-repeats", type=int, default=1, help="repeats at --compare-threads")
    p.add_argument("--thread-max", default="1e7", help="largest size run at --compare-threads")
    p.add_argument("--hand-max", default="1e6", help="largest size of the hand-written FIFO")
    p.add_argument("--hand-repeats", type=int, default=2, help="repeats of the hand-written FIFO")
    p.add_argument("--skip-floor", action="store_true")
    p.add_argument("--profile", action="store_true", help="cProfile the 1e6 fifo uniform close")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--data-dir", default=str(RESULTS / "tmp"), help="dataset cache")
    p.add_argument("--out", default=None, help="JSON path (default results/<stamp>-<host>.json)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per process")
    p.add_argument(
        "--from-json",
        default=None,
        help="only print the table of saved runs (comma separated JSON files, merged; the "
        "first file wins where two hold the same measurement)",
    )
    p.add_argument("--markdown", default=None, help="with --from-json: also write the table here")
    p.add_argument(
        "--skip",
        default="",
        help="shape:method pairs not to close, comma separated (e.g. zipf:fifo,zipf:lifo)",
    )
    p.add_argument(
        "--snapshot",
        default=None,
        metavar="REV",
        help="benchmark invclose as committed at REV (git archive into --data-dir), not the "
        "working tree that others may be editing during the run",
    )
    p.add_argument(
        "--malloc-conf",
        default=None,
        metavar="OPTIONS",
        help="jemalloc options for Polars in every measured process (_RJEM_MALLOC_CONF), e.g. "
        "dirty_decay_ms:-1,muzzy_decay_ms:-1 to keep freed memory instead of faulting it in "
        "again; recorded in the run's config",
    )
    args = p.parse_args(argv)
    args.rows = [parse_rows(r) for r in args.rows.split(",")]
    repeats = [int(r) for r in str(args.repeats).split(",")]
    if len(repeats) not in (1, len(args.rows)):
        p.error("--repeats takes one number or one per --rows entry")
    args.repeats = dict(
        zip(args.rows, repeats * len(args.rows) if len(repeats) == 1 else repeats, strict=False)
    )
    args.methods = _csv(args.methods, METHODS)
    args.shapes = _csv(args.shapes, SHAPES)
    args.skip = {v.strip() for v in args.skip.split(",") if v.strip()}
    args.data_dir = str(Path(args.data_dir).resolve())  # children run elsewhere
    args.hand_max = parse_rows(args.hand_max)
    args.thread_max = parse_rows(args.thread_max)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.from_json:
        runs = [json.loads(Path(f).read_text(encoding="utf-8")) for f in args.from_json.split(",")]
        names = [Path(f).stem for f in args.from_json.split(",")]
        records, seen = [], set()
        for name, run in zip(names, runs, strict=True):
            for rec in run["records"]:
                key = (rec["kind"], rec.get("rows"), rec.get("shape"), rec.get("method"))
                if rec["kind"] == "close" and key in seen:
                    continue  # a close measured by an earlier file wins
                seen.add(key)
                records.append(rec | {"run": name})
        # Where runs repeat a floor or hand-written measurement, the best one counts (as
        # best-of-N does within a run); other measurements: the first file wins.
        records.sort(key=lambda r: r.get("floor_s") or r.get("hand_s") or 0.0)
        data = {"records": records}
        summary = summarize(data)
        print_table(summary)
        if args.markdown:
            Path(args.markdown).write_text(markdown(summary), encoding="utf-8")
        return
    # Stop cleanly (saving what was measured) on SIGTERM, and on SIGINT even when started in
    # the background of a script, where SIGINT is ignored.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    path = Path(args.out) if args.out else RESULTS / f"{stamp}-{socket.gethostname()}.json"
    config = {k: v for k, v in vars(args).items() if k not in ("out", "from_json")} | {
        "closing_date": CLOSE_DATE.isoformat(),
        "started": stamp,
        "skip": sorted(args.skip),
    }
    _LIB["malloc_conf"] = args.malloc_conf
    meta = machine_info()
    if args.snapshot:
        root, commit = make_snapshot(args.snapshot, Path(args.data_dir).resolve())
        _LIB["root"] = root
        meta["library"] = {"source": "snapshot", "commit": commit, "root": str(root)}
    else:
        changed = _git("status", "--porcelain", "--", "invclose")
        meta["library"] = {
            "source": "working tree",
            "commit": meta["git_commit"],
            "uncommitted_invclose_files": changed.splitlines() if changed else [],
        }
    run = Run(path, meta, config)
    run.save()
    _say(f"saving to {path}")
    start = time.perf_counter()
    try:
        measure(args, run)
    finally:
        run.data["meta"]["loadavg_end"] = list(os.getloadavg())
        run.data["meta"]["total_s"] = time.perf_counter() - start
        summary = summarize(run.data)
        run.data["summary"] = summary
        run.save()
        path.with_suffix(".md").write_text(markdown(summary), encoding="utf-8")
    print_table(summary)
    _say(f"saved {path} and {path.with_suffix('.md').name} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
