"""ASGI middleware of the app: the request-body limit and the guard that turns any unexpected
exception into a 500 in OpenAI's shape. Pure ASGI (not ``BaseHTTPMiddleware``), so a body is
counted as it arrives and a streamed response passes through untouched."""

from __future__ import annotations

import logging

from fastapi.responses import JSONResponse

from blendcache.middleware.schemas import error_body, server_error_body

log = logging.getLogger("blendcache.app")


class BodyLimit:
    """413 in OpenAI's shape for a request body over ``max_bytes``: at once when Content-Length
    says so, else counted as it arrives (a chunked body has no Content-Length). The body is read
    before the app runs (FastAPI reads it whole anyway) and handed on as one message."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            return await self._refuse(scope, receive, send)
        parts, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            if size > self.max_bytes:
                return await self._refuse(scope, receive, send)
            more = message.get("more_body", False)
        body = b"".join(parts)

        async def replay():
            nonlocal body
            if body is None:
                return await receive()  # after the body: disconnects, for streamed responses
            message, body = {"type": "http.request", "body": body, "more_body": False}, None
            return message

        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send) -> None:
        body = error_body(f"request body exceeds {self.max_bytes} bytes", "invalid_request_error")
        await JSONResponse(body, 413)(scope, receive, send)


class ServerErrorGuard:
    """Any exception that escapes a request (a bug: errors.py's tree is handled by the error
    handlers) becomes a 500 in OpenAI's shape, logged once here with its traceback, instead of
    Starlette's plain-text 500 and uvicorn's second log. Once the response has started it can
    only be logged (streams end on an error event first: middleware/streaming.py)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            if not started:
                await JSONResponse(server_error_body(exc), 500)(scope, receive, send)
