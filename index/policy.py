"""Category policy of the semantic cache (Category-Aware Semantic Caching, 2025).

A request's category is the one it names, else the category whose prototype (the mean embedding
of its ``examples``) is nearest to the query, else the default. Each category sets its own
threshold, TTL, quota (with LRU or LFU eviction) and whether the retrieved context must match.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from blendcache.config import CategoryConfig, SemanticConfig
from blendcache.errors import InvalidRequestError


@dataclass(frozen=True)
class UsageRecord:
    """What eviction needs to know of one cached entry."""

    id: int
    created: float
    hits: int
    last_hit: float | None

    @property
    def last_used(self) -> float:
        return self.created if self.last_hit is None else self.last_hit


def eviction_order(entries: Iterable[UsageRecord], eviction: str) -> list[int]:
    """Ids in the order they should go: "lru" by last use, "lfu" by hits then last use.

    Ties break on the older id, so the order is total and tests can assert it exactly.
    """
    if eviction == "lru":
        key = lambda e: (e.last_used, e.id)  # noqa: E731
    elif eviction == "lfu":
        key = lambda e: (e.hits, e.last_used, e.id)  # noqa: E731
    else:
        raise ValueError(f"unknown eviction {eviction!r}")
    return [e.id for e in sorted(entries, key=key)]


class CategoryPolicy:
    """Resolves categories by name or by prototype, and answers per-category policy."""

    def __init__(self, config: SemanticConfig, *, embed=None):
        """``embed``: ``list[str] -> (n, dim)`` normalised embeddings, needed only when some
        category has ``examples`` (their prototypes are computed once, here)."""
        self._by_name = {cat.name: cat for cat in config.categories}
        self.default = config.default_category
        self.floor = config.auto_category_floor
        with_examples = [cat for cat in config.categories if cat.examples]
        self._proto_names = [cat.name for cat in with_examples]
        self._protos = np.empty((0, 0), dtype=np.float32)
        if with_examples:
            if embed is None:
                raise ValueError("categories with examples need an embed function")
            rows = []
            for cat in with_examples:
                mean = np.asarray(embed(list(cat.examples)), dtype=np.float32).mean(axis=0)
                rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
            self._protos = np.stack(rows)  # (C, dim)

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def get(self, name: str) -> CategoryConfig:
        """The policy of category ``name``; an unknown name is the client's error."""
        try:
            return self._by_name[name]
        except KeyError:
            raise InvalidRequestError(
                f"unknown category {name!r}; known: {', '.join(self._by_name)}",
                param="blendcache.category",
            ) from None

    def choose(self, requested: str | None, query_vec: np.ndarray | None = None) -> str:
        """``requested`` if given, else the nearest prototype's category, else the default."""
        if requested is not None:
            return self.get(requested).name
        if query_vec is not None and len(self._proto_names):
            sims = self._protos @ np.asarray(query_vec, dtype=np.float32)  # (C,)
            best = int(np.argmax(sims))
            if float(sims[best]) >= self.floor:
                return self._proto_names[best]
        return self.default

    @property
    def needs_embedding(self) -> bool:
        """Whether :meth:`choose` without a name looks at the query embedding."""
        return bool(self._proto_names)
