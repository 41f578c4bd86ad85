"""Wire schemas of the OpenAI-compatible API (requests in, responses out).

Kept apart from database rows. Unknown top-level fields are accepted and ignored, as a drop-in
proxy must tolerate what OpenAI clients send; fields we cannot honour (``n > 1``) are refused.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator


class TextPart(BaseModel):
    type: Literal["text"]
    text: StrictStr


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


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: StrictStr
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    n: Annotated[StrictInt, Field(ge=1, le=1)] | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    stop: StrictStr | Annotated[list[StrictStr], Field(max_length=4)] | None = None
    seed: StrictInt | None = None
    user: StrictStr | None = None
    documents: list[StrictStr | DocumentObject] | None = None
    blendcache: BlendcacheOptions | None = None

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
