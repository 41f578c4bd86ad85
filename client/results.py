"""What the SDK's calls return: frozen dataclasses built from the server's JSON (or, in process,
from the same JSON the server would send), so ``Client`` and ``BlendCache`` answer alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["semantic-hit", "blend", "miss"]


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def from_dict(cls, data: dict | None) -> Usage | None:
        if not data:
            return None
        return cls(int(data["prompt_tokens"]), int(data["completion_tokens"]),
                   int(data["total_tokens"]))


@dataclass(frozen=True)
class ChatResult:
    """One answer and how the cache produced it.

    ``outcome``: ``semantic-hit`` (a cached answer, no model call), ``blend`` (stored chunk KVs
    fused) or ``miss``. ``similarity``: of the cached question, on semantic hits.
    ``chunks_reused``/``chunks_total``/``tokens_recomputed``: requests with documents.
    ``ttft_ms``: the server's time to the first token. ``entry_id``: the semantic cache entry
    that served or now holds the answer (``invalidate(entry_id)`` forgets it). ``id``: the
    response's id; on a semantic hit ``feedback(result.id, correct)`` tells the cache whether
    the cached answer was right. ``explored``: the cache's error-rate guarantee had the model
    answer in place of a cached candidate, to compare the two. ``raw``: the response as
    received (for streams: the last chunk, which carries the ``blendcache`` object).
    """

    text: str
    outcome: Outcome
    similarity: float | None = None
    chunks_reused: int | None = None
    chunks_total: int | None = None
    tokens_recomputed: int | None = None
    ttft_ms: float | None = None
    category: str | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    entry_id: int | None = None
    id: str | None = field(default=None, compare=False)  # new with each response
    explored: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_response(cls, text: str, info: dict, *, usage: dict | None = None,
                      finish_reason: str | None = None, raw: dict | None = None) -> ChatResult:
        """From the answer's text and the response's ``blendcache`` object."""
        return cls(text=text, outcome=info["cache"], similarity=info.get("similarity"),
                   chunks_reused=info.get("chunks_reused"), chunks_total=info.get("chunks_total"),
                   tokens_recomputed=info.get("tokens_recomputed"), ttft_ms=info.get("ttft_ms"),
                   category=info.get("category"), usage=Usage.from_dict(usage),
                   finish_reason=finish_reason, entry_id=info.get("entry_id"),
                   id=(raw or {}).get("id"), explored=bool(info.get("explored")), raw=raw or {})


@dataclass(frozen=True)
class FeedbackResult:
    """POST /v1/blendcache/feedback: the judgement recorded on a served semantic hit."""

    id: str  # the response's id
    correct: bool
    entry_id: int  # the semantic cache entry that served it
    category: str

    @classmethod
    def from_dict(cls, data: dict) -> FeedbackResult:
        return cls(str(data["id"]), bool(data["correct"]), int(data["entry_id"]),
                   str(data["category"]))


@dataclass(frozen=True)
class LookupResult:
    """POST /v1/blendcache/lookup: the semantic cache's answer to a query, without a model
    call. ``hit`` False: ``entry_id``, ``similarity`` and ``answer`` are None. ``category``:
    the category the query was looked up in. ``exploration_id``: set on a miss where a
    category with ``max_error_rate`` explores a candidate it may not serve yet; pass it to
    ``store`` with your model's answer, and the category learns from the comparison.
    ``feedback_id``: on a hit, the id ``feedback(id, correct)`` takes."""

    hit: bool
    answer: str | None = None
    similarity: float | None = None
    entry_id: int | None = None
    category: str | None = None
    exploration_id: str | None = None
    feedback_id: str | None = None

    @classmethod
    def from_dict(cls, data: dict) -> LookupResult:
        return cls(bool(data["hit"]), data.get("answer"), data.get("similarity"),
                   data.get("entry_id"), data.get("category"), data.get("exploration_id"),
                   data.get("feedback_id"))


@dataclass(frozen=True)
class StreamEvent:
    """One piece of a streamed answer; ``outcome`` is known before the first piece."""

    text: str
    outcome: Outcome


@dataclass(frozen=True)
class WarmResult:
    """Documents whose chunk KVs were stored ahead (POST /v1/blendcache/documents)."""

    documents: int  # given, repeats dropped
    chunks_stored: int  # prefilled and stored now
    chunks_already_stored: int  # found stored


@dataclass(frozen=True)
class TenantStats:
    """One tenant's requests since the server started, and its semantic cache entries."""

    name: str
    requests: int
    outcomes: dict[str, int]  # outcome -> requests
    categories: dict[str, int]  # category -> requests
    tokens_reused: int
    tokens_recomputed: int
    semantic_entries: dict[str, int]  # "category/model" -> live entries

    def share(self, outcome: str) -> float:
        """Share of the requests answered with ``outcome`` (0 without requests)."""
        return self.outcomes.get(outcome, 0) / self.requests if self.requests else 0.0

    @property
    def hit_rate(self) -> float:
        """Share of requests answered from the semantic cache."""
        return self.share("semantic-hit")

    @classmethod
    def from_dict(cls, name: str, data: dict) -> TenantStats:
        return cls(name=name, requests=int(data["requests"]), outcomes=dict(data["outcomes"]),
                   categories=dict(data["categories"]), tokens_reused=int(data["tokens_reused"]),
                   tokens_recomputed=int(data["tokens_recomputed"]),
                   semantic_entries=dict(data.get("semantic_cache", {}).get("entries", {})))


@dataclass(frozen=True)
class Stats:
    """GET /v1/blendcache/stats. An API key sees its own tenant only (``tenants`` has one
    entry, the cache-wide fields are None); the admin token sees every tenant and both
    caches."""

    tenants: dict[str, TenantStats]
    requests: dict[str, int] | None = None  # the server's pipeline counters
    semantic_cache: dict[str, Any] | None = None  # lookups, hits, rejections, entries
    chunk_cache: dict[str, Any] | None = None  # prefills, tiers (hits, misses, bytes), stored
    # category -> outcome -> requests, every tenant's together (admin view only)
    categories: dict[str, dict[str, int]] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def category_hit_rate(self, category: str) -> float:
        """Share of ``category``'s requests answered from the semantic cache (admin view)."""
        outcomes = (self.categories or {}).get(category, {})
        total = sum(outcomes.values())
        return outcomes.get("semantic-hit", 0) / total if total else 0.0

    @classmethod
    def from_dict(cls, data: dict) -> Stats:
        if "tenant" in data:  # one tenant's view
            return cls({data["tenant"]: TenantStats.from_dict(data["tenant"], data)}, raw=data)
        return cls({name: TenantStats.from_dict(name, view)
                    for name, view in data.get("tenants", {}).items()},
                   requests=data.get("requests"), semantic_cache=data.get("semantic_cache"),
                   chunk_cache=data.get("chunk_cache"), categories=data.get("categories"),
                   raw=data)
