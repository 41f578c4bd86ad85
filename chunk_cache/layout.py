"""Prompt layout of a RAG request: ``[prefix] + chunk_1 + ... + chunk_n + [suffix]``.

The prefix is the chat template up to the documents (system prompt, user header), each chunk
one document, the suffix the question and the assistant header. Tokenising the pieces apart
keeps a chunk's token ids independent of its neighbours, so its KV can be stored and reused
anywhere in any prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from blendcache.recompute.model import Engine

_SENTINEL = "\u2063BLENDCACHE_DOCUMENTS\u2063"


@dataclass(frozen=True)
class PromptLayout:
    """Token ids of a RAG prompt's pieces. ``ids`` is their concatenation (the full prompt)."""

    prefix: tuple[int, ...]
    chunks: tuple[tuple[int, ...], ...]
    suffix: tuple[int, ...]

    @cached_property
    def ids(self) -> list[int]:
        out = list(self.prefix)
        for chunk in self.chunks:
            out.extend(chunk)
        out.extend(self.suffix)
        return out

    @cached_property
    def chunk_starts(self) -> tuple[int, ...]:
        """Position of each chunk's first token in the full prompt."""
        starts, pos = [], len(self.prefix)
        for chunk in self.chunks:
            starts.append(pos)
            pos += len(chunk)
        return tuple(starts)

    @property
    def context_len(self) -> int:
        """Tokens before the suffix (prefix + chunks)."""
        return len(self.prefix) + sum(len(c) for c in self.chunks)


def format_document(text: str, title: str | None = None) -> str:
    body = f"{title}\n{text.strip()}" if title else text.strip()
    return body + "\n\n"


@dataclass(frozen=True)
class DocumentSlot:
    """Where a prompt's documents go: at character ``offset`` of message ``message``'s text."""

    message: int
    offset: int = 0


def last_user_message(messages: list[dict]) -> int | None:
    """Index of the last user message (where documents go by default), None without one."""
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    return users[-1] if users else None


def build_layout(engine: Engine, messages: list[dict], documents: list[str], *,
                 slot: DocumentSlot | None = None, template: bool = True) -> PromptLayout:
    """Lay out ``messages`` with ``documents`` placed at ``slot`` (default: the start of the
    last user message). ``template=False``: the messages' text as is, without the chat template
    (a text completion's prompt); its prefix then gets the tokenizer's special tokens (BOS)."""
    if slot is None:
        last_user = last_user_message(messages)
        if last_user is None:
            raise ValueError("documents go at the start of the last user message: none given")
        slot = DocumentSlot(last_user)
    marked = [dict(m) for m in messages]
    content = marked[slot.message]["content"]
    marked[slot.message]["content"] = content[:slot.offset] + _SENTINEL + content[slot.offset:]
    if template:
        text = engine.tokenizer.apply_chat_template(marked, add_generation_prompt=True,
                                                    tokenize=False)
    else:
        text = "".join(m["content"] for m in marked)
    before, _, after = text.partition(_SENTINEL)
    encode = engine.tokenizer.encode
    return PromptLayout(
        prefix=tuple(encode(before, add_special_tokens=not template)),
        chunks=tuple(tuple(encode(doc, add_special_tokens=False)) for doc in documents),
        suffix=tuple(encode(after, add_special_tokens=False)),
    )


def text_prompt_ids(engine: Engine, text: str) -> list[int]:
    """Token ids of a text completion's prompt: ``text`` as is, with the tokenizer's special
    tokens (BOS), no chat template."""
    return list(engine.tokenizer.encode(text, add_special_tokens=True))
