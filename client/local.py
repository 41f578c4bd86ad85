"""``BlendCache``: the SDK's calls on a pipeline in this process, no HTTP (notebooks, tests).

It builds what ``create_app`` builds (model, chunk cache, semantic cache, metrics) and answers
with the same dataclasses as ``Client``; requests come from one tenant (``tenant``), and
``stats()``/``invalidate()`` see every tenant, as the admin token does over HTTP.
"""

from __future__ import annotations

from typing import Iterator

from pydantic import ValidationError

from blendcache.client import wire
from blendcache.client.results import (ChatResult, FeedbackResult, LookupResult, Stats,
                                       StreamEvent, WarmResult)
from blendcache.client.wire import Prompt, StreamReader
from blendcache.config import DEFAULT_TENANT, Settings
from blendcache.errors import ConfigError, InvalidRequestError


class BlendCache:
    """The cache and a local model in process. ``engine``: a loaded model (else the settings'
    is loaded); ``embedder``: the semantic cache's (else the settings')."""

    def __init__(self, settings: Settings | None = None, engine=None, *, embedder=None,
                 tenant: str = DEFAULT_TENANT, model: str = "default"):
        from blendcache.chunk_cache.cache import build_chunk_cache
        from blendcache.middleware.app import build_semantic_cache, open_database
        from blendcache.middleware.metrics import Metrics
        from blendcache.middleware.pipeline import ChatPipeline
        from blendcache.recompute.model import load_engine

        settings = settings or Settings()
        engine = engine or load_engine(settings.model, data_dir=settings.storage.data_dir)
        if max(settings.blend.check_layers) >= engine.spec.num_layers:
            raise ConfigError(f"blend.check_layers {list(settings.blend.check_layers)}: the "
                              f"model {engine.spec.name} has {engine.spec.num_layers} layers")
        self.tenant, self.model = tenant, model
        self.metrics = Metrics()
        database = open_database(settings)
        semantic = (build_semantic_cache(settings, embedder, database=database)
                    if settings.semantic.enabled else None)
        self.pipeline = ChatPipeline(settings, engine=engine,
                                     chunk_cache=build_chunk_cache(settings, engine,
                                                                   database=database),
                                     semantic=semantic, record=self.metrics.record)

    def __enter__(self) -> BlendCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release today (the database engines close with the process); kept so
        ``BlendCache`` and ``Client`` are used alike."""

    def chat(self, prompt: Prompt, **options) -> ChatResult:
        """As ``Client.chat``."""
        run = self._start(prompt, options)
        result = run.finish()
        run.after_response()
        choice = {"message": {"role": "assistant", "content": result.text},
                  "finish_reason": result.finish_reason}
        return wire.chat_result({"id": run.id, "choices": [choice], "usage": _usage(run),
                                 "blendcache": {"cache": run.cache_status, **run.info}})

    def stream(self, prompt: Prompt, **options) -> LocalChatStream:
        """As ``Client.stream``: iterate for :class:`StreamEvent` pieces, then ``.result``."""
        return LocalChatStream(self._start(prompt, options))

    def warm(self, documents: list, *, system: str | None = None,
             messages: list[dict] | None = None) -> WarmResult:
        from blendcache.middleware.context import check_document_chars
        from blendcache.middleware.schemas import DocumentsRequest, plain_messages

        body = _validated(DocumentsRequest, wire.warm_call(documents, system=system,
                                                           messages=messages).json)
        check_document_chars(body.document_texts(), self.pipeline.settings.server)
        warmed = self.pipeline.store_documents(plain_messages(body.messages),
                                               body.document_texts(), tenant=self.tenant)
        return WarmResult(warmed.total, warmed.stored, warmed.already)

    def stats(self) -> Stats:
        from blendcache.middleware.routes.stats import collect

        return Stats.from_dict(collect(self.pipeline, self.metrics))

    def invalidate(self, entry_id: int | None = None, *, category: str | None = None,
                   tenant: str | None = None) -> int:
        """As ``Client.invalidate`` with the admin token: ``tenant`` None is this instance's
        tenant; ``"*"`` every tenant."""
        from blendcache.middleware.routes.entries import forget_entries, forget_entry

        wire.invalidate_call(entry_id, category=category, tenant=tenant)  # checks the arguments
        if entry_id is not None:
            return forget_entry(self.pipeline, entry_id, tenant=None)
        who = None if tenant == "*" else tenant or self.tenant
        return forget_entries(self.pipeline, tenant=who, category=category)

    def feedback(self, response_id: str, correct: bool) -> FeedbackResult:
        """As ``Client.feedback``, on this instance's tenant's responses."""
        from blendcache.middleware.routes.feedback import give_feedback

        call = wire.feedback_call(response_id, correct)  # checks the arguments
        return FeedbackResult.from_dict(give_feedback(self.pipeline, call.json["id"], correct,
                                                      tenant=self.tenant))

    def models(self) -> list[str]:
        return self.pipeline.models()

    def lookup(self, query: str, *, model: str | None = None, category: str | None = None,
               context: list[dict] | None = None, documents: list | None = None) -> LookupResult:
        """As ``Client.lookup``."""
        from blendcache.middleware.routes.semantic import SemanticRequest, look_up

        call = wire.semantic_call("lookup", query, model=model or self.model, category=category,
                                  context=context, documents=documents)
        body = _validated(SemanticRequest, call.json)
        return LookupResult.from_dict(look_up(self.pipeline, body, tenant=self.tenant))

    def store(self, query: str, answer: str, *, model: str | None = None,
              category: str | None = None, context: list[dict] | None = None,
              documents: list | None = None, exploration_id: str | None = None) -> int | None:
        """As ``Client.store``."""
        from blendcache.middleware.routes.semantic import StoreRequest, keep

        call = wire.semantic_call("store", query, model=model or self.model, answer=answer,
                                  category=category, context=context, documents=documents,
                                  exploration_id=exploration_id)
        body = _validated(StoreRequest, call.json)
        return keep(self.pipeline, body, tenant=self.tenant)["entry_id"]

    def _start(self, prompt: Prompt, options: dict):
        from blendcache.middleware.pipeline import ChatJob
        from blendcache.middleware.schemas import ChatCompletionRequest

        options.setdefault("model", self.model)
        request = _validated(ChatCompletionRequest, wire.chat_body(prompt, **options))
        return self.pipeline.start(ChatJob(request=request, tenant=self.tenant))


class LocalChatStream:
    """A streamed answer in process, used as ``ChatStream``."""

    def __init__(self, run):
        self._run = run
        self._steps = run.steps()  # NOTE: closing it releases the engine lock at once
        self._reader = StreamReader(run.cache_status)

    def __enter__(self) -> LocalChatStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._steps.close()

    @property
    def outcome(self) -> str:
        return self._reader.outcome

    @property
    def result(self) -> ChatResult:
        return self._reader.result()

    def __iter__(self) -> Iterator[StreamEvent]:
        run = self._run
        for text in self._steps:
            event = self._reader.feed_payload({"choices": [{"delta": {"content": text}}]})
            if event is not None:
                yield event
        run.after_response()
        self._reader.feed_payload({"id": run.id, "choices": [{"delta": {},
                                                "finish_reason": run.result.finish_reason}],
                                   "usage": _usage(run),
                                   "blendcache": {"cache": run.cache_status, **run.info}})


def _usage(run) -> dict:
    prompt = run.result.prompt_tokens
    completion = (len(run.result.token_ids) if run.completion_tokens is None
                  else run.completion_tokens)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _validated(schema, body: dict):
    """``body`` as the server's wire schema reads it; a bad field is an InvalidRequestError,
    as the server's 400."""
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or None
        raise InvalidRequestError(f"{first.get('msg', 'invalid request')} at '{param}'",
                                  param=param) from exc
