"""Row scatter into the KV cache and row gather: Triton kernels vs torch, exact equality."""

from __future__ import annotations

import pytest
import torch

from blendcache.errors import KernelError
from blendcache.kernels import dispatch
from blendcache.kernels.ref import gather_rows_torch, scatter_kv_torch


def make_rows(shape, dtype=torch.float32, seed=0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def make_idx(n: int, total: int, seed=0) -> torch.Tensor:
    """n unique token positions in [0, total), unsorted."""
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n]


# --- scatter ---------------------------------------------------------------------------------


def test_scatter_matches_reference(device, tokens, heads, head_dim, dtype_tol):
    from blendcache.kernels.scatter import scatter_kv_triton

    dtype, _, _ = dtype_tol  # a copy: exact for every dtype
    total = tokens + 40
    cache_k, cache_v = (
        make_rows((heads, total, head_dim), dtype, 1),
        make_rows((heads, total, head_dim), dtype, 2),
    )
    k, v = make_rows((heads, tokens, head_dim), dtype, 3), make_rows((heads, tokens, head_dim), dtype, 4)
    idx = make_idx(tokens, total)
    expected_k, expected_v = cache_k.clone(), cache_v.clone()
    scatter_kv_torch(expected_k, expected_v, idx, k, v)
    cache_k, cache_v, idx, k, v = (t.to(device) for t in (cache_k, cache_v, idx, k, v))

    scatter_kv_triton(cache_k, cache_v, idx, k, v)

    assert torch.equal(cache_k.cpu(), expected_k)
    assert torch.equal(cache_v.cpu(), expected_v)


def test_scatter_writes_exactly_the_indexed_rows(backend):
    cache_k, cache_v = torch.zeros(2, 3, 10, 4), torch.zeros(2, 3, 10, 4)  # (B, H, T_total, D)
    idx = torch.tensor([7, 2, 9])
    k = torch.arange(2 * 3 * 3 * 4, dtype=torch.float32).view(2, 3, 3, 4) + 1
    v = -k

    dispatch.scatter_kv(cache_k, cache_v, idx, k, v)

    assert torch.equal(cache_k[:, :, [7, 2, 9]], k)
    assert torch.equal(cache_v[:, :, [7, 2, 9]], v)
    untouched = [t for t in range(10) if t not in (7, 2, 9)]
    assert not cache_k[:, :, untouched].any() and not cache_v[:, :, untouched].any()


def test_scatter_into_a_chunk_view_of_the_cache(device):
    from blendcache.kernels.scatter import scatter_kv_triton

    full_k, full_v = make_rows((8, 100, 64), seed=5).to(device), make_rows((8, 100, 64), seed=6).to(device)
    before_k, before_v = full_k.clone(), full_v.clone()
    chunk_k, chunk_v = full_k[:, 20:60], full_v[:, 20:60]  # strided views
    idx = torch.tensor([0, 39, 17], device=device)
    k, v = make_rows((8, 3, 64), seed=7).to(device), make_rows((8, 3, 64), seed=8).to(device)

    scatter_kv_triton(chunk_k, chunk_v, idx, k, v)

    before_k[:, 20 + idx.cpu()] = k
    before_v[:, 20 + idx.cpu()] = v
    assert torch.equal(full_k, before_k) and torch.equal(full_v, before_v)


def test_scatter_int64_offsets(device, huge_fp16):
    """idx * row stride passes 2**31 (int32 idx, so the kernel must widen before multiplying)."""
    from blendcache.kernels.scatter import scatter_kv_triton

    head_dim = 128
    total = huge_fp16.numel() // head_dim  # > 2**24 tokens: idx * head_dim > 2**31
    cache_k = huge_fp16.view(1, total, head_dim)
    cache_v = torch.empty(1, total, 1, dtype=torch.float16)  # V may have another head_dim
    idx = torch.tensor([total - 1, 3, total - 100], dtype=torch.int32)
    k, v = make_rows((1, 3, head_dim), torch.float16, seed=9), make_rows((1, 3, 1), torch.float16, seed=10)

    scatter_kv_triton(cache_k, cache_v, idx, k, v)

    assert torch.equal(cache_k[0, idx.long()], k[0])
    assert torch.equal(cache_v[0, idx.long()], v[0])


@pytest.mark.parametrize(
    ("idx", "k_shape", "k_dtype", "message"),
    [
        (torch.tensor([0, 10]), (2, 2, 4), torch.float32, r"\[0, 10\)"),
        (torch.tensor([-1, 3]), (2, 2, 4), torch.float32, r"\[0, 10\)"),
        (torch.tensor([[0, 1]]), (2, 2, 4), torch.float32, "1-D"),
        (torch.tensor([0.0, 1.0]), (2, 2, 4), torch.float32, "int64"),
        (torch.tensor([0, 1]), (2, 3, 4), torch.float32, "expected shape"),
        (torch.tensor([0, 1]), (2, 2, 4), torch.float16, "dtype"),
    ],
    ids=["past-end", "negative", "2d-idx", "float-idx", "k-shape", "k-dtype"],
)
def test_scatter_rejects_bad_input(backend, idx, k_shape, k_dtype, message):
    cache_k, cache_v = torch.zeros(2, 10, 4), torch.zeros(2, 10, 4)
    k = torch.zeros(k_shape, dtype=k_dtype)
    with pytest.raises(KernelError, match=message):
        dispatch.scatter_kv(cache_k, cache_v, idx, k, torch.zeros(k_shape, dtype=k_dtype))


# --- gather -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(257, 64), (33, 1000), (3, 33, 128), (1, 1, 7)], ids=str)
def test_gather_matches_reference(device, shape, dtype_tol):
    from blendcache.kernels.scatter import gather_rows_triton

    dtype, _, _ = dtype_tol
    x = make_rows(shape, dtype).to(device)
    n_tokens = shape[-2]
    idx = torch.cat([make_idx(n_tokens, n_tokens), make_idx(1, n_tokens, seed=1)]).to(device)  # repeats ok

    got = gather_rows_triton(x, idx)

    assert got.shape == (*shape[:-2], n_tokens + 1, shape[-1])
    assert torch.equal(got.cpu(), gather_rows_torch(x, idx).cpu())


def test_gather_through_dispatch(backend):
    x = torch.arange(24, dtype=torch.float32).view(2, 4, 3)  # (B, T, C)
    got = dispatch.gather_rows(x, torch.tensor([3, 0]))
    assert torch.equal(got, torch.stack([x[:, 3], x[:, 0]], dim=1))
    assert dispatch.gather_rows(x, torch.tensor([], dtype=torch.long)).shape == (2, 0, 3)


def test_gather_int64_offsets(device, huge_fp16):
    from blendcache.kernels.scatter import gather_rows_triton

    n_cols = 128
    total = huge_fp16.numel() // n_cols
    x = huge_fp16.view(total, n_cols)
    x[-2:] = make_rows((2, n_cols), torch.float16, seed=11)
    x[5] = 1.0
    idx = torch.tensor([total - 1, 5, total - 2], dtype=torch.int32)

    got = gather_rows_triton(x, idx)

    assert torch.equal(got, torch.stack([x[-1], x[5], x[-2]]))


def test_gather_rejects_bad_input(backend):
    x = torch.zeros(5, 3)
    with pytest.raises(KernelError, match=r"\[0, 5\)"):
        dispatch.gather_rows(x, torch.tensor([5]))
    with pytest.raises(KernelError, match="dtype"):
        dispatch.gather_rows(torch.zeros(5, 3, dtype=torch.int64), torch.tensor([0]))
