"""Named entities and acronyms: a name on one side that the other lacks."""

from __future__ import annotations

from blendcache.index.rules.analysis import Analysis
from blendcache.index.rules.lexicon import _COUNTRY_OF, _CURRENCIES, stem


def _acronym_in(acronym: str, initials: tuple[str, ...]) -> bool:
    if not 2 <= len(acronym) <= 6:
        return False
    joined = "".join(initials)
    return acronym in joined and any(
        "".join(initials[i:i + n]) == acronym
        for n in range(1, len(acronym) + 1)
        for i in range(len(initials) - n + 1)
    )


def _entity_present(entity: str, other: Analysis) -> bool:
    if entity.startswith('"'):
        return all(w in other.haystack or stem(w) in other.haystack for w in entity[1:].split())
    if entity in other.haystack or stem(entity) in other.haystack:
        return True
    if entity in _CURRENCIES and any(
        alias in other.haystack or stem(alias) in other.haystack for alias in _CURRENCIES[entity]
    ):
        return True
    if any(alias in other.entities for alias in _COUNTRY_OF.get(entity, ())):
        return True
    return entity.isalnum() and _acronym_in(entity, other.initials)


def check_entities(a: Analysis, b: Analysis) -> str | None:
    for x, y in ((a, b), (b, a)):
        missing = [e.strip('"') for e in x.entities if not _entity_present(e, y)]
        if missing:
            return f"entities only on one side: {missing}"
    order_a = list(dict.fromkeys(e for e in a.entities if e in b.entities))
    order_b = list(dict.fromkeys(e for e in b.entities if e in a.entities))
    if len(order_a) >= 2 and order_a != order_b:
        return f"entity order: {order_a} vs {order_b}"
    (from_a, to_a), (from_b, to_b) = a.roles, b.roles
    if from_a & to_b and to_a & from_b and not from_a & from_b:
        return f"roles swapped: from {sorted(from_a)} to {sorted(to_a)}"
    return None
