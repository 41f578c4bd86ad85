"""The way of a chat request: parse -> (semantic lookup) -> (chunk fusion) -> model -> record.

GPTCache's pipeline of small steps, each a method here. ``start`` decides how the request will
be answered *before* any token is produced (so the cache header can go out with a streamed
response) and returns a :class:`Run` whose ``steps()`` yields the text as it comes. A cache
failure degrades to a plain model call in exactly one place, :meth:`ChatPipeline._degrade`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

from blendcache.chunk_cache.cache import ChunkCache
from blendcache.config import Settings
from blendcache.errors import CacheError, NotFoundError
from blendcache.middleware.schemas import ChatCompletionRequest
from blendcache.recompute.blend import BlendOptions, blend
from blendcache.recompute.generate import Generation, Prefilled, SamplingParams, decode, prefill
from blendcache.recompute.model import Engine
from blendcache.recompute.prefill import build_layout, format_document

log = logging.getLogger("blendcache.pipeline")


@dataclass(frozen=True)
class ChatJob:
    """A validated request and who sent it."""

    request: ChatCompletionRequest
    tenant: str


@dataclass
class Run:
    """How one request is being answered. ``result`` is complete once ``steps()`` is exhausted."""

    cache_status: str  # "miss" | "blend" | "semantic-hit"
    model: str
    result: Generation = field(default_factory=Generation)
    info: dict = field(default_factory=dict)  # the response's "blendcache" object
    _steps: Iterator[str] | None = None

    def steps(self) -> Iterator[str]:
        if self._steps is not None:
            yield from self._steps

    def finish(self) -> Generation:
        for _ in self.steps():
            pass
        return self.result


class ChatPipeline:
    def __init__(self, settings: Settings, *, engine: Engine, chunk_cache: ChunkCache | None):
        self.settings = settings
        self.engine = engine
        self.chunk_cache = chunk_cache
        self.model_id = engine.spec.name
        self.metrics: Counter[str] = Counter()

    def models(self) -> list[str]:
        return [self.model_id]

    def sampling(self, req: ChatCompletionRequest) -> SamplingParams:
        limit = req.max_completion_tokens or req.max_tokens or self.settings.model.max_new_tokens
        return SamplingParams(
            max_new_tokens=limit,
            temperature=0.0 if req.temperature is None else req.temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
            seed=req.seed,
            stop=req.stop_strings(),
        )

    def start(self, job: ChatJob) -> Run:
        req = job.request
        if req.model not in (self.model_id, "default"):
            raise NotFoundError(
                f"model {req.model!r} does not exist; this server serves {self.model_id!r}",
                param="model", code="model_not_found",
            )
        messages = [{"role": m.role, "content": m.text()} for m in req.messages]
        documents = [format_document(text) for _, text in req.document_texts()]
        run = Run(cache_status="miss", model=self.model_id)
        self.metrics["requests"] += 1
        with self.engine.lock:
            if documents:
                start = self._prefill_documents(messages, documents, self._ratio(req), run)
            else:
                start = prefill(self.engine, self.engine.chat_prompt_ids(messages))
        run.info["ttft_ms"] = round(start.prefill_ms, 2)
        run._steps = self._decode(start, self.sampling(req), run)
        return run

    def _ratio(self, req: ChatCompletionRequest) -> float:
        if req.blendcache is not None and req.blendcache.recompute_ratio is not None:
            return req.blendcache.recompute_ratio
        return self.settings.blend.recompute_ratio

    def _prefill_documents(self, messages, documents, ratio: float, run: Run) -> Prefilled:
        layout = build_layout(self.engine, messages, documents)
        if self.chunk_cache is None or not self.settings.blend.enabled:
            return prefill(self.engine, layout.ids)
        t0 = time.perf_counter()
        try:
            found = self.chunk_cache.lookup(layout)
        except CacheError as exc:
            self._degrade("chunk", exc)
            return prefill(self.engine, layout.ids)
        options = BlendOptions(recompute_ratio=ratio, check_layers=self.settings.blend.check_layers)
        start, stats = blend(self.engine, layout, found.prefix, found.chunks, options)
        run.cache_status = "blend" if found.reused else "miss"
        self.metrics["chunks_reused"] += found.reused
        self.metrics["chunks_total"] += found.total
        run.info.update({
            "chunks_reused": found.reused, "chunks_total": found.total,
            "recompute_ratio": ratio, "tokens_recomputed": stats.recomputed_tokens,
        })
        # TTFT as the client sees it: chunk lookup (and any prefill of new chunks) + fusion.
        elapsed_ms = (time.perf_counter() - t0) * 1e3
        return Prefilled(start.cache, start.logits, start.prompt_tokens, elapsed_ms)

    def _degrade(self, layer: str, exc: Exception) -> None:
        """The one place a cache failure turns into a plain model call."""
        self.metrics[f"cache_failures_{layer}"] += 1
        log.warning("%s cache failed, serving from the model: %s", layer, exc)

    def _decode(self, start: Prefilled, params: SamplingParams, run: Run) -> Iterator[str]:
        started = time.perf_counter()
        with self.engine.lock:
            for step in decode(self.engine, start, params, run.result):
                if step.text:
                    yield step.text
        self.metrics["completion_tokens"] += len(run.result.token_ids)
        log.info("generated %d tokens in %.0f ms (prompt %d, %s)", len(run.result.token_ids),
                 (time.perf_counter() - started) * 1e3, run.result.prompt_tokens, run.cache_status)
