"""Request records off the request's path: a writer thread batches them into the database.

``submit`` never blocks: a record goes into a bounded queue, and when the queue is full (the
database is slower than the traffic) it is dropped, counted (``on_drop``) and logged once. One
daemon thread per app, started and stopped (flushed) by the app's lifespan, writes what has
queued in batches and, on a timer, purges records older than ``[storage]
request_retention_days``; one thread, so a SQLite file never has two writers of ours.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

from blendcache.errors import StorageError
from blendcache.middleware.metrics import RequestEvent
from blendcache.storage.requests import RequestRecord, RequestStore

log = logging.getLogger("blendcache.records")
DAY_S = 86_400.0
_WAKE = object()  # put by stop(): the thread waiting on the queue ends at once, not at a timeout


def record_of(event: RequestEvent, *, created: float) -> RequestRecord:
    """The row of an answered request (``created``: Unix seconds)."""
    return RequestRecord(created=created, tenant=event.tenant, category=event.category,
                         outcome=event.outcome, ttft_ms=event.ttft_s * 1e3,
                         latency_ms=event.latency_s * 1e3, similarity=event.similarity,
                         chunks_reused=event.chunks_reused, chunks_total=event.chunks_total,
                         tokens_reused=event.tokens_reused,
                         tokens_recomputed=event.tokens_recomputed)


class RecordWriter:
    """Batches :class:`RequestEvent` s into a :class:`RequestStore` from its own thread."""

    def __init__(self, store: RequestStore, *, retention_days: float, max_queue: int = 10_000,
                 batch_size: int = 500, interval_s: float = 1.0, purge_interval_s: float = 3600.0,
                 clock: Callable[[], float] = time.time,
                 on_drop: Callable[[int], None] | None = None):
        self.store = store
        self.retention_days = retention_days  # 0: records are kept forever
        self.batch_size = batch_size
        self.interval_s = interval_s  # the longest a record waits in the queue when idle
        self.purge_interval_s = purge_interval_s
        self.clock = clock
        self.on_drop = on_drop  # called with how many records were lost
        self.dropped = 0
        self._queue: queue.Queue[RequestRecord] = queue.Queue(max_queue)
        self._done = threading.Condition()
        self._submitted = self._handled = 0
        self._warned = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_purge = 0.0

    def submit(self, event: RequestEvent) -> None:
        """Queue ``event``'s record; a full queue drops it (counted, logged once)."""
        try:
            self._queue.put_nowait(record_of(event, created=self.clock()))
        except queue.Full:
            self._lost(1, "the request record queue is full (the database is slower than the "
                          "traffic)")
            return
        with self._done:
            self._submitted += 1

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="blendcache-records",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        self._stop.set()
        if self._thread is not None:
            try:
                self._queue.put_nowait(_WAKE)
            except queue.Full:  # then the thread is not waiting: it has records to write
                pass
            self._thread.join()
            self._thread = None
        self._write_queued()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every record submitted so far is written (or lost); False on timeout."""
        with self._done:
            target = self._submitted
            return self._done.wait_for(lambda: self._handled >= target, timeout=timeout_s)

    def purge(self) -> int:
        """Delete the records past retention now; how many went (0 when it failed)."""
        if self.retention_days <= 0:
            return 0
        try:
            removed = self.store.purge(older_than=self.clock() - self.retention_days * DAY_S)
        except StorageError as exc:
            log.warning("purging old request records failed: %s", exc)
            return 0
        if removed:
            log.info("purged %d request records older than %g days", removed,
                     self.retention_days)
        return removed

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.clock() >= self._next_purge:
                self.purge()
                self._next_purge = self.clock() + self.purge_interval_s
            try:
                first = self._queue.get(timeout=self.interval_s)
            except queue.Empty:
                continue
            if first is not _WAKE:
                self._write([first, *self._take(self.batch_size - 1)])

    def _take(self, n: int) -> list[RequestRecord]:
        batch = []
        while len(batch) < n:
            try:
                record = self._queue.get_nowait()
            except queue.Empty:
                break
            if record is not _WAKE:
                batch.append(record)
        return batch

    def _write_queued(self) -> None:
        while batch := self._take(self.batch_size):
            self._write(batch)

    def _write(self, batch: list[RequestRecord]) -> None:
        try:
            self.store.add_many(batch)
        except StorageError as exc:
            self._lost(len(batch), f"writing request records failed: {exc}")
        with self._done:
            self._handled += len(batch)
            self._done.notify_all()

    def _lost(self, n: int, why: str) -> None:
        self.dropped += n
        if self.on_drop is not None:
            self.on_drop(n)
        if not self._warned:  # NOTE: once: a slow database would otherwise flood the log
            self._warned = True
            log.warning("%s; %d request record(s) dropped (counted in "
                        "blendcache_request_records_dropped, logged once)", why, n)
