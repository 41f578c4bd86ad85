"""``GET /admin`` (the page), ``GET /admin/data`` (its figures as JSON, fetched every few seconds),
``GET``/``POST /admin/login``, ``POST /admin/logout`` and ``GET /admin/static/{name}``.

Without the admin token the page redirects to the login form (303) and the data is a 401 in
OpenAI's error shape. The token is read from the Authorization header or the form's body only,
never from the URL; query parameters are the recent table's filters and the time window.
"""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from blendcache.errors import AuthenticationError, NotFoundError
from blendcache.middleware.admin.data import View, dashboard
from blendcache.middleware.admin.page import HEADERS, admin_page, login_page, static_file
from blendcache.middleware.admin.session import (
    COOKIE,
    SESSION_S,
    require_admin_session,
    session_cookie,
)
from blendcache.middleware.deps import MetricsDep, PipelineDep, SettingsDep, bearer_token
from blendcache.middleware.schemas import error_responses

router = APIRouter(prefix="/admin", include_in_schema=False)
WindowS = Annotated[float, Query(ge=60, le=366 * 86_400)]  # seconds of history charted
Filter = Annotated[str | None, Query(max_length=128)]


def _view(window_s: float, tenant: str | None, category: str | None) -> View:
    return View(window_s=window_s, tenant=tenant or None, category=category or None)


def _data(request: Request, pipeline, metrics, settings, view: View) -> dict:
    return dashboard(pipeline, metrics, request.app.state.records.store, view, now=time.time(),
                     retention_days=settings.storage.request_retention_days)


@router.get("", response_class=HTMLResponse)
def page(request: Request, pipeline: PipelineDep, metrics: MetricsDep, settings: SettingsDep,
         window_s: WindowS = 86_400.0, tenant: Filter = None, category: Filter = None):
    try:
        require_admin_session(request, now=time.time())
    except AuthenticationError:
        return RedirectResponse("/admin/login", status_code=303, headers=HEADERS)
    data = _data(request, pipeline, metrics, settings, _view(window_s, tenant, category))
    signed_in = COOKIE in request.cookies and bearer_token(request) is None
    return HTMLResponse(admin_page(data, signed_in=signed_in), headers=HEADERS)


@router.get("/data", responses=error_responses(401, 500))
def data(request: Request, pipeline: PipelineDep, metrics: MetricsDep, settings: SettingsDep,
         window_s: WindowS = 86_400.0, tenant: Filter = None, category: Filter = None):
    require_admin_session(request, now=time.time())
    body = _data(request, pipeline, metrics, settings, _view(window_s, tenant, category))
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request):
    keyring = request.app.state.keyring
    if keyring.admin is None:
        if keyring.open:  # nothing to sign in with: the page is open, as require_admin says
            return RedirectResponse("/admin", status_code=303, headers=HEADERS)
        return HTMLResponse(login_page("No admin token is set on this server "
                                       "([auth] admin_token)."), 403, headers=HEADERS)
    return HTMLResponse(login_page(), headers=HEADERS)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request):
    """The form's token, from the body only (a token in the query string is ignored)."""
    keyring = request.app.state.keyring
    try:
        form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
    except ValueError:  # more fields than a login form has
        form = {}
    token = (form.get("token") or [""])[0]
    if keyring.admin is None or not keyring.is_admin(token):
        message = ("No admin token is set on this server ([auth] admin_token)."
                   if keyring.admin is None else "Wrong admin token.")
        return HTMLResponse(login_page(message), 401, headers=HEADERS)
    response = RedirectResponse("/admin", status_code=303, headers=HEADERS)
    response.set_cookie(COOKIE, session_cookie(keyring.admin, now=time.time()),
                        max_age=SESSION_S, path="/admin", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def logout():
    response = RedirectResponse("/admin/login", status_code=303, headers=HEADERS)
    response.delete_cookie(COOKIE, path="/admin", httponly=True, samesite="strict")
    return response


@router.get("/static/{name}")
def static(name: str) -> Response:
    found = static_file(name)
    if found is None:
        raise NotFoundError(f"no admin asset {name!r}")
    body, content_type = found
    return Response(body, media_type=content_type,
                    headers={"X-Content-Type-Options": "nosniff",
                             "Cache-Control": "no-cache"})
