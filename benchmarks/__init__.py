"""The performance suite: ``nox -s bench`` or ``python -m benchmarks``; see docs/performance.md."""
