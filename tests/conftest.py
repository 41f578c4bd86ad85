"""Shared fixtures: one loaded model per test session, offline."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# The converted model copy survives between runs here, so only the first run pays ~20 s.
TEST_DATA_DIR = REPO / ".blendcache-test"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def engine():
    from blendcache.config import ModelConfig
    from blendcache.recompute.model import load_engine

    return load_engine(ModelConfig(num_threads=2), data_dir=TEST_DATA_DIR)


@pytest.fixture(scope="session")
def embedder():
    from blendcache.index.embedder import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def model_data_dir() -> Path:
    return TEST_DATA_DIR


@pytest.fixture
def make_settings(tmp_path):
    """Factory of tiny settings: data in ``tmp_path``; keyword arguments replace whole sections."""
    from blendcache.config import Settings, StorageConfig

    def make(**sections):
        storage = sections.pop("storage", StorageConfig(data_dir=str(tmp_path)))
        return Settings(storage=storage, **sections)

    return make


@pytest.fixture
def postgres_url():
    """URL of the real PostgreSQL that .ci/run starts (BLENDCACHE_TEST_POSTGRES_URL), skipped
    with a reason without one; every table is dropped again after the test."""
    url = os.environ.get("BLENDCACHE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL: .ci/run starts one and sets BLENDCACHE_TEST_POSTGRES_URL")
    yield url
    from sqlalchemy import create_engine

    from blendcache.storage.db import Base

    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """An empty database of each kind the project supports: SQLite (embedded, always) and
    PostgreSQL (``postgres_url``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return request.getfixturevalue("postgres_url")
