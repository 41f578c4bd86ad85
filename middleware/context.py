"""A request's retrieved context: its documents, where they go in the prompt, and their limits.

Documents come from the ``documents`` field (placed at the start of the last user message) or,
for apps that cannot add a field, out of a message's text split on ``[server]
document_separator`` (the separator rule, README "Documents in message text"):

- The carrier is the last user message when its text holds the separator at least twice, else
  the first system or developer message that holds it.
- Its text is split on the separator. The first piece stays message text, and so does the last
  in a user message (the question after the context); every piece in between (in a system
  message: every piece after the first) is a document, one chunk each.
- Each chunk is the separator followed by its piece, in place: the prompt the model sees is
  character for character the one the app sent.

So LangChain's stuff-documents chain (a system prompt "...context:\\n\\n{context}", documents
joined with "\\n\\n") and a user prompt "Context:\\n\\n{context}\\n\\nQuestion: ..." both work.
The ``documents`` field, when present, wins: the rule is not applied.
"""

from __future__ import annotations

from dataclasses import dataclass

from blendcache.chunk_cache.layout import DocumentSlot, format_document, last_user_message
from blendcache.config import ServerConfig
from blendcache.errors import InvalidRequestError


@dataclass(frozen=True)
class RequestContext:
    """What the prompt is built from: ``messages`` (a carrier's text without its documents),
    the ``documents`` (chunk texts in prompt order) and their ``slot`` (None: the start of the
    last user message, or no documents)."""

    messages: list[dict]
    documents: list[str]
    slot: DocumentSlot | None = None


def request_context(messages: list[dict], documents: list[str], server: ServerConfig, *,
                    split: bool = True) -> RequestContext:
    """The context of a request with ``messages`` (role/content dicts) and the texts of its
    ``documents`` field; raises InvalidRequestError (400) for documents over the limits or with
    nowhere to go. ``split``: apply the separator rule (only where chunks are made: a local
    model; an upstream gets the messages as sent)."""
    if documents:
        _check_count(len(documents), server, param="documents",
                     what=f"{len(documents)} documents")
        check_document_chars(documents, server)
        if last_user_message(messages) is None:
            raise InvalidRequestError("documents go at the start of the last user message, and "
                                      "messages has none", param="messages",
                                      code="no_user_message")
        return RequestContext(messages, [format_document(d) for d in documents])
    return split_documents(messages, server) if split else RequestContext(messages, [])


def split_documents(messages: list[dict], server: ServerConfig) -> RequestContext:
    """The separator rule (module docstring): ``messages`` with the documents cut out of their
    carrier, or ``messages`` as they are when the rule is off or no message carries any."""
    separator = server.document_separator
    carrier = _carrier(messages, separator) if separator else None
    if carrier is None:
        return RequestContext(messages, [])
    pieces = messages[carrier]["content"].split(separator)
    if messages[carrier]["role"] == "user":
        head, documents, text = pieces[0], pieces[1:-1], pieces[0] + separator + pieces[-1]
    else:
        head, documents, text = pieces[0], pieces[1:], pieces[0]
    where = f"messages.{carrier}.content"
    _check_count(len(documents), server, param=where,
                 what=f"{where} splits into {len(documents)} documents on [server] "
                      f"document_separator")
    check_document_chars(documents, server, carrier=where)
    stripped = [dict(m) for m in messages]
    stripped[carrier]["content"] = text
    return RequestContext(stripped, [separator + d for d in documents],
                          DocumentSlot(carrier, len(head)))


def _carrier(messages: list[dict], separator: str) -> int | None:
    last_user = last_user_message(messages)
    if last_user is not None and messages[last_user]["content"].count(separator) >= 2:
        return last_user
    for i, message in enumerate(messages):
        if message["role"] in ("system", "developer") and separator in message["content"]:
            return i
    return None


def _check_count(count: int, server: ServerConfig, *, param: str, what: str) -> None:
    if count > server.max_documents:
        raise InvalidRequestError(f"{what}: more than [server] max_documents "
                                  f"({server.max_documents})", param=param,
                                  code="too_many_documents")


def check_document_chars(documents: list[str], server: ServerConfig, *,
                         carrier: str | None = None) -> None:
    """400 for the first document longer than ``[server] max_document_chars``; ``carrier``
    names the message text they were split out of (None: the ``documents`` field)."""
    for i, text in enumerate(documents):
        if len(text) > server.max_document_chars:
            of = f" of {carrier}" if carrier else ""
            raise InvalidRequestError(
                f"document {i}{of} has {len(text)} characters: more than [server] "
                f"max_document_chars ({server.max_document_chars})",
                param=carrier or f"documents.{i}", code="document_too_long")
