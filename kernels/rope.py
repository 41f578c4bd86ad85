"""Triton RoPE re-alignment of cached keys (RoFormer, Su et al. 2021; HF half-rotation layout).

A key rotated for position p becomes the key for p + d by one more rotation by d. Keys are
``(..., kv_heads, T, head_dim)``; one program handles a block of tokens for a few rows (heads), so
cos/sin of a token block are computed once and reused across those heads.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from blendcache.errors import KernelError
from blendcache.kernels import _checks
from blendcache.kernels.rope_freq import rope_inv_freq

__all__ = ["rope_inv_freq", "rope_realign_triton"]

_TILE_ELEMENTS = 2048  # elements per half-tile (BLOCK_T * BLOCK_HALF)
_MAX_ROWS_PER_PROGRAM = 8
_MAX_GRID_Y = 65535  # CUDA limit on grid dim 1
_MAX_HEAD_DIM = 1024  # one program holds a token block of whole heads


@triton.jit
def _rope_realign_kernel(
    k_ptr,
    out_ptr,
    delta_ptr,
    inv_freq_ptr,
    n_rows,
    n_tokens,
    stride_kr,
    stride_kt,
    stride_or,
    stride_ot,
    HALF: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
    ROWS_PER_PROGRAM: tl.constexpr,
):
    """out[r, t] = rotate(k[r, t], delta[t] * inv_freq): for each pair (x1, x2) = (k[j], k[j + HALF]),

        y1 = x1 cos(a_j) - x2 sin(a_j),   y2 = x2 cos(a_j) + x1 sin(a_j),   a_j = delta[t] * inv_freq[j],

    i.e. k' = k * cos + rotate_half(k) * sin with HF's duplicated half frequencies (RoFormer).
    Math in float32, stored in out's dtype. Each pair is read and written by the same program,
    so ``out`` may alias ``k`` (in place). Offsets are int64: R * T * D may exceed 2**31.
    """
    pid_t = tl.program_id(0)
    pid_r = tl.program_id(1)
    t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)  # (BLOCK_T,)
    j = tl.arange(0, BLOCK_HALF)  # (BLOCK_HALF,)
    t_mask = t < n_tokens
    j_mask = j < HALF

    delta = tl.load(delta_ptr + t, mask=t_mask, other=0).to(tl.float32)
    inv_freq = tl.load(inv_freq_ptr + j, mask=j_mask, other=0.0)
    angle = delta[:, None] * inv_freq[None, :]  # (BLOCK_T, BLOCK_HALF)
    cos = tl.cos(angle)
    sin = tl.sin(angle)

    t64 = t.to(tl.int64)
    k_offs = t64[:, None] * stride_kt + j[None, :]  # (BLOCK_T, BLOCK_HALF), first half
    o_offs = t64[:, None] * stride_ot + j[None, :]
    mask = t_mask[:, None] & j_mask[None, :]
    row_start = pid_r.to(tl.int64) * ROWS_PER_PROGRAM
    k_row = k_ptr + row_start * stride_kr
    o_row = out_ptr + row_start * stride_or
    for _ in range(row_start, tl.minimum(row_start + ROWS_PER_PROGRAM, n_rows)):
        x1 = tl.load(k_row + k_offs, mask=mask, other=0.0).to(tl.float32)
        x2 = tl.load(k_row + k_offs + HALF, mask=mask, other=0.0).to(tl.float32)
        y1 = x1 * cos - x2 * sin
        y2 = x2 * cos + x1 * sin
        tl.store(o_row + o_offs, y1.to(out_ptr.dtype.element_ty), mask=mask)
        tl.store(o_row + o_offs + HALF, y2.to(out_ptr.dtype.element_ty), mask=mask)
        k_row += stride_kr  # NOTE: 64-bit pointer steps; row * stride is never formed in int32
        o_row += stride_or


def rope_realign_triton(
    k: torch.Tensor,
    delta: torch.Tensor,
    inv_freq: torch.Tensor,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Re-rotate keys k (..., T, D) from position p to p + delta[t]; delta (T,) int, may be negative.

    Returns ``out`` (a new tensor when None; pass ``out=k`` to re-align in place, which saves a
    second copy of the cache). Same contract as ``rope_realign_torch``.
    """
    _checks.check_rope(k, delta, inv_freq)
    if k.shape[-1] > _MAX_HEAD_DIM:
        raise KernelError(f"rope_realign: head_dim {k.shape[-1]} > {_MAX_HEAD_DIM} is not supported")
    if out is None:
        out = torch.empty_like(k, memory_format=torch.contiguous_format)
    else:
        _checks.check_like("out", out, "k", k)
    k_rows = _checks.as_rows("k", k)  # (R, T, D)
    out_rows = _checks.as_rows("out", out)
    n_rows, n_tokens, head_dim = k_rows.shape
    if k_rows.numel() == 0:
        return out
    delta, inv_freq = delta.contiguous(), inv_freq.contiguous()  # no-ops unless strided

    half = head_dim // 2
    block_half = triton.next_power_of_2(half)
    block_t = min(max(1, _TILE_ELEMENTS // block_half), triton.next_power_of_2(n_tokens))
    rows_per_program = min(n_rows, _MAX_ROWS_PER_PROGRAM)
    grid = (triton.cdiv(n_tokens, block_t), triton.cdiv(n_rows, rows_per_program))
    if grid[1] > _MAX_GRID_Y:
        raise KernelError(f"rope_realign: {n_rows} rows (leading dims x heads) exceed the launch grid")
    _rope_realign_kernel[grid](
        k_rows, out_rows, delta, inv_freq,
        n_rows, n_tokens,
        k_rows.stride(0), k_rows.stride(1), out_rows.stride(0), out_rows.stride(1),
        HALF=half, BLOCK_T=block_t, BLOCK_HALF=block_half, ROWS_PER_PROGRAM=rows_per_program,
    )  # fmt: skip
    return out
