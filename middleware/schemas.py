"""Wire schemas of the OpenAI-compatible API (requests in, responses out).

Kept apart from database rows. Unknown top-level fields are accepted and ignored, as a drop-in
proxy must tolerate what OpenAI clients send; fields we cannot honour (``n > 1``) are refused.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr,
                      WithJsonSchema, field_validator)
from pydantic_core import PydanticCustomError


# OpenAI's seed is an int64, and so is torch's generator seed.
Int64 = Annotated[StrictInt, Field(ge=-2**63, le=2**63 - 1)]


class TextPart(BaseModel):
    type: Literal["text"]
    text: StrictStr


# JSON Schema of a text that is not blank, as a string or as text parts (the schema says what the
# validators check, so generated clients and requests get it right).
_TEXT = {"type": "string", "pattern": "\\S"}
_SOME_TEXT = {"anyOf": [_TEXT, {"type": "array", "contains": {
    "required": ["text"], "properties": {"text": _TEXT}}}]}


def _only(schema: dict, description: str) -> WithJsonSchema:
    return WithJsonSchema({**schema, "description": description})


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: StrictStr | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


def plain_messages(messages: list[ChatMessage]) -> list[dict]:
    """``{"role", "content"}`` dicts with the text of each message, as the chat template takes."""
    return [{"role": m.role, "content": m.text()} for m in messages]


class DocumentObject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: StrictStr | None = None
    text: StrictStr


class BlendcacheOptions(BaseModel):
    """The optional ``blendcache`` object of a request."""

    model_config = ConfigDict(extra="forbid")

    category: StrictStr | None = None
    cache: Literal["on", "off", "refresh"] = "on"
    recompute_ratio: Annotated[float, Field(ge=0.0, le=1.0)] | None = None


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


class _SharedFields(BaseModel):
    """The fields chat and text completions share: streaming, stops, seed, and ours
    (``documents``, ``blendcache``). OpenAI fields we do not know pass through (extra)."""

    model_config = ConfigDict(extra="allow")

    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    stop: StrictStr | Annotated[list[StrictStr], Field(max_length=4)] | None = None
    seed: Int64 | None = None
    user: StrictStr | None = None
    documents: list[StrictStr | DocumentObject] | None = None
    blendcache: BlendcacheOptions | None = None


class ChatCompletionRequest(_SharedFields):
    model: StrictStr
    messages: Annotated[list[ChatMessage], Field(min_length=1, json_schema_extra={
        "contains": {"required": ["content"], "properties": {"content": _SOME_TEXT}}})]
    max_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    n: Annotated[StrictInt, Field(ge=1, le=1)] | None = None

    @field_validator("messages")
    @classmethod
    def _last_not_empty(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if all(not m.text().strip() for m in messages):
            raise ValueError("every message is empty")
        return messages

    def stop_strings(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def document_texts(self) -> list[tuple[str | None, str]]:
        docs = self.documents or []
        return [(None, d) if isinstance(d, str) else (d.id, d.text) for d in docs]


# OpenAI's default max_tokens of a text completion (vLLM's too); chat's is [model] max_new_tokens.
COMPLETION_DEFAULT_MAX_TOKENS = 16


_ONE = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 1}, {"type": "null"}]}


def _unsupported(message: str) -> PydanticCustomError:
    return PydanticCustomError("unsupported", message)


class CompletionRequest(_SharedFields):
    """POST /v1/completions, OpenAI's legacy text completions: one prompt, continued as is (no
    chat template). The fields a completion cannot honour here are refused, each by name."""

    model: StrictStr
    # OpenAI's four forms of a prompt are parsed, the unsupported ones refused by name.
    prompt: Annotated[StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]],
                      _only({"anyOf": [_TEXT, {"type": "array", "items": _TEXT, "minItems": 1,
                                               "maxItems": 1}]},
                            "one prompt: a string, or a list of one string")]
    max_tokens: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None, description=f"default {COMPLETION_DEFAULT_MAX_TOKENS}, as OpenAI's")
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    n: Annotated[StrictInt | None, _only(_ONE, "only 1")] = None
    best_of: Annotated[StrictInt | None, _only(_ONE, "only 1")] = None
    echo: Annotated[StrictBool, _only({"type": "boolean", "enum": [False]}, "only false")] = False
    logprobs: Annotated[StrictInt | None, _only({"type": "null"}, "only null")] = None
    suffix: Annotated[StrictStr | None, _only({"anyOf": [{"type": "string", "maxLength": 0},
                                                         {"type": "null"}]},
                                              "only null or empty")] = None

    @field_validator("prompt")
    @classmethod
    def _one_text_prompt(cls, prompt):
        if isinstance(prompt, list):
            if any(not isinstance(p, str) for p in prompt):
                raise _unsupported("token-id prompts are not supported: send the prompt as text")
            if len(prompt) != 1:
                raise _unsupported(f"a batch of {len(prompt)} prompts is not supported: send "
                                   f"one prompt per request")
            prompt = prompt[0]
        if not prompt.strip():
            raise _unsupported("the prompt is empty")
        return prompt

    @field_validator("n", "best_of")
    @classmethod
    def _one_completion(cls, value, info):
        if value not in (None, 1):
            raise _unsupported(f"{info.field_name} > 1 is not supported: one completion per "
                               f"request")
        return value

    @field_validator("echo")
    @classmethod
    def _no_echo(cls, echo):
        if echo:
            raise _unsupported("echo is not supported: the completion never repeats the prompt")
        return echo

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, logprobs):
        if logprobs is not None:
            raise _unsupported("logprobs are not supported")
        return logprobs

    @field_validator("suffix")
    @classmethod
    def _no_suffix(cls, suffix):
        if suffix:
            raise _unsupported("suffix (insertion) is not supported")
        return suffix

    def as_chat(self) -> ChatCompletionRequest:
        """The request as the pipeline takes it: the prompt as the one user message (which the
        pipeline uses as is, without the chat template: ``ChatJob.raw_prompt``)."""
        return ChatCompletionRequest(
            model=self.model, messages=[ChatMessage(role="user", content=self.prompt)],
            max_tokens=self.max_tokens or COMPLETION_DEFAULT_MAX_TOKENS,
            temperature=self.temperature, top_p=self.top_p, stream=self.stream,
            stream_options=self.stream_options, stop=self.stop, seed=self.seed, user=self.user,
            documents=self.documents, blendcache=self.blendcache)


class DocumentsRequest(BaseModel):
    """POST /v1/blendcache/documents: chunk KVs to precompute. ``messages`` are what the later
    requests carry before their question (a system prompt, earlier turns); none: no system
    prompt."""

    model_config = ConfigDict(extra="forbid")

    model: StrictStr | None = None
    messages: list[ChatMessage] = []
    documents: Annotated[list[StrictStr | DocumentObject], Field(min_length=1)]

    def document_texts(self) -> list[str]:
        return [d if isinstance(d, str) else d.text for d in self.documents]


# -- responses (documented in the OpenAPI schema; the routes build them as dicts) -----------

FinishReason = Literal["stop", "length"]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class BlendcacheInfo(BaseModel):
    """The response's ``blendcache`` object: how the request was answered."""

    cache: Literal["miss", "blend", "semantic-hit"]
    ttft_ms: float
    category: str | None = None  # with the semantic cache on
    similarity: float | None = None  # semantic hits
    chunks_reused: int | None = None  # requests with documents
    chunks_total: int | None = None
    chunks_deferred: int | None = None
    recompute_ratio: float | None = None
    tokens_recomputed: int | None = None
    # The semantic cache entry that served the answer, or that now holds it (the answer was
    # stored): DELETE /v1/blendcache/entries/{entry_id} forgets it.
    entry_id: int | None = None
    # A served semantic hit: the id to send to POST /v1/blendcache/feedback (the response's).
    feedback_id: str | None = None
    # The error-rate guarantee explored a cached candidate: the model answered, and its answer
    # is compared with the cached one after the response.
    explored: bool | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: FinishReason | None
    logprobs: None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    blendcache: BlendcacheInfo


class CompletionChoice(BaseModel):
    text: str
    index: int
    logprobs: None
    finish_reason: FinishReason | None


class TextCompletion(BaseModel):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    blendcache: BlendcacheInfo


class ChatDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    index: int
    delta: ChatDelta
    finish_reason: FinishReason | None
    logprobs: None


class ChatCompletionChunk(BaseModel):
    """One event of a streamed chat completion. The last chunk with choices carries the finish
    reason and ``blendcache``; with ``stream_options.include_usage`` a last one has no choices
    and the usage."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    blendcache: BlendcacheInfo | None = None


class TextCompletionChunk(BaseModel):
    """One event of a streamed text completion, laid out as ``ChatCompletionChunk``."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    blendcache: BlendcacheInfo | None = None


# The chunks of streamed responses: the OpenAPI schema lists them beside the routes' models.
STREAM_CHUNKS = (ChatCompletionChunk, TextCompletionChunk)


class ModelObject(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelObject]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


def error_body(message: str, error_type: str, *, param: str | None = None,
               code: str | None = None) -> dict:
    """OpenAI's error shape (``ErrorResponse``)."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def server_error_body(exc: BaseException) -> dict:
    """The body of a 500 for an unexpected exception: its class, not its text (which may carry
    internals)."""
    return error_body(f"internal server error ({type(exc).__name__}); the server log has the "
                      f"details", "server_error")


_ERROR_DESCRIPTIONS = {
    400: "Invalid request: not JSON, a field of the wrong type or value, a limit exceeded "
         "([server] max_documents, max_document_chars, the model's context window)",
    401: "Missing or unknown API key",
    404: "Unknown model, category or cache entry",
    413: "Request body over [server] max_body_bytes",
    500: "Unexpected server failure (logged with its traceback)",
    503: "Not ready: the message says why",
}


def error_responses(*status_codes: int) -> dict[int | str, dict]:
    """OpenAPI ``responses`` of a route: each status code with OpenAI's error body."""
    return {code: {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS[code]}
            for code in status_codes}


def completion_responses(model: type[BaseModel],
                         chunk: type[BaseModel]) -> dict[int | str, dict]:
    """OpenAPI ``responses`` of a completion route: ``model`` as JSON, or server-sent events of
    ``chunk`` (``stream: true``), with the cache header; then its errors."""
    header = {"description": "how it was answered: miss, blend (chunk KVs reused) or "
                             "semantic-hit", "schema": {"type": "string"}}
    return {200: {"model": model, "headers": {"x-blendcache-cache": header},
                  "content": {"text/event-stream": {"schema": _event_schema(chunk)}},
                  "description": "The completion (JSON), or its chunks as server-sent events "
                                 "when the request streams"},
            **error_responses(400, 401, 404, 413, 500)}


def _event_schema(chunk: type[BaseModel]) -> dict:
    """One server-sent event (OpenAPI 3.1: a stream's schema is its events'): its data is a
    ``chunk`` as JSON, OpenAI's error body (a failure mid-stream) or ``[DONE]``."""
    as_json = {"type": "string", "contentMediaType": "application/json", "contentSchema": {
        "anyOf": [{"$ref": f"#/components/schemas/{chunk.__name__}"},
                  {"$ref": "#/components/schemas/ErrorResponse"}]}}
    return {"type": "object", "required": ["data"],
            "properties": {"data": {"anyOf": [{"const": "[DONE]"}, as_json]}}}
