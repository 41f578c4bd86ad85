"""Which chunk tokens to recompute (CacheBlend, Yao et al. 2024, section 4).

At a check layer the true K/V of every candidate token is compared with the fused cache; the
tokens whose KV deviates most are the ones whose cross-attention to earlier chunks matters, so
only they are recomputed in later layers (``deviation``, CacheBlend's rule). ``weighted`` scales
each token's deviation by the attention the question pays it at that layer (a deviation nobody
attends to changes little), in the spirit of Cache-Craft's chunk-impact scoring; on the HotpotQA
sample it lowers first-token KL at equal cost (README). ``random`` is the ablation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from blendcache.kernels import dispatch


@dataclass(frozen=True)
class Selection:
    """How a check layer narrows the recomputed set. ``ratio`` is a share of the chunk tokens."""

    ratio: float
    method: str = "weighted"  # "deviation" | "weighted" | "random"
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


def schedule(ratio: float, num_checks: int) -> list[float]:
    """Gradual filtering: the kept share halves towards ``ratio`` over the check layers
    (e.g. 0.15 over 2 checks keeps 30% at the first and 15% at the second)."""
    return [min(1.0, ratio * 2 ** (num_checks - 1 - i)) for i in range(num_checks)]
