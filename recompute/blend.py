"""Fuse stored chunk KV caches into one prompt cache (CacheBlend, Yao et al. 2024).

Prompt = [prefix] + chunk_1 + ... + chunk_n + [suffix], given as its token ids and the KVs of
its prefix and chunks, which sit in that order (chunk_cache/layout.py lays a RAG request out
so). The prefix KV is exact (reused as is);
each chunk's keys are re-rotated from the positions they were prefilled at to their positions
in this prompt (RoPE re-alignment); the suffix (question) is always computed. Then selective
recomputation: layers before the first check layer run on every non-prefix token; at a check
layer the true K/V of the candidates is compared with the fused cache and only the top share by
deviation (plus the suffix) goes on through the later layers, attending over the fused cache
and writing its K/V back. Works on Llama-family HF modules (Llama, Mistral, Qwen2, SmolLM).

Layout: fused K/V per layer (Hkv, T, D); hidden states (1, n, C) for the n active tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from blendcache.config import DEFAULT_RECOMPUTE_RATIO, SelectionMethod
from blendcache.errors import UnsupportedModelError
from blendcache.kernels import dispatch
from blendcache.recompute.generate import Prefilled
from blendcache.recompute.kv import KV
from blendcache.recompute.layers import attend, attention_plan, finish, project
from blendcache.recompute.model import SUPPORTED_MODEL_TYPES, Engine
from blendcache.recompute.prefill import to_cache
from blendcache.recompute.select import Selection, budget, schedule, select_chunk_tokens


@dataclass(frozen=True)
class BlendOptions:
    """``recompute_ratio`` 1.0 reproduces a full prefill; 0.0 is naive reuse (suffix only).
    ``check_layers`` defaults to CacheBlend's single check; the served default is
    ``BlendConfig.check_layers`` (gradual filtering)."""

    recompute_ratio: float = DEFAULT_RECOMPUTE_RATIO
    check_layers: tuple[int, ...] = (2,)
    method: SelectionMethod = "weighted"
    seed: int = 0


@dataclass(frozen=True)
class BlendStats:
    prompt_tokens: int
    chunk_tokens: int
    recomputed_tokens: int  # chunk tokens that went through the last layer
    blend_ms: float


@torch.inference_mode()
def fuse_kv(engine: Engine, total: int, prefix: KV, chunks: list[KV]) -> KV:
    """The fused cache of a ``total``-token prompt before recomputation: prefix as is, chunks
    re-rotated to their slots, one after the other right after the prefix.
    NOTE: suffix slots are left uninitialised: the suffix is active in every layer, so each
    layer writes them before any query reads them."""
    spec = engine.spec
    shape = (spec.num_layers, spec.num_kv_heads, total, spec.head_dim)
    k = torch.empty(shape, dtype=prefix.k.dtype, device=engine.device)
    v = torch.empty_like(k)
    p = prefix.num_tokens
    k[:, :, :p], v[:, :, :p] = prefix.k, prefix.v
    inv_freq = engine.rope_inv_freq
    start = p
    for chunk in chunks:
        end = start + chunk.num_tokens
        dispatch.rope_realign(chunk.k, start - chunk.start, inv_freq, out=k[:, :, start:end])
        v[:, :, start:end] = chunk.v
        start = end
    return KV(k, v, 0)


def _question_attention(layer, q: torch.Tensor, pos: torch.Tensor, fused: KV, li: int):
    """Mean attention each cached position gets from the question (suffix) queries: (T,).
    q (1, H, S, D) at positions ``pos`` (S,), over this layer's fused keys."""
    groups = q.shape[1] // fused.k.shape[1]
    keys = fused.k[li].repeat_interleave(groups, dim=0)  # (H, T, D)
    scores = torch.einsum("hsd,htd->hst", q[0], keys) * layer.self_attn.scaling  # (H, S, T)
    causal = torch.arange(keys.shape[1], device=keys.device)[None, :] <= pos[:, None]
    return scores.masked_fill(~causal, float("-inf")).softmax(-1).mean(dim=(0, 1))


def _check(layer, li: int, *, q, k, v, pos, p: int, c: int, fused: KV, keep: int,
           selection: Selection) -> torch.Tensor:
    """At a check layer: write the true K/V of every active token, and return the rows (into
    the active tokens) that go on: the selected chunk tokens and the whole suffix."""
    is_chunk = (pos >= p) & (pos < c)
    is_suffix = pos >= c
    cand = pos[is_chunk]
    k_old, v_old = fused.k[li][:, cand], fused.v[li][:, cand]  # copies (advanced indexing)
    dispatch.scatter_kv(fused.k[li], fused.v[li], pos, k, v)
    attention = None
    if selection.method == "weighted":
        attention = _question_attention(layer, q[:, :, is_suffix], pos[is_suffix], fused, li)[cand]
    picked = select_chunk_tokens(selection, k_new=k[:, is_chunk], k_old=k_old,
                                 v_new=v[:, is_chunk], v_old=v_old, keep=keep,
                                 attention=attention)
    chunk_rows = torch.nonzero(is_chunk).flatten()
    return torch.cat([chunk_rows[picked], torch.nonzero(is_suffix).flatten()])


@torch.inference_mode()
def blend(
    engine: Engine, ids: list[int], prefix: KV, chunks: list[KV], options: BlendOptions
) -> tuple[Prefilled, BlendStats]:
    """Fuse, selectively recompute, and return the prompt cache with the first-token logits.
    ``ids`` is the whole prompt: the prefix's and chunks' tokens, then the suffix."""
    if engine.spec.model_type not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedModelError(f"blend needs a Llama-family model, not {engine.spec.model_type}")
    t0 = time.perf_counter()
    model = engine.model.model
    total = len(ids)
    fused = fuse_kv(engine, total, prefix, chunks)
    p = prefix.num_tokens
    c = p + sum(chunk.num_tokens for chunk in chunks)
    assert prefix.start == 0 and c <= total, "prefix at 0, then the chunks, within the prompt"
    n_chunk = c - p
    ratio = options.recompute_ratio
    # NOTE: with ratio 0 nothing is checked: only the suffix runs (naive reuse). Otherwise the
    # layers before the first check run every position, the (exact) prefix included: its extra
    # cost is small and the attention is then the plain causal square.
    first = 0 if ratio > 0 else c
    pos = torch.arange(first, total, device=engine.device)  # active positions (n,)
    h = model.embed_tokens(torch.tensor([list(ids[first:])], device=engine.device))
    all_pos = torch.arange(total, device=engine.device)[None]
    cos_all, sin_all = model.rotary_emb(h, all_pos)  # (1, T, D)
    checks = {} if ratio in (0.0, 1.0) or n_chunk == 0 else dict(
        zip(options.check_layers, schedule(ratio, options.check_layers, engine.spec.num_layers)))
    selection = Selection(ratio, options.method, options.seed)
    plan = attention_plan(pos, total, h.dtype)
    for li, layer in enumerate(model.layers[: engine.spec.num_layers]):
        cos, sin = cos_all[:, pos][:, None], sin_all[:, pos][:, None]  # (1, 1, n, D)
        q, k, v = project(layer, h, cos, sin)
        if li in checks:
            rows = _check(layer, li, q=q, k=k, v=v, pos=pos, p=p, c=c, fused=fused,
                          keep=budget(n_chunk, checks[li]), selection=selection)
            pos, h, q = pos[rows], dispatch.gather_rows(h, rows), dispatch.gather_rows(q, rows)
            plan = attention_plan(pos, total, h.dtype)
        else:
            dispatch.scatter_kv(fused.k[li], fused.v[li], pos, k, v)
        h = finish(layer, h, attend(q, fused.k[li], fused.v[li], plan, layer.self_attn.scaling))
    logits = engine.model.lm_head(model.norm(h[:, -1:]))[0, -1].float()
    ms = (time.perf_counter() - t0) * 1e3
    stats = BlendStats(total, n_chunk, int(((pos >= p) & (pos < c)).sum()), ms)
    return Prefilled(to_cache(engine, fused), logits, total, ms), stats
