"""Expired semantic entries are swept on a timer while the server runs, and counted."""

import threading
import time

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from blendcache.config import CategoryConfig, SemanticConfig
from blendcache.errors import StorageError
from blendcache.middleware.sweeper import Sweeper

URL = "/v1/chat/completions"
ASK = {"model": "default", "max_tokens": 4,
       "messages": [{"role": "user", "content": "What is the capital of France?"}]}


def wait_for(condition, timeout_s: float = 10.0) -> bool:
    """Poll ``condition`` until it holds (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def expired_metric(client) -> float:
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    return families["blendcache_semantic_expired"].samples[0].value


def test_the_server_sweeps_expired_entries_and_counts_them(make_app, make_settings):
    semantic = SemanticConfig(categories=(CategoryConfig(name="default", ttl_s=0.2),),
                              sweep_interval_s=0.05)
    with TestClient(make_app(make_settings(semantic=semantic))) as client:
        cache = client.app.state.pipeline.semantic
        client.post(URL, json=ASK)
        assert wait_for(lambda: cache.stats().expired == 1)
        assert cache.stats().entries == {}
        assert expired_metric(client) == 1.0
        assert client.post(URL, json=ASK).headers["x-blendcache-cache"] == "miss"
        thread = client.app.state.sweeper._thread
        assert thread is not None and thread.is_alive()
    assert not thread.is_alive()  # stopped with the server


def test_sweep_interval_zero_runs_no_timer(make_app, make_settings):
    with TestClient(make_app(make_settings(semantic=SemanticConfig(sweep_interval_s=0)))) as c:
        assert c.app.state.sweeper._thread is None


class _FailingCache:
    def __init__(self):
        self.calls = threading.Event()

    def expire(self) -> int:
        self.calls.set()
        raise StorageError("database is locked")


def test_a_failing_sweep_is_logged_counted_and_retried(caplog):
    failures = []
    sweeper = Sweeper(_FailingCache(), 0.01, on_failure=failures.append)
    assert sweeper.sweep() == 0
    assert [str(e) for e in failures] == ["database is locked"]
    assert "sweeping expired semantic entries failed: database is locked" in caplog.text
    sweeper.start()
    assert wait_for(lambda: len(failures) >= 3)  # the timer keeps going after a failure
    sweeper.stop()


def test_a_negative_interval_is_refused_at_load():
    from blendcache.config import load_settings
    from blendcache.errors import ConfigError

    with pytest.raises(ConfigError, match="sweep_interval_s must be >= 0"):
        load_settings(None, environ={}, overrides={"semantic": {"sweep_interval_s": -1}})
