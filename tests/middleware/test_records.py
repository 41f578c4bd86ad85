"""The request records' writer (middleware/records.py): batches, never blocks a request (a full
queue drops and counts), writes what is queued when stopped, purges past retention; and the
rows an app writes for a miss, a semantic hit and a blend (tiny model)."""

import logging
import threading
import time

import pytest
from fastapi.testclient import TestClient

from blendcache.errors import StorageError
from blendcache.middleware.metrics import RequestEvent
from blendcache.middleware.records import DAY_S, RecordWriter, record_of
from blendcache.storage.db import make_engine
from blendcache.storage.requests import RequestStore

DOCS = ["The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
        "Mount Fuji is the highest mountain in Japan."]
EIFFEL, FUJI = "When was the Eiffel Tower completed?", "How high is Mount Fuji?"


def event(i: int = 0, **changes) -> RequestEvent:
    fields = dict(tenant="acme", category="faq", outcome="miss", ttft_s=0.1 + i, latency_s=0.5)
    return RequestEvent(**{**fields, **changes})


class FakeStore:
    """Records each batch; ``gate`` (when set) holds every write until it opens."""

    def __init__(self, gate: threading.Event | None = None, fail: bool = False):
        self.batches, self.gate, self.fail = [], gate, fail

    def add_many(self, records):
        if self.gate is not None:
            self.gate.wait()
        if self.fail:
            raise StorageError("request records: database is locked")
        self.batches.append(list(records))

    def purge(self, older_than):
        return 0


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_queued_records_are_written_in_batches():
    store = FakeStore()
    writer = RecordWriter(store, retention_days=0, batch_size=2, clock=lambda: 1000.0)
    for i in range(5):
        writer.submit(event(i))
    writer.start()
    assert writer.flush()
    writer.stop()
    assert [len(b) for b in store.batches] == [2, 2, 1]
    assert [r.ttft_ms for b in store.batches for r in b] == pytest.approx(
        [100.0, 1100.0, 2100.0, 3100.0, 4100.0])
    assert store.batches[0][0] == record_of(event(0), created=1000.0)


def test_a_full_queue_drops_counts_and_logs_once_without_blocking(caplog):
    gate = threading.Event()
    store, lost = FakeStore(gate), []
    writer = RecordWriter(store, retention_days=0, max_queue=2, batch_size=1, interval_s=0.01,
                          on_drop=lost.append)
    writer.start()
    with caplog.at_level(logging.WARNING, logger="blendcache.records"):
        writer.submit(event(0))
        wait_until(lambda: writer._queue.empty(), "the writer to take the first record")
        for i in range(1, 6):  # the writer is stuck on the first: 2 queue, 3 are dropped
            writer.submit(event(i))
    assert writer.dropped == 3 and lost == [1, 1, 1]
    assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == 1
    gate.set()
    writer.stop()
    assert [r.ttft_ms for b in store.batches for r in b] == pytest.approx([100.0, 1100.0, 2100.0])


def test_a_failed_write_counts_its_records_as_dropped():
    store, lost = FakeStore(fail=True), []
    writer = RecordWriter(store, retention_days=0, on_drop=lost.append)
    writer.submit(event(0))
    writer.submit(event(1))
    writer.stop()  # never started: stop writes what is queued
    assert lost == [2] and writer.dropped == 2
    assert writer.flush(timeout_s=0)


def test_stop_writes_what_is_queued(tmp_path):
    store = RequestStore(make_engine(f"sqlite:///{tmp_path / 'r.db'}"))
    writer = RecordWriter(store, retention_days=30, interval_s=60.0)
    writer.start()
    for i in range(3):
        writer.submit(event(i, tenant=f"t{i}"))
    writer.stop()
    assert sorted(r.tenant for r in store.recent(10)) == ["t0", "t1", "t2"]


def test_records_past_retention_are_purged_on_the_timer(tmp_path):
    store = RequestStore(make_engine(f"sqlite:///{tmp_path / 'r.db'}"))
    now = 100 * DAY_S
    store.add_many([record_of(event(i), created=now - age * DAY_S)
                    for i, age in enumerate((40, 31, 29, 1))])
    kept_forever = RecordWriter(store, retention_days=0, clock=lambda: now)
    assert kept_forever.purge() == 0
    writer = RecordWriter(store, retention_days=30, clock=lambda: now, interval_s=0.01)
    writer.start()  # the first purge runs as the thread starts
    wait_until(lambda: len(store.recent(10)) == 2, "the purge")
    writer.stop()
    assert sorted(round((now - r.created) / DAY_S) for r in store.recent(10)) == [1, 29]


def test_the_app_records_each_answered_request(make_app):
    app = make_app()
    with TestClient(app) as client:
        outcomes = [client.post("/v1/chat/completions", json={
            "model": "default", "max_tokens": 4, "documents": DOCS,
            "messages": [{"role": "user", "content": q}]}).headers["x-blendcache-cache"]
            for q in (EIFFEL, EIFFEL, FUJI)]
    assert outcomes == ["miss", "semantic-hit", "blend"]
    # The lifespan's end wrote what was queued.
    rows = list(reversed(app.state.records.store.recent(10)))
    assert [r.outcome for r in rows] == outcomes
    assert {r.tenant for r in rows} == {"default"} and {r.category for r in rows} == {"default"}
    miss, hit, blend = rows
    assert miss.similarity is None and hit.similarity > 0.9 and blend.similarity is None
    assert (hit.chunks_reused, hit.chunks_total) == (0, 0)
    assert (blend.chunks_reused, blend.chunks_total) == (2, 2) and blend.tokens_recomputed > 0
    assert all(0 < r.ttft_ms <= r.latency_ms for r in rows)
    assert app.state.pipeline.metrics["records_dropped"] == 0
