"""The KV tier interface: batched methods first (as in LMCache's storage backends)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from blendcache.recompute.kv import KV


@dataclass
class TierStats:
    hits: int = 0
    misses: int = 0
    puts: int = 0
    evictions: int = 0
    corrupt: int = 0
    bytes: int = 0
    entries: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class KVTier(Protocol):
    """One storage tier of chunk KV caches, keyed by chunk key (hex string).

    ``get_many`` returns a dict of the keys it holds; a corrupt entry is dropped, counted and
    reported as missing (recomputed by the caller, never served).
    """

    name: str
    stats: TierStats

    def get_many(self, keys: list[str]) -> dict[str, KV]: ...

    def put_many(self, items: dict[str, KV]) -> list[str]:
        """Store items; returns the keys evicted to make room."""
        ...

    def delete_many(self, keys: list[str]) -> None: ...

    def __contains__(self, key: str) -> bool: ...
