"""The chunk KV cache: look each chunk up tier by tier (memory -> disk), prefill and store misses.

A chunk is prefilled on its own after the prompt's shared prefix (so the attention sink and the
system prompt are right; ``shared_prefix=False`` prefills it alone from position 0 instead) and,
when ``background`` is given, after a fixed background context too (background.py); its
per-layer K (post-RoPE) and V are kept for the chunk tokens only. Hits found in a lower tier
are promoted to the tiers above. Writes go through to every tier. ``plan`` says which chunks a
lookup would have to prefill, without reading a KV; ``fill`` prefills and stores just those
(the serving path uses both to answer a mostly cold request by a full prefill and store its
chunks after the response).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from blendcache.chunk_cache.background import background_ids
from blendcache.chunk_cache.keys import chunk_key, prefix_key
from blendcache.chunk_cache.layout import PromptLayout
from blendcache.config import Settings
from blendcache.recompute.kv import KV
from blendcache.recompute.model import Engine
from blendcache.recompute.prefill import prefill_chunks, prefill_kv
from blendcache.storage.blobs.base import KVTier
from blendcache.storage.blobs.disk import DiskTier
from blendcache.storage.blobs.memory import MemoryTier
from blendcache.storage.chunk_store import ChunkMeta, ChunkStore
from blendcache.storage.db import SqlEngine, make_engine

log = logging.getLogger("blendcache.chunk_cache")


@dataclass(frozen=True)
class ChunkLookup:
    """The KVs a prompt needs, and how they were obtained."""

    prefix: KV  # exact KV of the shared prefix
    chunks: list[KV]  # one per chunk, at the positions they were prefilled at
    reused: int  # chunks found in a tier
    total: int
    load_ms: float
    prefill_ms: float
    reused_tokens: int = 0  # tokens of the chunks found in a tier


@dataclass(frozen=True)
class ChunkPlan:
    """What a lookup of a prompt would have to prefill."""

    missing: tuple[int, ...]  # indexes of the chunks no tier holds
    missing_tokens: int
    chunk_tokens: int

    @property
    def missing_share(self) -> float:
        """Share of the prompt's chunk tokens that would be prefilled (0 without chunks)."""
        return self.missing_tokens / self.chunk_tokens if self.chunk_tokens else 0.0


class ChunkCache:
    def __init__(self, engine: Engine, *, tiers: list[KVTier], store: ChunkStore | None = None,
                 shared_prefix: bool = True, background: tuple[int, ...] = (), clock=time.time):
        self.engine = engine
        self.tiers = tiers
        self.store = store
        self.shared_prefix = shared_prefix
        self.background = tuple(background)
        self.clock = clock
        self.prefills = 0

    def keys(self, layout: PromptLayout, namespace: str = "") -> tuple[str, list[str]]:
        """The prefix's key and each chunk's: a chunk is keyed by everything it was prefilled
        after (shared prefix and background), so changing either makes new chunks. Keys of
        another ``namespace`` (a tenant, when tenants are kept apart) never meet these."""
        fp = self._salted(namespace)
        after = self._shared_ids(layout) + self.background
        return prefix_key(fp, layout.prefix), [chunk_key(fp, c, prefix_ids=after)
                                               for c in layout.chunks]

    def background_key(self, layout: PromptLayout, namespace: str = "") -> str:
        """The background is stored like a chunk prefilled after the shared prefix."""
        return chunk_key(self._salted(namespace), self.background,
                         prefix_ids=self._shared_ids(layout))

    def _salted(self, namespace: str) -> str:
        """The model fingerprint the keys hash, salted with the namespace if there is one."""
        fp = self.engine.spec.fingerprint
        return f"{fp}\0namespace\0{namespace}" if namespace else fp

    def _shared_ids(self, layout: PromptLayout) -> tuple[int, ...]:
        """The prompt's prefix ids when chunks are prefilled after it, else none."""
        return tuple(layout.prefix) if self.shared_prefix else ()

    def plan(self, layout: PromptLayout, namespace: str = "") -> ChunkPlan:
        """Which of the prompt's chunks no tier holds, known without reading any KV."""
        _, ckeys = self.keys(layout, namespace)
        missing = tuple(i for i, key in enumerate(ckeys) if not self._holds(key))
        return ChunkPlan(missing, sum(len(layout.chunks[i]) for i in missing),
                         sum(len(c) for c in layout.chunks))

    def lookup(self, layout: PromptLayout, namespace: str = "") -> ChunkLookup:
        """KVs of the prefix and every chunk; misses are prefilled and stored."""
        pkey, ckeys = self.keys(layout, namespace)
        t0 = time.perf_counter()
        found = self._get(list(dict.fromkeys([pkey, *ckeys])))
        t1 = time.perf_counter()
        missing = {key: ids for key, ids in zip(ckeys, layout.chunks) if key not in found}
        new = self._prefill(layout, namespace, pkey, found.get(pkey), missing)
        prefix = found.get(pkey) or new[pkey]
        chunks = [found.get(key) or new[key] for key in ckeys]
        t2 = time.perf_counter()
        if new:
            self._put(new)
        reused = [ids for key, ids in zip(ckeys, layout.chunks) if key in found]
        return ChunkLookup(prefix, chunks, len(reused), len(ckeys), (t1 - t0) * 1e3,
                           (t2 - t1) * 1e3, sum(len(ids) for ids in reused))

    def fill(self, layout: PromptLayout, namespace: str = "") -> int:
        """Prefill and store the prompt's chunks that no tier holds, without reading the others
        (a cold request answered by a full prefill stores its chunks this way afterwards).
        Returns how many chunks were stored."""
        pkey, ckeys = self.keys(layout, namespace)
        missing = {key: ids for key, ids in zip(ckeys, layout.chunks) if not self._holds(key)}
        if not missing:
            return 0
        self._put(self._prefill(layout, namespace, pkey, self._get([pkey]).get(pkey), missing))
        return len(missing)

    def _prefill(self, layout: PromptLayout, namespace: str, pkey: str, prefix: KV | None,
                 missing: dict[str, tuple[int, ...]]) -> dict[str, KV]:
        """KVs of the ``missing`` chunks, prefilled together, each after the same context; of
        the prefix too when it is None, and of the background when it is needed and absent."""
        new: dict[str, KV] = {}
        if prefix is None:
            prefix = new[pkey] = prefill_kv(self.engine, layout.prefix)
        if missing:
            context = self._context(layout, namespace, prefix, new)
            new.update(zip(missing, prefill_chunks(self.engine, list(missing.values()),
                                                   after=context)))
        return new

    def _holds(self, key: str) -> bool:
        return any(key in tier for tier in self.tiers)

    def _context(self, layout: PromptLayout, namespace: str, prefix: KV,
                 new: dict[str, KV]) -> KV | None:
        """What a missing chunk is prefilled after: the shared prefix, then the background
        (looked up like a chunk, prefilled and stored on a miss); None when neither."""
        base = prefix if self.shared_prefix else None
        if not self.background:
            return base
        bkey = self.background_key(layout, namespace)
        bg = self._get([bkey]).get(bkey)
        if bg is None:
            bg = new[bkey] = prefill_chunks(self.engine, [self.background], after=base)[0]
        if base is None:
            return bg
        return KV(torch.cat([base.k, bg.k], dim=2), torch.cat([base.v, bg.v], dim=2), base.start)

    def _get(self, keys: list[str]) -> dict[str, KV]:
        found: dict[str, KV] = {}
        missing = keys
        for depth, tier in enumerate(self.tiers):
            if not missing:
                break
            got = tier.get_many(missing)
            if got and depth > 0:
                for upper in self.tiers[:depth]:
                    upper.put_many(got)
            found.update(got)
            missing = [k for k in missing if k not in got]
        if self.store is not None:
            self.store.record_hits(list(found), now=self.clock())
        return found

    def _put(self, items: dict[str, KV]) -> None:
        self.prefills += len(items)
        for tier in self.tiers:
            evicted = tier.put_many(items)
            if evicted and tier is self.tiers[-1] and self.store is not None:
                self.store.delete_many(evicted)
        if self.store is not None:
            now = self.clock()
            self.store.upsert_many([
                ChunkMeta(key, self.engine.spec.fingerprint, kv.num_tokens, kv.nbytes,
                          self.tiers[-1].name, now, now, 0)
                for key, kv in items.items()])

    def stats(self) -> dict:
        return {"prefills": self.prefills,
                "tiers": {tier.name: tier.stats.as_dict() for tier in self.tiers}}


def build_chunk_cache(settings: Settings, engine: Engine, *,
                      database: SqlEngine | None = None) -> ChunkCache:
    """The served chunk cache: a memory tier over a disk tier, metadata rows in the settings'
    database (``database``: its engine, else one is made), chunks prefilled after the
    configured background."""
    storage = settings.storage
    tiers = [
        MemoryTier(storage.memory_max_bytes),
        DiskTier(Path(storage.data_dir) / "kv", storage.disk_max_bytes,
                 codec=settings.blend.kv_codec),
    ]
    store = ChunkStore(database or make_engine(storage.resolved_database_url()))
    return ChunkCache(engine, tiers=tiers, store=store, shared_prefix=settings.blend.shared_prefix,
                      background=background_ids(engine, settings.blend.background))
