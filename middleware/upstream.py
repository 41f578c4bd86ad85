"""Upstream mode: what the semantic layer does not answer goes to an OpenAI-compatible server
(vLLM, llama.cpp's server, OpenAI itself) over httpx. A streamed answer passes through chunk by
chunk, the upstream's error statuses and bodies pass through as they are, and an upstream that
cannot be reached or does not answer in time is a 502 / 504 in OpenAI's error shape.

The transport is httpx's one-method seam (``httpx.BaseTransport.handle_request``). Documents
are put into the last user message as the local layout puts them (chunk_cache/layout.py):
chunk fusion needs the model's KV, so it is local-only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import Iterator

import httpx

from blendcache.config import UpstreamConfig
from blendcache.errors import ConfigError, UpstreamError
from blendcache.middleware.pipeline import Miss, Run

log = logging.getLogger("blendcache.upstream")


class Upstream:
    """A client of one upstream server; ``answer`` is the pipeline's :class:`Answerer`."""

    def __init__(self, config: UpstreamConfig, *, transport: httpx.BaseTransport | None = None):
        if not config.url:
            raise ConfigError("upstream mode needs an upstream URL ([upstream] url, --upstream)")
        self.config = config
        headers = {"authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        timeout = httpx.Timeout(config.read_timeout_s, connect=config.connect_timeout_s)
        self._client = httpx.Client(base_url=config.url.rstrip("/") + "/", headers=headers,
                                    timeout=timeout, transport=transport)

    def close(self) -> None:
        self._client.close()

    def model_for(self, requested: str) -> str:
        """The model name sent upstream for a request naming ``requested``."""
        return self.config.model or requested

    def models(self) -> list[str]:
        """The upstream's models (GET /models), or only the configured ``model``."""
        if self.config.model is not None:
            return [self.config.model]
        with self._translated():
            response = self._client.get("models")
        self._check(response)
        with self._malformed():
            return [str(m["id"]) for m in response.json()["data"]]

    def answer(self, miss: Miss, run: Run) -> Iterator[str]:
        """Send the request; an error status, timeout or refused connection raises here, before
        the response starts. Returns the answer's text as the upstream sends it."""
        run.info["path"] = "upstream"
        stream = miss.job.request.stream
        started = time.perf_counter()
        endpoint = "completions" if miss.job.raw_prompt else "chat/completions"
        request = self._client.build_request("POST", endpoint, json=self.request_body(miss))
        with self._translated():
            response = self._client.send(request, stream=stream)
            if response.status_code >= 400:
                with contextlib.closing(response):
                    response.read()  # the error body, not yet read from a stream
        self._check(response)
        if stream:
            return self._streamed(response, run, started)
        text = self._take_completion(response, run)
        run.info["ttft_ms"] = round((time.perf_counter() - started) * 1e3, 2)
        return iter([text] if text else [])

    def request_body(self, miss: Miss) -> dict:
        """The request as the upstream gets it: every OpenAI field the client sent (unknown
        ones too), the documents in the last user message (a text completion's ``prompt``:
        before its text), no ``blendcache`` object."""
        req = miss.job.request
        body = req.model_dump(exclude_none=True,
                              exclude={"messages", "documents", "blendcache"})
        body["model"] = self.model_for(req.model)
        messages = [m.model_dump(exclude_none=True) for m in req.messages]
        if miss.documents:
            last = max(i for i, m in enumerate(req.messages) if m.role == "user")
            messages[last]["content"] = "".join(miss.documents) + req.messages[last].text()
        if miss.job.raw_prompt:  # a text completion: its prompt is the one user message's text
            body["prompt"] = messages[-1]["content"]
        else:
            body["messages"] = messages
        if req.stream:
            # The usage chunk gives the answer's length, which the semantic cache keeps; the
            # client gets its own usage chunk only when it asked for one.
            body["stream_options"] = {"include_usage": True}
        return body

    # -- reading answers -----------------------------------------------------------------------

    def _take_completion(self, response: httpx.Response, run: Run) -> str:
        with self._malformed():
            data = response.json()
            choice = data["choices"][0]
            if "text" in choice:  # a text completion
                run.result.text = choice["text"] or ""
            else:
                message = choice["message"]
                self._refuse_tool_calls(message)
                run.result.text = message.get("content") or ""
            run.result.finish_reason = choice.get("finish_reason")
            _take_usage(data.get("usage"), run)
        return run.result.text

    def _streamed(self, response: httpx.Response, run: Run, started: float) -> Iterator[str]:
        pieces: list[str] = []
        try:
            with self._translated(), self._malformed():
                for chunk in _events(response.iter_lines()):
                    text = self._take_chunk(chunk, run)
                    if text:
                        if not pieces:
                            run.info["ttft_ms"] = round((time.perf_counter() - started) * 1e3, 2)
                        pieces.append(text)
                        yield text
        finally:
            response.close()
        run.result.text = "".join(pieces)
        if run.result.finish_reason is None:
            raise UpstreamError(f"the upstream at {self.config.url} ended its stream before "
                                "the answer's finish_reason", code="upstream_connection_error")

    def _take_chunk(self, chunk: dict, run: Run) -> str:
        """One event of the stream: its text, with the finish reason and usage noted."""
        if chunk.get("error"):
            raise UpstreamError(str(chunk["error"].get("message", chunk["error"])),
                                code="upstream_error", body=chunk)
        _take_usage(chunk.get("usage"), run)
        text = ""
        for choice in chunk.get("choices") or []:
            if "text" in choice:  # a text_completion chunk
                text += choice["text"] or ""
            else:
                delta = choice.get("delta") or {}
                self._refuse_tool_calls(delta)
                text += delta.get("content") or ""
            if choice.get("finish_reason"):
                run.result.finish_reason = choice["finish_reason"]
        return text

    def _refuse_tool_calls(self, message: dict) -> None:
        if message.get("tool_calls") or message.get("function_call"):
            raise UpstreamError(f"the upstream at {self.config.url} answered with tool calls, "
                                "which blendcache does not pass through",
                                code="upstream_tool_calls")

    # -- errors: httpx's exceptions and the upstream's error answers become UpstreamError here --

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        url = self.config.url
        try:
            yield
        except httpx.TimeoutException as exc:
            connecting = isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
            limit_s = self.config.connect_timeout_s if connecting else self.config.read_timeout_s
            log.warning("upstream %s: %r", url, exc)
            raise UpstreamError(f"the upstream at {url} did not answer within {limit_s:g} s",
                                status_code=504, code="upstream_timeout") from exc
        except httpx.ConnectError as exc:
            log.warning("upstream %s: %r", url, exc)
            raise UpstreamError(f"cannot connect to the upstream at {url}",
                                code="upstream_unreachable") from exc
        except httpx.TransportError as exc:
            log.warning("upstream %s: %r", url, exc)
            raise UpstreamError(f"the connection to the upstream at {url} broke off",
                                code="upstream_connection_error") from exc

    @contextlib.contextmanager
    def _malformed(self) -> Iterator[None]:
        try:
            yield
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise UpstreamError(f"the upstream at {self.config.url} answered with something "
                                "that is not an OpenAI completion",
                                code="upstream_bad_response") from exc

    def _check(self, response: httpx.Response) -> None:
        """An error status passes through with the upstream's body when that body has OpenAI's
        error shape, else with the body's text in ours."""
        if response.status_code < 400:
            return
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            message = str(body["error"].get("message", ""))
            raise UpstreamError(message, status_code=response.status_code, body=body)
        raise UpstreamError(f"the upstream at {self.config.url} answered "
                            f"{response.status_code}: {response.text[:1000]}",
                            status_code=response.status_code, code="upstream_error")


def _events(lines: Iterator[str]) -> Iterator[dict]:
    """The JSON payloads of a server-sent event stream, up to ``data: [DONE]``."""
    for line in lines:
        if not line.startswith("data:"):
            continue  # event separators, comments (": ping"), event names
        data = line[len("data:"):].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


def _take_usage(usage: dict | None, run: Run) -> None:
    if usage:
        run.result.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion = usage.get("completion_tokens")
        run.completion_tokens = None if completion is None else int(completion)


def error_payload(exc: UpstreamError) -> dict:
    """The error body a client gets: the upstream's own, or ours in OpenAI's shape."""
    if exc.body is not None:
        return exc.body
    return {"error": {"message": str(exc), "type": "upstream_error", "param": None,
                      "code": exc.code}}
