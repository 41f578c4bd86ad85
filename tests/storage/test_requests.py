"""Request records (storage/requests.py) on SQLite and PostgreSQL: write, purge, filter, and the
aggregates the admin UI draws."""

import pytest

from blendcache.errors import StorageError
from blendcache.storage.chunk_store import ChunkMeta, ChunkStore
from blendcache.storage.db import make_engine
from blendcache.storage.requests import OutcomeTimes, RequestRecord, RequestStore, TimelineCell


def rec(created: float, outcome: str = "miss", *, tenant: str = "acme", category: str = "faq",
        ttft_ms: float = 100.0, **more) -> RequestRecord:
    return RequestRecord(created=created, tenant=tenant, category=category, outcome=outcome,
                         ttft_ms=ttft_ms, latency_ms=ttft_ms + 50.0, **more)


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine):
    return RequestStore(engine)


def test_records_come_back_newest_first_and_filtered(store):
    store.add_many([rec(1000.0), rec(1001.0, "semantic-hit", similarity=0.93),
                    rec(1002.0, "blend", tenant="globex", category="code", chunks_reused=3,
                        chunks_total=4, tokens_reused=300, tokens_recomputed=45)])
    store.add_many([])
    newest = store.recent(10)
    assert [r.created for r in newest] == [1002.0, 1001.0, 1000.0]
    assert newest[0] == rec(1002.0, "blend", tenant="globex", category="code", chunks_reused=3,
                            chunks_total=4, tokens_reused=300, tokens_recomputed=45)
    assert newest[1].similarity == pytest.approx(0.93)
    assert [r.created for r in store.recent(2)] == [1002.0, 1001.0]
    assert [r.created for r in store.recent(10, tenant="acme")] == [1001.0, 1000.0]
    assert [r.created for r in store.recent(10, category="code")] == [1002.0]
    assert store.recent(10, tenant="acme", category="code") == []
    assert store.names() == (["acme", "globex"], ["code", "faq"])


def test_purge_deletes_only_older_rows(store):
    store.add_many([rec(t) for t in (10.0, 20.0, 30.0, 40.0)])
    assert store.purge(older_than=30.0) == 2
    assert [r.created for r in store.recent(10)] == [40.0, 30.0]
    assert store.purge(older_than=30.0) == 0
    assert store.first_created() == 30.0
    assert store.first_created(since=35.0) == 40.0
    assert store.first_created(since=50.0) is None


def test_timeline_counts_per_bucket_category_and_outcome(store):
    store.add_many([
        rec(1000.0, ttft_ms=100.0), rec(1059.9, ttft_ms=300.0),      # bucket 960 (60 s wide)
        rec(1020.0, "semantic-hit", ttft_ms=2.0),                    # bucket 1020
        rec(1030.0, "semantic-hit", category="code", ttft_ms=4.0),
        rec(1081.0, "blend", ttft_ms=40.0),                          # bucket 1080
        rec(500.0),                                                  # before `since`
    ])
    cells = store.timeline(60, since=900.0)
    assert cells == [
        TimelineCell(960.0, "faq", "miss", 1, 100.0),
        TimelineCell(1020.0, "code", "semantic-hit", 1, 4.0),
        TimelineCell(1020.0, "faq", "miss", 1, 300.0),
        TimelineCell(1020.0, "faq", "semantic-hit", 1, 2.0),
        TimelineCell(1080.0, "faq", "blend", 1, 40.0),
    ]


def test_ttft_by_outcome_is_measured_mean_and_median(store):
    store.add_many([rec(1.0, ttft_ms=t) for t in (100.0, 400.0, 130.0)]
                   + [rec(2.0, "semantic-hit", ttft_ms=t) for t in (2.0, 6.0, 5.0, 3.0)]
                   + [rec(0.5, "blend", ttft_ms=999.0)])
    times = store.ttft_by_outcome(since=1.0)
    assert times == {"miss": OutcomeTimes(3, pytest.approx(210.0), 130.0),
                     "semantic-hit": OutcomeTimes(4, 4.0, 4.0)}
    assert store.ttft_by_outcome()["blend"] == OutcomeTimes(1, 999.0, 999.0)


def test_top_chunks_are_the_most_hit(engine):
    chunks = ChunkStore(engine)
    chunks.upsert_many([ChunkMeta(f"{i:064x}", "f" * 64, 10, 100, "memory", 1.0, 1.0, 0)
                        for i in range(4)])
    for keys, now in (([1, 2, 3], 5.0), ([2, 3], 6.0), ([3], 7.0), ([1], 8.0)):
        chunks.record_hits([f"{i:064x}" for i in keys], now=now)
    top = chunks.top(3)
    assert [(int(m.key, 16), m.hits) for m in top] == [(3, 3), (1, 2), (2, 2)]


def test_a_dropped_table_is_a_storage_error(engine, store):
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE request_records")
    with pytest.raises(StorageError):
        store.add_many([rec(1.0)])
    with pytest.raises(StorageError):
        store.timeline(60, since=0.0)
