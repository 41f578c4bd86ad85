"""Memory tier: chunk KVs kept as tensors, bounded in bytes, least recently used evicted first."""

from __future__ import annotations

import threading
from collections import OrderedDict

from blendcache.recompute.kv import KV
from blendcache.storage.blobs.base import TierStats


class MemoryTier:
    name = "memory"

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.stats = TierStats()
        self._items: OrderedDict[str, KV] = OrderedDict()  # oldest first
        self._lock = threading.Lock()

    def get_many(self, keys: list[str]) -> dict[str, KV]:
        out = {}
        with self._lock:
            for key in keys:
                kv = self._items.get(key)
                if kv is None:
                    self.stats.misses += 1
                    continue
                self._items.move_to_end(key)
                self.stats.hits += 1
                out[key] = kv
        return out

    def put_many(self, items: dict[str, KV]) -> list[str]:
        evicted: list[str] = []
        with self._lock:
            for key, kv in items.items():
                if kv.nbytes > self.max_bytes:
                    continue  # NOTE: larger than the whole tier: left to the next tier
                self._drop(key)
                self._items[key] = kv
                self.stats.bytes += kv.nbytes
                self.stats.puts += 1
                while self.stats.bytes > self.max_bytes:
                    oldest = next(iter(self._items))
                    self._drop(oldest)
                    self.stats.evictions += 1
                    evicted.append(oldest)
            self.stats.entries = len(self._items)
        return evicted

    def _drop(self, key: str) -> None:
        kv = self._items.pop(key, None)
        if kv is not None:
            self.stats.bytes -= kv.nbytes

    def delete_many(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._drop(key)
            self.stats.entries = len(self._items)

    def keys(self) -> list[str]:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items
