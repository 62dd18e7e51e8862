"""Benchmarks: each section is a module here with ``run() -> dict``; ``python -m bench.run``."""
