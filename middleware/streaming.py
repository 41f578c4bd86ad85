"""Server-sent events that end cleanly. ``guarded``: an exception while streaming (the status
line is long gone) becomes one last event with OpenAI's error body, which the ``openai`` client
raises as an ``APIError``, instead of a connection cut mid-response; logged once, with its
traceback. ``EventStream``: the events generator is closed however the response ends."""

from __future__ import annotations

import json
import logging
from typing import Generator, Iterator

from fastapi.responses import StreamingResponse
from starlette.types import Send

from blendcache.errors import RequestError
from blendcache.middleware.schemas import error_body, server_error_body

log = logging.getLogger("blendcache.app")


class EventStream(StreamingResponse):
    """A streamed response whose events generator is closed however the response ends.

    NOTE: Starlette never closes a sync iterator whose client went away. The local decode holds
    the engine lock across its yields (an upstream stream holds its connection): left open, a
    dropped stream kept the lock, and with it every later request, until the garbage collector
    happened to free it. When this ``finally`` runs the generator is not executing (a
    cancelled thread-pool step is waited for)."""

    def __init__(self, events: Generator[str, None, None], **kwargs):
        super().__init__(events, **kwargs)
        self._events = events

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            self._events.close()


def sse(payload: dict | str) -> str:
    """One server-sent event: ``data: <payload>`` and a blank line."""
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n"


def guarded(events: Iterator[str]) -> Iterator[str]:
    """``events`` until one fails; then an error event, and the stream ends."""
    try:
        yield from events
    except RequestError as exc:
        yield sse(error_body(exc.message, exc.error_type, param=exc.param, code=exc.code))
    except Exception as exc:
        log.exception("unexpected error while streaming")
        yield sse(server_error_body(exc))
