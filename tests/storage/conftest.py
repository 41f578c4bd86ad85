"""Metadata stores run against every database the project supports: SQLite (embedded, always)
and PostgreSQL (a real server on loopback, started by .ci/run, which exports its URL in
BLENDCACHE_TEST_POSTGRES_URL; without it those cases are skipped with a reason)."""

import os

import pytest
from sqlalchemy import create_engine

from blendcache.storage.db import Base

POSTGRES_URL = os.environ.get("BLENDCACHE_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A URL to an empty database; every table is dropped again after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL: .ci/run starts one and sets BLENDCACHE_TEST_POSTGRES_URL")
    yield POSTGRES_URL
    engine = create_engine(POSTGRES_URL)
    Base.metadata.drop_all(engine)
    engine.dispose()
