"""Benchmarks: each module has ``run() -> dict`` and runs as ``python -m bench.<name>``."""
