import json

import pytest
import torch

from blendcache.config import ModelConfig
from blendcache.errors import ModelError, UnsupportedModelError
from blendcache.recompute.model import fingerprint, load_engine

pytestmark = pytest.mark.model


def test_default_model_loads_offline(engine):
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    spec = engine.spec
    assert spec.model_type == "llama"
    assert (spec.num_layers, spec.num_heads, spec.num_kv_heads, spec.head_dim) == (30, 9, 3, 64)
    assert len(spec.fingerprint) == 64
    assert engine.eos_token_ids  # <|im_end|> at least


def test_local_hf_directory_loads_with_same_fingerprint_and_logits(engine, model_data_dir):
    # The converted copy of the default GGUF is an ordinary HF directory: --model PATH.
    (converted,) = (model_data_dir / "models").glob("smollm2-135m-*")
    other = load_engine(ModelConfig(path=str(converted)))
    assert other.spec.fingerprint == engine.spec.fingerprint
    ids = torch.tensor([engine.chat_prompt_ids([{"role": "user", "content": "Hi"}])])
    with torch.inference_mode():
        a = engine.model(ids).logits
        b = other.model(ids).logits
    torch.testing.assert_close(a, b)


def test_fingerprint_depends_on_dtype_and_weights():
    a = fingerprint("llama", "abc", torch.float32)
    assert a == fingerprint("llama", "abc", torch.float32)
    assert a != fingerprint("llama", "abc", torch.bfloat16)
    assert a != fingerprint("llama", "abd", torch.float32)


def test_chat_template_applied(engine):
    ids = engine.chat_prompt_ids([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there"},
    ])
    text = engine.tokenizer.decode(ids)
    assert text.index("<|im_start|>system\nBe brief.<|im_end|>") < text.index("Hello there")
    assert text.endswith("<|im_start|>assistant\n")


def test_missing_directory_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not a directory"):
        load_engine(ModelConfig(path=str(tmp_path / "nope")))


def test_unsupported_architecture_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(UnsupportedModelError, match="gpt2"):
        load_engine(ModelConfig(path=str(tmp_path)))


def test_bad_dtype_is_refused():
    with pytest.raises(ModelError, match="dtype"):
        load_engine(ModelConfig(dtype="float64"))
