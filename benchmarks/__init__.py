"""Benchmarks: runnable scripts (``python benchmarks/bench_<name>.py``) and ``blendcache bench``."""
