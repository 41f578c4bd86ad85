"""``create_app(settings)``: builds the engine, caches and routes; no module-level state."""

from __future__ import annotations

import contextlib
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from blendcache.chunk_cache.cache import build_chunk_cache
from blendcache.config import Settings
from blendcache.errors import (
    BlendCacheError,
    ConfigError,
    NotReadyError,
    RequestError,
    UpstreamError,
)
from blendcache.index.semantic_cache import SemanticCache
from blendcache.middleware.asgi import BodyLimit, ServerErrorGuard
from blendcache.middleware.admin import router as admin_router
from blendcache.middleware.auth import Keyring
from blendcache.middleware.metrics import Metrics
from blendcache.middleware.openapi import install_openapi
from blendcache.middleware.pipeline import ChatPipeline
from blendcache.middleware.records import RecordWriter
from blendcache.middleware.routes import chat, completions, documents, health, models, stats
from blendcache.middleware.routes import entries, feedback, semantic
from blendcache.middleware.schemas import error_body
from blendcache.middleware.sweeper import Sweeper
from blendcache.middleware.upstream import Upstream, error_payload
from blendcache.recompute.model import Engine, load_engine
from blendcache.storage.db import SqlEngine, make_engine
from blendcache.storage.requests import RequestStore
from blendcache.storage.semantic_store import SemanticStore

log = logging.getLogger("blendcache.app")


def create_app(settings: Settings, *, engine: Engine | None = None, embedder=None,
               upstream: Upstream | None = None) -> FastAPI:
    """The ASGI app. ``engine``, ``embedder`` and ``upstream`` may be passed in (tests share
    loaded models). In upstream mode (``[upstream] url``, or an ``upstream`` passed in) no local
    model is loaded: what the semantic layer does not answer is forwarded."""
    if upstream is None and settings.upstream.url:
        upstream = Upstream(settings.upstream)
    if upstream is None:
        engine = engine or load_engine(settings.model, data_dir=settings.storage.data_dir)
        _check_layers(settings, engine)
    else:
        engine = None
        log.info("upstream mode: forwarding semantic misses to %s", upstream.config.url)
    app = FastAPI(title="blendcache", version="0.1.0", lifespan=_lifespan(upstream),
                  description="Semantic and chunk-level cache proxy for RAG (OpenAI-compatible)")
    app.state.settings = settings
    app.state.keyring = Keyring.from_settings(settings)
    app.state.metrics = Metrics()
    database = open_database(settings)
    app.state.records = build_record_writer(settings, database)
    app.state.pipeline = ChatPipeline(
        settings, engine=engine,
        chunk_cache=(build_chunk_cache(settings, engine, database=database)
                     if engine is not None else None),
        semantic=(build_semantic_cache(settings, embedder, database=database)
                  if settings.semantic.enabled else None),
        record=_recorder(app.state.metrics, app.state.records), upstream=upstream)
    app.state.metrics.watch(app.state.pipeline)
    app.state.records.on_drop = lambda n: app.state.pipeline.metrics.update(records_dropped=n)
    for module in (chat, completions, documents, models, health, stats):
        app.include_router(module.router)
    app.include_router(entries.router)
    app.include_router(semantic.router)
    app.include_router(feedback.router)
    app.include_router(admin_router)
    _install_error_handlers(app)
    install_openapi(app)
    _install_body_limit(app, settings.server.max_body_bytes)
    app.add_middleware(ServerErrorGuard)  # outermost of ours: also guards the body limit
    return app


def _check_layers(settings: Settings, engine: Engine) -> None:
    if max(settings.blend.check_layers) >= engine.spec.num_layers:
        raise ConfigError(f"blend.check_layers {list(settings.blend.check_layers)}: the model "
                          f"{engine.spec.name} has {engine.spec.num_layers} layers")


def open_database(settings: Settings) -> SqlEngine:
    """The settings' database: one engine (one connection pool) for every table of a server or
    an in-process cache, passed to each builder below."""
    return make_engine(settings.storage.resolved_database_url())


def build_record_writer(settings: Settings, database: SqlEngine | None = None) -> RecordWriter:
    """The writer of request records, into the settings' database (``database``: its engine,
    else one is made; started by the lifespan)."""
    store = RequestStore(database or make_engine(settings.storage.resolved_database_url()))
    return RecordWriter(store, retention_days=settings.storage.request_retention_days)


def _recorder(metrics: Metrics, records: RecordWriter):
    """What the pipeline tells of each answered request: the metrics, then the records' queue
    (which never blocks)."""

    def record(event) -> None:
        metrics.record(event)
        records.submit(event)

    return record


def _lifespan(upstream: Upstream | None):
    """The app's lifespan: the sweeper of expired semantic entries and the request records'
    writer run while the server does; the records queued are written, and the upstream's
    connections closed, when it stops."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        pipeline = app.state.pipeline
        sweeper = None
        if pipeline.semantic is not None:
            sweeper = Sweeper(pipeline.semantic, app.state.settings.semantic.sweep_interval_s,
                              on_failure=lambda _exc: pipeline.metrics.update(
                                  cache_failures_semantic=1))
            sweeper.start()
        app.state.sweeper = sweeper
        app.state.records.start()
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.stop()
            app.state.records.stop()
            if upstream is not None:
                upstream.close()

    return lifespan


def build_semantic_cache(settings: Settings, embedder=None, *,
                         database: SqlEngine | None = None) -> SemanticCache:
    """The semantic answer cache; its entries live in the settings' database (``database``:
    its engine, else one is made)."""
    from blendcache.index.embedder import Embedder

    store = SemanticStore(database or make_engine(settings.storage.resolved_database_url()))
    quotas = {t.name: t.max_entries for t in settings.tenants if t.max_entries is not None}
    return SemanticCache(settings.semantic, store=store,
                         embedder=embedder or Embedder.from_config(settings.semantic),
                         tenant_quotas=quotas)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(loc) or None
        where = f" at '{param}'" if param else ""
        message = f"{first.get('msg', 'invalid request')}{where}"
        if first.get("type") == "json_invalid":
            message, param = "request body is not valid JSON", None
        return JSONResponse(error_body(message, "invalid_request_error", param=param), 400)

    @app.exception_handler(RequestError)
    async def _request_error(_req: Request, exc: RequestError) -> JSONResponse:
        body = error_body(exc.message, exc.error_type, param=exc.param, code=exc.code)
        return JSONResponse(body, exc.status_code)

    @app.exception_handler(UpstreamError)
    async def _upstream(_req: Request, exc: UpstreamError) -> JSONResponse:
        return JSONResponse(error_payload(exc), exc.status_code)

    @app.exception_handler(NotReadyError)
    async def _not_ready(_req: Request, exc: NotReadyError) -> JSONResponse:
        log.warning("%s", exc)
        return JSONResponse(error_body(str(exc), "server_error", code="not_ready"), 503)

    @app.exception_handler(BlendCacheError)
    async def _internal(_req: Request, exc: BlendCacheError) -> JSONResponse:
        log.exception("request failed: %s", exc)
        return JSONResponse(error_body(str(exc), "server_error"), 500)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(str(exc.detail), kind), exc.status_code,
                            headers=exc.headers)  # 405's Allow


def _install_body_limit(app: FastAPI, max_bytes: int) -> None:
    app.add_middleware(BodyLimit, max_bytes=max_bytes)
