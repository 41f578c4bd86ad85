"""API keys -> tenants, and the admin token: compared in constant time, never logged.

Only SHA-256 digests of the secrets are kept. A bearer token is hashed and compared with every
key's digest by ``hmac.compare_digest`` (all of them, without stopping at a match), so neither
the time taken nor an exception tells which key matched or how much of one; any text hashes,
so odd bytes in a header are a plain mismatch.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from blendcache.config import Settings


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class Keyring:
    """Who a bearer token is. No keys: the server is open (one tenant, DEFAULT_TENANT)."""

    keys: tuple[tuple[bytes, str], ...] = ()  # (digest of an API key, its tenant)
    admin: bytes | None = None  # digest of the admin token

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        keys = tuple((_digest(key), tenant.name) for tenant in settings.all_tenants()
                     for key in tenant.api_keys)
        token = settings.auth.admin_token
        return cls(keys, _digest(token) if token else None)

    @property
    def open(self) -> bool:
        return not self.keys

    def tenant(self, token: str) -> str | None:
        """The tenant whose key is ``token``, else None."""
        digest = _digest(token)
        found = None
        for key, tenant in self.keys:
            if hmac.compare_digest(key, digest):
                found = tenant
        return found

    def is_admin(self, token: str) -> bool:
        return self.admin is not None and hmac.compare_digest(self.admin, _digest(token))
