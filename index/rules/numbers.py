"""Numbers and dates: different numeric values or dates on the two sides."""

from __future__ import annotations

from collections import Counter

from blendcache.index.rules.analysis import Analysis


def check_numbers(a: Analysis, b: Analysis) -> str | None:
    if Counter(a.numbers) != Counter(b.numbers):
        return f"numbers: {list(a.numbers)} vs {list(b.numbers)}"
    if a.dates != b.dates:
        return f"dates/times: {sorted(a.dates)} vs {sorted(b.dates)}"
    return None
