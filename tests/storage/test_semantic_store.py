import numpy as np
import pytest

from blendcache.errors import StorageError
from blendcache.storage.semantic_store import NewSemanticEntry, SemanticStore


def make_entry(i: int = 0, *, tenant="acme", category="default", model="m", expires=None, ctx=None):
    return NewSemanticEntry(
        tenant=tenant, category=category, model=model, query=f"question {i}",
        embedding=np.arange(4, dtype=np.float32) + i, response=f'{{"n": {i}}}',
        created=100.0 + i, expires=expires, context_fingerprint=ctx,
    )


@pytest.fixture
def store(database_url):
    store = SemanticStore(database_url)
    yield store
    store.engine.dispose()


def test_insert_and_get_many_round_trip(store):
    ids = store.insert([make_entry(0), make_entry(1, ctx="fp", expires=500.0)])
    assert ids == [1, 2]
    got = store.get_many([2, 1, 99])
    assert sorted(got) == [1, 2]
    e = got[2]
    assert (e.tenant, e.category, e.model, e.query, e.response, e.context_fingerprint) == (
        "acme", "default", "m", "question 1", '{"n": 1}', "fp"
    )
    assert (e.created, e.expires, e.hits, e.last_hit) == (101.0, 500.0, 0, None)
    assert e.embedding.dtype == np.float32
    np.testing.assert_array_equal(e.embedding, [1, 2, 3, 4])
    assert e.namespace == ("acme", "default", "m")
    assert store.get_many([]) == {} and store.insert([]) == []


def test_touch_counts_hits_and_last_hit(store):
    (id_,) = store.insert([make_entry()])
    store.touch(id_, now=200.0)
    store.touch(id_, now=250.0)
    e = store.get_many([id_])[id_]
    assert (e.hits, e.last_hit) == (2, 250.0)


def test_delete_many_and_count(store):
    ids = store.insert([make_entry(i) for i in range(5)])
    assert store.delete_many(ids[1:3] + [999]) == 2
    assert store.count() == 3
    assert sorted(store.get_many(ids)) == [ids[0], ids[3], ids[4]]
    assert store.delete_many([]) == 0


def test_expired_is_inclusive_and_ignores_never_expiring(store):
    store.insert([make_entry(0, expires=10.0), make_entry(1, expires=20.0), make_entry(2)])
    assert [e.id for e in store.expired(9.0)] == []
    assert [e.id for e in store.expired(10.0)] == [1]
    assert [e.id for e in store.expired(1e9)] == [1, 2]


def test_all_for_rebuild_in_batches(store):
    store.insert([make_entry(i, tenant=f"t{i % 2}") for i in range(7)])
    batches = list(store.all_for_rebuild(batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert [e.id for b in batches for e in b] == list(range(1, 8))
    assert [e.tenant for e in batches[0]] == ["t0", "t1", "t0"]


def test_survives_reopening_the_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'again.db'}"
    first = SemanticStore(url)
    (id_,) = first.insert([make_entry(3)])
    first.engine.dispose()
    second = SemanticStore(url)
    assert second.get_many([id_])[id_].query == "question 3"
    second.engine.dispose()


def test_database_errors_become_storage_error(tmp_path, store):
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE semantic_entries")
    with pytest.raises(StorageError):
        store.insert([make_entry()])
    with pytest.raises(StorageError):
        store.get_many([1])
    bad = tmp_path / "folder.db"
    bad.mkdir()  # a directory cannot be opened as an SQLite file
    with pytest.raises(StorageError):
        SemanticStore(f"sqlite:///{bad}")


def test_ids_by_tenant_and_category(store):
    store.insert([make_entry(0), make_entry(1, category="faq"), make_entry(2, tenant="globex"),
                  make_entry(3, tenant="globex", category="faq")])
    assert store.ids() == [1, 2, 3, 4]
    assert store.ids(tenant="acme") == [1, 2]
    assert store.ids(category="faq") == [2, 4]
    assert store.ids(tenant="globex", category="default") == [3]
    assert store.ids(tenant="nobody") == []


def test_an_id_is_never_reused_after_a_delete(store):
    first = store.insert([make_entry(0), make_entry(1)])
    store.delete_many([first[-1]])
    assert store.insert([make_entry(2)]) == [first[-1] + 1]
