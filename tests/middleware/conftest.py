"""Apps over the tiny random-weight model (``make_app``, ``client``: behaviour) or over the real
SmolLM2 (``make_model_app``, ``model_client``: tests that need real text, marked ``model``)."""

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def make_app(tiny_engine, make_settings, request):
    """``make_app(settings=None)``: the app over the tiny model, and over the session's embedder
    when the settings' semantic layer is on."""
    from blendcache.middleware.app import create_app

    def make(settings=None):
        settings = settings or make_settings()
        embedder = request.getfixturevalue("embedder") if settings.semantic.enabled else None
        return create_app(settings, engine=tiny_engine, embedder=embedder)

    return make


@pytest.fixture
def client(make_app):
    with TestClient(make_app()) as c:
        yield c


@pytest.fixture
def make_model_app(engine, embedder, make_settings):
    """``make_model_app(settings=None)``: the app over the session's real model and embedder."""
    from blendcache.middleware.app import create_app

    def make(settings=None):
        return create_app(settings or make_settings(), engine=engine, embedder=embedder)

    return make


@pytest.fixture
def model_client(make_model_app):
    with TestClient(make_model_app()) as c:
        yield c
