import numpy as np
import pytest

from blendcache.errors import ConfigError, IndexError_
from blendcache.index.hnsw import FaissIndex, HnswIndex, make_index


def unit_rows(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


BACKENDS = ["hnswlib", "faiss", "faiss-flat"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_search_finds_exact_vector_first(backend):
    vecs = unit_rows(200)
    index = make_index(backend, 32)
    index.add(np.arange(100, 300), vecs)
    ids, sims = index.search(vecs[17], 3)
    assert ids[0] == 117
    assert sims[0] == pytest.approx(1.0, abs=1e-5)
    assert list(sims) == sorted(sims, reverse=True)
    assert len(index) == 200


@pytest.mark.parametrize("backend", BACKENDS)
def test_mark_deleted_hides_and_rebuild_keeps_the_rest(backend):
    vecs = unit_rows(50)
    index = make_index(backend, 32, rebuild_ratio=0.9)
    index.add(np.arange(50), vecs)
    index.mark_deleted(7)
    index.mark_deleted(7)  # twice is a no-op
    index.mark_deleted(999)  # unknown is a no-op
    assert len(index) == 49 and 7 not in index
    assert 7 not in index.search(vecs[7], 10)[0].tolist()
    index.rebuild()
    assert len(index) == 49
    assert index.search(vecs[8], 1)[0].tolist() == [8]
    assert 7 not in index.search(vecs[7], 49)[0].tolist()


@pytest.mark.parametrize("backend", BACKENDS)
def test_deleted_share_past_limit_triggers_rebuild_and_ids_can_return(backend):
    vecs = unit_rows(20)
    index = make_index(backend, 32, rebuild_ratio=0.25)
    index.add(np.arange(20), vecs)
    for id_ in range(6):  # 6/20 > 0.25: rebuilt on the way
        index.mark_deleted(id_)
    assert len(index) == 14
    index.add(np.asarray([3]), vecs[3:4])  # a deleted id may be added again
    assert index.search(vecs[3], 1)[0].tolist() == [3]
    assert len(index) == 15


def test_hnsw_grows_past_initial_capacity():
    vecs = unit_rows(300)
    index = HnswIndex(32, capacity=16)
    for start in range(0, 300, 7):
        index.add(np.arange(start, min(start + 7, 300)), vecs[start:start + 7])
    assert len(index) == 300
    assert index.search(vecs[299], 1)[0].tolist() == [299]


def test_search_on_empty_and_k_larger_than_size():
    index = HnswIndex(32)
    ids, sims = index.search(unit_rows(1)[0], 5)
    assert ids.shape == (0,) and sims.shape == (0,)
    index.add(np.asarray([1, 2]), unit_rows(2))
    assert sorted(index.search(unit_rows(1, seed=3)[0], 5)[0].tolist()) == [1, 2]


def test_faiss_parity_with_hnswlib_on_a_small_set():
    vecs = unit_rows(300, seed=1)
    queries = unit_rows(20, seed=2)
    hnsw, faiss_hnsw, flat = HnswIndex(32), FaissIndex(32, kind="hnsw"), FaissIndex(32, kind="flat")
    for index in (hnsw, faiss_hnsw, flat):
        index.add(np.arange(300), vecs)
        index.mark_deleted(5)
    exact = np.argsort(-(queries @ vecs.T), axis=1)
    for q, order in zip(queries, exact):
        expected = [i for i in order.tolist() if i != 5][:5]
        for index in (hnsw, faiss_hnsw, flat):
            ids, sims = index.search(q, 5)
            assert ids.tolist() == expected
            np.testing.assert_allclose(sims, (vecs[expected] @ q), atol=1e-5)


def test_wrong_dimension_and_unknown_backend():
    with pytest.raises(IndexError_):
        HnswIndex(32).add(np.asarray([1]), unit_rows(1, dim=16))
    with pytest.raises(ConfigError):
        make_index("annoy", 32)
    with pytest.raises(IndexError_):
        index = FaissIndex(32)
        index.add(np.asarray([1]), unit_rows(1))
        index.add(np.asarray([1]), unit_rows(1))


def test_hnsw_parameters_come_from_the_config(tmp_path, embedder):
    from blendcache.config import SemanticConfig
    from blendcache.index.semantic_cache import SemanticCache, index_params
    from blendcache.storage.semantic_store import SemanticStore

    config = SemanticConfig(hnsw_m=8, hnsw_ef_construction=40, hnsw_ef_search=12)
    assert index_params(config) == {"m": 8, "ef_construction": 40, "ef_search": 12,
                                    "rebuild_ratio": 0.3}
    store = SemanticStore(f"sqlite:///{tmp_path / 's.db'}")
    cache = SemanticCache(config, store=store, embedder=embedder)
    index = cache._space(("t", "default", "m")).index
    assert index._params == {"m": 8, "ef_construction": 40, "ef_search": 12}
    store.engine.dispose()


@pytest.mark.parametrize("name", ["hnsw_m", "hnsw_ef_construction", "hnsw_ef_search"])
def test_bad_hnsw_parameters_are_refused_at_load(name):
    from blendcache.config import load_settings

    with pytest.raises(ConfigError, match=f"semantic.{name} must be >= 2"):
        load_settings(None, environ={}, overrides={"semantic": {name: 1}})
