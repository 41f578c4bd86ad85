"""Prometheus metrics of one app, in its own ``CollectorRegistry`` (two apps never share one).

Each answered request is one :class:`RequestEvent`, recorded by the pipeline when its answer is
complete; the caches' own counters are read at scrape time by a collector. Every fact is one
series; the text is ``prometheus_client``'s (``generate_latest``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from blendcache.middleware.pipeline import ChatPipeline

NO_CATEGORY = "none"  # the category label of a request the semantic layer did not classify
# Seconds: a semantic hit takes milliseconds, a cold prefill on a CPU seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class RequestEvent:
    """One answered chat request, as the pipeline saw it."""

    tenant: str
    category: str  # NO_CATEGORY without one
    outcome: str  # Run.cache_status: "semantic-hit" | "blend" | "miss"
    ttft_s: float  # from the pipeline's start to the first piece of text
    latency_s: float  # from the pipeline's start to the end of the answer
    tokens_reused: int = 0  # chunk tokens whose KV was found in a tier
    tokens_recomputed: int = 0  # chunk tokens recomputed when fusing
    similarity: float | None = None  # the cached query's, on a semantic hit
    chunks_reused: int = 0  # document chunks whose KV was found in a tier
    chunks_total: int = 0  # document chunks fused (0: no fusion)


class Metrics:
    """The app's instruments; ``watch(pipeline)`` adds the caches' counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            "blendcache_requests", "Chat requests answered, by tenant, category and outcome "
            "(semantic-hit, blend: chunk KVs reused, miss)",
            ["tenant", "category", "outcome"], registry=reg)
        self.ttft = Histogram(
            "blendcache_ttft_seconds", "Seconds from a request's start to its first text",
            ["outcome"], buckets=LATENCY_BUCKETS, registry=reg)
        self.duration = Histogram(
            "blendcache_request_duration_seconds",
            "Seconds from a request's start to the end of its answer",
            ["outcome"], buckets=LATENCY_BUCKETS, registry=reg)
        self.tokens_reused = Counter(
            "blendcache_chunk_tokens_reused",
            "Chunk tokens whose KV was found in a tier of the chunk cache", ["tenant"],
            registry=reg)
        self.tokens_recomputed = Counter(
            "blendcache_chunk_tokens_recomputed",
            "Chunk tokens recomputed by selective recomputation when fusing", ["tenant"],
            registry=reg)

    def record(self, event: RequestEvent) -> None:
        self.requests.labels(event.tenant, event.category, event.outcome).inc()
        self.ttft.labels(event.outcome).observe(event.ttft_s)
        self.duration.labels(event.outcome).observe(event.latency_s)
        self.tokens_reused.labels(event.tenant).inc(event.tokens_reused)
        self.tokens_recomputed.labels(event.tenant).inc(event.tokens_recomputed)

    def watch(self, pipeline: ChatPipeline) -> None:
        """Export ``pipeline``'s cache and pipeline counters, read at each scrape."""
        self.registry.register(_PipelineCollector(pipeline))

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type."""
        return generate_latest(_WithoutCreated(self.registry)), CONTENT_TYPE_LATEST

    def tenants(self) -> dict[str, dict]:
        """Per tenant seen: requests by outcome and by category, chunk tokens reused and
        recomputed."""
        out: dict[str, dict] = {}
        for labels, value in _totals(self.requests):
            view, n = out.setdefault(labels["tenant"], blank_tenant_view()), int(value)
            view["requests"] += n
            for label, key in (("outcome", "outcomes"), ("category", "categories")):
                view[key][labels[label]] = view[key].get(labels[label], 0) + n
        for counter, key in ((self.tokens_reused, "tokens_reused"),
                             (self.tokens_recomputed, "tokens_recomputed")):
            for labels, value in _totals(counter):
                out.setdefault(labels["tenant"], blank_tenant_view())[key] = int(value)
        return out

    def category_outcomes(self) -> dict[str, dict[str, int]]:
        """Requests by category and outcome, every tenant's together (per-category hit
        rates)."""
        out: dict[str, dict[str, int]] = {}
        for labels, value in _totals(self.requests):
            by_outcome = out.setdefault(labels["category"], {})
            by_outcome[labels["outcome"]] = by_outcome.get(labels["outcome"], 0) + int(value)
        return out


def blank_tenant_view() -> dict:
    return {"requests": 0, "outcomes": {}, "categories": {}, "tokens_reused": 0,
            "tokens_recomputed": 0}


class _WithoutCreated:
    """The registry's families without the ``_created`` timestamp series that
    ``prometheus_client`` adds to counters and histograms (a series of its own per label set,
    not a fact about the cache)."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family


def _totals(counter: Counter) -> Iterator[tuple[dict[str, str], float]]:
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                yield sample.labels, sample.value


# What the collector exports: (name, help) of each TierStats field, and of pipeline counters.
_TIER_COUNTERS = {
    "hits": "Chunk KV lookups a tier answered",
    "misses": "Chunk KV lookups a tier could not answer",
    "puts": "Chunk KVs written to a tier",
    "evictions": "Chunk KVs a tier evicted to make room",
    "corrupt": "Chunk KVs a tier dropped for a failed checksum (recomputed, never served)",
}
_TIER_GAUGES = {"bytes": "Bytes of chunk KV a tier holds", "entries": "Chunk KVs a tier holds"}
_PIPELINE_COUNTERS = {
    "chunks_deferred": ("blendcache_chunks_deferred",
                        "Chunks of too cold requests stored after the response, not fused"),
    "chunks_warmed": ("blendcache_chunks_warmed",
                      "Chunks stored ahead by POST /v1/blendcache/documents"),
    "semantic_bypassed_sampled": ("blendcache_semantic_bypassed",
                                  "Requests kept out of the semantic cache: sampled hotter "
                                  "than [semantic] max_temperature"),
    "records_dropped": ("blendcache_request_records_dropped",
                        "Request records not stored: the writer's queue was full or the "
                        "database failed"),
    "semantic_explorations": ("blendcache_semantic_explorations",
                              "Would-be semantic hits answered by the model and compared with "
                              "the cached answer (error-rate guarantee)"),
    "semantic_explorations_disagreed": ("blendcache_semantic_explorations_disagreed",
                                        "Explorations whose model answer disagreed with the "
                                        "cached one"),
    "semantic_feedback": ("blendcache_semantic_feedback",
                          "Explicit feedback on served semantic hits "
                          "(POST /v1/blendcache/feedback)"),
    "semantic_feedback_wrong": ("blendcache_semantic_feedback_wrong",
                                "Explicit feedback that a served semantic hit was wrong"),
}
_CACHE_LAYERS = ("semantic", "chunk")


class _PipelineCollector:
    """The chunk tiers', the semantic cache's and the pipeline's counters at scrape time."""

    def __init__(self, pipeline: ChatPipeline):
        self.pipeline = pipeline

    def collect(self) -> Iterator[Metric]:
        if self.pipeline.chunk_cache is not None:
            yield from _chunk_families(self.pipeline.chunk_cache)
        if self.pipeline.semantic is not None:
            yield from _semantic_families(self.pipeline.semantic.stats())
        yield from _pipeline_families(self.pipeline.metrics)


def _chunk_families(cache) -> Iterator[Metric]:
    tiers = cache.stats()["tiers"]  # tier -> TierStats.as_dict()
    for field, kind, help_ in [*((f, CounterMetricFamily, h) for f, h in _TIER_COUNTERS.items()),
                               *((f, GaugeMetricFamily, h) for f, h in _TIER_GAUGES.items())]:
        family = kind(f"blendcache_chunk_tier_{field}", help_, labels=["tier"])
        for tier, counts in tiers.items():
            family.add_metric([tier], counts[field])
        yield family
    yield CounterMetricFamily("blendcache_chunk_prefills",
                              "Chunk KVs prefilled (prefixes, backgrounds and chunks)",
                              value=cache.prefills)


def _semantic_families(stats) -> Iterator[Metric]:
    for name, value, help_ in (
            ("lookups", stats.lookups, "Semantic cache lookups"),
            ("hits", stats.hits, "Semantic cache lookups that found an answer"),
            ("misses", stats.misses, "Semantic cache lookups that found none"),
            ("expired", stats.expired, "Semantic cache entries removed past their TTL")):
        yield CounterMetricFamily(f"blendcache_semantic_{name}", help_, value=value)
    rejections = CounterMetricFamily("blendcache_semantic_rejections",
                                     "Candidates the verifier turned away, by reason",
                                     labels=["reason"])
    for reason, n in sorted(stats.rejections.items()):
        rejections.add_metric([reason], n)
    yield rejections
    entries = GaugeMetricFamily("blendcache_semantic_entries", "Live semantic cache entries",
                                labels=["tenant", "category", "model"])
    for namespace, n in sorted(stats.entries.items()):
        entries.add_metric(list(namespace), n)
    yield entries


def _pipeline_families(counts) -> Iterator[Metric]:
    for key, (name, help_) in _PIPELINE_COUNTERS.items():
        yield CounterMetricFamily(name, help_, value=counts[key])
    failures = CounterMetricFamily("blendcache_cache_failures",
                                   "Cache failures the pipeline served around, by layer",
                                   labels=["layer"])
    for layer in _CACHE_LAYERS:
        failures.add_metric([layer], counts[f"cache_failures_{layer}"])
    yield failures
