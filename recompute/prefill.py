"""KV prefill of a prompt's pieces: a prefix, and chunks each right after the same context.

The chunk cache (chunk_cache/) stores what these return; the fusion (blend.py) reuses it.
KV tensors are laid out (layers, kv_heads, tokens, head_dim), keys post-RoPE.
"""

from __future__ import annotations

import torch

from blendcache.recompute.kv import KV
from blendcache.recompute.layers import attend, attention_plan, finish, project
from blendcache.recompute.model import Engine


def to_cache(engine: Engine, kv: KV | None = None):
    """A transformers DynamicCache holding ``kv`` (batch of one), or an empty one."""
    from transformers import DynamicCache

    if kv is None:
        return DynamicCache(config=engine.model.config)
    layers = [(kv.k[i][None], kv.v[i][None]) for i in range(kv.k.shape[0])]
    return DynamicCache(ddp_cache_data=layers, config=engine.model.config)


@torch.inference_mode()
def prefill_kv(engine: Engine, ids: list[int] | tuple[int, ...], *, after: KV | None = None) -> KV:
    """Run ``ids`` through the model after the (exact) KV ``after`` and return their own KV."""
    start = 0 if after is None else after.start + after.num_tokens
    positions = torch.arange(start, start + len(ids), device=engine.device)[None]
    out = engine.model.model(input_ids=torch.tensor([list(ids)], device=engine.device),
                             past_key_values=to_cache(engine, after), position_ids=positions,
                             use_cache=True)
    layers = out.past_key_values.layers
    k = torch.stack([layer.keys[0, :, start:] for layer in layers])  # (L, Hkv, T, D)
    v = torch.stack([layer.values[0, :, start:] for layer in layers])
    return KV(k.contiguous(), v.contiguous(), start)


# Chunks prefilled together go through the layers in groups of at most this many tokens, which
# bounds the activations (a chunk longer than this goes alone).
CHUNK_PREFILL_TOKENS = 4096


@torch.inference_mode()
def prefill_chunks(engine: Engine, chunks: list[tuple[int, ...]], *,
                   after: KV | None = None) -> list[KV]:
    """Each chunk's own KV as ``prefill_kv(engine, chunk, after=after)`` gives it (every chunk
    alone right after the exact KV ``after``, so all start at the same position), computed in
    one pass through the layers: the chunks' tokens share each layer's projections and MLP,
    and each chunk attends over ``after`` and itself (causal). Running the layers ourselves
    skips the HF cache's per-layer concatenation and mask building, and the last layer's
    attention and MLP, which no stored K/V needs."""
    out: list[KV] = []
    group: list[tuple[int, ...]] = []
    for chunk in chunks:
        if group and sum(map(len, group)) + len(chunk) > CHUNK_PREFILL_TOKENS:
            out.extend(_prefill_group(engine, group, after))
            group = []
        group.append(tuple(chunk))
    if group:
        out.extend(_prefill_group(engine, group, after))
    return out


def _prefill_group(engine: Engine, chunks: list[tuple[int, ...]], after: KV | None) -> list[KV]:
    model, device = engine.model.model, engine.device
    ctx = 0 if after is None else after.num_tokens
    start = 0 if after is None else after.start + ctx
    lens = [len(c) for c in chunks]
    offsets = [sum(lens[:i]) for i in range(len(lens))]
    longest = max(lens)
    ids = torch.tensor([[i for c in chunks for i in c]], device=device)
    h = model.embed_tokens(ids)  # (1, N, C)
    local = torch.cat([torch.arange(n, device=device) for n in lens])  # offset within its chunk
    cos, sin = model.rotary_emb(h, torch.arange(start, start + longest, device=device)[None])
    cos, sin = cos[:, local][:, None], sin[:, local][:, None]  # (1, 1, N, D)
    plans = {n: attention_plan(torch.arange(ctx, ctx + n, device=device), ctx + n, h.dtype)
             for n in set(lens)}  # a chunk's queries sit after the context in ``keys``
    spec = engine.spec
    k_out = torch.empty(spec.num_layers, spec.num_kv_heads, ids.shape[1], spec.head_dim,
                        dtype=h.dtype, device=device)
    v_out = torch.empty_like(k_out)
    keys = torch.empty(spec.num_kv_heads, ctx + longest, spec.head_dim, dtype=h.dtype,
                       device=device)  # this layer's context keys, then one chunk's own
    values = torch.empty_like(keys)
    last = spec.num_layers - 1
    for li, layer in enumerate(model.layers[: spec.num_layers]):
        q, k, v = project(layer, h, cos, sin)
        k_out[li], v_out[li] = k, v
        if li == last:
            break
        if ctx:
            keys[:, :ctx], values[:, :ctx] = after.k[li], after.v[li]
        attended = []
        for o, n in zip(offsets, lens):
            keys[:, ctx:ctx + n], values[:, ctx:ctx + n] = k[:, o:o + n], v[:, o:o + n]
            attended.append(attend(q[:, :, o:o + n], keys[:, :ctx + n], values[:, :ctx + n],
                                   plans[n], layer.self_attn.scaling))
        h = finish(layer, h, torch.cat(attended, dim=2))
    return [KV(k_out[:, :, o:o + n].contiguous(), v_out[:, :, o:o + n].contiguous(), start)
            for o, n in zip(offsets, lens)]

