"""POST /v1/chat/completions: OpenAI's chat schema, JSON or server-sent events."""

from __future__ import annotations

import json
import time
from typing import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from blendcache.errors import UpstreamError
from blendcache.middleware.deps import PipelineDep, TenantDep
from blendcache.middleware.pipeline import ChatJob, Run
from blendcache.middleware.schemas import (ChatCompletion, ChatCompletionChunk,
                                           ChatCompletionRequest, completion_responses)
from blendcache.middleware.streaming import EventStream, guarded
from blendcache.middleware.upstream import error_payload

router = APIRouter()
CACHE_HEADER = "x-blendcache-cache"
CATEGORY_HEADER = "x-blendcache-category"


@router.post("/v1/chat/completions", responses=completion_responses(ChatCompletion,
                                                                          ChatCompletionChunk))
def chat_completions(body: ChatCompletionRequest, pipeline: PipelineDep, tenant: TenantDep,
                     request: Request):
    category = request.headers.get(CATEGORY_HEADER)
    run = pipeline.start(ChatJob(request=body, tenant=tenant, category_header=category))
    completion_id = run.id
    created = int(time.time())
    headers = {CACHE_HEADER: run.cache_status}
    deferred = BackgroundTask(run.after_response)  # runs once the response is sent
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = guarded(_sse(run, completion_id, created, include_usage))
        return EventStream(events, media_type="text/event-stream", headers=headers,
                           background=deferred)
    result = run.finish()
    payload = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": run.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": result.text},
            "finish_reason": result.finish_reason,
            "logprobs": None,
        }],
        "usage": _usage(run),
        "blendcache": {"cache": run.cache_status, **run.info},
    }
    return JSONResponse(payload, headers=headers, background=deferred)


def _usage(run: Run) -> dict:
    prompt = run.result.prompt_tokens
    completion = (len(run.result.token_ids) if run.completion_tokens is None
                  else run.completion_tokens)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _sse(run: Run, completion_id: str, created: int, include_usage: bool) -> Iterator[str]:
    def chunk(delta: dict, finish_reason: str | None = None, **extra) -> str:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                "model": run.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                             "logprobs": None}], **extra}
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        for text in run.steps():
            yield chunk({"content": text})
    except UpstreamError as exc:
        # NOTE: the response has begun (200 sent), so the failure goes out as an event in
        # OpenAI's error shape, which the openai client raises as an APIError.
        yield f"data: {json.dumps(error_payload(exc))}\n\n"
        return
    yield chunk({}, run.result.finish_reason, blendcache={"cache": run.cache_status, **run.info})
    if include_usage:
        usage = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                 "model": run.model, "choices": [], "usage": _usage(run)}
        yield f"data: {json.dumps(usage)}\n\n"
    yield "data: [DONE]\n\n"
