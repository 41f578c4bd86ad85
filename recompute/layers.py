"""One Llama-family decoder layer, driven piece by piece from its HF modules' weights.

Both the chunk prefill (prefill.py) and the fusion (blend.py) run the layers themselves, for
only some tokens or over a cache laid out their own way, instead of through the HF forward.
Layout: hidden states (1, n, C); queries (1, H, n, D); keys and values (Hkv, n, D).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from blendcache.kernels.ref import rotate


def project(layer, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """Q, K, V of the tokens ``h`` at their positions: (1, H, n, D), (Hkv, n, D), (Hkv, n, D)."""
    attn = layer.self_attn
    n, hd = h.shape[1], attn.head_dim
    x = layer.input_layernorm(h)
    q = attn.q_proj(x).view(1, n, -1, hd).transpose(1, 2)  # (1, H, n, D)
    k = attn.k_proj(x).view(1, n, -1, hd).transpose(1, 2)  # (1, Hkv, n, D)
    v = attn.v_proj(x).view(1, n, -1, hd).transpose(1, 2)
    q, k = rotate(q, cos, sin), rotate(k, cos, sin)  # RoPE at the tokens' positions
    return q, k[0], v[0]


# Queries attend in up to this many blocks (see attention_plan); more blocks skip more
# masked keys but make more, smaller calls. Against one masked call, 8 made the whole blend 6%
# faster at r = 0.15 and 8% at r = 0.3 (HotpotQA questions 10-17, 2-core CPU); 4 and 16 did
# no better in the attention alone.
QUERY_BLOCKS = 8
_MIN_BLOCK_ROWS = 32


@dataclass(frozen=True)
class Block:
    rows: slice  # into the queries
    keys: int  # the block attends over cache positions 0 .. keys-1
    mask: torch.Tensor  # additive (rows, keys)


def attention_plan(pos: torch.Tensor, total: int, dtype: torch.dtype) -> list[Block] | None:
    """How queries at positions ``pos`` (ascending) attend over ``total`` cached keys: None
    when every position is active (the plain causal square, the fast kernel path); else the
    rows cut into up to QUERY_BLOCKS runs of equal size, each over the keys up to its last
    position with an additive causal mask. The cut matters: one masked call over every key
    pays for the keys after each query too, up to twice the work for scattered tokens (the
    fusion's recomputed subset) or for a chunk's tokens after a context (the chunk prefill)."""
    if pos.numel() == total:
        return None
    n = pos.numel()
    size = max(_MIN_BLOCK_ROWS, -(-n // QUERY_BLOCKS))
    blocks = []
    for r0 in range(0, n, size):
        rows = slice(r0, min(n, r0 + size))
        keys = int(pos[rows.stop - 1]) + 1
        visible = torch.arange(keys, device=pos.device)[None, :] <= pos[rows, None]
        mask = torch.zeros(visible.shape, dtype=dtype, device=pos.device).masked_fill_(
            ~visible, float("-inf"))
        blocks.append(Block(rows, keys, mask))
    return blocks


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: list[Block] | None,
           scale: float) -> torch.Tensor:
    """Causal attention of the queries ``q`` (1, H, n, D) over the keys and values (Hkv, T, D)
    laid out by position, as ``plan`` (attention_plan) says: (1, H, n, D)."""
    k, v = k[None], v[None]
    if plan is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale,
                                              enable_gqa=True)
    if not plan:  # no queries
        return q
    return torch.cat([F.scaled_dot_product_attention(
        q[:, :, b.rows], k[:, :, :b.keys], v[:, :, :b.keys], attn_mask=b.mask, scale=scale,
        enable_gqa=True) for b in plan], dim=2)


def finish(layer, h: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
    """The rest of the layer once attention is done: output projection, residual, MLP.
    ``attended`` (1, H, n, D)."""
    n = h.shape[1]
    h = h + layer.self_attn.o_proj(attended.transpose(1, 2).reshape(1, n, -1))
    return h + layer.mlp(layer.post_attention_layernorm(h))
