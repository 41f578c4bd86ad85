"""The way of a chat request: parse -> (semantic lookup) -> (chunk fusion) -> model -> record.

GPTCache's pipeline of small steps, each a method here. ``start`` decides how the request will
be answered *before* any token is produced (so the cache header can go out with a streamed
response) and returns a :class:`Run` whose ``steps()`` yields the text as it comes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Iterator

from blendcache.config import Settings
from blendcache.errors import NotFoundError
from blendcache.middleware.schemas import ChatCompletionRequest
from blendcache.recompute.generate import Generation, SamplingParams, decode, prefill
from blendcache.recompute.model import Engine

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
    def __init__(self, settings: Settings, *, engine: Engine):
        self.settings = settings
        self.engine = engine
        self.model_id = engine.spec.name

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
        prompt_ids = self.engine.chat_prompt_ids(messages)
        run = Run(cache_status="miss", model=self.model_id)
        run._steps = self._generate(prompt_ids, self.sampling(req), run)
        return run

    def _generate(self, prompt_ids: list[int], params: SamplingParams, run: Run) -> Iterator[str]:
        started = time.perf_counter()
        with self.engine.lock:
            start = prefill(self.engine, prompt_ids)
            for step in decode(self.engine, start, params, run.result):
                if step.text:
                    yield step.text
        run.info.setdefault("ttft_ms", round(run.result.ttft_ms, 2))
        log.info("generated %d tokens in %.0f ms (prompt %d, %s)", len(run.result.token_ids),
                 (time.perf_counter() - started) * 1e3, run.result.prompt_tokens, run.cache_status)
