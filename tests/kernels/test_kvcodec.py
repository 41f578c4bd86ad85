"""Per-token int8 KV codec: Triton kernels vs torch, round-trip error bound, storage size."""

from __future__ import annotations

import pytest
import torch

from blendcache.errors import KernelError
from blendcache.kernels import dispatch
from blendcache.kernels.ref import dequantize_int8_torch, quantize_int8_torch


def make_kv(shape, dtype=torch.float32, seed=0) -> torch.Tensor:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    return (x * torch.logspace(-2, 1, shape[-2])[:, None]).to(dtype)  # rows of very different scale


def test_quantize_matches_reference(device, tokens, heads, head_dim, dtype_tol):
    from blendcache.kernels.kvcodec import dequantize_int8_triton, quantize_int8_triton

    dtype, atol, rtol = dtype_tol
    x = make_kv((heads, tokens, head_dim), dtype)
    q_ref, scale_ref = quantize_int8_torch(x)

    q, scale = quantize_int8_triton(x.to(device))

    assert q.dtype == torch.int8 and q.shape == x.shape
    assert scale.dtype == torch.float32 and scale.shape == (heads, tokens, 1)
    assert torch.equal(q.cpu(), q_ref)  # same IEEE ops in both paths: bit-exact
    assert torch.equal(scale.cpu(), scale_ref)
    restored = dequantize_int8_triton(q, scale, dtype)
    assert restored.dtype == dtype
    torch.testing.assert_close(
        restored.cpu(), dequantize_int8_torch(q_ref, scale_ref, dtype), atol=atol, rtol=rtol
    )


def test_round_trip_error_is_at_most_half_a_step(backend, dtype_tol):
    dtype, _, _ = dtype_tol
    x = make_kv((8, 257, 128), dtype, seed=1)
    x[3, 5] = 0.0  # an all-zero row

    q, scale = dispatch.quantize_int8(x)
    restored = dispatch.dequantize_int8(q, scale, torch.float32)

    error = (restored - x.float()).abs()  # (H, T, D)
    # scale/2 from rounding to the int grid, plus float32 rounding of scale and q * scale (~2**-17 s)
    assert (error <= scale / 2 * (1 + 1e-4)).all()
    assert q.abs().max() == 127  # the absmax element of each row maps to +-127
    assert scale[3, 5] == 0 and not q[3, 5].any()


def test_int8_halves_the_bytes_of_fp16(backend):
    x = make_kv((8, 64, 128), torch.float16)

    q, scale = dispatch.quantize_int8(x)

    fp16_bytes = x.numel() * x.element_size()
    int8_bytes = q.numel() * q.element_size() + scale.numel() * scale.element_size()
    # D int8 values + one float32 scale per token row: (128 + 4) / 256 of fp16 for head_dim 128.
    assert int8_bytes == fp16_bytes * (128 + 4) // 256
    assert int8_bytes / fp16_bytes < 0.52


def test_codec_handles_leading_dims_and_one_dim(backend):
    x = make_kv((2, 3, 7, 64), seed=2)
    q, scale = dispatch.quantize_int8(x)
    assert q.shape == x.shape and scale.shape == (2, 3, 7, 1)

    q1, scale1 = dispatch.quantize_int8(x[0, 0, 0])  # a single row (D,)
    assert scale1.shape == (1,) and torch.equal(q1, q[0, 0, 0])
    assert torch.equal(dispatch.dequantize_int8(q1, scale1, torch.float32), q1.float() * scale1)


def test_quantize_int64_offsets(device, huge_fp16):
    """Row 2 starts past element 2**31 of a > 4 GiB buffer, with an int32 row stride (see test_rope)."""
    from blendcache.kernels.kvcodec import quantize_int8_triton

    x = huge_fp16.as_strided((3, 128), (2**30 + 512, 1))
    x.copy_(make_kv((3, 128), torch.float16, seed=3))

    q, scale = quantize_int8_triton(x)

    q_ref, scale_ref = quantize_int8_torch(x.clone())
    assert torch.equal(q, q_ref) and torch.equal(scale, scale_ref)


def test_codec_rejects_bad_input(backend):
    with pytest.raises(KernelError, match="dtype"):
        dispatch.quantize_int8(torch.zeros(4, 8, dtype=torch.int32))
    with pytest.raises(KernelError, match="empty"):
        dispatch.quantize_int8(torch.zeros(4, 0))
    q = torch.zeros(4, 8, dtype=torch.int8)
    with pytest.raises(KernelError, match="scale"):
        dispatch.dequantize_int8(q, torch.zeros(4, 8), torch.float16)
    with pytest.raises(KernelError, match="float32"):
        dispatch.dequantize_int8(q, torch.zeros(4, 1, dtype=torch.float16), torch.float16)
    with pytest.raises(KernelError, match="int8"):
        dispatch.dequantize_int8(q.float(), torch.zeros(4, 1), torch.float16)
    with pytest.raises(KernelError, match="not supported"):
        dispatch.dequantize_int8(q, torch.zeros(4, 1), torch.int32)
