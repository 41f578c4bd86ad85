"""POST /v1/completions: OpenAI's legacy text completions, JSON or server-sent events.

The prompt goes through the chat pipeline (semantic cache, documents, chunk fusion) as its one
user message, used as is without the chat template (``ChatJob.raw_prompt``).
"""

from __future__ import annotations

import time
from typing import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from blendcache.middleware.deps import PipelineDep, TenantDep
from blendcache.middleware.pipeline import ChatJob, Run
from blendcache.middleware.routes.chat import CACHE_HEADER, CATEGORY_HEADER
from blendcache.middleware.schemas import (CompletionRequest, TextCompletion, TextCompletionChunk,
                                           completion_responses)
from blendcache.middleware.streaming import EventStream, guarded, sse

router = APIRouter()


@router.post("/v1/completions",
             responses=completion_responses(TextCompletion, TextCompletionChunk))
def completions(body: CompletionRequest, pipeline: PipelineDep, tenant: TenantDep,
                request: Request):
    job = ChatJob(request=body.as_chat(), tenant=tenant, raw_prompt=True,
                  category_header=request.headers.get(CATEGORY_HEADER))
    run = pipeline.start(job)
    head = {"id": run.id, "object": "text_completion",
            "created": int(time.time()), "model": run.model}
    headers = {CACHE_HEADER: run.cache_status}
    deferred = BackgroundTask(run.after_response)  # runs once the response is sent
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return EventStream(guarded(_events(run, head, include_usage)),
                           media_type="text/event-stream", headers=headers, background=deferred)
    result = run.finish()
    payload = {**head, "choices": [_choice(result.text, result.finish_reason)],
               "usage": _usage(run), "blendcache": {"cache": run.cache_status, **run.info}}
    return JSONResponse(payload, headers=headers, background=deferred)


def _choice(text: str, finish_reason: str | None) -> dict:
    return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}


def _usage(run: Run) -> dict:
    prompt, completion = run.result.prompt_tokens, len(run.result.token_ids)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _events(run: Run, head: dict, include_usage: bool) -> Iterator[str]:
    """OpenAI's stream of a text completion: ``text_completion`` chunks of text, the last with
    the finish reason (and our ``blendcache`` object), the usage chunk when asked, [DONE]."""
    for text in run.steps():
        yield sse({**head, "choices": [_choice(text, None)]})
    yield sse({**head, "choices": [_choice("", run.result.finish_reason)],
               "blendcache": {"cache": run.cache_status, **run.info}})
    if include_usage:
        yield sse({**head, "choices": [], "usage": _usage(run)})
    yield sse("[DONE]")
