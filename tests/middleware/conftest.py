import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def client(engine, make_settings):
    from blendcache.middleware.app import create_app

    with TestClient(create_app(make_settings(), engine=engine)) as c:
        yield c
