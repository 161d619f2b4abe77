"""Peak memory of a ledger close against the stateless close on the same rows (issue 5).

    python -m benchmarks.bench_ledger_memory --rows 1e5,1e6,3e6 --shape uniform --method fifo

The requirement: "closing a ledger of 1e7 rows peaks at no more than 1.5x the memory of the
stateless close on the same rows". For each size, each step in a **fresh process** (so that
peaks never mix; the peak is ``VmHWM`` of that process (``benchmarks.worker.peak_rss``), imports
and data included, as in :mod:`benchmarks.worker`):

* **stateless**: ``pl.read_parquet`` of the generated month, ``invclose.close(df, date,
  config=cfg)``, ``result.write(dir)``;
* **post** (preparation, measured but not part of the ratio): create a ledger file with the
  same ``cfg`` and post the rows in batches of ``--batch-rows`` in posting order (how a user
  loads a large period; ``0`` posts everything at once);
* **ledger close**: a copy of the prepared file, ``Ledger(path)`` and ``close(date)`` only
  (the ledger stores the result tables in the file, the counterpart of ``result.write``).

``cfg`` is ``CloseConfig(method, dimensions, accounts=<one catch-all row>)``; both closes
must return the same ``close_id`` (checked). The ratio is peak RSS of the ledger close over
peak RSS of the stateless close. A thread in each child samples its RSS every few
milliseconds and attributes the maximum to named phases (read, close, write; the ledger's
loads, stateless close, storing, hashing, certificate) so that a ratio above the target says
where the memory goes. The parent polls every child's RSS and kills it above ``--max-rss-gb``
(the machine is shared).

The run is saved as ``benchmarks/results/ledger-memory-<timestamp>.json`` plus a Markdown
copy of the table (``.md``); ``--from-json`` prints a saved run again.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.datagen import (
    CLOSE_DATE,
    DEFAULT_SEED,
    SHAPES,
    dimensions,
    parse_rows,
    rows_label,
)
from benchmarks.worker import peak_rss

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
METHODS = ("fifo", "lifo", "lifo_date", "weighted_average", "weighted_average_date")
RATIO_TARGET = 1.5
MB = 10**6
GB = 10**9


# ---------------------------------------------------------------------------- child side


def _rss_now() -> int:
    """Current resident set size in bytes (second field of ``/proc/self/statm``)."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Phases:
    """Peak RSS per named phase, from a thread sampling ``/proc/self/statm``.

    Phases may nest; every open phase takes the maximum of the samples taken while it is
    open (plus its RSS at entry and exit). Repeated names accumulate (count, time, max).
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.active: list[dict[str, Any]] = []
        self.done: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss = _rss_now()
            for ph in list(self.active):
                if rss > ph["peak"]:
                    ph["peak"] = rss

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        rss = _rss_now()
        ph = {"name": name, "start": rss, "peak": rss, "t0": time.perf_counter()}
        self.active.append(ph)
        try:
            yield
        finally:
            end = _rss_now()
            self.active.remove(ph)
            ph["peak"] = max(ph["peak"], end)
            rec = self.done.get(name)
            if rec is None:
                self.order.append(name)
                rec = self.done[name] = {
                    "calls": 0,
                    "seconds": 0.0,
                    "peak_bytes": 0,
                    "start_bytes": ph["start"],
                }
            rec["calls"] += 1
            rec["seconds"] += time.perf_counter() - ph["t0"]
            rec["peak_bytes"] = max(rec["peak_bytes"], ph["peak"])
            rec["end_bytes"] = end

    def wrap(self, owner: Any, attr: str, name: str | None = None) -> None:
        """Replace ``owner.attr`` (a function or method) by one timed as a phase."""
        fn = getattr(owner, attr, None)
        if fn is None:
            return
        label = name or attr

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self.phase(label):
                return fn(*args, **kwargs)

        setattr(owner, attr, wrapped)

    def report(self) -> list[dict[str, Any]]:
        return [{"phase": n, **self.done[n]} for n in self.order]


def _config(task: dict[str, Any]) -> Any:
    import invclose
    from benchmarks.worker import accounts_catch_all

    return invclose.CloseConfig(
        method=task["method"], dimensions=task["dims"], accounts=accounts_catch_all()
    )


def _child_stateless(task: dict[str, Any], phases: Phases) -> dict[str, Any]:
    import polars as pl

    import invclose

    cfg = _config(task)
    date = dt.date.fromisoformat(task["date"])
    out_dir = Path(task["out"])
    shutil.rmtree(out_dir, ignore_errors=True)
    baseline = _rss_now()
    t0 = time.perf_counter()
    with phases.phase("read_parquet"):
        df = pl.read_parquet(task["path"])
    t1 = time.perf_counter()
    rss_before = _rss_now()
    with phases.phase("close"):
        result = invclose.close(df, date, config=cfg)
    t2 = time.perf_counter()
    with phases.phase("write"):
        result.write(out_dir)
    t3 = time.perf_counter()
    tables = {name: frame.height for name, frame in result.tables().items()}
    close_id = result.close_id
    del df, result
    shutil.rmtree(out_dir, ignore_errors=True)
    return {
        "baseline_bytes": baseline,
        "rss_before_bytes": rss_before,
        "read_s": t1 - t0,
        "close_s": t2 - t1,
        "write_s": t3 - t2,
        "total_s": t3 - t0,
        "close_id": close_id,
        "tables": tables,
    }


def _batches(n: int, size: int) -> list[tuple[int, int]]:
    if size <= 0 or size >= n:
        return [(0, n)]
    return [(start, min(size, n - start)) for start in range(0, n, size)]


def _child_prepare(task: dict[str, Any], phases: Phases) -> dict[str, Any]:
    import polars as pl

    from invclose.ledger import Ledger

    ledger_path = Path(task["ledger"])
    for suffix in ("", ".wal"):
        Path(str(ledger_path) + suffix).unlink(missing_ok=True)
    baseline = _rss_now()
    t0 = time.perf_counter()
    with phases.phase("read_parquet"):
        df = pl.read_parquet(task["path"])
    t1 = time.perf_counter()
    times = []
    with phases.phase("create"):
        books = Ledger(ledger_path, config=_config(task))
    for start, length in _batches(df.height, int(task["batch_rows"])):
        batch = df.slice(start, length)
        tb = time.perf_counter()
        with phases.phase("post"):
            books.post(batch)
        times.append(time.perf_counter() - tb)
        del batch
    with phases.phase("disconnect"):
        books.disconnect()
    t2 = time.perf_counter()
    return {
        "baseline_bytes": baseline,
        "read_s": t1 - t0,
        "post_s": t2 - t1,
        "post_batch_s": times,
        "batches": len(times),
        "ledger_bytes": ledger_path.stat().st_size,
    }


def _child_ledger_close(task: dict[str, Any], phases: Phases) -> dict[str, Any]:
    import invclose.ledger.audit as audit_mod
    import invclose.ledger.books as books_mod
    import invclose.ledger.core as core_mod
    import invclose.ledger.store as store_mod
    from invclose.ledger import Ledger

    if task.get("phases", True):
        # Where a ledger close spends memory: wrap the helpers it goes through (if present).
        phases.wrap(books_mod, "stateless_close", "stateless close")
        for attr in ("_current", "_load_result", "_store_result", "_append_run", "_certify"):
            phases.wrap(core_mod.LedgerCore, attr)
        phases.wrap(audit_mod, "written_output_hash")
        phases.wrap(audit_mod, "output_hashes")
        phases.wrap(audit_mod, "_check_chain")
        phases.wrap(audit_mod, "_check_state")
        phases.wrap(store_mod.Store, "insert", "Store.insert")
    date = dt.date.fromisoformat(task["date"])
    baseline = _rss_now()
    t0 = time.perf_counter()
    with phases.phase("open"):
        books = Ledger(task["ledger"])
    t1 = time.perf_counter()
    rss_before = _rss_now()
    with phases.phase("ledger close"):
        result = books.close(date)
    t2 = time.perf_counter()
    with phases.phase("disconnect"):
        books.disconnect()
    t3 = time.perf_counter()
    return {
        "baseline_bytes": baseline,
        "rss_before_bytes": rss_before,
        "open_s": t1 - t0,
        "close_s": t2 - t1,
        "disconnect_s": t3 - t2,
        "total_s": t3 - t0,
        "close_id": result.close_id,
        "tables": {name: frame.height for name, frame in result.tables().items()},
    }


CHILD_TASKS: dict[str, Callable[[dict[str, Any], Phases], dict[str, Any]]] = {
    "stateless": _child_stateless,
    "prepare": _child_prepare,
    "ledger_close": _child_ledger_close,
}


def child_main(text: str) -> None:
    """Run one task in this (fresh) process; print one JSON object on the last line."""
    import polars as pl

    task = json.loads(text)
    phases = Phases()
    cpu = time.process_time()
    try:
        out = CHILD_TASKS[task["task"]](task, phases)
    finally:
        phases.stop()
    out["cpu_s"] = time.process_time() - cpu
    out["peak_rss_bytes"] = peak_rss()
    out["phases"] = phases.report()
    out["invclose_file"] = sys.modules["invclose"].__file__ if "invclose" in sys.modules else None
    out["threads"] = {
        "POLARS_MAX_THREADS": os.environ.get("POLARS_MAX_THREADS"),
        "polars_thread_pool": pl.thread_pool_size(),
    }
    print(json.dumps(out, default=str))


# ---------------------------------------------------------------------------- parent side


def _say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def _mem_available() -> int:
    with open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _proc_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def run_child(task: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """One task in a fresh process, killed above ``--max-rss-gb`` or after ``--timeout``."""
    from benchmarks.bench_close import _LIB, child_env

    cmd = [sys.executable, "-m", "benchmarks.bench_ledger_memory", "--child", json.dumps(task)]
    limit = args.max_rss_gb * GB
    start = time.perf_counter()
    seen = 0
    with (
        open(os.devnull, "rb") as stdin,
        subprocess.Popen(
            cmd,
            cwd=_LIB["root"],
            env=child_env(args.threads),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc,
    ):
        out_chunks: list[str] = []
        err_chunks: list[str] = []
        readers = [
            threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True),  # type: ignore[union-attr]
            threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True),  # type: ignore[union-attr]
        ]
        for r in readers:
            r.start()
        error = None
        while proc.poll() is None:
            rss = _proc_rss(proc.pid)
            seen = max(seen, rss)
            if rss > limit:
                proc.kill()
                error = f"killed: RSS {rss / GB:.1f} GB above --max-rss-gb {args.max_rss_gb}"
            elif time.perf_counter() - start > args.timeout:
                proc.kill()
                error = f"timeout after {args.timeout:.0f} s"
            time.sleep(0.2)
        for r in readers:
            r.join()
    wall = time.perf_counter() - start
    stdout, stderr = "".join(out_chunks), "".join(err_chunks)
    lines = stdout.strip().splitlines()
    if error or proc.returncode != 0 or not lines:
        return {
            "error": error or f"exit status {proc.returncode}",
            "stderr": stderr[-6000:],
            "wall_s": wall,
            "polled_rss_bytes": seen,
        }
    out: dict[str, Any] = json.loads(lines[-1])
    out["wall_s"] = wall
    out["polled_rss_bytes"] = seen
    return out


def measure(args: argparse.Namespace, run: Any) -> None:
    from benchmarks.bench_close import ensure_dataset

    data_dir = Path(args.data_dir)
    date = CLOSE_DATE.isoformat()
    dims = dimensions(args.shape)
    for rows in args.rows:
        label = rows_label(rows)
        need = rows * args.bytes_per_row
        avail = _mem_available()
        if need > min(avail - 2 * GB, args.max_rss_gb * GB):
            run.add(
                {
                    "kind": "skipped",
                    "rows": rows,
                    "reason": f"estimated peak {need / GB:.1f} GB (--bytes-per-row "
                    f"{args.bytes_per_row}) against {avail / GB:.1f} GB available and "
                    f"--max-rss-gb {args.max_rss_gb}",
                }
            )
            _say(f"{label}: skipped, estimated {need / GB:.1f} GB")
            continue
        path = ensure_dataset(run, data_dir, rows, args.shape, args.seed, args.timeout)
        if path is None:
            continue
        base = {
            "rows": rows,
            "shape": args.shape,
            "method": args.method,
            "dims": dims,
            "date": date,
            "path": str(path),
        }
        stem = f"ledger-{args.shape}-{label}-{args.method}-b{args.batch_rows}"
        prepared = data_dir / f"{stem}.duckdb"
        work = data_dir / f"{stem}.work.duckdb"
        for rep in range(args.repeats):
            key = {"rows": rows, "repeat": rep}
            res = run_child({"task": "stateless", **base, "out": str(data_dir / "out-lm")}, args)
            run.add({"kind": "stateless", **key, **res})
            _say(
                f"{label} stateless: close {res.get('close_s', 0):.1f} s, "
                f"peak {res.get('peak_rss_bytes', 0) / MB:,.0f} MB {res.get('error', '')}"
            )
            if rep == 0:
                res = run_child(
                    {
                        "task": "prepare",
                        **base,
                        "ledger": str(prepared),
                        "batch_rows": args.batch_rows,
                    },
                    args,
                )
                run.add({"kind": "post", **key, "batch_rows": args.batch_rows, **res})
                _say(
                    f"{label} post: {res.get('batches')} batch(es) {res.get('post_s', 0):.1f} s, "
                    f"peak {res.get('peak_rss_bytes', 0) / MB:,.0f} MB {res.get('error', '')}"
                )
                if "error" in res:
                    break
            shutil.copyfile(prepared, work)
            res = run_child({"task": "ledger_close", **base, "ledger": str(work)}, args)
            run.add({"kind": "ledger_close", **key, **res})
            _say(
                f"{label} ledger close: close {res.get('close_s', 0):.1f} s, "
                f"peak {res.get('peak_rss_bytes', 0) / MB:,.0f} MB {res.get('error', '')}"
            )
            for suffix in ("", ".wal"):
                Path(str(work) + suffix).unlink(missing_ok=True)
        if not args.keep_ledger:
            for suffix in ("", ".wal"):
                Path(str(prepared) + suffix).unlink(missing_ok=True)


# ---------------------------------------------------------------------------- report


def summarize(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per size: the best (lowest-peak) repeat of each step, and the ratio."""
    by_rows: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for rec in data["records"]:
        if rec["kind"] in ("stateless", "post", "ledger_close", "skipped"):
            by_rows.setdefault(rec["rows"], {}).setdefault(rec["kind"], []).append(rec)
    out = []
    for rows in sorted(by_rows):
        kinds = by_rows[rows]

        def best(kind: str, kinds: dict[str, list[dict[str, Any]]] = kinds) -> dict[str, Any]:
            ok = [r for r in kinds.get(kind, []) if "error" not in r]
            return min(ok, key=lambda r: r["peak_rss_bytes"]) if ok else {}

        a, post, b = best("stateless"), best("post"), best("ledger_close")
        errors = [
            f"{r['kind']}: {r['error']}"
            for k in ("stateless", "post", "ledger_close")
            for r in kinds.get(k, [])
            if "error" in r
        ]
        errors += [f"skipped: {r['reason']}" for r in kinds.get("skipped", [])]
        ratio = b["peak_rss_bytes"] / a["peak_rss_bytes"] if a and b else None
        out.append(
            {
                "rows": rows,
                "batches": post.get("batches"),
                "post_s": post.get("post_s"),
                "post_peak": post.get("peak_rss_bytes"),
                "ledger_bytes": post.get("ledger_bytes"),
                "a_close_s": a.get("close_s"),
                "a_io_s": (a["read_s"] + a["write_s"]) if a else None,
                "a_peak": a.get("peak_rss_bytes"),
                "a_baseline": a.get("baseline_bytes"),
                "b_close_s": b.get("close_s"),
                "b_open_s": b.get("open_s"),
                "b_peak": b.get("peak_rss_bytes"),
                "b_baseline": b.get("baseline_bytes"),
                "ratio": ratio,
                "net_ratio": (
                    (b["peak_rss_bytes"] - b["baseline_bytes"])
                    / (a["peak_rss_bytes"] - a["baseline_bytes"])
                    if a and b
                    else None
                ),
                "same_close_id": (a["close_id"] == b["close_id"]) if a and b else None,
                "load": (b or a).get("loadavg", [None])[0],
                "errors": errors,
                "phases": b.get("phases", []),
                "stateless_phases": a.get("phases", []),
                "post_phases": post.get("phases", []),
            }
        )
    return out


HEAD = (
    "rows",
    "post batches",
    "post s",
    "post peak MB",
    "ledger file MB",
    "stateless close s",
    "stateless read+write s",
    "stateless peak MB",
    "ledger close s",
    "ledger close peak MB",
    "ratio (<= 1.5)",
    "ratio above imports",
    "same close_id",
    "load",
)


def _c(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return fmt.format(value)


def _row(s: dict[str, Any]) -> list[str]:
    ratio = "-"
    if s["ratio"] is not None:
        ratio = f"{s['ratio']:.2f} {'ok' if s['ratio'] <= RATIO_TARGET else 'X'}"
    mb = "{:,.0f}"
    return [
        rows_label(s["rows"]),
        _c(s["batches"], "{}"),
        _c(s["post_s"], "{:.1f}"),
        _c(s["post_peak"] and s["post_peak"] / MB, mb),
        _c(s["ledger_bytes"] and s["ledger_bytes"] / MB, mb),
        _c(s["a_close_s"], "{:.1f}"),
        _c(s["a_io_s"], "{:.1f}"),
        _c(s["a_peak"] and s["a_peak"] / MB, mb),
        _c(s["b_close_s"], "{:.1f}"),
        _c(s["b_peak"] and s["b_peak"] / MB, mb),
        ratio,
        _c(s["net_ratio"], "{:.2f}"),
        _c(s["same_close_id"], "{}"),
        _c(s["load"], "{:.1f}"),
    ]


def markdown(summary: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    lines += ["| " + " | ".join(_row(s)) + " |" for s in summary]
    for s in summary:
        if s["phases"]:
            lines += [
                "",
                f"Ledger close at {rows_label(s['rows'])}, peak RSS per phase (nested phases "
                "count inside their parent):",
                "",
                "| phase | calls | s | RSS at start MB | peak MB |",
                "|---|---|---|---|---|",
            ]
            lines += [
                f"| {p['phase']} | {p['calls']} | {p['seconds']:.1f} | "
                f"{p['start_bytes'] / MB:,.0f} | {p['peak_bytes'] / MB:,.0f} |"
                for p in s["phases"]
            ]
        lines += [f"- {rows_label(s['rows'])}: {e}" for e in s["errors"]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_ledger_memory",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--rows", default="1e5,1e6", help="sizes, comma separated")
    p.add_argument("--shape", default="uniform", choices=SHAPES)
    p.add_argument("--method", default="fifo", choices=METHODS)
    p.add_argument("--batch-rows", default="1e6", help="rows per post (posting order); 0: one post")
    p.add_argument("--repeats", type=int, default=1, help="stateless + ledger closes per size")
    p.add_argument("--threads", type=int, default=2, help="POLARS_MAX_THREADS of the children")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--data-dir", default=str(RESULTS / "tmp"), help="datasets and ledger files")
    p.add_argument("--keep-ledger", action="store_true", help="keep the prepared ledger file")
    p.add_argument("--max-rss-gb", type=float, default=16.0, help="kill a child above this RSS")
    p.add_argument(
        "--bytes-per-row",
        type=float,
        default=2000.0,
        help="skip a size whose estimated peak (rows x this) does not fit",
    )
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per child")
    p.add_argument("--out", default=None, help="JSON path (default results/ledger-memory-<stamp>)")
    p.add_argument(
        "--snapshot",
        default=None,
        metavar="REV",
        help="import invclose as committed at REV (see bench_close), with --overlay on top",
    )
    p.add_argument(
        "--overlay",
        default="",
        help="with --snapshot: working-tree paths copied over the snapshot (invclose/ledger)",
    )
    p.add_argument("--from-json", default=None, help="only print the table of a saved run")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.rows = [parse_rows(r) for r in args.rows.split(",")]
    args.batch_rows = 0 if args.batch_rows in ("0", "") else parse_rows(args.batch_rows)
    args.data_dir = str(Path(args.data_dir).resolve())
    return args


def _snapshot(args: argparse.Namespace) -> dict[str, Any]:
    """Point the children at a snapshot of ``--snapshot`` (plus ``--overlay``) or the tree."""
    from benchmarks.bench_close import _LIB, _git, make_snapshot

    if not args.snapshot:
        changed = _git("status", "--porcelain", "--", "invclose")
        return {
            "source": "working tree",
            "commit": _git("rev-parse", "HEAD"),
            "uncommitted_invclose_files": changed.splitlines() if changed else [],
        }
    root, commit = make_snapshot(args.snapshot, Path(args.data_dir))
    overlay = [o.strip().rstrip("/") for o in args.overlay.split(",") if o.strip()]
    if overlay:
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        dest = Path(args.data_dir) / f"snapshot-{commit[:12]}-overlay-{stamp}"
        shutil.copytree(root, dest)
        for rel in overlay:
            src = ROOT / rel
            if src.is_dir():
                shutil.copytree(
                    src,
                    dest / rel,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"),
                )
            else:
                shutil.copy2(src, dest / rel)
        root = dest
    _LIB["root"] = root
    # What was copied (others may edit or stash the tree while this runs): the SHA-256 of
    # every overlaid file, to compare with the tree afterwards.
    files = {
        str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
        for rel in overlay
        for f in sorted((root / rel).rglob("*.py") if (root / rel).is_dir() else [root / rel])
    }
    return {
        "source": "snapshot",
        "commit": commit,
        "root": str(root),
        "overlay": overlay,
        "overlay_sha256": files,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child is not None:
        child_main(args.child)
        return
    if args.from_json:
        data = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        print(markdown(summarize(data)))
        return
    from benchmarks.bench_close import Run, machine_info

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    path = Path(args.out) if args.out else RESULTS / f"ledger-memory-{stamp}.json"
    config = {k: v for k, v in vars(args).items() if k not in ("out", "from_json", "child")}
    config |= {"closing_date": CLOSE_DATE.isoformat(), "started": stamp}
    meta = machine_info()
    meta["library"] = _snapshot(args)
    run = Run(path, meta, config)
    run.save()
    _say(f"saving to {path} (library: {meta['library']['source']})")
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
    print(markdown(summary))
    _say(f"saved {path} and {path.with_suffix('.md').name} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
