"""The admin UI's sign-in cookie: ``<expiry>.<HMAC-SHA256 of the expiry>``, keyed by the admin
token's digest. It never holds the token; it ends at its expiry or when the token changes, and
any replica with the same token accepts it (no server-side session state)."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from blendcache.middleware.deps import require_admin

COOKIE = "blendcache_admin"
SESSION_S = 12 * 3600  # a working day; then the form asks for the token again


def session_cookie(admin_digest: bytes, *, now: float) -> str:
    expires = int(now) + SESSION_S
    return f"{expires}.{_sign(admin_digest, expires)}"


def valid_session(admin_digest: bytes, value: str, *, now: float) -> bool:
    expires, _, mac = value.partition(".")
    if not expires.isdigit() or int(expires) < now:
        return False
    return hmac.compare_digest(mac, _sign(admin_digest, int(expires)))


def _sign(admin_digest: bytes, expires: int) -> str:
    message = f"blendcache-admin-session:{expires}".encode()
    return hmac.new(admin_digest, message, hashlib.sha256).hexdigest()


def require_admin_session(request: Request, *, now: float) -> None:
    """A valid sign-in cookie, else what :func:`require_admin` asks (the bearer token; on an
    open server without an admin token, nothing): raises AuthenticationError otherwise."""
    admin = request.app.state.keyring.admin
    cookie = request.cookies.get(COOKIE)
    if admin is not None and cookie is not None and valid_session(admin, cookie, now=now):
        return
    require_admin(request)
