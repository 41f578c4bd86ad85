"""The fusion path on each supported architecture: tiny random-weight models (make_tiny_engine).

Qwen2 (q/k/v biases) and Mistral go through the same code as Llama; ratio 1 must reproduce a
full prefill, and chunks prefilled in our own layer loop must match the HF forward.
"""

import pytest
import torch

from blendcache.chunk_cache.layout import build_layout
from blendcache.recompute.blend import BlendOptions, blend
from blendcache.recompute.generate import prefill
from blendcache.recompute.prefill import prefill_chunks, prefill_kv

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=["llama", "qwen2", "mistral"])
def tiny_engine(request, make_tiny_engine):
    extra = {"sliding_window": None} if request.param == "mistral" else {}
    return make_tiny_engine(request.param, **extra)


def test_ratio_one_is_a_full_prefill_on_each_architecture(tiny_engine):
    docs = ["Alpha beta gamma delta.\n\n", "Epsilon zeta eta theta iota.\n\n", "Kappa lambda.\n\n"]
    layout = build_layout(tiny_engine, [{"role": "user", "content": "Which letter?"}], docs)
    prefix = prefill_kv(tiny_engine, layout.prefix)
    chunks = [prefill_kv(tiny_engine, c, after=prefix) for c in layout.chunks]
    full = prefill(tiny_engine, layout.ids)
    out, _ = blend(tiny_engine, layout.ids, prefix, chunks, BlendOptions(recompute_ratio=1.0))
    torch.testing.assert_close(out.logits, full.logits, atol=1e-4, rtol=1e-4)
    partial, stats = blend(tiny_engine, layout.ids, prefix, chunks, BlendOptions(recompute_ratio=0.5))
    assert 0 < stats.recomputed_tokens < stats.chunk_tokens
    assert torch.isfinite(partial.logits).all()


def test_chunk_prefill_loop_matches_the_hf_forward_on_each_architecture(tiny_engine):
    docs = ["Alpha beta gamma delta.\n\n", "Epsilon zeta eta theta iota.\n\n"]
    layout = build_layout(tiny_engine, [{"role": "user", "content": "Which letter?"}], docs)
    prefix = prefill_kv(tiny_engine, layout.prefix)
    for got, chunk in zip(prefill_chunks(tiny_engine, list(layout.chunks), after=prefix),
                          layout.chunks, strict=True):
        expected = prefill_kv(tiny_engine, chunk, after=prefix)
        torch.testing.assert_close(got.k, expected.k, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(got.v, expected.v, atol=1e-5, rtol=1e-4)
