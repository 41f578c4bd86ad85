"""KV deviation (CacheBlend): Triton kernel vs torch reference, and token selection."""

from __future__ import annotations

import pytest
import torch

from blendcache.errors import KernelError
from blendcache.kernels import dispatch
from blendcache.kernels.ref import kv_deviation_torch, select_tokens_torch


def make_kv(shape, dtype=torch.float32, seed=0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


# --- kernel vs reference --------------------------------------------------------------------


def test_deviation_matches_reference(device, tokens, heads, head_dim, dtype_tol):
    from blendcache.kernels.deviation import kv_deviation_triton

    dtype, _, _ = dtype_tol  # inputs are upcast exactly; only the float32 summation order differs
    shape = (heads, tokens, head_dim)
    k_new, k_old, v_new, v_old = (make_kv(shape, dtype, seed).to(device) for seed in range(4))

    got = kv_deviation_triton(k_new, k_old, v_new, v_old)

    assert got.dtype == torch.float32 and got.shape == (tokens,)
    expected = kv_deviation_torch(k_new, k_old, v_new, v_old)
    torch.testing.assert_close(got.cpu(), expected.cpu(), atol=1e-4, rtol=1e-5)


def test_deviation_of_k_alone(device):
    from blendcache.kernels.deviation import kv_deviation_triton

    k_new, k_old = make_kv((3, 33, 128), seed=1).to(device), make_kv((3, 33, 128), seed=2).to(device)

    got = kv_deviation_triton(k_new, k_old)

    torch.testing.assert_close(got, kv_deviation_torch(k_new, k_old), atol=1e-4, rtol=1e-5)
    assert (got < kv_deviation_triton(k_new, k_old, k_new, k_old * 0.5)).all()


def test_deviation_leading_dims_and_strided_views(device):
    from blendcache.kernels.deviation import kv_deviation_triton

    fused = make_kv((2, 3, 40, 64), seed=1).to(device)  # (layers, H, T_total, D)
    k_old = fused[:, :, 3:36]  # a chunk of the fused cache: a strided view
    k_new = make_kv((2, 3, 33, 64), seed=2).to(device)
    v_new = make_kv((2, 3, 33, 32), torch.float16, seed=3).to(device)  # V may differ in dim/dtype
    v_old = make_kv((2, 3, 33, 32), torch.float16, seed=4).to(device)

    got = kv_deviation_triton(k_new, k_old, v_new, v_old)

    torch.testing.assert_close(got, kv_deviation_torch(k_new, k_old, v_new, v_old), atol=1e-4, rtol=1e-5)


def test_deviation_int64_offsets(device, huge_fp16):
    """Row 2 starts past element 2**31 of a > 4 GiB buffer, with an int32 row stride (see test_rope)."""
    from blendcache.kernels.deviation import kv_deviation_triton

    n_tokens, head_dim = 33, 128
    k_new = huge_fp16.as_strided((3, n_tokens, head_dim), (2**30 + 8192, head_dim, 1))
    k_new.copy_(make_kv((3, n_tokens, head_dim), torch.float16, seed=5))
    k_old = make_kv((3, n_tokens, head_dim), torch.float16, seed=6)

    got = kv_deviation_triton(k_new, k_old)

    torch.testing.assert_close(got, kv_deviation_torch(k_new.clone(), k_old), atol=1e-4, rtol=1e-5)


def test_identical_kv_has_zero_deviation(backend):
    k = make_kv((8, 33, 128), torch.bfloat16)
    assert torch.equal(dispatch.kv_deviation(k, k.clone(), k, k.clone()), torch.zeros(33))


def test_deviation_rejects_bad_input(backend):
    k = make_kv((2, 5, 64))
    with pytest.raises(KernelError, match="shape"):
        dispatch.kv_deviation(k, k[:, :4])
    with pytest.raises(KernelError, match="dtype"):
        dispatch.kv_deviation(k, k.half())
    with pytest.raises(KernelError, match="both v_new and v_old"):
        dispatch.kv_deviation(k, k, v_new=k)
    with pytest.raises(KernelError, match="tokens"):
        dispatch.kv_deviation(k, k, make_kv((2, 6, 64)), make_kv((2, 6, 64)))


# --- selection --------------------------------------------------------------------------------


def test_planted_high_deviation_tokens_are_selected_exactly(backend):
    """The tokens whose reused KV differs from the true KV are the ones picked for recompute."""
    n_tokens, planted = 257, torch.tensor([0, 5, 64, 130, 200, 256])
    k_new, v_new = make_kv((8, n_tokens, 128), seed=7), make_kv((8, n_tokens, 128), seed=8)
    k_old = k_new + 0.01 * make_kv(k_new.shape, seed=9)
    v_old = v_new + 0.01 * make_kv(v_new.shape, seed=10)
    k_old[:, planted] += 1.0  # the reused cache is wrong at these tokens only
    v_old[2, planted[::2]] -= 3.0

    deviation = dispatch.kv_deviation(k_new, k_old, v_new, v_old)
    selected = dispatch.select_tokens(deviation, len(planted))

    assert selected.tolist() == planted.tolist()


def test_always_tokens_are_selected_and_count_toward_k():
    deviation = torch.tensor([0.0, 9.0, 1.0, 8.0, 7.0, 0.5, 0.0, 0.0])
    always = torch.tensor([7, 6])  # e.g. the query tokens, deviation 0

    assert select_tokens_torch(deviation, 4, always=always).tolist() == [1, 3, 6, 7]
    assert select_tokens_torch(deviation, 2, always=always).tolist() == [6, 7]
    assert select_tokens_torch(deviation, 1, always=always).tolist() == [6, 7]  # forced beyond k
    assert select_tokens_torch(deviation, 0, always=torch.tensor([3, 3])).tolist() == [3]


def test_select_tokens_order_ties_and_bounds():
    deviation = torch.tensor([1.0, 3.0, 3.0, float("nan"), 2.0])

    assert select_tokens_torch(deviation, 2).tolist() == [1, 3]  # NaN counts as +inf
    assert select_tokens_torch(deviation, 3).tolist() == [1, 2, 3]
    assert select_tokens_torch(torch.tensor([5.0, 5.0, 5.0]), 2).tolist() == [0, 1]  # ties: lower index
    assert select_tokens_torch(deviation, 99).tolist() == [0, 1, 2, 3, 4]  # k capped at T
    assert select_tokens_torch(deviation, 0).tolist() == []
    result = select_tokens_torch(deviation, 2)
    assert result.dtype == torch.int64


def test_select_tokens_rejects_bad_input():
    deviation = torch.zeros(4)
    with pytest.raises(KernelError, match="non-negative"):
        select_tokens_torch(deviation, -1)
    with pytest.raises(KernelError, match="int"):
        select_tokens_torch(deviation, 1.5)
    with pytest.raises(KernelError, match=r"\[0, 4\)"):
        select_tokens_torch(deviation, 1, always=torch.tensor([4]))
    with pytest.raises(KernelError, match="1-D"):
        select_tokens_torch(torch.zeros(2, 2), 1)
