"""The admin UI: ``GET /admin``, a server-rendered page of hit statistics whose charts (SVG, drawn
by the vendored ``static/charts.js``; no CDN, works offline) refresh from ``GET /admin/data``.

The admin token is accepted as ``Authorization: Bearer`` (scripts, proxies) or through the login
form, which sets an HttpOnly, SameSite=Strict cookie holding an expiring HMAC of it (people);
never in a URL.
"""

from blendcache.middleware.admin.routes import router

__all__ = ["router"]
