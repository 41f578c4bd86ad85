"""The probes: GET /healthz (liveness), GET /readyz (readiness: a model, the database on a fresh
connection; a 503 in OpenAI's shape naming what is not ready), GET /health (what is loaded).
Open without an API key, as an orchestrator's probes carry none."""

import os
from pathlib import Path

from fastapi.testclient import TestClient

from blendcache.config import ServerConfig


def test_healthz_says_the_process_answers(client):
    r = client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


def test_readyz_with_the_model_loaded_and_the_database_reachable(client):
    r = client.get("/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ready", "model": "tiny-llama"})


def test_readyz_is_503_naming_an_unreachable_database(make_app, make_settings, tmp_path):
    settings = make_settings()
    with TestClient(make_app(settings)) as c:
        assert c.get("/readyz").status_code == 200
        database = Path(settings.storage.resolved_database_url().removeprefix("sqlite:///"))
        assert database.is_file()
        for path in database.parent.glob(database.name + "*"):  # with its -wal and -shm
            path.unlink()
        os.mkdir(database)  # now no database can be opened there
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {"error": {
            "message": "not ready: database unreachable (OperationalError: unable to open "
                       "database file)",
            "type": "server_error", "param": None, "code": "not_ready"}}
        assert c.get("/healthz").status_code == 200  # alive all the same


def test_readyz_creates_no_database(make_app, make_settings):
    settings = make_settings()
    app = make_app(settings)
    database = Path(settings.storage.resolved_database_url().removeprefix("sqlite:///"))
    for path in database.parent.glob(database.name + "*"):
        path.unlink()
    with TestClient(app) as c:
        assert c.get("/readyz").status_code == 503
    assert not database.exists()


def test_probes_need_no_api_key(make_app, make_settings):
    settings = make_settings(server=ServerConfig(api_keys={"sk-a": "team-a"}))
    with TestClient(make_app(settings)) as c:
        assert c.get("/v1/models").status_code == 401
        assert [c.get(p).status_code for p in ("/healthz", "/readyz", "/health")] == [200] * 3


def test_health_says_what_is_loaded(client, tiny_engine):
    assert client.get("/health").json() == {
        "status": "ok", "model": "tiny-llama", "fingerprint": tiny_engine.spec.fingerprint[:16]}


def test_readyz_in_upstream_mode_needs_no_local_model(make_settings, embedder, tmp_path):
    from blendcache.config import ModelConfig, UpstreamConfig
    from blendcache.middleware.app import create_app

    url = "http://127.0.0.1:9/v1"  # never contacted: the upstream is not probed
    settings = make_settings(model=ModelConfig(path=str(tmp_path / "no-such-model")),
                             upstream=UpstreamConfig(url=url))
    with TestClient(create_app(settings, embedder=embedder)) as c:
        r = c.get("/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ready", "upstream": url})


def test_every_table_shares_one_database_engine(client):
    """One connection pool per server, not one per table's store."""
    state = client.app.state
    engines = {id(state.records.store.engine), id(state.pipeline.semantic._store.engine),
               id(state.pipeline.chunk_cache.store.engine),
               id(state.pipeline.semantic.guarantee._store.engine)}
    assert len(engines) == 1
