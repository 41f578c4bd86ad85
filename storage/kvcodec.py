"""Serialise chunk KV tensors to bytes and back, with a checksum; optional int8 compression.

Format: a safetensors blob with tensors ``k`` and ``v`` (layers, kv_heads, tokens, head_dim),
or ``k_q, k_scale, v_q, v_scale`` for int8 (per-token symmetric absmax, see kernels/kvcodec.py),
and metadata ``start`` (position of the first token), ``codec``, ``dtype`` and ``sha256`` of
the tensor payload. A blob whose checksum does not match raises :class:`CorruptBlobError`.
"""

from __future__ import annotations

import hashlib

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from blendcache.errors import CorruptBlobError, StorageError
from blendcache.recompute.kv import KV

CODECS = ("none", "int8")


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def encode(kv: KV, codec: str = "none") -> bytes:
    if codec not in CODECS:
        raise StorageError(f"unknown kv codec {codec!r}; one of {CODECS}")
    if codec == "int8":
        from blendcache.kernels import dispatch

        k_q, k_s = dispatch.quantize_int8(kv.k)
        v_q, v_s = dispatch.quantize_int8(kv.v)
        tensors = {"k_q": k_q, "k_scale": k_s, "v_q": v_q, "v_scale": v_s}
    else:
        tensors = {"k": kv.k, "v": kv.v}
    tensors = {n: t.detach().contiguous().cpu() for n, t in tensors.items()}
    meta = {"start": str(kv.start), "codec": codec, "dtype": str(kv.k.dtype).removeprefix("torch."),
            "sha256": _digest(tensors)}
    return save(tensors, metadata=meta)


def decode(blob: bytes, *, where: str = "blob") -> KV:
    try:
        tensors = load(blob)
        meta = _metadata(blob)
    except (SafetensorError, ValueError, KeyError) as exc:
        raise CorruptBlobError(f"{where}: unreadable KV blob: {exc}") from exc
    if _digest(tensors) != meta.get("sha256"):
        raise CorruptBlobError(f"{where}: checksum mismatch")
    dtype = getattr(torch, meta["dtype"])
    if meta["codec"] == "int8":
        from blendcache.kernels import dispatch

        k = dispatch.dequantize_int8(tensors["k_q"], tensors["k_scale"], dtype)
        v = dispatch.dequantize_int8(tensors["v_q"], tensors["v_scale"], dtype)
    else:
        k, v = tensors["k"], tensors["v"]
    return KV(k, v, int(meta["start"]))


def _metadata(blob: bytes) -> dict[str, str]:
    import json
    import struct

    (header_len,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8 : 8 + header_len]).get("__metadata__", {})
