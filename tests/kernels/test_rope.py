"""RoPE re-alignment: Triton kernel vs torch reference, rotation properties, HF frequencies."""

from __future__ import annotations

import pytest
import torch

from blendcache.errors import KernelError, UnsupportedModelError
from blendcache.kernels import dispatch
from blendcache.kernels.ref import apply_rope_torch, rope_realign_torch
from blendcache.kernels.rope_freq import rope_inv_freq

LLAMA3_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}


def make_keys(shape, dtype=torch.float32, seed=0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def make_delta(n_tokens: int, *, low=-4000, high=4000, seed=1) -> torch.Tensor:
    return torch.randint(low, high, (n_tokens,), generator=torch.Generator().manual_seed(seed))


# --- kernel vs reference --------------------------------------------------------------------


def test_realign_matches_reference(device, tokens, heads, head_dim, dtype_tol):
    from blendcache.kernels.rope import rope_realign_triton

    dtype, atol, rtol = dtype_tol
    k = make_keys((heads, tokens, head_dim), dtype).to(device)
    delta = make_delta(tokens).to(device)
    inv_freq = rope_inv_freq(head_dim, 500000.0, LLAMA3_SCALING).to(device)

    got = rope_realign_triton(k, delta, inv_freq)

    assert got.dtype == dtype and got.shape == k.shape
    torch.testing.assert_close(got.cpu(), rope_realign_torch(k, delta, inv_freq).cpu(), atol=atol, rtol=rtol)


def test_realign_leading_dims_strided_view_and_in_place(device):
    from blendcache.kernels.rope import rope_realign_triton

    cache = make_keys((2, 3, 50, 64)).to(device)  # (layers, H, T_total, D)
    k = cache[:, :, 10:43]  # a chunk: a view with T-stride gaps between rows
    delta = make_delta(33).to(device)
    inv_freq = rope_inv_freq(64, 10000.0).to(device)
    expected = rope_realign_torch(k, delta, inv_freq)
    untouched = cache[:, :, :10].clone()

    torch.testing.assert_close(rope_realign_triton(k, delta, inv_freq), expected, atol=1e-5, rtol=1e-5)
    out = rope_realign_triton(k, delta, inv_freq, out=k)  # in place, into the cache

    assert out.data_ptr() == k.data_ptr()
    torch.testing.assert_close(cache[:, :, 10:43], expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(cache[:, :, :10], untouched)


def test_realign_int64_offsets(device, huge_fp16):
    """Row 2 of k starts past element 2**31 of a > 4 GiB buffer, with an int32 row stride: the
    kernel must widen row * stride to int64 (in int32 it wraps and reads the wrong memory).

    NOTE: a whole Llama-size cache of more than 2**31 elements cannot be allocated in CI, so this
    uses a huge row stride over a mostly untouched buffer; the largest case that stays fast.
    """
    from blendcache.kernels.rope import rope_realign_triton

    n_tokens, head_dim = 33, 128
    row_stride = 2**30 + 4096  # fits int32; 2 * row_stride does not
    k = huge_fp16.as_strided((3, n_tokens, head_dim), (row_stride, head_dim, 1))
    k.copy_(make_keys((3, n_tokens, head_dim), torch.float16))
    delta = make_delta(n_tokens).to(device)
    inv_freq = rope_inv_freq(head_dim, 10000.0)

    got = rope_realign_triton(k, delta, inv_freq)

    torch.testing.assert_close(got, rope_realign_torch(k.clone(), delta, inv_freq), atol=1e-3, rtol=1e-3)


# --- properties (both paths, through dispatch) ----------------------------------------------


def test_realign_by_zero_is_identity(backend, dtype_tol):
    dtype, _, _ = dtype_tol
    k = make_keys((3, 33, 128), dtype)
    inv_freq = rope_inv_freq(128, 10000.0)

    assert torch.equal(dispatch.rope_realign(k, 0, inv_freq), k)


def test_realign_composes(backend):
    k = make_keys((2, 33, 64))
    a, b = make_delta(33, seed=2), make_delta(33, seed=3)
    inv_freq = rope_inv_freq(64, 10000.0)

    twice = dispatch.rope_realign(dispatch.rope_realign(k, a, inv_freq), b, inv_freq)

    torch.testing.assert_close(twice, dispatch.rope_realign(k, a + b, inv_freq), atol=2e-3, rtol=1e-4)


def test_realign_moves_a_prefilled_key_to_its_new_position(backend):
    """rope_realign(apply_rope(k, p), d) == apply_rope(k, p + d): the chunk-reuse invariant."""
    n_tokens = 257
    k = make_keys((8, n_tokens, 128))
    positions = torch.arange(n_tokens) + 7  # where the chunk was prefilled
    delta = make_delta(n_tokens, low=-7, high=300)  # where its tokens go now (p + d >= 0)
    inv_freq = rope_inv_freq(128, 500000.0, LLAMA3_SCALING)

    moved = dispatch.rope_realign(apply_rope_torch(k, positions, inv_freq), delta, inv_freq)

    torch.testing.assert_close(moved, apply_rope_torch(k, positions + delta, inv_freq), atol=2e-4, rtol=1e-4)


def test_realign_in_place_through_dispatch(backend):
    k = make_keys((2, 7, 64))
    delta = make_delta(7)
    inv_freq = rope_inv_freq(64, 10000.0)
    expected = rope_realign_torch(k, delta, inv_freq)

    dispatch.rope_realign(k, delta, inv_freq, out=k)

    torch.testing.assert_close(k, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda: (torch.zeros(2, 5, 63), torch.zeros(5, dtype=torch.long), torch.zeros(31)), "even"),
        (lambda: (torch.zeros(2, 5, 64), torch.zeros(4, dtype=torch.long), torch.zeros(32)), "delta"),
        (lambda: (torch.zeros(2, 5, 64), torch.zeros(5), torch.zeros(32)), "delta"),
        (lambda: (torch.zeros(2, 5, 64), torch.zeros(5, dtype=torch.long), torch.zeros(64)), "inv_freq"),
        (
            lambda: (
                torch.zeros(2, 5, 64, dtype=torch.int32),
                torch.zeros(5, dtype=torch.long),
                torch.zeros(32),
            ),
            "dtype",
        ),
    ],
    ids=["odd-head-dim", "delta-shape", "delta-float", "inv-freq-shape", "int-keys"],
)
def test_realign_rejects_bad_input(backend, make_args, message):
    k, delta, inv_freq = make_args()
    with pytest.raises(KernelError, match=message):
        dispatch.rope_realign(k, delta, inv_freq)


def test_realign_kernel_rejects_strided_head_dim(device):
    from blendcache.kernels.rope import rope_realign_triton

    k = torch.zeros(2, 64, 5, device=device).transpose(-1, -2)  # (2, 5, 64), head_dim stride 5
    with pytest.raises(KernelError, match="stride 1"):
        rope_realign_triton(
            k, torch.zeros(5, dtype=torch.long, device=device), torch.zeros(32, device=device)
        )


# --- inverse frequencies --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head_dim", "theta", "scaling"),
    [
        (128, 10000.0, None),
        (64, 1000000.0, {"rope_type": "default"}),
        (128, 10000.0, {"rope_type": "linear", "factor": 4.0}),
        (128, 500000.0, LLAMA3_SCALING),
        (64, 500000.0, {**LLAMA3_SCALING, "factor": 32.0, "original_max_position_embeddings": 2048}),
    ],
    ids=["default", "default-explicit", "linear", "llama3", "llama3-small"],
)
def test_inv_freq_matches_transformers(head_dim, theta, scaling):
    transformers = pytest.importorskip("transformers")
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    config = transformers.LlamaConfig(
        head_dim=head_dim,
        hidden_size=head_dim * 4,
        num_attention_heads=4,
        max_position_embeddings=131072,
        rope_theta=theta,
        rope_scaling=dict(scaling) if scaling else None,
    )
    expected = LlamaRotaryEmbedding(config=config).inv_freq  # what the HF model rotates with

    got = rope_inv_freq(head_dim, theta, scaling)

    assert got.dtype == torch.float32 and got.shape == (head_dim // 2,)
    assert torch.equal(got, expected.float())


def test_apply_rope_matches_transformers():
    """Our half-rotation layout is HF's: apply_rope_torch == apply_rotary_pos_emb."""
    transformers = pytest.importorskip("transformers")
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    config = transformers.LlamaConfig(head_dim=64, hidden_size=256, num_attention_heads=4, rope_theta=10000.0)
    k = make_keys((1, 2, 33, 64))  # (B, H, T, D)
    positions = torch.arange(33) * 3 + 5
    cos, sin = LlamaRotaryEmbedding(config=config)(k, positions[None])
    _, expected = apply_rotary_pos_emb(k, k, cos, sin)

    got = apply_rope_torch(k, positions, rope_inv_freq(64, 10000.0))

    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_inv_freq_llama3_keeps_high_and_divides_low_frequencies():
    plain = rope_inv_freq(128, 500000.0)
    scaled = rope_inv_freq(128, 500000.0, LLAMA3_SCALING)

    assert scaled[0] == plain[0]  # wavelength 2*pi << 8192/4: kept
    assert torch.allclose(scaled[-1], plain[-1] / 8.0)  # wavelength >> 8192: divided by factor


@pytest.mark.parametrize("rope_type", ["dynamic", "yarn", "longrope"])
def test_inv_freq_rejects_position_dependent_scaling(rope_type):
    with pytest.raises(UnsupportedModelError, match=rope_type):
        rope_inv_freq(128, 10000.0, {"rope_type": rope_type, "factor": 2.0})


def test_inv_freq_rejects_bad_arguments():
    with pytest.raises(KernelError, match="even"):
        rope_inv_freq(127, 10000.0)
    with pytest.raises(UnsupportedModelError, match="low_freq_factor"):
        rope_inv_freq(128, 10000.0, {"rope_type": "llama3", "factor": 8.0})
    with pytest.raises(UnsupportedModelError, match="partial_rotary_factor"):
        rope_inv_freq(128, 10000.0, {"partial_rotary_factor": 0.5})
