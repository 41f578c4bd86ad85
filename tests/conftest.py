"""Shared fixtures, offline: the real model (one per session) for tests that need real text, and
tiny random-weight models for tests that check behaviour."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# The converted model copy survives between runs here, so only the first run pays ~20 s.
TEST_DATA_DIR = REPO / ".blendcache-test"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def engine():
    from blendcache.config import ModelConfig
    from blendcache.recompute.model import load_engine

    return load_engine(ModelConfig(num_threads=2), data_dir=TEST_DATA_DIR)


# Shapes of the tiny random-weight models: milliseconds per forward pass on one CPU thread.
# NOTE: 9 layers, so that the served default check layers (2, 8) apply and create_app takes
# default settings.
TINY_CONFIG = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=9,
                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)
# SmolLM2's chat template (ChatML) without its default system prompt.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A byte-level BPE tokenizer (768 tokens) trained in memory on the built-in background
    passages, with SmolLM2's special tokens and ChatML template. Byte-level: it encodes any text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from blendcache.chunk_cache.background import BUILTIN_PASSAGES

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=768, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator([f"{title}\n{text}" for title, text in BUILTIN_PASSAGES], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>",
                                   eos_token="<|im_end|>", unk_token="<|endoftext|>",
                                   pad_token="<|im_end|>", chat_template=CHATML_TEMPLATE)


@pytest.fixture(scope="session")
def make_tiny_engine(tiny_tokenizer, tmp_path_factory):
    """``make_tiny_engine(model_type="llama", **config_overrides) -> Engine``: a random-weight
    model (``TINY_CONFIG``, seed 0) with ``tiny_tokenizer``, saved to a directory and loaded by
    ``load_engine`` like any local model (architecture check, fingerprint). Its name is
    ``tiny-<model_type>``. One engine per distinct arguments per session."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from blendcache.config import ModelConfig
    from blendcache.recompute.model import load_engine

    engines = {}

    def make(model_type: str = "llama", **config_overrides):
        key = (model_type, json.dumps(config_overrides, sort_keys=True))
        if key not in engines:
            torch.manual_seed(0)
            config = AutoConfig.for_model(
                model_type, vocab_size=len(tiny_tokenizer),
                bos_token_id=tiny_tokenizer.bos_token_id,
                eos_token_id=tiny_tokenizer.eos_token_id,
                pad_token_id=tiny_tokenizer.pad_token_id, **{**TINY_CONFIG, **config_overrides})
            path = tmp_path_factory.mktemp("tiny") / f"tiny-{model_type}"
            AutoModelForCausalLM.from_config(config).save_pretrained(path)
            tiny_tokenizer.save_pretrained(path)
            engines[key] = load_engine(ModelConfig(path=str(path)))
        return engines[key]

    return make


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test. NOTE: the tiny models' 64-wide matrices gain nothing
    from a second thread and lose up to 100x (measured) when another process holds the other
    core; the real model's fixture sets its own count when it loads."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_engine(make_tiny_engine, one_torch_thread):
    """The tiny Llama (``make_tiny_engine()``), named ``tiny-llama``."""
    return make_tiny_engine()


@pytest.fixture(scope="session")
def embedder():
    from blendcache.index.embedder import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def model_data_dir() -> Path:
    return TEST_DATA_DIR


@pytest.fixture
def make_settings(tmp_path):
    """Factory of tiny settings: data in ``tmp_path``; keyword arguments replace whole sections."""
    from blendcache.config import Settings, StorageConfig

    def make(**sections):
        storage = sections.pop("storage", StorageConfig(data_dir=str(tmp_path)))
        return Settings(storage=storage, **sections)

    return make


@pytest.fixture
def postgres_url():
    """URL of the real PostgreSQL that .ci/run starts (BLENDCACHE_TEST_POSTGRES_URL), skipped
    with a reason without one; every table is dropped again after the test."""
    url = os.environ.get("BLENDCACHE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL: .ci/run starts one and sets BLENDCACHE_TEST_POSTGRES_URL")
    yield url
    from sqlalchemy import create_engine

    from blendcache.storage.db import Base

    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """An empty database of each kind the project supports: SQLite (embedded, always) and
    PostgreSQL (``postgres_url``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return request.getfixturevalue("postgres_url")
