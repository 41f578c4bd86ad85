"""API keys -> tenants (deps.get_tenant), called directly and through the app's routes."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request

from blendcache.config import ServerConfig, Settings
from blendcache.errors import AuthenticationError
from blendcache.middleware.auth import Keyring
from blendcache.middleware.deps import get_tenant

KEYS = {"k1": "acme", "k2": "globex"}


def make_request(api_keys: dict, authorization: str | None = None) -> Request:
    """A request to an app whose settings hold ``api_keys``."""
    app = FastAPI()
    app.state.settings = Settings(server=ServerConfig(api_keys=api_keys))
    app.state.keyring = Keyring.from_settings(app.state.settings)
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return Request({"type": "http", "app": app, "headers": headers})


@pytest.mark.parametrize("authorization", [None, "Bearer anything", "Basic xyz"])
def test_an_open_server_has_one_default_tenant(authorization):
    assert get_tenant(make_request({}, authorization)) == "default"


@pytest.mark.parametrize("authorization,tenant", [
    ("Bearer k1", "acme"),
    ("Bearer k2", "globex"),
    ("bearer k1", "acme"),  # the scheme is case-insensitive
    ("Bearer  k1 ", "acme"),
])
def test_a_key_names_its_tenant(authorization, tenant):
    assert get_tenant(make_request(KEYS, authorization)) == tenant


@pytest.mark.parametrize("authorization,message", [
    (None, "missing API key: send 'Authorization: Bearer <key>'"),
    ("Basic k1", "missing API key: send 'Authorization: Bearer <key>'"),
    ("Bearer", "missing API key: send 'Authorization: Bearer <key>'"),
    ("Bearer nope", "invalid API key"),
    ("Bearer acme", "invalid API key"),  # a tenant's name is not its key
])
def test_a_missing_or_unknown_key_is_refused(authorization, message):
    with pytest.raises(AuthenticationError) as info:
        get_tenant(make_request(KEYS, authorization))
    assert (info.value.status_code, info.value.code, info.value.message) == (
        401, "invalid_api_key", message)


def test_routes_answer_401_in_openais_shape(make_app, make_settings):
    settings = make_settings(server=ServerConfig(api_keys=KEYS))
    with TestClient(make_app(settings)) as c:
        refused = c.get("/v1/models", headers={"authorization": "Bearer nope"})
        assert refused.status_code == 401
        assert refused.json() == {"error": {"message": "invalid API key",
                                            "type": "authentication_error", "param": None,
                                            "code": "invalid_api_key"}}
        assert c.post("/v1/chat/completions", json={}).status_code == 401  # before the body
        assert c.get("/v1/blendcache/stats").status_code == 401
        ok = c.get("/v1/models", headers={"authorization": "Bearer k1"})
        assert (ok.status_code, [m["id"] for m in ok.json()["data"]]) == (200, ["tiny-llama"])
        assert c.get("/health").status_code == 200  # liveness probes carry no key
