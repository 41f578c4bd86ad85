"""The SDK's wire format without I/O: request bodies, responses -> results, error bodies ->
the package's error tree, server-sent events -> stream events. ``Client``, ``AsyncClient`` and
``BlendCache`` share all of it, so they differ only in how bytes travel."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from blendcache.client.results import ChatResult, Outcome, StreamEvent
from blendcache.errors import (AuthenticationError, BlendCacheError, InvalidRequestError,
                               NotFoundError, RequestError, UpstreamError)

Prompt = str | list[dict]  # a question, or OpenAI-style messages


@dataclass(frozen=True)
class Call:
    """One HTTP call: method, path under the base URL, JSON body, query parameters."""

    method: str
    path: str
    json: dict | None = None
    params: dict | None = None


def messages_of(prompt: Prompt, system: str | None = None) -> list[dict]:
    """``prompt`` as chat messages: a string is one user message, after ``system`` if given."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    return ([{"role": "system", "content": system}] if system else []) + messages


def chat_body(prompt: Prompt, *, model: str, system: str | None = None,
              documents: list | None = None, category: str | None = None, cache: str = "on",
              recompute_ratio: float | None = None, max_tokens: int | None = None,
              temperature: float | None = None, stream: bool = False, **extra) -> dict:
    """The body of POST /v1/chat/completions (``extra``: any other OpenAI field, e.g. seed)."""
    options = {"cache": cache, "category": category, "recompute_ratio": recompute_ratio}
    body = {"model": model, "messages": messages_of(prompt, system),
            "blendcache": {k: v for k, v in options.items() if v is not None},
            "max_tokens": max_tokens, "temperature": temperature, "documents": documents, **extra}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return {k: v for k, v in body.items() if v is not None}


def chat_call(prompt: Prompt, **options) -> Call:
    return Call("POST", "/v1/chat/completions", chat_body(prompt, **options))


def warm_call(documents: list, *, system: str | None = None,
              messages: list[dict] | None = None) -> Call:
    """POST /v1/blendcache/documents: ``messages`` (or a ``system`` prompt) are what the
    requests will carry before their question."""
    before = list(messages or []) or messages_of([], system)
    return Call("POST", "/v1/blendcache/documents", {"messages": before, "documents": documents})


def semantic_call(action: str, query: str, *, model: str, answer: str | None = None,
                  category: str | None = None, context: list[dict] | None = None,
                  documents: list | None = None, exploration_id: str | None = None) -> Call:
    """POST /v1/blendcache/lookup or /store (``action``): ``context``, the messages before
    the query, and ``documents`` are what the answer depends on, as in a chat request;
    ``exploration_id`` (store): the lookup's, when ``answer`` is the caller's answer to it."""
    body = {"query": query, "model": model, "answer": answer, "category": category,
            "context": context, "documents": documents, "exploration_id": exploration_id}
    return Call("POST", f"/v1/blendcache/{action}", {k: v for k, v in body.items()
                                                     if v is not None})


def invalidate_call(entry_id: int | None = None, *, category: str | None = None,
                    tenant: str | None = None) -> Call:
    """DELETE one entry by id, or every entry of the tenant (of ``category``)."""
    if entry_id is not None:
        if category is not None or tenant is not None:
            raise ValueError("invalidate: an entry id, or category/tenant, not both")
        return Call("DELETE", f"/v1/blendcache/entries/{int(entry_id)}")
    params = {k: v for k, v in (("category", category), ("tenant", tenant)) if v is not None}
    return Call("DELETE", "/v1/blendcache/entries", params=params)


def feedback_call(response_id: str, correct: bool) -> Call:
    """POST /v1/blendcache/feedback: was the served semantic hit ``response_id`` right?"""
    if not isinstance(correct, bool):
        raise TypeError(f"feedback: correct must be True or False, got {correct!r}")
    return Call("POST", "/v1/blendcache/feedback", {"id": str(response_id), "correct": correct})


STATS_CALL = Call("GET", "/v1/blendcache/stats")
MODELS_CALL = Call("GET", "/v1/models")


def chat_result(payload: dict) -> ChatResult:
    """A chat completion (the JSON body) as a :class:`ChatResult`."""
    choice = payload["choices"][0]
    return ChatResult.from_response(choice["message"]["content"], payload["blendcache"],
                                    usage=payload.get("usage"),
                                    finish_reason=choice.get("finish_reason"), raw=payload)


# -- errors --------------------------------------------------------------------------------

_BY_STATUS = {400: InvalidRequestError, 401: AuthenticationError, 404: NotFoundError}
_BY_TYPE = {cls.error_type: cls for cls in _BY_STATUS.values()}


def error_from(status: int | None, body: Any) -> BlendCacheError:
    """The server's error response as the package's error: a 4xx is the
    :class:`RequestError` subclass of its status, else of OpenAI's error type (a stream's error
    event has no status), with the server's message, param, code and status; a 5xx an
    :class:`UpstreamError` with the status and body."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"message": f"HTTP {status}: {str(body)[:200]}"}
    message, code = str(error.get("message")), error.get("code")
    kind = error.get("type")
    if (status is not None and 400 <= status < 500) or (status is None and kind in _BY_TYPE):
        cls = _BY_STATUS.get(status) or _BY_TYPE.get(kind, RequestError)
        exc = cls(message, param=error.get("param"), code=code)
        if status is not None and exc.status_code != status:
            exc.status_code = status  # e.g. 413: a RequestError with the server's status
        return exc
    return UpstreamError(message, status_code=status or 500, code=code,
                         body=body if isinstance(body, dict) else None)


def decode_body(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")


def connection_error(base_url: str, exc: Exception, *, timeout: bool) -> UpstreamError:
    """A server that cannot be reached (502) or did not answer in time (504)."""
    what = "did not answer in time" if timeout else "cannot be reached"
    return UpstreamError(f"the blendcache server at {base_url} {what}: {exc}",
                         status_code=504 if timeout else 502,
                         code="timeout" if timeout else "connection_error")


# -- streams -------------------------------------------------------------------------------

@dataclass
class StreamReader:
    """Reads the server-sent events of a streamed chat completion line by line: each piece of
    text becomes a :class:`StreamEvent`; once ``[DONE]`` came, ``result()`` is the whole
    answer. An error event raises the mapped error."""

    outcome: Outcome
    pieces: list[str] = field(default_factory=list)
    last: dict | None = None  # the chunk with the finish reason and the blendcache object
    usage: dict | None = None
    done: bool = False

    def feed(self, line: str) -> StreamEvent | None:
        if not line.startswith("data: "):
            return None
        data = line[len("data: "):]
        if data == "[DONE]":
            self.done = True
            return None
        return self.feed_payload(json.loads(data))

    def feed_payload(self, payload: dict) -> StreamEvent | None:
        if "error" in payload:
            raise error_from(None, payload)
        if payload.get("usage"):
            self.usage = payload["usage"]
        if "blendcache" in payload:
            self.last = payload
        text = "".join(c.get("delta", {}).get("content") or "" for c in payload["choices"])
        if not text:
            return None
        self.pieces.append(text)
        return StreamEvent(text, self.outcome)

    def result(self) -> ChatResult:
        if self.last is None:
            raise UpstreamError("the stream ended before its last chunk", code="incomplete")
        finish_reason = self.last["choices"][0].get("finish_reason")
        return ChatResult.from_response("".join(self.pieces), self.last["blendcache"],
                                        usage=self.usage, finish_reason=finish_reason,
                                        raw=self.last)
