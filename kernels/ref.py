"""Torch references of every kernel: the CPU path in production and the oracle in tests.

Each ``<op>_torch`` has the same signature, checks and results as ``<op>_triton``. Layout: per-layer
KV is Hugging Face's ``(..., kv_heads, T, head_dim)``; the token axis is dim -2. All math in
float32, results in the input dtype.
"""

from __future__ import annotations

import operator

import torch

from blendcache.errors import KernelError
from blendcache.kernels import _checks

# --- RoPE (RoFormer, Su et al. 2021; HF half-rotation layout) ---------------------------------


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(..., D) -> (..., D): (x1, x2) -> (-x2, x1), halves split at D/2 as in HF Llama."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (..., D) rotated by the angles whose cos and sin (broadcastable to x, HF layout: the
    half frequencies duplicated) are given: x cos + rotate_half(x) sin. The one torch rotation
    of the package: the model's layer loop (recompute/layers.py) uses it too."""
    return x * cos + rotate_half(x) * sin


def _rotate(x: torch.Tensor, offsets: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """Rotate every token t of x (..., T, D) by the angles offsets[t] * inv_freq, in float32."""
    angles = offsets.to(torch.float32)[:, None] * inv_freq[None, :]  # (T, D/2)
    angles = torch.cat((angles, angles), dim=-1)  # (T, D): HF duplicates the half frequencies
    return rotate(x.to(torch.float32), angles.cos(), angles.sin()).to(x.dtype)


def apply_rope_torch(x: torch.Tensor, positions: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """Rotate x (..., T, D) for absolute positions (T,): what the model does at prefill."""
    _checks.check_rope(x, positions, inv_freq, name="x")
    return _rotate(x, positions, inv_freq)


def rope_realign_torch(
    k: torch.Tensor,
    delta: torch.Tensor,
    inv_freq: torch.Tensor,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Move keys k (..., T, D) rotated for position p to position p + delta[t] (delta: (T,) int).

    Rotations compose, so this is one more rotation by delta: k' = k cos(d f) + rotate_half(k) sin(d f).
    ``out`` (may be ``k`` itself) receives the result; otherwise a new tensor is returned.
    """
    _checks.check_rope(k, delta, inv_freq)
    result = _rotate(k, delta, inv_freq)
    if out is None:
        return result
    _checks.check_like("out", out, "k", k)
    return out.copy_(result)


# --- KV deviation and token selection (CacheBlend, Yao et al. 2024) ---------------------------


def _sq_diff_per_token(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """(..., H, T, D) x2 -> (T,) float32: sum over everything but the token axis of (new - old)^2."""
    diff = new.to(torch.float32) - old.to(torch.float32)  # (..., H, T, D)
    per_row = diff.square().sum(dim=-1)  # (..., H, T)
    return per_row.reshape(-1, per_row.shape[-1]).sum(dim=0)  # (T,)


def kv_deviation_torch(
    k_new: torch.Tensor,
    k_old: torch.Tensor,
    v_new: torch.Tensor | None = None,
    v_old: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-token squared L2 deviation (T,) float32 of K (plus V when given), summed over heads."""
    _checks.check_deviation(k_new, k_old, v_new, v_old)
    deviation = _sq_diff_per_token(k_new, k_old)
    if v_new is not None:
        deviation += _sq_diff_per_token(v_new, v_old)
    return deviation


def select_tokens_torch(
    deviation: torch.Tensor, k: int, *, always: torch.Tensor | None = None
) -> torch.Tensor:
    """Indices (ascending, int64) of the ``k`` tokens with the highest deviation.

    ``always`` tokens (e.g. the query) are given deviation +inf, so they are always selected and
    count toward ``k``; if there are more of them than ``k``, all of them (and nothing else) are
    returned. The result has ``min(T, max(k, len(unique(always))))`` entries. Ties go to the lower
    index (stable sort), and a NaN deviation counts as +inf (broken KV is recomputed).
    """
    if not isinstance(deviation, torch.Tensor) or deviation.dim() != 1 or not deviation.is_floating_point():
        raise KernelError("select_tokens: deviation must be a 1-D float tensor (T,)")
    try:
        k = operator.index(k)
    except TypeError:
        raise KernelError(f"select_tokens: k must be an int, got {type(k).__name__}") from None
    if k < 0:
        raise KernelError(f"select_tokens: k must be non-negative, got {k}")
    n_tokens = deviation.shape[0]
    score = deviation.to(torch.float32).nan_to_num(nan=float("inf"))  # (T,), a copy
    n_forced = 0
    if always is not None:
        _checks.check_index("always", always, n_tokens, device=deviation.device)
        score[always.long()] = float("inf")
        n_forced = int(torch.unique(always).numel())
    n_selected = min(n_tokens, max(k, n_forced))
    order = torch.sort(score, descending=True, stable=True).indices  # (T,)
    return order[:n_selected].sort().values


# --- Scatter / gather of token rows -------------------------------------------------------------


def scatter_kv_torch(
    cache_k: torch.Tensor,
    cache_v: torch.Tensor,
    idx: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
) -> None:
    """In place: cache_k[..., idx, :] = k and cache_v[..., idx, :] = v.

    cache (..., H, T_total, D); idx (n,) unique positions in [0, T_total); k, v (..., H, n, D).
    """
    _checks.check_scatter("cache_k", cache_k, idx, k, "k")
    _checks.check_scatter("cache_v", cache_v, idx, v, "v")
    idx = idx.long()
    cache_k.index_copy_(-2, idx, k)
    cache_v.index_copy_(-2, idx, v)


def gather_rows_torch(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x (..., T, C), idx (n,) -> (..., n, C): the rows idx along dim -2."""
    _checks.check_gather(x, idx)
    return x.index_select(-2, idx.long())


# --- Per-token int8 KV codec ------------------------------------------------------------------


def quantize_int8_torch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric absmax int8 over the last dim: x (..., D) -> (q int8 (..., D), scale f32 (..., 1)).

    scale = absmax / 127 and q = floor(x * 127 / absmax + 0.5) in [-127, 127] (all-zero rows: q = 0,
    scale = 0), so |x - q * scale| <= scale / 2 up to float32 rounding.
    """
    _checks.check_quantize(x)
    xf = x.to(torch.float32)  # (..., D)
    absmax = xf.abs().amax(dim=-1, keepdim=True)  # (..., 1)
    safe = torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    # NOTE: (x * 127) / absmax, not x / scale: the same IEEE ops as the kernel, so q matches exactly.
    q = torch.floor(xf * 127.0 / safe + 0.5).clamp_(-127, 127).to(torch.int8)
    return q, absmax / 127.0


def dequantize_int8_torch(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """q int8 (..., D), scale float32 (..., 1) -> q * scale in ``dtype``."""
    _checks.check_dequantize(q, scale, dtype)
    return (q.to(torch.float32) * scale).to(dtype)
