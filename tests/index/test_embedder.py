import numpy as np
import pytest

from blendcache.errors import ConfigError
from blendcache.index.embedder import resolve_model_path


def test_embed_shape_dtype_and_unit_norm(embedder):
    vecs = embedder.embed(["How do I reset my password?", "Where is my parcel?", "hi"])
    assert vecs.shape == (3, embedder.dim) and embedder.dim == 384
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_batched_equals_one_by_one_and_cache_does_not_change_values(embedder):
    texts = [f"question number {i} about delivery times" for i in range(5)]
    batched = embedder.embed(texts, use_cache=False)
    single = np.stack([embedder.embed([t], use_cache=False)[0] for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    np.testing.assert_allclose(embedder.embed(texts), batched, atol=1e-5)


def test_similar_questions_are_closer_than_unrelated(embedder):
    a, b, c = embedder.embed(
        ["How do I reset my password?", "How can I reset my password?",
         "What is the capital of Peru?"]
    )
    assert a @ b > 0.9 > a @ c


def test_duplicates_in_one_call(embedder):
    vecs = embedder.embed(["same text", "other text", "same text"])
    np.testing.assert_array_equal(vecs[0], vecs[2])


def test_default_name_resolves_to_packaged_files(tmp_path):
    path = resolve_model_path("all-MiniLM-L6-v2")
    assert (path / "config.json").is_file()
    assert resolve_model_path(str(tmp_path)) == tmp_path
    with pytest.raises(ConfigError):
        resolve_model_path(str(tmp_path / "missing-model"))


def test_the_embedder_runs_on_its_thread_count_and_restores_the_callers(embedder):
    import torch

    from blendcache.config import SemanticConfig
    from blendcache.index.embedder import Embedder

    one = Embedder.from_config(SemanticConfig(embedder_threads=1))
    assert one.num_threads == 1 and Embedder.from_config(SemanticConfig()).num_threads == 1
    assert Embedder.from_config(SemanticConfig(embedder_threads=0)).num_threads is None
    seen = []
    forward = one._model.forward
    one._model.forward = lambda features: (seen.append(torch.get_num_threads()),
                                           forward(features))[1]
    before = torch.get_num_threads()
    text = "How do I reset my router?"
    got = one.embed([text], use_cache=False)
    assert seen == [1]  # the forward ran on one thread
    assert torch.get_num_threads() == before  # and the caller's count is back
    np.testing.assert_allclose(got, embedder.embed([text], use_cache=False), atol=1e-5)


def test_embedder_threads_below_zero_are_refused_at_load():
    from blendcache.config import load_settings

    with pytest.raises(ConfigError, match="embedder_threads must be >= 0"):
        load_settings(None, environ={}, overrides={"semantic": {"embedder_threads": -1}})
