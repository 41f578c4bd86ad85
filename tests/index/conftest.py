"""Shared fixtures of the semantic-cache tests: one embedder per session, tiny configs."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub from tests

import pytest  # noqa: E402

from blendcache.config import CategoryConfig, SemanticConfig  # noqa: E402


class FakeClock:
    """A settable clock: ``clock()`` returns ``clock.now``."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_category(name: str = "default", **overrides) -> CategoryConfig:
    return CategoryConfig(name=name, **overrides)


def make_config(*categories: CategoryConfig, **overrides) -> SemanticConfig:
    categories = categories or (make_category(),)
    overrides.setdefault("default_category", categories[0].name)
    return SemanticConfig(categories=tuple(categories), **overrides)


@pytest.fixture
def make_cache(tmp_path, embedder, clock):
    """``make_cache(config, db="x.db")``: a SemanticCache over an SQLite file in tmp_path."""
    from blendcache.index.semantic_cache import SemanticCache
    from blendcache.storage.semantic_store import SemanticStore

    stores = []

    def build(config: SemanticConfig | None = None, *, db: str = "semantic.db"):
        store = SemanticStore(f"sqlite:///{tmp_path / db}")
        stores.append(store)
        return SemanticCache(config or make_config(), store=store, embedder=embedder, clock=clock)

    yield build
    for store in stores:
        store.engine.dispose()
