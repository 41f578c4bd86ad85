"""FastAPI dependencies as ``Annotated`` aliases; everything hangs off ``app.state`` (no globals)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from blendcache.config import DEFAULT_TENANT, Settings
from blendcache.errors import AuthenticationError
from blendcache.middleware.pipeline import ChatPipeline


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_pipeline(request: Request) -> ChatPipeline:
    return request.app.state.pipeline


def get_tenant(request: Request) -> str:
    """API key -> tenant. With no keys configured the server is open and one tenant exists."""
    keys = request.app.state.settings.server.api_keys
    if not keys:
        return DEFAULT_TENANT
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>'",
                                  code="invalid_api_key")
    tenant = keys.get(token.strip())
    if tenant is None:
        raise AuthenticationError("invalid API key", code="invalid_api_key")
    return tenant


SettingsDep = Annotated[Settings, Depends(get_settings)]
PipelineDep = Annotated[ChatPipeline, Depends(get_pipeline)]
TenantDep = Annotated[str, Depends(get_tenant)]
