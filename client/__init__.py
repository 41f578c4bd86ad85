"""The Python SDK: ``Client`` / ``AsyncClient`` talk to a blendcache server over HTTP (httpx),
``BlendCache`` runs the same calls on a pipeline in this process. Every call returns a frozen
dataclass (``ChatResult``: the answer and how the cache produced it); a server's error is raised
as the package's error (errors.py): a 4xx as a ``RequestError`` subclass with the server's
message and code, a 5xx or an unreachable server as an ``UpstreamError``.

    from blendcache import Client

    with Client("http://127.0.0.1:8000", api_key="...") as bc:
        result = bc.chat("When was the Eiffel Tower completed?", documents=["..."])
        print(result.text, result.outcome, result.chunks_reused, result.ttft_ms)
"""

from blendcache.client.http import AsyncChatStream, AsyncClient, ChatStream, Client
from blendcache.client.local import BlendCache, LocalChatStream
from blendcache.client.results import (ChatResult, FeedbackResult, LookupResult, Stats,
                                       StreamEvent, TenantStats, Usage, WarmResult)

__all__ = [
    "AsyncChatStream",
    "AsyncClient",
    "BlendCache",
    "ChatResult",
    "ChatStream",
    "Client",
    "FeedbackResult",
    "LocalChatStream",
    "LookupResult",
    "Stats",
    "StreamEvent",
    "TenantStats",
    "Usage",
    "WarmResult",
]
