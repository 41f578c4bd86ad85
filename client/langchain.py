"""LangChain integration (langchain-core 1.x, the ``blendcache[langchain]`` extra).

``BlendCacheLLMCache``: a ``BaseCache`` over blendcache's semantic layer, for
``langchain_core.globals.set_llm_cache``: any LangChain model's answers, looked up by meaning
per tenant, category and context. ``ChatBlendCache``: a chat model served by blendcache that
sends a retriever's documents as ``documents``, so chunk fusion works inside an LCEL chain:

    chain = ({"context": retriever | format_documents, "question": RunnablePassthrough()}
             | prompt | ChatBlendCache(base_url="http://127.0.0.1:8000", api_key="..."))
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, Iterator, Sequence

try:
    from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
    from langchain_core.callbacks import CallbackManagerForLLMRun
    from langchain_core.documents import Document
    from langchain_core.language_models import BaseChatModel
    from langchain_core.load import loads
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ChatMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, Generation
except ImportError as exc:  # pragma: no cover: the extra is missing
    raise ImportError("blendcache.client.langchain needs langchain-core 1.x: "
                      "pip install 'blendcache[langchain]'") from exc

from pydantic import ConfigDict, Field, SecretStr

from blendcache.client import results
from blendcache.client.http import DEFAULT_URL, AsyncClient, Client

# NOTE: ASCII's record separator: it never occurs in retrieved text, and a prompt that carries
# it to another model reads as if it were not there.
DOCUMENT_SEPARATOR = "\x1e"
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool",
          "function": "tool"}


def format_documents(documents: Sequence[Document | str]) -> str:
    """A retriever's documents as prompt text that :class:`ChatBlendCache` takes apart again:
    each document's text set off by ``DOCUMENT_SEPARATOR``. Put it where the prompt template
    has ``{context}``."""
    texts = [d if isinstance(d, str) else d.page_content for d in documents]
    if not texts:
        return ""
    return DOCUMENT_SEPARATOR + DOCUMENT_SEPARATOR.join(texts) + DOCUMENT_SEPARATOR


def split_documents(messages: list[dict]) -> tuple[list[dict], list[str]]:
    """The messages without the documents ``format_documents`` put into their text, and those
    documents in order. A message with fewer than two separators is left as it is."""
    kept, documents = [], []
    for message in messages:
        pieces = (message["content"] or "").split(DOCUMENT_SEPARATOR)
        if len(pieces) < 3:
            kept.append(message)
            continue
        documents.extend(p for p in pieces[1:-1] if p.strip())
        kept.append({**message, "content": pieces[0] + pieces[-1]})
    return kept, documents


def openai_messages(messages: Sequence[BaseMessage]) -> list[dict]:
    """LangChain messages as OpenAI's ``{"role", "content"}`` (text content only)."""
    return [{"role": _role(m), "content": str(m.text)} for m in messages]


def _role(message: BaseMessage) -> str:
    if isinstance(message, ChatMessage):
        return message.role if message.role in ("system", "developer", "user", "assistant",
                                                "tool") else "user"
    return _ROLES.get(message.type, "user")


# -- the cache -----------------------------------------------------------------------------

class BlendCacheLLMCache(BaseCache):
    """``set_llm_cache(BlendCacheLLMCache(Client(url, api_key=...)))``: LangChain's model calls
    answered from blendcache's semantic cache.

    ``client``: a :class:`Client` or :class:`BlendCache` (anything with ``lookup``/``store``/
    ``invalidate``); ``async_client``: an :class:`AsyncClient` for ``alookup``/``aupdate``
    (without one they run ``client`` in a thread). ``category``: the semantic category of every
    answer (None: the server's choice); :meth:`clear` forgets that category's entries of the
    tenant (None: every entry of the tenant, so give the cache a category of its own).

    A chat prompt (LangChain passes it serialized) is read back into messages: the last human
    message is the query, the others are its context, so a repeat in another conversation
    misses where the category is context-sensitive. A text prompt is the query itself.
    Documents that :func:`format_documents` put into the text are taken out and sent as
    ``documents`` (their set is context too; the query is the question without them). The
    answers' namespace is a hash of LangChain's ``llm_string`` (the model and its parameters):
    other parameters never share answers.

    In a category with ``max_error_rate`` a lookup may be an exploration (a miss with an
    ``exploration_id``): the cache keeps the id (the last ``MAX_EXPLORATIONS``) until
    LangChain stores its model's answer to the same prompt, and sends it along, so the server
    compares the two answers and the category learns when to serve.
    """

    MAX_EXPLORATIONS = 1000

    def __init__(self, client: Any, *, category: str | None = None,
                 async_client: AsyncClient | None = None):
        self.client, self.async_client, self.category = client, async_client, category
        self._explorations: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        request = _CacheRequest.of(prompt, llm_string, self.category)
        if request is None:
            return None
        return self._found(prompt, llm_string, request,
                           self.client.lookup(request.query, **request.options))

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        request = _CacheRequest.of(prompt, llm_string, self.category)
        answer = _cacheable(return_val)
        exploration_id = self._explored(prompt, llm_string)
        if request is not None and answer is not None:
            self.client.store(request.query, answer, **request.options,
                              **_explored_option(exploration_id))

    def _found(self, prompt: str, llm_string: str, request: _CacheRequest,
               found: results.LookupResult) -> list[Generation] | None:
        if getattr(found, "exploration_id", None) is not None:
            with self._lock:
                self._explorations[(prompt, llm_string)] = found.exploration_id
                while len(self._explorations) > self.MAX_EXPLORATIONS:
                    self._explorations.popitem(last=False)
        return request.generations(found)

    def _explored(self, prompt: str, llm_string: str) -> str | None:
        with self._lock:
            return self._explorations.pop((prompt, llm_string), None)

    def clear(self, **kwargs: Any) -> None:
        self.client.invalidate(category=self.category)

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        if self.async_client is None:
            return await super().alookup(prompt, llm_string)
        request = _CacheRequest.of(prompt, llm_string, self.category)
        if request is None:
            return None
        return self._found(prompt, llm_string, request,
                           await self.async_client.lookup(request.query, **request.options))

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        if self.async_client is None:
            return await super().aupdate(prompt, llm_string, return_val)
        request = _CacheRequest.of(prompt, llm_string, self.category)
        answer = _cacheable(return_val)
        exploration_id = self._explored(prompt, llm_string)
        if request is not None and answer is not None:
            await self.async_client.store(request.query, answer, **request.options,
                                          **_explored_option(exploration_id))

    async def aclear(self, **kwargs: Any) -> None:
        if self.async_client is None:
            return await super().aclear(**kwargs)
        await self.async_client.invalidate(category=self.category)


def _explored_option(exploration_id: str | None) -> dict:
    """``store``'s exploration_id where there is one (a client of its own may not take it)."""
    return {"exploration_id": exploration_id} if exploration_id is not None else {}


def llm_namespace(llm_string: str) -> str:
    """The semantic cache's model name for the answers of one LangChain model and parameters."""
    return "langchain-" + hashlib.sha256(llm_string.encode()).hexdigest()[:32]


class _CacheRequest:
    """A LangChain cache call as blendcache's lookup/store take it."""

    def __init__(self, query: str, options: dict, chat: bool):
        self.query, self.options, self.chat = query, options, chat

    @classmethod
    def of(cls, prompt: str, llm_string: str, category: str | None) -> _CacheRequest | None:
        """None for a prompt without text to look up (blendcache refuses a blank query)."""
        messages = _chat_prompt(prompt)
        context: list[dict] = []
        if messages is None:
            kept, documents = split_documents([{"role": "user", "content": prompt}])
            query = kept[0]["content"]
        else:
            plain, documents = split_documents(openai_messages(messages))
            users = [i for i, m in enumerate(plain) if m["role"] == "user"]
            last = users[-1] if users else len(plain) - 1
            query, context = plain[last]["content"], plain[:last] + plain[last + 1:]
        if not query.strip():
            return None
        options = {"model": llm_namespace(llm_string), "category": category,
                   "context": context or None, "documents": documents or None}
        return cls(query, options, chat=messages is not None)

    def generations(self, found: results.LookupResult) -> list[Generation] | None:
        if not found.hit:
            return None
        if self.chat:
            return [ChatGeneration(message=AIMessage(content=found.answer))]
        return [Generation(text=found.answer)]


def _chat_prompt(prompt: str) -> list[BaseMessage] | None:
    """The messages of a chat model's prompt (``dumps(messages)``), None for a text prompt."""
    if not prompt.startswith("[{"):
        return None
    try:
        messages = loads(prompt, allowed_objects="messages")
    except Exception:  # noqa: BLE001: any text that is not serialized messages is text
        return None
    if isinstance(messages, list) and all(isinstance(m, BaseMessage) for m in messages):
        return messages
    return None


def _cacheable(return_val: RETURN_VAL_TYPE) -> str | None:
    """The one answer to keep: None for several generations, a blank one or a tool call
    (blendcache keeps text answers)."""
    if len(return_val) != 1:
        return None
    generation = return_val[0]
    message = getattr(generation, "message", None)
    if getattr(message, "tool_calls", None) or not generation.text.strip():
        return None
    return generation.text


# -- the chat model ------------------------------------------------------------------------

class ChatBlendCache(BaseChatModel):
    """A chat model served by a blendcache server (``base_url``, ``api_key``) or, with
    ``client``, by a :class:`Client` or in-process :class:`BlendCache`.

    Retrieved documents go as the request's ``documents`` field, so the server fuses their
    stored chunk KVs (a second question over the same documents is a ``blend``). They come
    from a ``documents=[...]`` call option (``llm.invoke(messages, documents=docs)`` or
    ``llm.bind(documents=docs)``), else from the message text, where
    :func:`format_documents` put them: this model splits them out on the client, so a plain
    LCEL chain ``{"context": retriever | format_documents, ...} | prompt | llm`` gets chunk
    fusion without a server setting, and each Document is exactly one chunk (the server's own
    ``document_separator`` rule would need configuring and guesses at boundaries). The server
    places the documents at the start of the last user message.

    Each answer's ``response_metadata["blendcache"]`` says how it was served: ``outcome``
    (semantic-hit, blend, miss), ``similarity``, ``chunks_reused``, ``chunks_total``,
    ``tokens_recomputed``, ``ttft_ms``, ``category``, ``entry_id``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    base_url: str = DEFAULT_URL
    api_key: SecretStr | None = None
    model: str = "default"
    category: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    client: Any = Field(default=None, exclude=True)  # a Client or BlendCache; None: base_url

    @property
    def _llm_type(self) -> str:
        return "blendcache"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "model": self.model, "category": self.category,
                "temperature": self.temperature, "max_tokens": self.max_tokens}

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        prompt, options = self._request(messages, stop, kwargs)
        if self.client is not None:
            return _chat_result(self.client.chat(prompt, **options))
        with Client(self.base_url, self._api_key()) as client:
            return _chat_result(client.chat(prompt, **options))

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        if self.client is not None:  # a synchronous client: in a thread
            return await super()._agenerate(messages, stop, run_manager, **kwargs)
        prompt, options = self._request(messages, stop, kwargs)
        async with AsyncClient(self.base_url, self._api_key()) as client:
            return _chat_result(await client.chat(prompt, **options))

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        prompt, options = self._request(messages, stop, kwargs)
        owned = None if self.client is not None else Client(self.base_url, self._api_key())
        client = self.client or owned
        try:
            with client.stream(prompt, **options) as stream:
                for event in stream:
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=event.text))
                    if run_manager is not None:
                        run_manager.on_llm_new_token(event.text, chunk=chunk)
                    yield chunk
                result = stream.result
            yield ChatGenerationChunk(message=AIMessageChunk(
                content="", response_metadata=_metadata(result), chunk_position="last",
                usage_metadata=_usage(result)))
        finally:
            if owned is not None:
                owned.close()

    def _api_key(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None

    def _request(self, messages: list[BaseMessage], stop: list[str] | None,
                 kwargs: dict) -> tuple[list[dict], dict]:
        """The SDK's prompt and options: documents from the ``documents`` option, else split
        out of the message text; other call options (``cache``, ``seed``,
        ``recompute_ratio``...) go to the request as they are."""
        plain, split = split_documents(openai_messages(messages))
        documents = kwargs.pop("documents", None)
        if documents is not None:
            documents = [d.page_content if isinstance(d, Document) else d for d in documents]
        options = {"model": self.model, "category": self.category,
                   "temperature": self.temperature, "max_tokens": self.max_tokens, "stop": stop,
                   "documents": documents if documents is not None else split or None, **kwargs}
        return plain, {k: v for k, v in options.items() if v is not None}


def _metadata(result: results.ChatResult) -> dict:
    return {"model_name": result.raw.get("model"), "finish_reason": result.finish_reason,
            "blendcache": {"outcome": result.outcome, "similarity": result.similarity,
                           "chunks_reused": result.chunks_reused,
                           "chunks_total": result.chunks_total,
                           "tokens_recomputed": result.tokens_recomputed,
                           "ttft_ms": result.ttft_ms, "category": result.category,
                           "entry_id": result.entry_id}}


def _usage(result: results.ChatResult) -> dict | None:
    if result.usage is None:
        return None
    return {"input_tokens": result.usage.prompt_tokens,
            "output_tokens": result.usage.completion_tokens,
            "total_tokens": result.usage.total_tokens}


def _chat_result(result: results.ChatResult) -> ChatResult:
    message = AIMessage(content=result.text, response_metadata=_metadata(result),
                        usage_metadata=_usage(result))
    return ChatResult(generations=[ChatGeneration(message=message)])


__all__ = ["BlendCacheLLMCache", "ChatBlendCache", "DOCUMENT_SEPARATOR", "format_documents",
           "llm_namespace", "openai_messages", "split_documents"]
