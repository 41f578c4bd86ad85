"""The category-aware semantic answer cache: embed -> search -> check -> respond.

One in-memory vector index per namespace (tenant, category, model); answers and metadata live in
the database (``storage.semantic_store``) and the indexes are rebuilt from it at start-up. A hit
must pass the category's threshold, its TTL, the context match of context-sensitive categories
and the verifier (Category-Aware Semantic Caching for Heterogeneous LLM Workloads, 2025). In a
category with ``max_error_rate`` the verifier's verdict gives way to the error-rate guarantee
(index/guarantee.py), which learns from feedback when a candidate may be served.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from blendcache.config import DECISIONS, CategoryConfig, SemanticConfig
from blendcache.errors import CorruptBlobError
from blendcache.index.answers import answers_agree
from blendcache.index.decision import DEFAULT_GUARANTEE_WEIGHTS, LearnedDecision, load_model
from blendcache.index.guarantee import ErrorGuarantee, RecentHits, ServedHit
from blendcache.index.hnsw import VectorIndex, make_index
from blendcache.index.policy import CategoryPolicy, UsageRecord, eviction_order
from blendcache.index.verifier import REASONS, Verifier
from blendcache.storage.feedback import FeedbackStore
from blendcache.storage.semantic_store import NewSemanticEntry, SemanticEntry, SemanticStore

Namespace = tuple[str, str, str]  # (tenant, category, model)


def index_params(config: SemanticConfig) -> dict:
    """``make_index`` keyword arguments from the config (HNSW graph, rebuild ratio)."""
    return {"m": config.hnsw_m, "ef_construction": config.hnsw_ef_construction,
            "ef_search": config.hnsw_ef_search, "rebuild_ratio": config.rebuild_ratio}


@dataclass(frozen=True)
class CachedAnswer:
    """A model's answer as the semantic cache keeps it (a JSON object in the database)."""

    text: str
    finish_reason: str  # "stop" (complete) | "length" (cut at the request's token limit)
    token_ids: tuple[int, ...] = ()
    # An upstream's answer (upstream mode, no local tokenizer) has no token ids: its length in
    # tokens as the upstream reported it (usage.completion_tokens); None when it did not.
    completion_tokens: int | None = None

    def to_json(self) -> str:
        data = {"text": self.text, "finish_reason": self.finish_reason,
                "token_ids": list(self.token_ids)}
        if self.completion_tokens is not None:
            data["completion_tokens"] = self.completion_tokens
        return json.dumps(data)

    @classmethod
    def from_json(cls, payload: str) -> CachedAnswer:
        data = json.loads(payload)
        completion_tokens = data.get("completion_tokens")
        return cls(str(data["text"]), str(data["finish_reason"]),
                   tuple(int(t) for t in data.get("token_ids", ())),
                   None if completion_tokens is None else int(completion_tokens))


@dataclass(frozen=True)
class SemanticHit:
    """A cached answer served for a query. ``explore``: not to be served but answered by the
    model and compared with this one (``SemanticCache.record_comparison``); only for callers
    that asked for it (``lookup(exploring=True)``). ``score``: what the error-rate guarantee
    judges: in a bounded category its score (the learned decision's probability, or the
    cosine); elsewhere the learned decision's probability where it decided, else None."""

    entry_id: int
    response: CachedAnswer
    similarity: float
    category: str
    cached_query: str
    explore: bool = False
    audit: bool = False  # an exploration of a candidate the guarantee would have served
    score: float | None = None


@dataclass(frozen=True)
class ExploredHit:
    """An exploration handed to a caller who answers with a model of its own (the lookup
    route): compared with that answer when it comes back (``SemanticCache.take_explored``)."""

    tenant: str
    hit: SemanticHit


@dataclass(frozen=True)
class SemanticStats:
    """Counters since start-up, and the live entries of each namespace."""

    lookups: int
    hits: int
    misses: int
    rejections: dict[str, int]  # verifier rejections per reason
    entries: dict[Namespace, int]
    embed_ms_p50: float | None
    search_ms_p50: float | None
    expired: int = 0  # entries removed by expire() past their TTL
    explorations: int = 0  # candidates answered by the model and compared, not served
    # per category: the error-rate guarantee's decisions and observations (ErrorGuarantee.stats)
    guarantee: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lookups": self.lookups, "hits": self.hits, "misses": self.misses,
            "expired": self.expired, "explorations": self.explorations,
            "guarantee": {c: dict(v) for c, v in self.guarantee.items()},
            "rejections": dict(self.rejections),
            "entries": {"/".join(ns): n for ns, n in self.entries.items()},
            "embed_ms_p50": self.embed_ms_p50, "search_ms_p50": self.search_ms_p50,
        }


@dataclass
class _Meta:
    """What lookups and eviction need of an entry without a database round trip."""

    query: str
    context_fingerprint: str | None
    created: float
    expires: float | None
    hits: int = 0
    last_hit: float | None = None


@dataclass
class _Space:
    index: VectorIndex
    meta: dict[int, _Meta] = field(default_factory=dict)


class SemanticCache:
    """Semantic answer cache over a :class:`SemanticStore`; safe to call from several threads."""

    def __init__(
        self,
        config: SemanticConfig,
        *,
        store: SemanticStore,
        embedder,
        clock: Callable[[], float] = time.time,
        verifier: Verifier | LearnedDecision | None = None,
        timing_window: int = 1024,
        tenant_quotas: Mapping[str, int] | None = None,
        guarantee: ErrorGuarantee | None = None,
    ):
        self.config = config
        # tenant -> max_entries of each of its namespaces, instead of the category's
        self.tenant_quotas = dict(tenant_quotas or {})
        self._store = store
        self.embedder = embedder
        self.clock = clock
        self.policy = CategoryPolicy(config, embed=embedder.embed)
        if verifier is None and config.verify:
            verifier = make_decision(config, vocabulary=getattr(embedder, "vocabulary", None))
        self.verifier = verifier if config.verify else None
        # the hit decision of each category that names its own ([[semantic.categories]]
        # decision); every other category's is ``self.verifier``. There are two decisions, so
        # those categories all name the other one: it is built (its model loaded) once.
        own = [c.name for c in config.categories if c.decision not in (None, config.decision)]
        self._deciders: dict[str, Verifier | LearnedDecision | None] = {}
        if own:
            other = next(d for d in DECISIONS if d != config.decision)
            self._deciders = dict.fromkeys(own, self._decider_for(other))
        # A bounded category's score: the cache-protocol model over the same rule signals.
        self.guarantee_decision = (
            LearnedDecision(load_model(config.guarantee_weights, default=DEFAULT_GUARANTEE_WEIGHTS),
                            verifier=self.verifier.verifier)
            if isinstance(self.verifier, LearnedDecision)
            and any(c.max_error_rate is not None for c in config.categories) else None)
        # The error-rate guarantee's evidence lives beside the entries (same database).
        self.guarantee = guarantee or ErrorGuarantee(
            config.categories, store=FeedbackStore(store.engine), clock=clock)
        # response id -> served hit, for explicit feedback
        self.served: RecentHits[ServedHit] = RecentHits()
        # exploration id -> ExploredHit, for the answer of a caller with a model of its own
        self.explored: RecentHits[ExploredHit] = RecentHits()
        self.embed_ms: deque[float] = deque(maxlen=timing_window)
        self.search_ms: deque[float] = deque(maxlen=timing_window)
        self._spaces: dict[Namespace, _Space] = {}
        self._counts: Counter[str] = Counter()
        self._lock = threading.RLock()
        self._rebuild_from_store()

    # ------------------------------------------------------------------ public API

    def choose_category(self, query: str, requested: str | None = None) -> str:
        """The category for ``query``: ``requested`` (validated), else by prototype or default."""
        if requested is not None or not self.policy.needs_embedding:
            return self.policy.choose(requested)
        return self.policy.choose(None, self._embed(query))

    def lookup(
        self,
        query: str,
        *,
        tenant: str,
        category: str,
        model: str,
        context_fingerprint: str | None = None,
        exploring: bool = False,
    ) -> SemanticHit | None:
        """The cached answer for ``query`` in its namespace, or None. In a category with
        ``max_error_rate`` the guarantee decides; a candidate it explores comes back with
        ``explore`` set when the caller is ``exploring`` (it answers from the model and reports
        ``record_comparison``), else as None."""
        policy = self.policy.get(category)
        vec = self._embed(query)
        with self._lock:
            self._counts["lookups"] += 1
            space = self._spaces.get((tenant, category, model))
            found = self._best(space, query, vec, policy, context_fingerprint) if space else None
            decision = None
            if found is not None and self.guarantee.bounded(category):
                decision = self.guarantee.decide(tenant=tenant, category=category,
                                                 entry_id=found[0], score=found[2])
                if decision.action == "miss" or (decision.action == "explore" and not exploring):
                    found = None
            if found is None:
                self._counts["misses"] += 1
                return None
            entry_id, similarity, score = found
            explore = decision is not None and decision.action == "explore"
            entry = self._store.get_many([entry_id]).get(entry_id)
            if entry is None:  # deleted behind our back (another replica)
                self._drop(space, [entry_id])
                self._counts["misses"] += 1
                return None
            if explore:
                self._counts["explorations"] += 1
            else:
                self._touch(space, entry_id)
                self._counts["hits"] += 1
            return SemanticHit(
                entry_id=entry_id, response=self._answer(entry),
                similarity=similarity, category=category, cached_query=entry.query,
                explore=explore, audit=explore and decision.audit, score=score,
            )

    def record_comparison(self, hit: SemanticHit, fresh: str, *, tenant: str) -> bool:
        """After an exploration: whether the model's ``fresh`` answer agrees with the cached
        one (index/answers.py), recorded as the guarantee's evidence."""
        agree = answers_agree(hit.response.text, fresh, embed=self.embedder.embed)
        self.record_observation(hit, agree, tenant=tenant,
                                source="audit" if hit.audit else "explore")
        return agree

    def record_observation(self, hit: SemanticHit | ServedHit, correct: bool, *, tenant: str,
                           source: str) -> None:
        """Serving ``hit`` was right (``correct``) or not, as ``source`` tells."""
        score = hit.score if hit.score is not None else hit.similarity
        self.guarantee.record(tenant=tenant, category=hit.category, entry_id=hit.entry_id,
                              score=score, correct=correct, source=source)

    def remember_served(self, response_id: str, hit: SemanticHit, *, tenant: str) -> None:
        """Keep a served hit for explicit feedback on ``response_id``, with the score the
        guarantee judges (also outside bounded categories, so that the evidence is ready if a
        bound is set later)."""
        score = hit.score if hit.score is not None else hit.similarity
        self.served.remember(response_id, ServedHit(tenant, hit.category, hit.entry_id, score))

    def remember_explored(self, exploration_id: str, hit: SemanticHit, *, tenant: str) -> None:
        """Keep an exploration whose fresh answer a caller will bring (``take_explored``)."""
        self.explored.remember(exploration_id, ExploredHit(tenant, hit))

    def take_explored(self, exploration_id: str, *, tenant: str) -> SemanticHit | None:
        """The exploration ``exploration_id`` of ``tenant``, forgotten then (one answer each);
        None when unknown, another tenant's, already answered or too old (the last 10,000 are
        kept)."""
        explored = self.explored.take(exploration_id, tenant=tenant)
        return explored.hit if explored is not None else None

    def feedback(self, response_id: str, correct: bool, *, tenant: str | None) -> ServedHit | None:
        """Explicit feedback on the served hit of ``response_id``: recorded against its entry
        and category. None when no such hit is remembered for ``tenant`` (None: any)."""
        served = self.served.take(response_id, tenant=tenant)
        if served is not None:
            self.guarantee.record(tenant=served.tenant, category=served.category,
                                  entry_id=served.entry_id, score=served.score,
                                  correct=correct, source="feedback")
        return served

    def store(
        self,
        query: str,
        response: CachedAnswer,
        *,
        tenant: str,
        category: str,
        model: str,
        context_fingerprint: str | None = None,
    ) -> int:
        """Cache ``response`` for ``query``; evicts past the quota. Its id."""
        policy = self.policy.get(category)
        vec = self._embed(query)
        payload = response.to_json()
        with self._lock:
            now = self.clock()
            expires = None if math.isinf(policy.ttl_s) else now + policy.ttl_s
            space = self._space((tenant, category, model))
            self._expire_space(space, now)
            over = len(space.meta) + 1 - self.tenant_quotas.get(tenant, policy.max_entries)
            if over > 0:
                self._evict(space, over, policy)
            (entry_id,) = self._store.insert([NewSemanticEntry(
                tenant=tenant, category=category, model=model, query=query, embedding=vec,
                response=payload, created=now, expires=expires,
                context_fingerprint=context_fingerprint,
            )])
            space.index.add(np.asarray([entry_id]), vec[None, :])
            space.meta[entry_id] = _Meta(query, context_fingerprint, now, expires)
            return entry_id

    def expire(self) -> int:
        """Remove every expired entry (index and database); how many."""
        with self._lock:
            now = self.clock()
            expired = self._store.expired(now)
            by_space: dict[Namespace, list[int]] = {}
            for entry in expired:
                by_space.setdefault(entry.namespace, []).append(entry.id)
            for ns, ids in by_space.items():
                space = self._spaces.get(ns)
                if space is not None:
                    for id_ in ids:
                        space.meta.pop(id_, None)
                        space.index.mark_deleted(id_)
            self._store.delete_many([e.id for e in expired])
            self._counts["expired"] += len(expired)
            return len(expired)

    def delete(self, entry_ids: list[int]) -> int:
        """Forget ``entry_ids`` everywhere; how many rows went."""
        with self._lock:
            wanted = set(entry_ids)
            for space in self._spaces.values():
                for id_ in wanted.intersection(space.meta):
                    space.meta.pop(id_)
                    space.index.mark_deleted(id_)
            return self._store.delete_many(list(wanted))

    def _decider_for(self, decision: str) -> Verifier | LearnedDecision | None:
        """The hit decision ``decision`` names, over the same rules as ``self.verifier``."""
        if self.verifier is None:
            return None
        rules = (self.verifier.verifier if isinstance(self.verifier, LearnedDecision)
                 else self.verifier)
        if decision == "rules":
            return rules
        return LearnedDecision(load_model(self.config.decision_weights), verifier=rules)

    def stats(self) -> SemanticStats:
        with self._lock:
            rejections: Counter[str] = Counter(dict.fromkeys(REASONS, 0))
            for decider in {id(d): d for d in (self.verifier, *self._deciders.values())
                            if d is not None}.values():
                rejections.update(decider.rejection_counts())
            return SemanticStats(
                lookups=self._counts["lookups"], hits=self._counts["hits"],
                misses=self._counts["misses"], rejections=dict(rejections),
                entries={ns: len(space.meta) for ns, space in self._spaces.items() if space.meta},
                embed_ms_p50=_p50(self.embed_ms), search_ms_p50=_p50(self.search_ms),
                expired=self._counts["expired"], explorations=self._counts["explorations"],
                guarantee=self.guarantee.stats(),
            )

    # ------------------------------------------------------------------ internals

    def _embed(self, query: str) -> np.ndarray:
        start = time.perf_counter()
        vec = self.embedder.embed([query])[0]  # (dim,)
        self.embed_ms.append((time.perf_counter() - start) * 1000.0)
        return vec

    def _best(
        self,
        space: _Space,
        query: str,
        vec: np.ndarray,
        policy: CategoryConfig,
        context_fingerprint: str | None,
    ) -> tuple[int, float, float | None] | None:
        """The best candidate passing every check, as (id, similarity, score); expired
        candidates are removed on the way. In a bounded category the candidate of highest
        score (the guarantee judges it), else the most similar one the verifier accepts (score
        None)."""
        start = time.perf_counter()
        ids, sims = space.index.search(vec, self.config.top_k)
        self.search_ms.append((time.perf_counter() - start) * 1000.0)
        now = self.clock()
        bounded = self.guarantee.bounded(policy.name)
        stale: list[int] = []
        best = None
        for id_, sim in zip(ids.tolist(), sims.tolist()):
            if sim < policy.threshold:
                break  # sorted best first
            meta = space.meta[id_]
            sim = min(float(sim), 1.0)  # float32 rounding can exceed 1
            if meta.expires is not None and meta.expires <= now:
                stale.append(id_)
                continue
            if policy.context_sensitive and meta.context_fingerprint != context_fingerprint:
                continue
            if bounded:
                score = self._score(query, meta.query, sim)
                if score is not None and (best is None or score > best[2]):
                    best = (id_, sim, score)
                continue
            decider = self._deciders.get(policy.name, self.verifier)
            if decider is not None:
                verdict = decider.verify(query, meta.query, similarity=sim)
                if not verdict.accepted:
                    continue
            best = (id_, sim, verdict.score if decider is not None else None)
            break
        if stale:
            self._drop(space, stale)
        return best

    def _score(self, query: str, cached_query: str, similarity: float) -> float | None:
        """What the error-rate guarantee judges: the probability of the model trained under the
        cache protocol (``guarantee_weights``; the rule signals are its features), else the
        cosine; None where the rules veto the pair."""
        if self.guarantee_decision is not None:
            return self.guarantee_decision.probability(query, cached_query, similarity)
        if self.verifier is not None and not self.verifier.verify(
                query, cached_query, similarity=similarity).accepted:
            return None
        return similarity

    def _touch(self, space: _Space, entry_id: int) -> None:
        now = self.clock()
        meta = space.meta[entry_id]
        meta.hits += 1
        meta.last_hit = now
        self._store.touch(entry_id, now=now)

    @staticmethod
    def _answer(entry: SemanticEntry) -> CachedAnswer:
        try:
            return CachedAnswer.from_json(entry.response)
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptBlobError(f"semantic entry {entry.id}: unreadable answer: {exc}") from exc

    def _space(self, ns: Namespace) -> _Space:
        space = self._spaces.get(ns)
        if space is None:
            space = _Space(index=make_index(
                self.config.backend, self.embedder.dim, **index_params(self.config)))
            self._spaces[ns] = space
        return space

    def _drop(self, space: _Space, ids: list[int]) -> None:
        for id_ in ids:
            space.meta.pop(id_, None)
            space.index.mark_deleted(id_)
        self._store.delete_many(ids)

    def _expire_space(self, space: _Space, now: float) -> None:
        stale = [i for i, m in space.meta.items() if m.expires is not None and m.expires <= now]
        if stale:
            self._drop(space, stale)

    def _evict(self, space: _Space, count: int, policy: CategoryConfig) -> None:
        usage = (UsageRecord(i, m.created, m.hits, m.last_hit) for i, m in space.meta.items())
        self._drop(space, eviction_order(usage, policy.eviction)[:count])

    def _rebuild_from_store(self) -> None:
        """Refill the in-memory indexes from the database (entries survive restarts).

        Rows of categories the config no longer has stay in the database, unindexed.
        """
        self._store.delete_many([e.id for e in self._store.expired(self.clock())])
        known = set(self.policy.names)
        for batch in self._store.all_for_rebuild():
            grouped: dict[Namespace, list[SemanticEntry]] = {}
            for entry in batch:
                if entry.category in known:
                    grouped.setdefault(entry.namespace, []).append(entry)
            for ns, entries in grouped.items():
                space = self._space(ns)
                ids = np.asarray([e.id for e in entries], dtype=np.int64)
                space.index.add(ids, np.stack([e.embedding for e in entries]))
                for e in entries:
                    space.meta[e.id] = _Meta(
                        e.query, e.context_fingerprint, e.created, e.expires, e.hits, e.last_hit
                    )


def make_decision(config: SemanticConfig, *, vocabulary: frozenset[str] | None = None
                  ) -> Verifier | LearnedDecision:
    """The hit check ``config.decision`` names: the rules alone, or the learned model over
    them (weights from ``config.decision_weights``, default the committed ones)."""
    verifier = Verifier(vocabulary=vocabulary)
    if config.decision == "rules":
        return verifier
    return LearnedDecision(load_model(config.decision_weights), verifier=verifier)


def _p50(values) -> float | None:
    return float(np.median(np.fromiter(values, dtype=np.float64))) if values else None
