"""Chunk keys: sha256 of (model fingerprint, the prefix the chunk was prefilled after, its token ids).

The same text under another model, tokenizer, dtype or prefix is a different chunk: its KV differs.
"""

from __future__ import annotations

import hashlib
from array import array


def _ids_bytes(ids) -> bytes:
    return array("q", ids).tobytes()  # int64, fixed width: no ambiguity between sequences


def chunk_key(model_fingerprint: str, token_ids, *, prefix_ids=()) -> str:
    h = hashlib.sha256()
    h.update(b"blendcache-chunk-v1\0")
    h.update(model_fingerprint.encode())
    h.update(b"\0prefix\0")
    h.update(len(prefix_ids).to_bytes(8, "little"))
    h.update(_ids_bytes(prefix_ids))
    h.update(b"\0chunk\0")
    h.update(_ids_bytes(token_ids))
    return h.hexdigest()


def prefix_key(model_fingerprint: str, prefix_ids) -> str:
    """The shared prefix is stored like a chunk prefilled after nothing."""
    return chunk_key(model_fingerprint, prefix_ids, prefix_ids=())
