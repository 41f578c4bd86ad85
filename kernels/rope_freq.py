"""RoPE inverse frequencies as Hugging Face computes them (RoFormer, Su et al. 2021).

Supports ``rope_type`` "default", "linear" and "llama3" (Llama 3.1+) with the same float32 numbers
as ``transformers.modeling_rope_utils.ROPE_INIT_FUNCTIONS``. Torch only: importing this never
imports triton.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from blendcache.errors import KernelError, UnsupportedModelError

SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")
_LLAMA3_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")


def rope_inv_freq(head_dim: int, theta: float, scaling: Mapping[str, Any] | None = None) -> torch.Tensor:
    """Return the ``(head_dim // 2,)`` float32 inverse frequencies ``theta ** (-2i / head_dim)``.

    ``scaling`` is HF's ``rope_scaling`` / ``rope_parameters`` dict (``rope_type`` or the legacy
    ``type`` key; other keys such as ``rope_theta`` are ignored). ``None`` means "default".

    NOTE: only position-independent frequencies are accepted. Dynamic NTK changes the frequencies
    with the sequence length and yarn/longrope rescale cos/sin, so a cached key could not be
    re-aligned by one more rotation; those raise ``UnsupportedModelError``.
    """
    if head_dim <= 0 or head_dim % 2:
        raise KernelError(f"rope_inv_freq: head_dim must be a positive even number, got {head_dim}")
    scaling = scaling or {}
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise UnsupportedModelError(
            f"rope_type {rope_type!r} is not supported for RoPE re-alignment "
            f"(supported: {', '.join(SUPPORTED_ROPE_TYPES)})"
        )
    if scaling.get("partial_rotary_factor", 1.0) != 1.0:
        raise UnsupportedModelError("partial_rotary_factor != 1 is not supported for RoPE re-alignment")

    # Same expression as transformers (int64 arange cast to float32), so the numbers are identical.
    exponent = torch.arange(0, head_dim, 2, dtype=torch.int64).to(torch.float32) / head_dim
    inv_freq = 1.0 / (float(theta) ** exponent)  # (D/2,)
    if rope_type == "linear":
        return inv_freq / float(_require(scaling, "factor", rope_type))
    if rope_type == "llama3":
        return _llama3_inv_freq(inv_freq, scaling)
    return inv_freq


def _require(scaling: Mapping[str, Any], key: str, rope_type: str) -> Any:
    if key not in scaling:
        raise UnsupportedModelError(f"rope_type {rope_type!r} needs the key {key!r} in its parameters")
    return scaling[key]


def _llama3_inv_freq(inv_freq: torch.Tensor, scaling: Mapping[str, Any]) -> torch.Tensor:
    """Llama 3.1 frequency smoothing: long wavelengths divided by ``factor``, short ones kept,
    the band between interpolated. Mirrors transformers' ``_compute_llama3_parameters``."""
    factor, low_freq_factor, high_freq_factor, old_context_len = (
        _require(scaling, key, "llama3") for key in _LLAMA3_KEYS
    )
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor

    wavelen = 2 * math.pi / inv_freq  # (D/2,)
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)
