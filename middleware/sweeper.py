"""The server's upkeep timer: expired semantic entries are removed every few seconds.

Lookups already skip an expired entry; sweeping frees its database row and index slot. One
daemon thread per app, started and stopped by the app's lifespan; a failing sweep is logged
and counted (``cache_failures_semantic``), and the next one tries again.
"""

from __future__ import annotations

import logging
import threading

from blendcache.errors import CacheError
from blendcache.index.semantic_cache import SemanticCache

log = logging.getLogger("blendcache.sweeper")


class Sweeper:
    def __init__(self, cache: SemanticCache, interval_s: float, *, on_failure=None):
        self.cache = cache
        self.interval_s = interval_s
        self.on_failure = on_failure  # called with the exception of a failed sweep
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="blendcache-sweeper",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def sweep(self) -> int:
        """One sweep now: how many entries went (0 when it failed)."""
        try:
            removed = self.cache.expire()
        except CacheError as exc:
            log.warning("sweeping expired semantic entries failed: %s", exc)
            if self.on_failure is not None:
                self.on_failure(exc)
            return 0
        if removed:
            log.info("swept %d expired semantic entries", removed)
        return removed

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sweep()
