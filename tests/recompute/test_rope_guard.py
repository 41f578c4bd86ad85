"""RoPE frequencies come from one guarded function, at load (kernels/rope_freq.py).

A scaling whose rotations do not compose (yarn rescales cos/sin, dynamic NTK changes the
frequencies with the length) would make every re-aligned key wrong, so such a model is refused
when it is loaded, before any weight is read; the scalings that compose are fused exactly.
"""

import json

import pytest
import torch

from blendcache.chunk_cache.layout import build_layout, format_document
from blendcache.config import ModelConfig
from blendcache.errors import UnsupportedModelError
from blendcache.kernels import dispatch
from blendcache.kernels.rope_freq import rope_inv_freq
from blendcache.recompute.blend import BlendOptions, blend
from blendcache.recompute.kv import KV
from blendcache.recompute.model import load_engine
from blendcache.recompute.prefill import prefill_kv

YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512}
DYNAMIC = {"rope_type": "dynamic", "factor": 2.0}
LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 512}
LINEAR = {"rope_type": "linear", "factor": 2.0}
QUESTION = [{"role": "user", "content": "Which river runs through the old town?"}]
DOC = "The old town lies on both banks of the river, joined by seven stone bridges."


@pytest.mark.parametrize("scaling, name", [(YARN, "yarn"), (DYNAMIC, "dynamic")])
def test_a_model_whose_rotations_do_not_compose_is_refused_at_load(make_tiny_engine, scaling,
                                                                    name):
    with pytest.raises(UnsupportedModelError, match=f"rope_type '{name}' is not supported"):
        make_tiny_engine(rope_scaling=scaling)


def test_the_refusal_comes_before_any_weight_is_read(tmp_path):
    config = {"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4,
              "rope_parameters": {"rope_theta": 10000.0, **YARN}}
    (tmp_path / "config.json").write_text(json.dumps(config))  # no weights, no tokenizer
    with pytest.raises(UnsupportedModelError, match="cannot be served"):
        load_engine(ModelConfig(path=str(tmp_path)))


@pytest.mark.parametrize("scaling", [None, LINEAR, LLAMA3], ids=["default", "linear", "llama3"])
def test_the_engine_frequencies_are_the_models_own(make_tiny_engine, one_torch_thread, scaling):
    engine = make_tiny_engine(**({"rope_scaling": scaling} if scaling else {}))
    theirs = engine.model.model.rotary_emb.inv_freq.float()
    assert engine.rope_inv_freq.dtype == torch.float32
    torch.testing.assert_close(engine.rope_inv_freq, theirs, rtol=1e-6, atol=0)
    if scaling is not None:  # the scaling is applied, not ignored
        plain = make_tiny_engine().rope_inv_freq
        assert not torch.allclose(engine.rope_inv_freq, plain)


@pytest.mark.parametrize("scaling", [LINEAR, LLAMA3], ids=["linear", "llama3"])
def test_realigned_keys_are_the_models_own_at_the_new_position(make_tiny_engine,
                                                               one_torch_thread, scaling):
    """A chunk's keys from the model's own forward at positions 0.. and at 1000.. : re-aligning
    the first by 1000 with the engine's frequencies gives the second (RoPE is relative, so
    nothing else changes). The unscaled frequencies do not: the scaling is honoured."""
    engine = make_tiny_engine(rope_scaling=scaling)
    ids = torch.tensor([list(build_layout(engine, QUESTION, [format_document(DOC)]).chunks[0])])

    def keys_at(offset: int) -> torch.Tensor:  # (L, Hkv, T, D)
        positions = torch.arange(offset, offset + ids.shape[1])[None]
        out = engine.model.model(input_ids=ids, position_ids=positions, use_cache=True)
        return torch.stack([layer.keys[0] for layer in out.past_key_values.layers])

    with torch.inference_mode():
        at0, at1000 = keys_at(0), keys_at(1000)
    moved = dispatch.rope_realign(at0, 1000, engine.rope_inv_freq)
    torch.testing.assert_close(moved, at1000, atol=1e-4, rtol=1e-4)
    unscaled = rope_inv_freq(engine.spec.head_dim, 10000.0)
    assert (dispatch.rope_realign(at0, 1000, unscaled) - at1000).abs().max() > 1e-2


def test_fusion_uses_the_engine_frequencies(make_tiny_engine, one_torch_thread):
    """Ratio 0 over one chunk stored 37 positions later, on a scaled RoPE: the chunk's keys in
    the fused cache are the exact ones; claiming the wrong stored position is clearly off."""
    engine = make_tiny_engine(rope_scaling=LINEAR)
    layout = build_layout(engine, QUESTION, [format_document(DOC)])
    prefix = prefill_kv(engine, layout.prefix)
    exact = prefill_kv(engine, layout.chunks[0], after=prefix)
    moved = KV(dispatch.rope_realign(exact.k, 37, engine.rope_inv_freq), exact.v,
               exact.start + 37)
    slots = slice(exact.start, exact.start + exact.num_tokens)

    def fused_chunk_keys(chunk: KV) -> torch.Tensor:
        out, _ = blend(engine, layout.ids, prefix, [chunk], BlendOptions(recompute_ratio=0.0))
        return torch.stack([layer.keys[0, :, slots] for layer in out.cache.layers])

    torch.testing.assert_close(fused_chunk_keys(moved), exact.k, atol=1e-5, rtol=1e-5)
    wrong = fused_chunk_keys(KV(moved.k, moved.v, exact.start))
    assert (wrong - exact.k).abs().max() > 0.1
