"""Triton row scatter/gather along the token axis (dim -2).

``scatter_kv_triton`` writes recomputed tokens' K/V back into the fused cache
``(..., kv_heads, T_total, head_dim)`` (CacheBlend, Yao et al. 2024, selective recomputation);
``gather_rows_triton`` picks the selected tokens' rows (e.g. hidden states ``(T, C)``).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from blendcache.errors import KernelError
from blendcache.kernels import _checks

__all__ = ["scatter_kv_triton", "gather_rows_triton"]

_BLOCK_N = 32  # token rows per program
_MAX_BLOCK_C = 256  # columns per program; wider rows are split over grid dim 1
_MAX_GRID_YZ = 65535  # CUDA limit on grid dims 1 and 2


@triton.jit
def _scatter_kv_kernel(
    cache_ptr,
    src_ptr,
    idx_ptr,
    n_idx,
    n_cols,
    stride_cr,
    stride_ct,
    stride_sr,
    stride_st,
    BLOCK_N: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """cache[r, idx[i], c] = src[r, i, c]  for a block of i, a block of c and one row r.

    idx must be unique (as for ``index_copy_``); int64 offsets since idx * stride can pass 2**31.
    """
    i = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)  # (BLOCK_N,)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)  # (BLOCK_C,)
    row = tl.program_id(2).to(tl.int64)
    i_mask = i < n_idx
    mask = i_mask[:, None] & (c < n_cols)[None, :]
    dst_t = tl.load(idx_ptr + i, mask=i_mask, other=0).to(tl.int64)
    src = tl.load(src_ptr + row * stride_sr + i.to(tl.int64)[:, None] * stride_st + c[None, :], mask=mask)
    tl.store(cache_ptr + row * stride_cr + dst_t[:, None] * stride_ct + c[None, :], src, mask=mask)


@triton.jit
def _gather_rows_kernel(
    x_ptr,
    out_ptr,
    idx_ptr,
    n_idx,
    n_cols,
    stride_xr,
    stride_xt,
    stride_or,
    stride_ot,
    BLOCK_N: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """out[r, i, c] = x[r, idx[i], c]  for a block of i, a block of c and one row r (int64 offsets)."""
    i = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)  # (BLOCK_N,)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)  # (BLOCK_C,)
    row = tl.program_id(2).to(tl.int64)
    i_mask = i < n_idx
    mask = i_mask[:, None] & (c < n_cols)[None, :]
    src_t = tl.load(idx_ptr + i, mask=i_mask, other=0).to(tl.int64)
    vals = tl.load(x_ptr + row * stride_xr + src_t[:, None] * stride_xt + c[None, :], mask=mask)
    tl.store(out_ptr + row * stride_or + i.to(tl.int64)[:, None] * stride_ot + c[None, :], vals, mask=mask)


def _grid(n_idx: int, n_cols: int, n_rows: int, op: str) -> tuple[tuple[int, int, int], int]:
    block_c = min(triton.next_power_of_2(n_cols), _MAX_BLOCK_C)
    grid = (triton.cdiv(n_idx, _BLOCK_N), triton.cdiv(n_cols, block_c), n_rows)
    if grid[1] > _MAX_GRID_YZ or grid[2] > _MAX_GRID_YZ:
        raise KernelError(f"{op}: {n_rows} rows x {n_cols} columns exceed the launch grid")
    return grid, block_c


def _scatter_one(cache: torch.Tensor, idx: torch.Tensor, src: torch.Tensor) -> None:
    cache_rows = _checks.as_rows("cache", cache)  # (R, T_total, D)
    src_rows = _checks.as_rows("src", src)  # (R, n, D)
    n_rows, n_idx, n_cols = src_rows.shape
    if src_rows.numel() == 0:
        return
    grid, block_c = _grid(n_idx, n_cols, n_rows, "scatter_kv")
    _scatter_kv_kernel[grid](
        cache_rows, src_rows, idx, n_idx, n_cols,
        cache_rows.stride(0), cache_rows.stride(1), src_rows.stride(0), src_rows.stride(1),
        BLOCK_N=_BLOCK_N, BLOCK_C=block_c,
    )  # fmt: skip


def scatter_kv_triton(
    cache_k: torch.Tensor,
    cache_v: torch.Tensor,
    idx: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
) -> None:
    """In place: cache_k[..., idx, :] = k and cache_v[..., idx, :] = v; same contract as scatter_kv_torch.

    cache (..., H, T_total, D); idx (n,) unique int64/int32 in [0, T_total); k, v (..., H, n, D).
    """
    _checks.check_scatter("cache_k", cache_k, idx, k, "k")
    _checks.check_scatter("cache_v", cache_v, idx, v, "v")
    idx = idx.contiguous()
    _scatter_one(cache_k, idx, k)
    _scatter_one(cache_v, idx, v)


def gather_rows_triton(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x (..., T, C), idx (n,) -> (..., n, C) new tensor; same contract as gather_rows_torch."""
    _checks.check_gather(x, idx)
    x_rows = _checks.as_rows("x", x)  # (R, T, C)
    n_rows, _, n_cols = x_rows.shape
    n_idx = idx.shape[0]
    out = torch.empty((*x.shape[:-2], n_idx, n_cols), dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    out_rows = out.view(n_rows, n_idx, n_cols)
    grid, block_c = _grid(n_idx, n_cols, n_rows, "gather_rows")
    _gather_rows_kernel[grid](
        x_rows, out_rows, idx.contiguous(), n_idx, n_cols,
        x_rows.stride(0), x_rows.stride(1), out_rows.stride(0), out_rows.stride(1),
        BLOCK_N=_BLOCK_N, BLOCK_C=block_c,
    )  # fmt: skip
    return out
