"""The one place that picks Triton or torch for each kernel op; callers use only these functions.

``auto`` (the default) runs Triton when the data is on a CUDA device and triton and the kernel
module import; otherwise the torch reference in ``ref.py``. ``set_backend("torch" | "triton")``
forces a path (tests force "triton" under TRITON_INTERPRET=1 on CPU). triton is imported lazily,
so importing this module never fails when triton is missing or broken. Each op logs once per path
(logger ``blendcache.kernels``) which path runs and why.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Literal

import torch

from blendcache.errors import KernelError
from blendcache.kernels import _checks, ref
from blendcache.kernels.rope_freq import rope_inv_freq

__all__ = [
    "Backend",
    "set_backend",
    "get_backend",
    "use_backend",
    "triton_status",
    "rope_inv_freq",
    "rope_realign",
    "kv_deviation",
    "select_tokens",
    "scatter_kv",
    "gather_rows",
    "quantize_int8",
    "dequantize_int8",
]

Backend = Literal["auto", "torch", "triton"]
_BACKENDS = ("auto", "torch", "triton")

logger = logging.getLogger("blendcache.kernels")

# NOTE: process-wide on purpose: the backend is a property of the process (which devices and
# compilers exist), set once at start-up or by tests, never per request.
_backend: Backend = "auto"
_modules: dict[str, ModuleType | str] = {}  # kernel module name -> module, or why it failed to load
_logged: set[tuple[str, str]] = set()


def set_backend(backend: Backend) -> None:
    """Choose how ops run: "auto" (Triton on CUDA tensors), "torch" or "triton" (forced)."""
    global _backend
    if backend not in _BACKENDS:
        raise KernelError(f"unknown kernel backend {backend!r}; expected one of {_BACKENDS}")
    _backend = backend
    _logged.clear()


def get_backend() -> Backend:
    return _backend


@contextlib.contextmanager
def use_backend(backend: Backend) -> Iterator[None]:
    """Temporarily set the backend (tests, benchmarks)."""
    previous = _backend
    set_backend(backend)
    try:
        yield
    finally:
        set_backend(previous)


def _load(module_name: str) -> ModuleType | str:
    """Import ``blendcache.kernels.<module_name>`` (and so triton) once; a failure is kept as text."""
    if module_name not in _modules:
        try:
            _modules[module_name] = importlib.import_module(f"{__package__}.{module_name}")
        except Exception as exc:  # noqa: BLE001 - a broken triton install raises anything
            _modules[module_name] = f"{type(exc).__name__}: {exc}"
    return _modules[module_name]


def triton_status() -> str | None:
    """None when triton and every kernel module import; otherwise why not."""
    for name in ("rope", "deviation", "scatter", "kvcodec"):
        loaded = _load(name)
        if isinstance(loaded, str):
            return f"blendcache.kernels.{name}: {loaded}"
    return None


def _triton_module(op: str, module_name: str, x: torch.Tensor) -> ModuleType | None:
    """The kernel module when ``op`` should run on Triton, None for the torch path."""
    if _backend == "torch":
        _log_once(op, "torch", "backend forced to torch")
        return None
    if _backend == "auto" and not getattr(x, "is_cuda", False):
        _log_once(op, "torch", "data not on a CUDA device")
        return None
    loaded = _load(module_name)
    if isinstance(loaded, str):
        if _backend == "triton":
            raise KernelError(f"{op}: backend forced to triton but the kernels do not load: {loaded}")
        _log_once(op, "torch", f"triton unavailable ({loaded})", level=logging.WARNING)
        return None
    _log_once(op, "triton", f"backend {_backend}, data on {x.device.type}")
    return loaded


def _log_once(op: str, path: str, reason: str, *, level: int = logging.INFO) -> None:
    if (op, path) not in _logged:
        _logged.add((op, path))
        logger.log(level, "%s runs on %s: %s", op, path, reason)


# --- ops ----------------------------------------------------------------------------------------


def rope_realign(
    k: torch.Tensor,
    delta: torch.Tensor | int,
    inv_freq: torch.Tensor,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Re-rotate keys k (..., T, D) from position p to p + delta (RoFormer; rotations compose).

    delta: per-token offsets (T,) int64/int32 (may be negative), or one int for every token.
    inv_freq: (D/2,) float32 from ``rope_inv_freq``. ``out=k`` re-aligns in place.
    """
    if isinstance(delta, int):
        _checks.check_float("k", k)
        delta = torch.full((k.shape[-2],), delta, dtype=torch.int64, device=k.device)
    kernels = _triton_module("rope_realign", "rope", k)
    if kernels is None:
        return ref.rope_realign_torch(k, delta, inv_freq, out=out)
    return kernels.rope_realign_triton(k, delta, inv_freq, out=out)


def kv_deviation(
    k_new: torch.Tensor,
    k_old: torch.Tensor,
    v_new: torch.Tensor | None = None,
    v_old: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-token (T,) float32 sum over heads and head_dim of (new - old)^2 for K (+ V) (CacheBlend).

    Inputs (..., H, T, D); leading dims count as more heads.
    """
    kernels = _triton_module("kv_deviation", "deviation", k_new)
    if kernels is None:
        return ref.kv_deviation_torch(k_new, k_old, v_new, v_old)
    return kernels.kv_deviation_triton(k_new, k_old, v_new, v_old)


def select_tokens(deviation: torch.Tensor, k: int, *, always: torch.Tensor | None = None) -> torch.Tensor:
    """Ascending int64 indices of the top-``k`` tokens by deviation; ``always`` forced in and counted
    toward ``k`` (see ``ref.select_tokens_torch``). Torch on every device: a sort of T values."""
    return ref.select_tokens_torch(deviation, k, always=always)


def scatter_kv(
    cache_k: torch.Tensor,
    cache_v: torch.Tensor,
    idx: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
) -> None:
    """In place: cache_k[..., idx, :] = k and cache_v[..., idx, :] = v.

    cache (..., H, T_total, D); idx (n,) unique int64 in [0, T_total); k, v (..., H, n, D), same dtype.
    """
    kernels = _triton_module("scatter_kv", "scatter", cache_k)
    if kernels is None:
        ref.scatter_kv_torch(cache_k, cache_v, idx, k, v)
    else:
        kernels.scatter_kv_triton(cache_k, cache_v, idx, k, v)


def gather_rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x (..., T, C), idx (n,) -> (..., n, C): the rows idx along dim -2 (a new tensor)."""
    kernels = _triton_module("gather_rows", "scatter", x)
    if kernels is None:
        return ref.gather_rows_torch(x, idx)
    return kernels.gather_rows_triton(x, idx)


def quantize_int8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (..., D) -> (q int8 (..., D), scale float32 (..., 1)), symmetric absmax per row."""
    kernels = _triton_module("quantize_int8", "kvcodec", x)
    if kernels is None:
        return ref.quantize_int8_torch(x)
    return kernels.quantize_int8_triton(x)


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """q int8 (..., D), scale float32 (..., 1) -> q * scale in ``dtype``."""
    kernels = _triton_module("dequantize_int8", "kvcodec", q)
    if kernels is None:
        return ref.dequantize_int8_torch(q, scale, dtype)
    return kernels.dequantize_int8_triton(q, scale, dtype)
