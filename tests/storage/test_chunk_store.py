"""Chunk metadata rows (storage/chunk_store.py) on SQLite and PostgreSQL."""

import pytest

from blendcache.errors import StorageError
from blendcache.storage.chunk_store import ChunkMeta, ChunkStore
from blendcache.storage.db import make_engine


def meta(i: int, **changes) -> ChunkMeta:
    row = dict(key=f"{i:064x}", model="f" * 64, tokens=100 + i, bytes=6_500_000 + i,
               tier="memory", created=10.0 + i, last_access=10.0 + i, hits=0)
    return ChunkMeta(**{**row, **changes})


@pytest.fixture
def store(database_url):
    engine = make_engine(database_url)
    yield ChunkStore(engine)
    engine.dispose()


def test_upsert_inserts_then_replaces(store):
    store.upsert_many([meta(1), meta(2)])
    store.upsert_many([meta(1, tier="disk", bytes=1_730_000)])
    assert store.get(meta(1).key) == meta(1, tier="disk", bytes=1_730_000)
    assert store.get(meta(2).key) == meta(2)
    assert store.get(meta(3).key) is None


def test_hits_tiers_deletes_and_summary(store):
    store.upsert_many([meta(i) for i in range(3)])
    store.record_hits([meta(0).key, meta(2).key], now=50.0)
    store.record_hits([meta(0).key], now=60.0)
    store.set_tier([meta(1).key], "disk")
    assert (store.get(meta(0).key).hits, store.get(meta(0).key).last_access) == (2, 60.0)
    assert store.get(meta(1).key).tier == "disk"
    store.delete_many([meta(2).key])
    assert store.get(meta(2).key) is None
    assert store.summary() == {"chunks": 2, "bytes": 2 * 6_500_000 + 1, "tokens": 201, "hits": 2}
    store.record_hits([], now=70.0)  # nothing to do, no error
    store.delete_many([])


def test_a_dropped_table_is_a_storage_error(database_url):
    engine = make_engine(database_url)
    store = ChunkStore(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE chunks")
    with pytest.raises(StorageError):
        store.upsert_many([meta(1)])
    with pytest.raises(StorageError):
        store.summary()
    engine.dispose()
