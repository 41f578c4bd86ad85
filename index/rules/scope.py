"""Scope: quantifiers and qualifiers by class, first/last, relational words, comparatives and
superlatives on one side only."""

from __future__ import annotations

from blendcache.index.rules.analysis import Analysis
from blendcache.index.rules.lexicon import _POLE_OF, _SCOPE_CLASSES, _SYNONYM_OF, stem


def _degree_matched(base: str, other: Analysis) -> bool:
    """``base`` in ``other`` in any form, or a synonym or a word of the same end of its scale:
    "quickest" vs "quickly" or "fast", "a higher tier" vs "upgrade"."""
    group = _SYNONYM_OF.get(stem(base))
    pole = _POLE_OF.get(stem(base))
    return any(
        w.startswith(base) or group is not None and _SYNONYM_OF.get(w) == group
        or pole is not None and _POLE_OF.get(w) == pole
        for w in other.haystack
    )


def _scope_classes(word: str) -> tuple[str, ...]:
    return _SCOPE_CLASSES.get(word, (word,))


def check_scope(a: Analysis, b: Analysis) -> str | None:
    classes_a = {c for w in a.scope for c in _scope_classes(w)}
    classes_b = {c for w in b.scope for c in _scope_classes(w)}
    unmatched = sorted(
        w for x, other in ((a, classes_b), (b, classes_a)) for w in x.scope
        if not other.intersection(_scope_classes(w))
    )
    if unmatched:
        return f"quantifiers/qualifiers: {unmatched}"
    for x, y in ((a, b), (b, a)):
        if x.degrees and not y.degrees:
            bases = [w for w in sorted(x.degrees) if not _degree_matched(w, y)]
            if bases:
                return f"comparative/superlative of {bases} on one side"
    if a.relational and b.relational and a.relational != b.relational:
        return f"relations: {sorted(a.relational)} vs {sorted(b.relational)}"
    return None
