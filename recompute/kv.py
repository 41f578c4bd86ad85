"""The KV tensor pair: per-layer keys (post-RoPE) and values of consecutive tokens.

The one KV container of the package: recompute produces and fuses it, chunk_cache looks it up,
storage encodes and stores it. Layout (layers, kv_heads, tokens, head_dim).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class KV:
    """Per-layer keys (post-RoPE) and values of consecutive tokens starting at position ``start``."""

    k: torch.Tensor  # (L, Hkv, T, D)
    v: torch.Tensor  # (L, Hkv, T, D)
    start: int

    @property
    def num_tokens(self) -> int:
        return self.k.shape[2]

    @property
    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() + self.v.numel() * self.v.element_size()
