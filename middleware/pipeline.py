"""The way of a chat request: semantic lookup -> chunk fusion -> model -> store the answer.

GPTCache's pipeline of small steps, each a method here. ``start`` decides how the request will
be answered *before* any token is produced (so the cache header can go out with a streamed
response) and returns a :class:`Run` whose ``steps()`` yields the text as it comes. A cache
failure degrades to a plain model call in exactly one place, :meth:`ChatPipeline._degrade`.
What the semantic layer does not answer goes to one :class:`Answerer`: the local model (chunk
fusion, decode) or, in upstream mode, an OpenAI-compatible server (middleware/upstream.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Generator, Iterator, Protocol

from blendcache.chunk_cache.cache import ChunkCache
from blendcache.chunk_cache.fusion import BlendOptions, fuse
from blendcache.chunk_cache.layout import PromptLayout, build_layout, text_prompt_ids
from blendcache.chunk_cache.warm import Warmed, warm
from blendcache.config import Settings
from blendcache.errors import CacheError, InvalidRequestError, NotFoundError
from blendcache.index.semantic_cache import CachedAnswer, SemanticCache, SemanticHit
from blendcache.middleware.context import RequestContext, request_context
from blendcache.middleware.metrics import NO_CATEGORY, RequestEvent
from blendcache.middleware.schemas import BlendcacheOptions, ChatCompletionRequest, plain_messages
from blendcache.recompute.generate import Generation, Prefilled, SamplingParams, decode, prefill
from blendcache.recompute.model import Engine

if TYPE_CHECKING:
    from blendcache.middleware.upstream import Upstream

log = logging.getLogger("blendcache.pipeline")
# Appended to the model's name in the semantic cache's namespace of text completions.
TEXT_COMPLETION = "#text_completion"


@dataclass(frozen=True)
class ChatJob:
    """A validated request, who sent it, and the category a header asked for. ``raw_prompt``:
    a text completion (POST /v1/completions), whose one user message is the prompt, used as is
    without the chat template."""

    request: ChatCompletionRequest
    tenant: str
    category_header: str | None = None
    raw_prompt: bool = False


@dataclass
class Run:
    """How one request is being answered. ``result`` is complete once ``steps()`` is exhausted;
    ``after_response()`` then does what was put off so as not to delay the answer."""

    cache_status: str  # "miss" | "blend" | "semantic-hit"
    model: str
    id: str = ""  # the response's id (chatcmpl-... or cmpl-...): explicit feedback names it
    result: Generation = field(default_factory=Generation)
    info: dict = field(default_factory=dict)  # the response's "blendcache" object
    # The answer's length as an upstream counted it (upstream mode has no token ids);
    # None: len(result.token_ids).
    completion_tokens: int | None = None
    _steps: Generator[str, None, None] | None = None
    _after: list[Callable[[], None]] = field(default_factory=list)
    tokens_reused: int = 0  # chunk tokens whose KV was found in a tier
    _first_text_at: float | None = None  # perf_counter() when the first text came
    _done: Callable[[Run], None] | None = None  # called once, when the answer is complete

    def steps(self) -> Iterator[str]:
        """The answer's text as it comes; once it is complete, ``_done`` is told (once).
        NOTE: closing this closes the answer's own steps, so a stream dropped halfway releases
        what they hold (the engine lock, an upstream connection) at once."""
        if self._steps is None:
            return
        with contextlib.closing(self._steps):
            for text in self._steps:
                if self._first_text_at is None:
                    self._first_text_at = time.perf_counter()
                yield text
        self._steps = None
        if self._done is not None:
            self._done(self)

    def after_response(self) -> None:
        """Work deferred past the response (storing a cold request's chunks). The HTTP routes
        run it once the response is sent; other callers call it after ``finish()``."""
        while self._after:
            self._after.pop(0)()

    def finish(self) -> Generation:
        for _ in self.steps():
            pass
        return self.result


@dataclass(frozen=True)
class Looked:
    """What :meth:`ChatPipeline.semantic_lookup` found: a hit (with the id its feedback
    names), or none (with an exploration id where the error-rate guarantee explores)."""

    hit: SemanticHit | None
    exploration_id: str | None = None
    feedback_id: str | None = None


@dataclass(frozen=True)
class SemanticKey:
    """Where a request's answer lives in the semantic cache."""

    query: str
    tenant: str
    category: str
    context_fingerprint: str | None
    model: str  # the model whose answers these are
    # NOTE: a text completion continues its prompt where a chat answers it, so the two never
    # share answers: a completion's are kept under the model's name + TEXT_COMPLETION.
    text_completion: bool = False

    @property
    def space(self) -> str:
        """The model name the semantic cache keeps these answers under."""
        return self.model + (TEXT_COMPLETION if self.text_completion else "")


@dataclass(frozen=True)
class Miss:
    """A request the semantic layer did not answer, as the model that answers it gets it."""

    job: ChatJob
    messages: list[dict]  # plain_messages of the request (documents in text cut out: context)
    documents: list[str]  # the chunks: format_document of each document, or split from text
    params: SamplingParams
    key: SemanticKey | None
    layout: PromptLayout | None = None  # the local prompt's token ids; None in upstream mode


class Answerer(Protocol):
    """What answers a miss: the local model (``ChatPipeline._answer_locally``) or an upstream
    server (``Upstream.answer``)."""

    def __call__(self, miss: Miss, run: Run) -> Iterator[str]:
        """Start answering: what can fail before the first token raises here, before any
        response goes out. Returns the text as it comes; ``run`` is complete once it ends."""


class ChatPipeline:
    def __init__(self, settings: Settings, *, engine: Engine | None,
                 chunk_cache: ChunkCache | None, semantic: SemanticCache | None = None,
                 record: Callable[[RequestEvent], None] | None = None,
                 upstream: Upstream | None = None):
        self.settings = settings
        self.engine = engine  # None in upstream mode
        self.chunk_cache = chunk_cache
        self.semantic = semantic
        self.upstream = upstream
        self.model_id = engine.spec.name if engine is not None else None
        self.metrics: Counter[str] = Counter()
        self.record = record  # told of every answered request (Metrics.record)
        self._answer: Answerer = self._answer_locally if upstream is None else upstream.answer

    def models(self) -> list[str]:
        return [self.model_id] if self.upstream is None else self.upstream.models()

    def check_model(self, name: str) -> str:
        """The model that answers a request for ``name`` (cached answers are kept per model).
        In upstream mode the upstream decides which names it serves."""
        if self.upstream is not None:
            return self.upstream.model_for(name)
        if name not in (self.model_id, "default"):
            raise NotFoundError(
                f"model {name!r} does not exist; this server serves {self.model_id!r}",
                param="model", code="model_not_found",
            )
        return self.model_id

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
        started = time.perf_counter()
        run = self._start(job)
        run.id = run.id or _response_id(job)
        if self.record is not None:
            run._done = lambda done: self.record(_event(done, job.tenant, started))
        return run

    def _start(self, job: ChatJob) -> Run:
        req = job.request
        model = self.check_model(req.model)
        self.metrics["requests"] += 1
        options = req.blendcache or BlendcacheOptions()
        # NOTE: documents in message text are split out only where chunks are made (locally);
        # the prompt's length is checked against the window only where there is a tokenizer.
        context = request_context(plain_messages(req.messages),
                                  [text for _, text in req.document_texts()], self.settings.server,
                                  split=self.engine is not None)
        messages, documents = context.messages, context.documents
        layout = self._layout(job, context) if self.engine is not None else None
        params = self.sampling(req)
        if layout is not None:
            params = self._fit_window(params, len(layout.ids), job)
        key = self._semantic_key(job, options, messages, documents, model)
        replace = None  # the entry the new answer replaces: refreshed, or too short to serve
        explored = None  # a candidate the error-rate guarantee explores: answered, compared
        if key is not None:
            hit = self._semantic_lookup(key, exploring=options.cache == "on")
            requested = req.max_completion_tokens or req.max_tokens
            explored = hit if hit is not None and hit.explore else None
            hit = None if explored is not None else hit
            if hit is not None and options.cache == "on" and _serves(
                    hit.response, params.max_new_tokens, requested=requested):
                self.metrics["semantic_hits"] += 1
                prompt_tokens = len(layout.ids) if layout is not None else 0
                run = self._replay(hit, key, prompt_tokens, params.max_new_tokens)
                self._remember_served(run, hit, key, job)
                return run
            self.metrics["semantic_misses"] += 1
            replace = hit.entry_id if hit is not None else None
        run = Run(cache_status="miss", model=model)
        if key is not None:
            run.info["category"] = key.category
            if explored is not None:
                run.info["explored"] = True
                self.metrics["semantic_explorations"] += 1
                run._after.append(lambda: self._compare(explored, key, run))
        steps = self._answer(Miss(job, messages, documents, params, key, layout), run)
        run._steps = self._then_store(steps, run, key, replace)
        return run

    def _answer_locally(self, miss: Miss, run: Run) -> Iterator[str]:
        """The local model: fused chunk KVs when there are documents, else a prefill; then
        decode."""
        with self.engine.lock:
            if miss.documents:
                ratio = self._ratio(miss.job.request.blendcache or BlendcacheOptions(), miss.key)
                namespace = self.settings.chunk_namespace(miss.job.tenant)
                start = self._prefill_documents(miss.layout, ratio, run, namespace)
            else:
                start = prefill(self.engine, miss.layout.ids)
        run.info["ttft_ms"] = round(start.prefill_ms, 2)
        return self._decode(start, miss.params, run)

    def _then_store(self, steps: Iterator[str], run: Run, key: SemanticKey | None,
                    replace: int | None) -> Iterator[str]:
        yield from steps
        if key is not None:
            self._semantic_store(key, run, replace)

    # -- the prompt --------------------------------------------------------------------------

    def _layout(self, job: ChatJob, context: RequestContext) -> PromptLayout:
        """The prompt's token ids: documents laid out as chunks, else the whole prompt as the
        prefix (the chat template's rendering, or a text completion's prompt as is)."""
        if context.documents:
            return build_layout(self.engine, context.messages, context.documents,
                                slot=context.slot, template=not job.raw_prompt)
        if job.raw_prompt:
            ids = text_prompt_ids(self.engine, "".join(m["content"] for m in context.messages))
        else:
            ids = self.engine.chat_prompt_ids(context.messages)
        return PromptLayout(prefix=tuple(ids), chunks=(), suffix=())

    def context_window(self) -> int | None:
        """Most tokens the model attends over (prompt and answer), from its config."""
        return getattr(self.engine.model.config, "max_position_embeddings", None)

    def _fit_window(self, params: SamplingParams, prompt_tokens: int,
                    job: ChatJob) -> SamplingParams:
        """400 for a prompt, or a prompt and its max_tokens, over the model's context window;
        without max_tokens the answer is cut to fit."""
        window, req = self.context_window(), job.request
        if window is None:
            return params
        if prompt_tokens >= window:
            raise InvalidRequestError(
                f"the prompt is {prompt_tokens} tokens: the model's context window of {window} "
                f"tokens (max_position_embeddings) leaves no room for an answer",
                param="prompt" if job.raw_prompt else "messages", code="context_length_exceeded")
        if prompt_tokens + params.max_new_tokens <= window:
            return params
        asked = ("max_completion_tokens" if req.max_completion_tokens is not None
                 else "max_tokens" if req.max_tokens is not None else None)
        if asked is None:
            return dataclasses.replace(params, max_new_tokens=window - prompt_tokens)
        raise InvalidRequestError(
            f"the prompt ({prompt_tokens} tokens) and {asked} ({params.max_new_tokens}) exceed "
            f"the model's context window of {window} tokens", param=asked,
            code="context_length_exceeded")

    # -- semantic layer ----------------------------------------------------------------------

    def _semantic_key(self, job: ChatJob, options: BlendcacheOptions, messages: list[dict],
                      documents: list[str], model: str) -> SemanticKey | None:
        if self.semantic is None or options.cache == "off":
            return None
        temperature = job.request.temperature or 0.0
        if temperature > self.settings.semantic.max_temperature:
            self.metrics["semantic_bypassed_sampled"] += 1
            return None
        users = [m for m in messages if m["role"] == "user"]
        if not users:
            return None
        query = users[-1]["content"]
        requested = options.category or job.category_header
        try:
            category = self.semantic.choose_category(query, requested)
        except CacheError as exc:
            self._degrade("semantic", exc)
            return None
        return SemanticKey(query, job.tenant, category, _context_fingerprint(messages, documents),
                            model, text_completion=job.raw_prompt)

    def semantic_key(self, job: ChatJob, *, model: str) -> SemanticKey | None:
        """Where ``job``'s answer lives in the semantic cache, keyed as :meth:`start` keys it
        (category, context fingerprint of the earlier turns and documents) under ``model``;
        None where the semantic layer does not apply. The lookup/store routes
        (routes/semantic.py) use it, so their entries and chat's are one cache."""
        req = job.request
        context = request_context(plain_messages(req.messages),
                                  [text for _, text in req.document_texts()], self.settings.server,
                                  split=self.engine is not None)
        return self._semantic_key(job, req.blendcache or BlendcacheOptions(), context.messages,
                                  context.documents, model)

    def semantic_lookup(self, key: SemanticKey) -> Looked:
        """The cached answer at ``key`` without a model call (the lookup route); a cache
        failure is a miss (``_degrade``). A served hit gets a feedback id (POST
        /v1/blendcache/feedback, as a chat response's id). A candidate the error-rate guarantee
        explores is not served: the caller answers with its own model and brings that answer,
        with the exploration id, to :meth:`semantic_store`, which compares the two."""
        hit = self._semantic_lookup(key, exploring=True)
        if hit is None:
            return Looked(None)
        if hit.explore:
            exploration_id = f"explore-{uuid.uuid4().hex}"
            self.semantic.remember_explored(exploration_id, hit, tenant=key.tenant)
            self.metrics["semantic_explorations"] += 1
            return Looked(None, exploration_id=exploration_id)
        feedback_id = f"lookup-{uuid.uuid4().hex}"
        self.semantic.remember_served(feedback_id, hit, tenant=key.tenant)
        return Looked(hit, feedback_id=feedback_id)

    def semantic_store(self, key: SemanticKey, answer: CachedAnswer, *,
                       exploration_id: str | None = None) -> int | None:
        """Keep ``answer``, made elsewhere, at ``key`` (the store route): its entry id, or None
        where the cache failed (``_degrade``: counted and logged, nothing stored). With the
        ``exploration_id`` of :meth:`semantic_lookup`, the answer is first compared with the
        explored candidate, the guarantee's evidence as after a chat exploration (an id that is
        unknown, another tenant's, answered already or too old is ignored)."""
        if exploration_id is not None:
            explored = self.semantic.take_explored(exploration_id, tenant=key.tenant)
            if explored is not None:
                self._record_comparison(explored, answer.text, tenant=key.tenant)
        try:
            return self.semantic.store(key.query, answer, tenant=key.tenant,
                                       category=key.category, model=key.space,
                                       context_fingerprint=key.context_fingerprint)
        except CacheError as exc:
            self._degrade("semantic", exc, after_response=True)
            return None

    def _semantic_lookup(self, key: SemanticKey, *, exploring: bool) -> SemanticHit | None:
        try:
            hit = self.semantic.lookup(key.query, tenant=key.tenant, category=key.category,
                                       model=key.space,
                                       context_fingerprint=key.context_fingerprint,
                                       exploring=exploring)
        except CacheError as exc:
            self._degrade("semantic", exc)
            return None
        return hit

    def _remember_served(self, run: Run, hit: SemanticHit, key: SemanticKey,
                         job: ChatJob) -> None:
        """A served hit's response id, for explicit feedback (POST /v1/blendcache/feedback)."""
        run.id = _response_id(job)
        run.info["feedback_id"] = run.id
        self.semantic.remember_served(run.id, hit, tenant=key.tenant)

    def _compare(self, explored: SemanticHit, key: SemanticKey, run: Run) -> None:
        """After an exploration's response: does the model's answer agree with the cached one?
        The error-rate guarantee learns from it. NOTE: an answer cut at a token limit is not
        compared with a whole one, nor two answers cut at different lengths (they disagree for
        no fault of the cached one)."""
        fresh_cut = run.result.finish_reason != "stop"
        if fresh_cut != (explored.response.finish_reason != "stop") or (
                fresh_cut and len(run.result.token_ids) != len(explored.response.token_ids)):
            return
        self._record_comparison(explored, run.result.text, tenant=key.tenant)

    def _record_comparison(self, explored: SemanticHit, fresh: str, *, tenant: str) -> None:
        try:
            agree = self.semantic.record_comparison(explored, fresh, tenant=tenant)
        except CacheError as exc:
            self._degrade("semantic", exc, after_response=True)
            return
        self.metrics["semantic_explorations_disagreed"] += not agree

    def _replay(self, hit: SemanticHit, key: SemanticKey, prompt_tokens: int,
                max_tokens: int) -> Run:
        """Answer from the semantic cache, cut to the request's token limit (an upstream's
        answer, without token ids, is never cut: ``_serves``); a streamed request gets the
        answer in pieces."""
        t0 = time.perf_counter()
        answer = hit.response
        if len(answer.token_ids) > max_tokens:
            token_ids = answer.token_ids[:max_tokens]
            answer = CachedAnswer(self.engine.tokenizer.decode(list(token_ids),
                                                               skip_special_tokens=True),
                                  "length", token_ids)
        run = Run(cache_status="semantic-hit", model=key.model,
                  completion_tokens=answer.completion_tokens)
        run.result.prompt_tokens = prompt_tokens
        run.result.token_ids = list(answer.token_ids)
        run.result.finish_reason = answer.finish_reason
        run.info.update({"category": hit.category, "similarity": round(hit.similarity, 4),
                         "ttft_ms": round((time.perf_counter() - t0) * 1e3, 2),
                         "entry_id": hit.entry_id})

        def steps() -> Iterator[str]:
            for piece in re.findall(r"\s*\S+|\s+$", answer.text):
                yield piece
            run.result.text = answer.text

        run._steps = steps()
        return run

    def _semantic_store(self, key: SemanticKey, run: Run, replace: int | None) -> None:
        result = run.result
        if not result.text.strip():
            return
        answer = CachedAnswer(result.text, result.finish_reason, tuple(result.token_ids),
                              run.completion_tokens)
        try:
            if replace is not None:
                self.semantic.delete([replace])
            run.info["entry_id"] = self.semantic.store(
                key.query, answer, tenant=key.tenant, category=key.category, model=key.space,
                context_fingerprint=key.context_fingerprint)
        except CacheError as exc:
            self._degrade("semantic", exc)

    # -- chunk layer -------------------------------------------------------------------------

    def _ratio(self, options: BlendcacheOptions, key: SemanticKey | None) -> float:
        """The request's ratio, else its category's, else the blend default."""
        if options.recompute_ratio is not None:
            return options.recompute_ratio
        if key is not None:
            category_ratio = self.semantic.policy.get(key.category).recompute_ratio
            if category_ratio is not None:
                return category_ratio
        return self.settings.blend.recompute_ratio

    def _prefill_documents(self, layout: PromptLayout, ratio: float, run: Run,
                           namespace: str) -> Prefilled:
        # NOTE: chunks are prefilled after the prompt's prefix (its first token is the attention
        # sink); a text completion whose documents open the prompt has none when the tokenizer
        # adds no BOS, and is answered by a full prefill.
        if self.chunk_cache is None or not self.settings.blend.enabled or not layout.prefix:
            return prefill(self.engine, layout.ids)
        cfg = self.settings.blend
        options = BlendOptions(recompute_ratio=ratio, check_layers=cfg.check_layers,
                               method=cfg.selection)
        try:
            start, report = fuse(self.chunk_cache, layout, options=options, namespace=namespace,
                                 max_missing_share=cfg.max_missing_share)
        except CacheError as exc:
            self._degrade("chunk", exc)
            return prefill(self.engine, layout.ids)
        self.metrics["chunks_total"] += report.chunks_total
        self.metrics["chunks_reused"] += report.chunks_reused
        run.tokens_reused = report.tokens_reused
        run.info.update({"chunks_reused": report.chunks_reused,
                         "chunks_total": report.chunks_total})
        if report.chunks_deferred:
            # A mostly cold request: a full prefill answered it (faster than prefilling its
            # missing chunks and fusing); they are stored once the response is out.
            self.metrics["chunks_deferred"] += report.chunks_deferred
            run.info["chunks_deferred"] = report.chunks_deferred
            run._after.append(lambda: self._store_chunks(layout, namespace))
        if report.fused:
            run.cache_status = "blend" if report.chunks_reused else "miss"
            run.info.update({"recompute_ratio": report.recompute_ratio,
                             "tokens_recomputed": report.tokens_recomputed})
        return start

    def store_documents(self, messages: list[dict], documents: list[str], *,
                        tenant: str) -> Warmed:
        """Precompute the chunk KVs of ``documents`` for ``tenant``'s requests that start with
        ``messages`` (POST /v1/blendcache/documents)."""
        if self.chunk_cache is None or not self.settings.blend.enabled:
            raise InvalidRequestError("the chunk cache is off on this server ([blend] enabled; "
                                      "upstream mode has none)", code="chunk_cache_disabled")
        warmed = warm(self.chunk_cache, documents, messages=messages, lock=self.engine.lock,
                      namespace=self.settings.chunk_namespace(tenant))
        self.metrics["chunks_warmed"] += warmed.stored
        return warmed

    def _store_chunks(self, layout: PromptLayout, namespace: str) -> None:
        with self.engine.lock:
            try:
                self.chunk_cache.fill(layout, namespace)
            except CacheError as exc:
                self._degrade("chunk", exc, after_response=True)

    # -- model -------------------------------------------------------------------------------

    def _degrade(self, layer: str, exc: Exception, *, after_response: bool = False) -> None:
        """The one place a cache failure turns into a plain model call (or, after the
        response, into an entry not stored)."""
        self.metrics[f"cache_failures_{layer}"] += 1
        log.warning("%s cache failed, %s: %s", layer,
                    "nothing stored" if after_response else "serving from the model", exc)

    def _decode(self, start: Prefilled, params: SamplingParams, run: Run) -> Iterator[str]:
        started = time.perf_counter()
        with self.engine.lock:
            for step in decode(self.engine, start, params, run.result):
                if step.text:
                    yield step.text
        self.metrics["completion_tokens"] += len(run.result.token_ids)
        log.info("generated %d tokens in %.0f ms (prompt %d, %s)", len(run.result.token_ids),
                 (time.perf_counter() - started) * 1e3, run.result.prompt_tokens, run.cache_status)


def _event(run: Run, tenant: str, started: float) -> RequestEvent:
    """What the metrics keep of a complete run that started at ``started`` (perf_counter)."""
    end = time.perf_counter()
    return RequestEvent(tenant=tenant, category=run.info.get("category", NO_CATEGORY),
                        outcome=run.cache_status, ttft_s=(run._first_text_at or end) - started,
                        latency_s=end - started, tokens_reused=run.tokens_reused,
                        tokens_recomputed=run.info.get("tokens_recomputed", 0),
                        similarity=run.info.get("similarity"),
                        chunks_reused=run.info.get("chunks_reused", 0),
                        chunks_total=run.info.get("chunks_total", 0))


def _response_id(job: ChatJob) -> str:
    return f"{'cmpl' if job.raw_prompt else 'chatcmpl'}-{uuid.uuid4().hex}"


def _serves(answer: CachedAnswer, max_tokens: int, *, requested: int | None = None) -> bool:
    """A cached answer serves a request when it is complete, or when the model cut it at a limit
    no smaller than this request's (it is then cut again to fit).

    An upstream's answer has no token ids to cut it by (upstream mode has no tokenizer), so it
    serves only as it is, by the length the upstream reported: complete within the request's
    own limit ``requested`` (none: any length), or cut at exactly that limit (where the
    upstream would cut it again). NOTE: ``max_tokens`` (the local default when the request
    sets none) does not apply to it: a request without a limit is forwarded without one.
    """
    if not answer.token_ids:
        length = answer.completion_tokens
        if answer.finish_reason == "stop":
            return requested is None or (length is not None and length <= requested)
        return answer.finish_reason == "length" and length is not None and length == requested
    return answer.finish_reason == "stop" or len(answer.token_ids) >= max_tokens


def _context_fingerprint(messages: list[dict], documents: list[str]) -> str | None:
    """What the answer depends on besides the query: earlier turns, system prompt, and the
    document set. NOTE: the documents enter as the sorted set of their hashes, so the same
    documents in another order (a retriever's ranking moves) still hit, and others miss."""
    context = messages[:-1] if messages and messages[-1]["role"] == "user" else messages
    if not context and not documents:
        return None
    document_set = sorted({hashlib.sha256(d.encode()).hexdigest() for d in documents})
    payload = json.dumps({"messages": context, "documents": document_set}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()
