"""Kernels for chunk fusion: RoPE re-alignment, KV deviation, row scatter/gather, int8 KV codec.

Call the ops through this package (re-exported from ``dispatch``): each runs as a Triton kernel on
CUDA tensors and as the torch reference (``ref``) elsewhere. Importing it never imports triton.
"""

from blendcache.kernels.dispatch import (
    Backend,
    dequantize_int8,
    gather_rows,
    get_backend,
    kv_deviation,
    quantize_int8,
    rope_inv_freq,
    rope_realign,
    scatter_kv,
    select_tokens,
    set_backend,
    triton_status,
    use_backend,
)

__all__ = [
    "Backend",
    "dequantize_int8",
    "gather_rows",
    "get_backend",
    "kv_deviation",
    "quantize_int8",
    "rope_inv_freq",
    "rope_realign",
    "scatter_kv",
    "select_tokens",
    "set_backend",
    "triton_status",
    "use_backend",
]
