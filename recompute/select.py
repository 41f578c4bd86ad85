"""Which chunk tokens to recompute (CacheBlend, Yao et al. 2024, section 4).

At a check layer the true K/V of every candidate token is compared with the fused cache; the
tokens whose KV deviates most are the ones whose cross-attention to earlier chunks matters, so
only they are recomputed in later layers (``deviation``, CacheBlend's rule). ``weighted`` scales
each token's deviation by the attention the question pays it at that layer (a deviation nobody
attends to changes little), in the spirit of Cache-Craft's chunk-impact scoring; on the HotpotQA
sample it came with a lower first-token KL, though no run yet isolates it from the check layers
(docs/decisions.md, "Weighted token selection"). ``random`` is the ablation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from blendcache.config import SelectionMethod
from blendcache.kernels import dispatch


@dataclass(frozen=True)
class Selection:
    """How a check layer narrows the recomputed set. ``ratio`` is a share of the chunk tokens."""

    ratio: float
    method: SelectionMethod = "weighted"
    seed: int = 0


def budget(num_chunk_tokens: int, ratio: float) -> int:
    return min(num_chunk_tokens, math.ceil(ratio * num_chunk_tokens))


def select_chunk_tokens(
    selection: Selection,
    *,
    k_new: torch.Tensor,  # (Hkv, n, D) true keys of the candidate chunk tokens
    k_old: torch.Tensor,  # (Hkv, n, D) the fused cache's keys of the same tokens
    v_new: torch.Tensor,
    v_old: torch.Tensor,
    keep: int,
    attention: torch.Tensor | None = None,  # (n,) question attention, for "weighted"
) -> torch.Tensor:
    """Indices (ascending, into the candidates) of the ``keep`` tokens to recompute."""
    n = k_new.shape[1]
    if keep >= n:
        return torch.arange(n, device=k_new.device)
    if selection.method == "random":
        gen = torch.Generator(device="cpu").manual_seed(selection.seed)
        return torch.randperm(n, generator=gen)[:keep].sort().values.to(k_new.device)
    deviation = dispatch.kv_deviation(k_new, k_old, v_new, v_old)  # (n,)
    if selection.method == "weighted":
        deviation = deviation * attention.float()
    return dispatch.select_tokens(deviation, keep)


def schedule(ratio: float, check_layers: tuple[int, ...], num_layers: int) -> list[float]:
    """Gradual filtering at equal cost: the share kept at each check layer (in ``check_layers``
    order). The share halves from one check to the next, and is scaled so that the average
    share over the layers from the first check on is ``ratio``: checks (2, 8) of a 30-layer
    model at r = 0.15 keep 24.7% after layer 2 and 12.4% after layer 8, costing what one check
    at layer 2 keeping 15% costs. A share the budget would push past 1 is clipped at 1 and the
    rest spread over the later checks."""
    layers = sorted(check_layers)
    if any(layer >= num_layers for layer in layers):
        raise ValueError(f"check layers {layers} beyond the model's {num_layers} layers")
    spans = [b - a for a, b in zip(layers, [*layers[1:], num_layers])]
    total = ratio * (num_layers - layers[0])  # token-layers the single-check schedule costs
    shares = [0.0] * len(layers)
    for i in range(len(layers)):  # one at a time: a clipped share passes its excess on
        weights = [spans[j] * 2.0 ** -(j - i) for j in range(i, len(layers))]
        shares[i] = min(1.0, total / sum(weights))
        total -= shares[i] * spans[i]
    by_layer = dict(zip(layers, shares))
    return [by_layer[layer] for layer in check_layers]
