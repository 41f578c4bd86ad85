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


def build_layout(engine: Engine, messages: list[dict], documents: list[str]) -> PromptLayout:
    """Lay out ``messages`` with ``documents`` placed at the start of the last user message."""
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    marked = [dict(m) for m in messages]
    marked[last_user]["content"] = _SENTINEL + marked[last_user]["content"]
    text = engine.tokenizer.apply_chat_template(marked, add_generation_prompt=True, tokenize=False)
    before, _, after = text.partition(_SENTINEL)
    encode = engine.tokenizer.encode
    return PromptLayout(
        prefix=tuple(encode(before, add_special_tokens=False)),
        chunks=tuple(tuple(encode(doc, add_special_tokens=False)) for doc in documents),
        suffix=tuple(encode(after, add_special_tokens=False)),
    )
