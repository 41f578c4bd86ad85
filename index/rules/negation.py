"""Negation: a negator, a negative prefix, an antonym or converse role, or the other end of a
scale on one side only ("open" vs "closed", "landlord" vs "tenant")."""

from __future__ import annotations

from blendcache.index.rules.analysis import Analysis
from blendcache.index.rules.lexicon import (
    _ANTONYM_STEMS,
    _NEGATIVE_PREFIXES,
    _OPPOSING_PREFIXES,
    _POLE_OF,
)


def _prefix_opposites(x: str, y: str) -> bool:
    for p in _NEGATIVE_PREFIXES:
        for longer, shorter in ((x, y), (y, x)):
            if len(shorter) >= 3 and longer == p + shorter:
                return True
    for p, q in _OPPOSING_PREFIXES:
        for u, v in ((x, y), (y, x)):
            if u.startswith(p) and v.startswith(q) and len(u) - len(p) >= 3:
                if u[len(p):] == v[len(q):]:
                    return True
    return False


def check_negation(a: Analysis, b: Analysis) -> str | None:
    if a.negation % 2 != b.negation % 2:
        return f"negators: {a.negation} vs {b.negation}"
    words_a = {t.stem for t in a.tokens}
    words_b = {t.stem for t in b.tokens}
    for x in words_a - words_b:
        for y in words_b - words_a:
            if frozenset((x, y)) in _ANTONYM_STEMS or _prefix_opposites(x, y):
                return f"opposites: {x!r} vs {y!r}"
    poles_a = {_POLE_OF[w] for w in words_a - words_b if w in _POLE_OF}
    poles_b = {_POLE_OF[w] for w in words_b - words_a if w in _POLE_OF}
    for dim, sign in poles_a - poles_b:
        if (dim, -sign) in poles_b - poles_a:
            return f"opposite ends of {dim}"
    return None
