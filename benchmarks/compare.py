"""Compare two benchmark runs: ``python -m benchmarks.compare A.json B.json``.

One line per (rows, shape, method) present in either run: close time in A and B, B / A (below
1 means B is faster), close / floor in each, peak RSS in each; then the sort floors and the
hand-written FIFO, and what differs between the machines and versions. ``--threshold 0.1``
flags changes of more than 10 % (the machine is noisy: look twice before believing less).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.bench_close import summarize
from benchmarks.datagen import rows_label


def _load(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data


def _index(records: list[dict[str, Any]], kind: str, keys: tuple[str, ...]) -> dict[tuple, Any]:
    return {
        tuple(r.get(k) for k in keys): r for r in records if r["kind"] == kind and "error" not in r
    }


def _f(value: float | None, fmt: str = "{:.3f}") -> str:
    return "-" if value is None else fmt.format(value)


def _ratio(a: float | None, b: float | None) -> float | None:
    return b / a if a and b is not None else None


def _flag(ratio: float | None, threshold: float) -> str:
    if ratio is None:
        return ""
    if ratio > 1 + threshold:
        return "slower"
    if ratio < 1 - threshold:
        return "faster"
    return ""


def compare(a: dict[str, Any], b: dict[str, Any], threshold: float) -> str:
    out: list[str] = []
    ma, mb = a["meta"], b["meta"]
    for name, run, meta in (("A", a, ma), ("B", b, mb)):
        lib = meta.get("library", {})
        out.append(
            f"{name}: {meta.get('host')} {run['config'].get('started')}  invclose "
            f"{lib.get('source', 'working tree')} {lib.get('commit') or meta.get('git_commit')}"
        )
    out.extend(
        f"  differs: {key}: {ma.get(key)} -> {mb.get(key)}"
        for key in ("cpu_model", "cpu_count", "memory_total_bytes", "python")
        if ma.get(key) != mb.get(key)
    )
    va, vb = ma.get("versions", {}), mb.get("versions", {})
    out.extend(
        f"  differs: {lib} {va.get(lib)} -> {vb.get(lib)}"
        for lib in sorted(set(va) | set(vb))
        if va.get(lib) != vb.get(lib)
    )
    out.append(f"  load average at start: A {ma.get('loadavg_start')}  B {mb.get('loadavg_start')}")

    sa = {(r["rows"], r["shape"], r["method"]): r for r in summarize(a)["rows"]}
    sb = {(r["rows"], r["shape"], r["method"]): r for r in summarize(b)["rows"]}
    head = (
        f"\n{'rows':>5} {'shape':<10} {'method':<22} {'A close s':>10} {'B close s':>10} "
        f"{'B/A':>6} {'A /floor':>8} {'B /floor':>8} {'A RSS MB':>9} {'B RSS MB':>9}"
    )
    out.append(head)
    for key in sorted(set(sa) | set(sb), key=lambda k: (k[0], k[1], k[2])):
        ra, rb = sa.get(key, {}), sb.get(key, {})
        ratio = _ratio(ra.get("close_s"), rb.get("close_s"))
        rss_a = ra.get("peak_rss_bytes")
        rss_b = rb.get("peak_rss_bytes")
        out.append(
            f"{rows_label(key[0]):>5} {key[1]:<10} {key[2]:<22} {_f(ra.get('close_s')):>10} "
            f"{_f(rb.get('close_s')):>10} {_f(ratio, '{:.2f}'):>6} "
            f"{_f(ra.get('close_over_floor'), '{:.2f}'):>8} "
            f"{_f(rb.get('close_over_floor'), '{:.2f}'):>8} "
            f"{_f(rss_a / 1e6 if rss_a else None, '{:.0f}'):>9} "
            f"{_f(rss_b / 1e6 if rss_b else None, '{:.0f}'):>9}  {_flag(ratio, threshold)}"
        )

    for kind, field in (("floor", "floor_s"), ("hand", "hand_s")):
        ia = _index(a["records"], kind, ("rows", "shape"))
        ib = _index(b["records"], kind, ("rows", "shape"))
        if not ia and not ib:
            continue
        out.append(
            f"\n{'rows':>5} {'shape':<10} {kind + ' A s':>12} {kind + ' B s':>12} {'B/A':>6}"
        )
        for key in sorted(set(ia) | set(ib)):
            va_, vb_ = ia.get(key, {}).get(field), ib.get(key, {}).get(field)
            ratio = _ratio(va_, vb_)
            out.append(
                f"{rows_label(key[0]):>5} {key[1]:<10} {_f(va_):>12} {_f(vb_):>12} "
                f"{_f(ratio, '{:.2f}'):>6}  {_flag(ratio, threshold)}"
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__)
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--threshold", type=float, default=0.10)
    args = p.parse_args(argv)
    print(compare(_load(args.a), _load(args.b), args.threshold))


if __name__ == "__main__":
    main()
