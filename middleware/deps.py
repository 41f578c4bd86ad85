"""FastAPI dependencies as ``Annotated`` aliases; everything hangs off ``app.state`` (no globals)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from blendcache.config import DEFAULT_TENANT, Settings
from blendcache.errors import AuthenticationError, InvalidRequestError
from blendcache.index.semantic_cache import SemanticCache
from blendcache.middleware.auth import Keyring
from blendcache.middleware.metrics import Metrics
from blendcache.middleware.pipeline import ChatPipeline

log = logging.getLogger("blendcache.auth")

_MISSING_KEY = "missing API key: send 'Authorization: Bearer <key>'"


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_pipeline(request: Request) -> ChatPipeline:
    return request.app.state.pipeline


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def bearer_token(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (scheme in any case), else None. The one
    place a token is read from a request: never from its URL."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _refuse(request: Request, message: str, code: str) -> AuthenticationError:
    # NOTE: never the token itself, nor the header, in the log.
    log.warning("refused %s: %s", request.scope.get("path", "a request"), message)
    return AuthenticationError(message, code=code)


def get_tenant(request: Request) -> str:
    """API key -> tenant. With no keys configured the server is open and one tenant exists."""
    keyring: Keyring = request.app.state.keyring
    if keyring.open:
        return DEFAULT_TENANT
    token = bearer_token(request)
    if token is None:
        raise _refuse(request, _MISSING_KEY, "invalid_api_key")
    tenant = keyring.tenant(token)
    if tenant is None:
        raise _refuse(request, "invalid API key", "invalid_api_key")
    return tenant


def require_admin(request: Request) -> None:
    """Admin endpoints (GET /metrics, the admin UI): the admin token when one is set; without
    one, anyone on an open server (as before tenants) and no one on a keyed server."""
    keyring: Keyring = request.app.state.keyring
    if keyring.admin is None:
        if keyring.open:
            return
        raise _refuse(request, "this endpoint needs the admin token and none is set "
                               "([auth] admin_token)", "admin_token_required")
    token = bearer_token(request)
    if token is None or not keyring.is_admin(token):
        raise _refuse(request, "invalid or missing admin token: send "
                               "'Authorization: Bearer <admin_token>'", "invalid_admin_token")


@dataclass(frozen=True)
class Viewer:
    """Who reads the statistics: one tenant, or (``tenant`` None) the admin, who sees all."""

    tenant: str | None


def get_viewer(request: Request) -> Viewer:
    """The admin token -> every tenant; an API key -> its tenant. An open server without an
    admin token shows everything to everyone, as before tenants."""
    keyring: Keyring = request.app.state.keyring
    token = bearer_token(request)
    if token is not None and keyring.is_admin(token):
        return Viewer(None)
    if keyring.open and keyring.admin is None:
        return Viewer(None)
    return Viewer(get_tenant(request))


SettingsDep = Annotated[Settings, Depends(get_settings)]
PipelineDep = Annotated[ChatPipeline, Depends(get_pipeline)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
TenantDep = Annotated[str, Depends(get_tenant)]
ViewerDep = Annotated[Viewer, Depends(get_viewer)]
AdminDep = Annotated[None, Depends(require_admin)]


def semantic_cache(pipeline: ChatPipeline) -> SemanticCache:
    """The pipeline's semantic cache, for the routes that work on it alone; a 400 when the
    server runs without one."""
    if pipeline.semantic is None:
        raise InvalidRequestError("the semantic cache is off on this server ([semantic] "
                                  "enabled)", code="semantic_cache_disabled")
    return pipeline.semantic
