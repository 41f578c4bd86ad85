"""Triton per-token KV deviation for selective recomputation (CacheBlend, Yao et al. 2024).

CacheBlend recomputes the tokens whose fused (reused) KV deviates most from the true KV at a check
layer. The deviation of token t is sum over heads and head_dim of (new - old)^2, for K and
optionally V. Inputs are ``(..., kv_heads, T, head_dim)``; leading dims count as more heads.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from blendcache.errors import KernelError
from blendcache.kernels import _checks

__all__ = ["kv_deviation_triton"]

_TILE_ELEMENTS = 4096  # BLOCK_T * BLOCK_D
_MAX_HEAD_DIM = 1024


@triton.jit
def _kv_deviation_kernel(
    new_ptr,
    old_ptr,
    out_ptr,
    n_rows,
    n_tokens,
    head_dim,
    stride_nr,
    stride_nt,
    stride_or,
    stride_ot,
    ACCUMULATE: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """out[t] (+)= sum_r sum_d (new[r, t, d] - old[r, t, d])^2   (CacheBlend's KV deviation).

    One program owns BLOCK_T tokens and loops over all rows (heads), so the sum is complete in
    registers: no atomics, and the result is deterministic. Math in float32; int64 offsets.
    With ACCUMULATE the sum is added to out (the V pass after the K pass).
    """
    pid = tl.program_id(0)
    t = pid * BLOCK_T + tl.arange(0, BLOCK_T)  # (BLOCK_T,)
    d = tl.arange(0, BLOCK_D)  # (BLOCK_D,)
    t_mask = t < n_tokens
    mask = t_mask[:, None] & (d < head_dim)[None, :]
    t64 = t.to(tl.int64)
    new_ptrs = new_ptr + t64[:, None] * stride_nt + d[None, :]  # (BLOCK_T, BLOCK_D), row 0
    old_ptrs = old_ptr + t64[:, None] * stride_ot + d[None, :]

    acc = tl.zeros((BLOCK_T, BLOCK_D), dtype=tl.float32)
    for _ in range(0, n_rows):
        new = tl.load(new_ptrs, mask=mask, other=0.0).to(tl.float32)
        old = tl.load(old_ptrs, mask=mask, other=0.0).to(tl.float32)
        diff = new - old
        acc += diff * diff
        new_ptrs += stride_nr  # NOTE: 64-bit pointer steps; r * stride never formed in int32
        old_ptrs += stride_or
    deviation = tl.sum(acc, axis=1)  # (BLOCK_T,)
    if ACCUMULATE:
        deviation += tl.load(out_ptr + t, mask=t_mask, other=0.0)
    tl.store(out_ptr + t, deviation, mask=t_mask)


def _launch(new: torch.Tensor, old: torch.Tensor, out: torch.Tensor, *, accumulate: bool) -> None:
    new_rows = _checks.as_rows("new", new)  # (R, T, D)
    old_rows = _checks.as_rows("old", old)
    n_rows, n_tokens, head_dim = new_rows.shape
    if head_dim > _MAX_HEAD_DIM:
        raise KernelError(
            f"kv_deviation: head_dim {head_dim} > {_MAX_HEAD_DIM} is not supported by the kernel"
        )
    block_d = triton.next_power_of_2(head_dim)
    block_t = min(max(1, _TILE_ELEMENTS // block_d), triton.next_power_of_2(n_tokens))
    grid = (triton.cdiv(n_tokens, block_t),)
    _kv_deviation_kernel[grid](
        new_rows, old_rows, out,
        n_rows, n_tokens, head_dim,
        new_rows.stride(0), new_rows.stride(1), old_rows.stride(0), old_rows.stride(1),
        ACCUMULATE=accumulate, BLOCK_T=block_t, BLOCK_D=block_d,
    )  # fmt: skip


def kv_deviation_triton(
    k_new: torch.Tensor,
    k_old: torch.Tensor,
    v_new: torch.Tensor | None = None,
    v_old: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-token deviation (T,) float32 of K (plus V when given); same contract as kv_deviation_torch."""
    _checks.check_deviation(k_new, k_old, v_new, v_old)
    n_tokens = k_new.shape[-2]
    out = torch.empty(n_tokens, dtype=torch.float32, device=k_new.device)
    if n_tokens == 0:
        return out
    _launch(k_new, k_old, out, accumulate=False)
    if v_new is not None:
        _launch(v_new, v_old, out, accumulate=True)
    return out
