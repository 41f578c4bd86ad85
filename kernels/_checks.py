"""Argument checks shared by the torch references and the Triton launchers.

Both paths raise the same ``KernelError`` for the same bad input, so which path the dispatcher
picks never changes what a caller sees. Layout: per-layer KV is ``(..., kv_heads, T, head_dim)``;
leading dims and heads are flattened into one "row" axis, ``(R, T, D)``.
"""

from __future__ import annotations

import math

import torch

from blendcache.errors import KernelError

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
INDEX_DTYPES = (torch.int32, torch.int64)


def check_float(name: str, x: torch.Tensor, *, min_dim: int = 2) -> None:
    """``x`` is a tensor of a supported float dtype with at least ``min_dim`` dims."""
    if not isinstance(x, torch.Tensor):
        raise KernelError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise KernelError(f"{name}: dtype {x.dtype} is not supported (float32, float16, bfloat16)")
    if x.dim() < min_dim:
        raise KernelError(f"{name}: expected at least {min_dim} dims, got shape {tuple(x.shape)}")


def check_like(name: str, x: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    """``x`` has the same shape, dtype and device as ``ref``."""
    check_float(name, x, min_dim=ref.dim())
    if x.shape != ref.shape:
        raise KernelError(f"{name}: shape {tuple(x.shape)} != {ref_name} shape {tuple(ref.shape)}")
    check_same_device(name, x, ref_name, ref)
    if x.dtype != ref.dtype:
        raise KernelError(f"{name}: dtype {x.dtype} != {ref_name} dtype {ref.dtype}")


def check_same_device(name: str, x: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    if x.device != ref.device:
        raise KernelError(f"{name} is on {x.device} but {ref_name} is on {ref.device}")


def check_index(name: str, idx: torch.Tensor, size: int, *, device: torch.device) -> None:
    """``idx`` is a 1-D int32/int64 tensor on ``device`` with every value in ``[0, size)``.

    NOTE: the bounds check reads two scalars back from the device (one sync). An index out of
    range would otherwise be a silent out-of-bounds write in the Triton kernels.
    """
    if not isinstance(idx, torch.Tensor) or idx.dtype not in INDEX_DTYPES or idx.dim() != 1:
        got = f"{idx.dtype} {tuple(idx.shape)}" if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise KernelError(f"{name}: expected a 1-D int64 (or int32) tensor, got {got}")
    if idx.device != device:
        raise KernelError(f"{name} is on {idx.device} but the data is on {device}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= size):
        raise KernelError(f"{name}: values must lie in [0, {size}), got [{int(idx.min())}, {int(idx.max())}]")


def as_rows(name: str, x: torch.Tensor) -> torch.Tensor:
    """View ``(..., T, D)`` as ``(R, T, D)`` without copying; unit stride on the last dim required.

    Slices along T (a chunk of a larger cache) are fine; layouts that cannot be flattened without
    a copy raise ``KernelError`` (call ``.contiguous()`` first).
    """
    if x.stride(-1) != 1 and x.shape[-1] != 1:
        raise KernelError(f"{name}: the last dim must be contiguous (stride 1), got strides {x.stride()}")
    try:
        return x.view(math.prod(x.shape[:-2]), x.shape[-2], x.shape[-1])
    except RuntimeError as exc:
        raise KernelError(
            f"{name}: strides {x.stride()} for shape {tuple(x.shape)} cannot be viewed as "
            "(rows, T, D) without a copy; pass a contiguous tensor"
        ) from exc


def as_matrix(name: str, x: torch.Tensor) -> torch.Tensor:
    """View ``(..., D)`` as ``(N, D)`` without copying; unit stride on the last dim required."""
    if x.stride(-1) != 1 and x.shape[-1] != 1:
        raise KernelError(f"{name}: the last dim must be contiguous (stride 1), got strides {x.stride()}")
    try:
        return x.view(math.prod(x.shape[:-1]), x.shape[-1])
    except RuntimeError as exc:
        raise KernelError(
            f"{name}: strides {x.stride()} for shape {tuple(x.shape)} cannot be viewed as "
            "(rows, D) without a copy; pass a contiguous tensor"
        ) from exc


# --- per-op checks (one place, used by both paths) -------------------------------------------


def check_rope(k: torch.Tensor, delta: torch.Tensor, inv_freq: torch.Tensor, *, name: str = "k") -> None:
    """k (..., T, D) float, D even; delta (T,) int32/int64; inv_freq (D/2,) float32; one device."""
    check_float(name, k)
    n_tokens, head_dim = k.shape[-2], k.shape[-1]
    if head_dim % 2:
        raise KernelError(f"{name}: head_dim must be even for RoPE, got {head_dim}")
    if not isinstance(delta, torch.Tensor) or delta.dtype not in INDEX_DTYPES:
        raise KernelError("delta: expected an int64 (or int32) tensor of per-token position offsets")
    if delta.shape != (n_tokens,):
        raise KernelError(
            f"delta: expected shape ({n_tokens},) (one offset per token), got {tuple(delta.shape)}"
        )
    if not isinstance(inv_freq, torch.Tensor) or inv_freq.dtype != torch.float32:
        raise KernelError("inv_freq: expected a float32 tensor (see rope_inv_freq)")
    if inv_freq.shape != (head_dim // 2,):
        raise KernelError(f"inv_freq: expected shape ({head_dim // 2},), got {tuple(inv_freq.shape)}")
    check_same_device("delta", delta, name, k)
    check_same_device("inv_freq", inv_freq, name, k)


def check_deviation(
    k_new: torch.Tensor,
    k_old: torch.Tensor,
    v_new: torch.Tensor | None,
    v_old: torch.Tensor | None,
) -> None:
    """k_new/k_old (..., H, T, D) alike; v_new/v_old given together, alike, with the same T."""
    check_float("k_new", k_new)
    check_like("k_old", k_old, "k_new", k_new)
    if (v_new is None) != (v_old is None):
        raise KernelError("kv_deviation: pass both v_new and v_old, or neither")
    if v_new is not None:
        check_float("v_new", v_new)
        check_like("v_old", v_old, "v_new", v_new)
        check_same_device("v_new", v_new, "k_new", k_new)
        if v_new.shape[-2] != k_new.shape[-2]:
            raise KernelError(f"v_new has {v_new.shape[-2]} tokens but k_new has {k_new.shape[-2]}")


def check_scatter(
    name: str, cache: torch.Tensor, idx: torch.Tensor, src: torch.Tensor, src_name: str
) -> None:
    """cache (..., T_total, D); idx (n,) in [0, T_total); src (..., n, D) alike with the cache."""
    check_float(name, cache)
    check_index("idx", idx, cache.shape[-2], device=cache.device)
    check_float(src_name, src)
    expected = (*cache.shape[:-2], idx.shape[0], cache.shape[-1])
    if src.shape != expected:
        raise KernelError(
            f"{src_name}: expected shape {expected} to scatter into {name} {tuple(cache.shape)}, "
            f"got {tuple(src.shape)}"
        )
    if src.dtype != cache.dtype:
        raise KernelError(f"{src_name}: dtype {src.dtype} != {name} dtype {cache.dtype}")
    check_same_device(src_name, src, name, cache)


def check_gather(x: torch.Tensor, idx: torch.Tensor) -> None:
    """x (..., T, C) float; idx (n,) in [0, T)."""
    check_float("x", x)
    check_index("idx", idx, x.shape[-2], device=x.device)


def check_quantize(x: torch.Tensor) -> None:
    check_float("x", x, min_dim=1)
    if x.shape[-1] == 0:
        raise KernelError("quantize_int8: the last dim (head_dim) must not be empty")


def check_dequantize(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> None:
    """q int8 (..., D); scale float32 (..., 1); dtype one of the float dtypes."""
    if not isinstance(q, torch.Tensor) or q.dtype != torch.int8 or q.dim() < 1:
        raise KernelError("q: expected an int8 tensor of at least 1 dim")
    if not isinstance(scale, torch.Tensor) or scale.dtype != torch.float32:
        raise KernelError("scale: expected a float32 tensor")
    if scale.shape != (*q.shape[:-1], 1):
        raise KernelError(f"scale: expected shape {(*q.shape[:-1], 1)}, got {tuple(scale.shape)}")
    check_same_device("scale", scale, "q", q)
    if dtype not in FLOAT_DTYPES:
        raise KernelError(f"dequantize_int8: dtype {dtype} is not supported (float32, float16, bfloat16)")
