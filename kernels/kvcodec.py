"""Triton per-token int8 KV codec: symmetric absmax quantisation over head_dim.

x (..., D) -> q int8 (..., D) and scale float32 (..., 1), with scale = absmax / 127 and
q = floor(x * 127 / absmax + 0.5): a quarter of fp32's bytes and about half of fp16's
(D + 4 bytes per token row instead of 2 D), with |x - q * scale| <= scale / 2.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from blendcache.errors import KernelError
from blendcache.kernels import _checks

__all__ = ["quantize_int8_triton", "dequantize_int8_triton"]

_TILE_ELEMENTS = 4096  # BLOCK_R * BLOCK_D
_MAX_DIM = 16384  # one program holds whole rows


@triton.jit
def _quantize_int8_kernel(
    x_ptr,
    q_ptr,
    scale_ptr,
    n_rows,
    n_cols,
    stride_xr,
    BLOCK_R: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """Per row r: a = max_d |x[r, d]|, scale[r] = a / 127, q[r, d] = clamp(floor(x * 127 / a + 0.5)).

    Rows that are all zero get scale 0 and q 0. Divisions are IEEE round-to-nearest (div_rn) so
    q matches the torch reference bit for bit. q and scale are contiguous; int64 offsets.
    """
    r = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)  # (BLOCK_R,)
    d = tl.arange(0, BLOCK_D)  # (BLOCK_D,)
    r_mask = r < n_rows
    mask = r_mask[:, None] & (d < n_cols)[None, :]
    r64 = r.to(tl.int64)
    x = tl.load(x_ptr + r64[:, None] * stride_xr + d[None, :], mask=mask, other=0.0).to(tl.float32)

    absmax = tl.max(tl.abs(x), axis=1)  # (BLOCK_R,)
    safe = tl.where(absmax > 0.0, absmax, 1.0)
    y = tl.math.div_rn(x * 127.0, safe[:, None])  # in [-127, 127]
    q = tl.minimum(tl.maximum(tl.floor(y + 0.5), -127.0), 127.0)
    tl.store(q_ptr + r64[:, None] * n_cols + d[None, :], q.to(tl.int8), mask=mask)
    tl.store(scale_ptr + r, tl.math.div_rn(absmax, 127.0), mask=r_mask)


@triton.jit
def _dequantize_int8_kernel(
    q_ptr,
    scale_ptr,
    out_ptr,
    n_rows,
    n_cols,
    BLOCK_R: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """out[r, d] = q[r, d] * scale[r], computed in float32 and stored in out's dtype."""
    r = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)  # (BLOCK_R,)
    d = tl.arange(0, BLOCK_D)  # (BLOCK_D,)
    r_mask = r < n_rows
    mask = r_mask[:, None] & (d < n_cols)[None, :]
    offs = r.to(tl.int64)[:, None] * n_cols + d[None, :]
    q = tl.load(q_ptr + offs, mask=mask, other=0).to(tl.float32)
    scale = tl.load(scale_ptr + r, mask=r_mask, other=0.0)
    tl.store(out_ptr + offs, (q * scale[:, None]).to(out_ptr.dtype.element_ty), mask=mask)


def _blocks(n_rows: int, n_cols: int, op: str) -> tuple[int, int]:
    if n_cols > _MAX_DIM:
        raise KernelError(f"{op}: last dim {n_cols} > {_MAX_DIM} is not supported by the kernel")
    block_d = triton.next_power_of_2(n_cols)
    block_r = min(max(1, _TILE_ELEMENTS // block_d), triton.next_power_of_2(n_rows))
    return block_r, block_d


def quantize_int8_triton(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (..., D) float -> (q int8 (..., D), scale float32 (..., 1)); same contract as quantize_int8_torch.

    Any layout whose leading dims flatten to rows without a copy is accepted (last dim unit stride).
    """
    _checks.check_quantize(x)
    n_cols = x.shape[-1]
    x_rows = _checks.as_matrix("x", x)  # (N, D)
    n_rows = x_rows.shape[0]
    q = torch.empty(x.shape, dtype=torch.int8, device=x.device)
    scale = torch.empty((*x.shape[:-1], 1), dtype=torch.float32, device=x.device)
    if n_rows == 0:
        return q, scale
    block_r, block_d = _blocks(n_rows, n_cols, "quantize_int8")
    grid = (triton.cdiv(n_rows, block_r),)
    _quantize_int8_kernel[grid](
        x_rows, q, scale, n_rows, n_cols, x_rows.stride(0), BLOCK_R=block_r, BLOCK_D=block_d
    )
    return q, scale


def dequantize_int8_triton(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """q int8 (..., D), scale float32 (..., 1) -> q * scale in ``dtype``; same contract as the torch one."""
    _checks.check_dequantize(q, scale, dtype)
    q, scale = q.contiguous(), scale.contiguous()
    out = torch.empty(q.shape, dtype=dtype, device=q.device)
    n_cols = q.shape[-1]
    n_rows = q.numel() // n_cols if n_cols else 0
    if n_rows == 0:
        return out
    block_r, block_d = _blocks(n_rows, n_cols, "dequantize_int8")
    grid = (triton.cdiv(n_rows, block_r),)
    _dequantize_int8_kernel[grid](q, scale, out, n_rows, n_cols, BLOCK_R=block_r, BLOCK_D=block_d)
    return out
