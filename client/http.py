"""``Client`` and ``AsyncClient``: a blendcache server over HTTP (httpx). Both build their calls
and read their answers with client/wire.py; they differ only in how the bytes travel.

    with Client("http://127.0.0.1:8000", api_key="...") as bc:
        result = bc.chat("When was the Eiffel Tower completed?", documents=[...])
        result.outcome, result.chunks_reused, result.ttft_ms
"""

from __future__ import annotations

from typing import AsyncIterator, Iterator

import httpx

from blendcache.client import wire
from blendcache.client.results import (ChatResult, FeedbackResult, LookupResult, Stats,
                                       StreamEvent, WarmResult)
from blendcache.client.wire import Call, Prompt, StreamReader
from blendcache.errors import UpstreamError

DEFAULT_URL = "http://127.0.0.1:8000"
CACHE_HEADER = "x-blendcache-cache"


def _base_url(url: str) -> str:
    """The server's root: ``http://host:port`` and ``http://host:port/v1`` both work."""
    return url.rstrip("/").removesuffix("/v1")


def _headers(api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def _checked(response: httpx.Response) -> dict:
    """The JSON body of a 2xx; else the mapped error (``response`` must have been read)."""
    if response.is_success:
        return response.json()
    raise wire.error_from(response.status_code, wire.decode_body(response.content))


class _Options:
    """What both clients keep: the server, the default model, and the per-call options."""

    def __init__(self, base_url: str, api_key: str | None, model: str):
        self.base_url = _base_url(base_url)
        self.api_key = api_key
        self.model = model

    def _chat_call(self, prompt: Prompt, *, stream: bool = False, **options) -> Call:
        options.setdefault("model", self.model)
        return wire.chat_call(prompt, stream=stream, **options)

    def _semantic_call(self, action: str, query: str, **options) -> Call:
        options["model"] = options.get("model") or self.model
        return wire.semantic_call(action, query, **options)


def _started(reader: StreamReader | None) -> StreamReader:
    if reader is None:
        raise RuntimeError("the stream has not started: iterate it, or enter it with 'with'")
    return reader


class Client(_Options):
    """A blendcache server over HTTP. ``transport``: an httpx transport (tests, proxies)."""

    def __init__(self, base_url: str = DEFAULT_URL, api_key: str | None = None, *,
                 model: str = "default", timeout_s: float = 300.0,
                 transport: httpx.BaseTransport | None = None):
        super().__init__(base_url, api_key, model)
        self._http = httpx.Client(base_url=self.base_url, headers=_headers(api_key),
                                  timeout=timeout_s, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def chat(self, prompt: Prompt, **options) -> ChatResult:
        """Ask ``prompt`` (a question or messages). Options: ``documents`` (strings or
        ``{"id", "text"}``), ``system``, ``category``, ``cache`` (on/off/refresh),
        ``recompute_ratio``, ``max_tokens``, ``temperature``, ``model``; others go to the body
        as they are (``seed``, ``stop``)."""
        return wire.chat_result(self._send(self._chat_call(prompt, **options)))

    def stream(self, prompt: Prompt, **options) -> ChatStream:
        """As :meth:`chat`, streamed: iterate the returned stream for :class:`StreamEvent`
        pieces (inside ``with`` or not); ``.result`` once it is exhausted."""
        return ChatStream(self, self._chat_call(prompt, stream=True, **options))

    def warm(self, documents: list, *, system: str | None = None,
             messages: list[dict] | None = None) -> WarmResult:
        """Store the chunk KVs of ``documents`` ahead, for requests that carry ``system`` (or
        ``messages``) before their question."""
        body = self._send(wire.warm_call(documents, system=system, messages=messages))
        return WarmResult(body["documents"], body["chunks_stored"], body["chunks_already_stored"])

    def stats(self) -> Stats:
        return Stats.from_dict(self._send(wire.STATS_CALL))

    def invalidate(self, entry_id: int | None = None, *, category: str | None = None,
                   tenant: str | None = None) -> int:
        """Forget cached answers: entry ``entry_id`` (``ChatResult.entry_id``), else every
        entry of your tenant, or of one ``category``; ``tenant``: another tenant's (admin
        token). How many entries went."""
        call = wire.invalidate_call(entry_id, category=category, tenant=tenant)
        return self._send(call)["deleted"]

    def feedback(self, response_id: str, correct: bool) -> FeedbackResult:
        """Tell the cache whether the semantic hit of ``response_id`` (``ChatResult.id``) was
        right: it counts for or against that cached answer and its category (a category with
        ``max_error_rate`` serves by it). Once per response; NotFoundError for a response that
        was no served semantic hit of yours."""
        return FeedbackResult.from_dict(self._send(wire.feedback_call(response_id, correct)))

    def models(self) -> list[str]:
        return [m["id"] for m in self._send(wire.MODELS_CALL)["data"]]

    def lookup(self, query: str, *, model: str | None = None, category: str | None = None,
               context: list[dict] | None = None, documents: list | None = None) -> LookupResult:
        """The semantic cache's answer to ``query``, without a model call: as a chat request
        with messages ``context + [query]`` and ``documents`` would be looked up. ``model``:
        the answers' namespace (default: the client's model; a name the server does not serve
        is a namespace of its own)."""
        call = self._semantic_call("lookup", query, model=model, category=category,
                                   context=context, documents=documents)
        return LookupResult.from_dict(self._send(call))

    def store(self, query: str, answer: str, *, model: str | None = None,
              category: str | None = None, context: list[dict] | None = None,
              documents: list | None = None, exploration_id: str | None = None) -> int | None:
        """Keep ``answer`` (made elsewhere) for ``query``, keyed as :meth:`lookup`; its entry
        id (None: nothing stored, the server's semantic cache failed). ``exploration_id``: the
        lookup's (``LookupResult.exploration_id``) when ``answer`` is your model's answer to
        it: the server compares the two, which is how a category with ``max_error_rate``
        learns when to serve."""
        call = self._semantic_call("store", query, model=model, answer=answer,
                                   category=category, context=context, documents=documents,
                                   exploration_id=exploration_id)
        return self._send(call)["entry_id"]

    def _send(self, call: Call) -> dict:
        try:
            response = self._http.request(call.method, call.path, json=call.json,
                                          params=call.params)
        except httpx.TransportError as exc:
            raise wire.connection_error(self.base_url, exc,
                                        timeout=isinstance(exc, httpx.TimeoutException)) from exc
        return _checked(response)


class ChatStream:
    """A streamed answer: iterate for :class:`StreamEvent` pieces; ``outcome`` is known once
    the response began, ``result`` (a :class:`ChatResult`) once it ended."""

    def __init__(self, client: Client, call: Call):
        self._client, self._call = client, call
        self._response: httpx.Response | None = None
        self._reader: StreamReader | None = None

    def __enter__(self) -> ChatStream:
        http, call = self._client._http, self._call
        try:
            self._response = http.send(http.build_request(call.method, call.path, json=call.json),
                                       stream=True)
        except httpx.TransportError as exc:
            raise wire.connection_error(self._client.base_url, exc,
                                        timeout=isinstance(exc, httpx.TimeoutException)) from exc
        if not self._response.is_success:
            self._response.read()
            self.close()
            _checked(self._response)
        self._reader = StreamReader(self._response.headers[CACHE_HEADER])
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._response is not None:
            self._response.close()

    @property
    def outcome(self) -> str:
        return _started(self._reader).outcome

    @property
    def result(self) -> ChatResult:
        return _started(self._reader).result()

    def __iter__(self) -> Iterator[StreamEvent]:
        owned = self._response is None  # iterated without 'with': closed here
        if owned:
            self.__enter__()
        try:
            for line in self._response.iter_lines():
                event = self._reader.feed(line)
                if event is not None:
                    yield event
        except httpx.TransportError as exc:
            raise UpstreamError(f"the stream broke off: {exc}", code="connection_error") from exc
        finally:
            if owned:
                self.close()


class AsyncClient(_Options):
    """:class:`Client` for asyncio: the same methods, awaited (``stream`` returns an
    :class:`AsyncChatStream`, used with ``async with`` / ``async for``)."""

    def __init__(self, base_url: str = DEFAULT_URL, api_key: str | None = None, *,
                 model: str = "default", timeout_s: float = 300.0,
                 transport: httpx.AsyncBaseTransport | None = None):
        super().__init__(base_url, api_key, model)
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=_headers(api_key),
                                       timeout=timeout_s, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def chat(self, prompt: Prompt, **options) -> ChatResult:
        return wire.chat_result(await self._send(self._chat_call(prompt, **options)))

    def stream(self, prompt: Prompt, **options) -> AsyncChatStream:
        return AsyncChatStream(self, self._chat_call(prompt, stream=True, **options))

    async def warm(self, documents: list, *, system: str | None = None,
                   messages: list[dict] | None = None) -> WarmResult:
        body = await self._send(wire.warm_call(documents, system=system, messages=messages))
        return WarmResult(body["documents"], body["chunks_stored"], body["chunks_already_stored"])

    async def stats(self) -> Stats:
        return Stats.from_dict(await self._send(wire.STATS_CALL))

    async def invalidate(self, entry_id: int | None = None, *, category: str | None = None,
                         tenant: str | None = None) -> int:
        call = wire.invalidate_call(entry_id, category=category, tenant=tenant)
        return (await self._send(call))["deleted"]

    async def feedback(self, response_id: str, correct: bool) -> FeedbackResult:
        return FeedbackResult.from_dict(
            await self._send(wire.feedback_call(response_id, correct)))

    async def models(self) -> list[str]:
        return [m["id"] for m in (await self._send(wire.MODELS_CALL))["data"]]

    async def lookup(self, query: str, *, model: str | None = None,
                     category: str | None = None, context: list[dict] | None = None,
                     documents: list | None = None) -> LookupResult:
        call = self._semantic_call("lookup", query, model=model, category=category,
                                   context=context, documents=documents)
        return LookupResult.from_dict(await self._send(call))

    async def store(self, query: str, answer: str, *, model: str | None = None,
                    category: str | None = None, context: list[dict] | None = None,
                    documents: list | None = None, exploration_id: str | None = None
                    ) -> int | None:
        call = self._semantic_call("store", query, model=model, answer=answer,
                                   category=category, context=context, documents=documents,
                                   exploration_id=exploration_id)
        return (await self._send(call))["entry_id"]

    async def _send(self, call: Call) -> dict:
        try:
            response = await self._http.request(call.method, call.path, json=call.json,
                                                params=call.params)
        except httpx.TransportError as exc:
            raise wire.connection_error(self.base_url, exc,
                                        timeout=isinstance(exc, httpx.TimeoutException)) from exc
        return _checked(response)


class AsyncChatStream:
    """:class:`ChatStream` for asyncio."""

    def __init__(self, client: AsyncClient, call: Call):
        self._client, self._call = client, call
        self._response: httpx.Response | None = None
        self._reader: StreamReader | None = None

    async def __aenter__(self) -> AsyncChatStream:
        http, call = self._client._http, self._call
        try:
            self._response = await http.send(
                http.build_request(call.method, call.path, json=call.json), stream=True)
        except httpx.TransportError as exc:
            raise wire.connection_error(self._client.base_url, exc,
                                        timeout=isinstance(exc, httpx.TimeoutException)) from exc
        if not self._response.is_success:
            await self._response.aread()
            await self.aclose()
            _checked(self._response)
        self._reader = StreamReader(self._response.headers[CACHE_HEADER])
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._response is not None:
            await self._response.aclose()

    @property
    def outcome(self) -> str:
        return _started(self._reader).outcome

    @property
    def result(self) -> ChatResult:
        return _started(self._reader).result()

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        owned = self._response is None
        if owned:
            await self.__aenter__()
        try:
            async for line in self._response.aiter_lines():
                event = self._reader.feed(line)
                if event is not None:
                    yield event
        except httpx.TransportError as exc:
            raise UpstreamError(f"the stream broke off: {exc}", code="connection_error") from exc
        finally:
            if owned:
                await self.aclose()
