"""Benchmark harness of invclose (issue 7): data generator, close vs sort floor, comparisons.

Not part of the test suite. Run the modules from the repository root, e.g.
``python -m benchmarks.datagen --rows 1e6 --shape zipf --out data/`` or
``python -m benchmarks.bench_close --rows 1e5,1e6``. See ``benchmarks/README.md``.
"""
