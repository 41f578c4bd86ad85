import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def make_app(engine, embedder, make_settings):
    """``make_app(settings=None)``: the app over the session's model and embedder."""
    from blendcache.middleware.app import create_app

    def make(settings=None):
        return create_app(settings or make_settings(), engine=engine, embedder=embedder)

    return make


@pytest.fixture
def client(make_app):
    with TestClient(make_app()) as c:
        yield c
