"""The dashboard's session cookie: who signed in, signed and timestamped by itsdangerous.

The cookie holds no key and no token: for a key, the key's SHA-256 (so that revoking the key
ends its sessions within seconds, and the cookie cannot be replayed as a bearer key); for a
JWT, its subject, roles and expiry. It is HMAC-signed (itsdangerous, SHA-1 HMAC of a derived
key: a MAC, where SHA-1's collision weakness does not apply) with `ANALYTICS_SESSION_SECRET`,
or a secret generated once into the data directory, and refused after
`ANALYTICS_SESSION_HOURS` (12) or the token's own expiry, whichever is first. The attributes:
`HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page sends it, so no
cross-site request forgery), `Path=/`, and `Secure` when the request came over HTTPS (directly
or as `X-Forwarded-Proto` from a trusted proxy).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

COOKIE = "netra_session"
SALT = "netra-analytics.session"


@dataclasses.dataclass(frozen=True)
class Session:
    """`key_hash` for a session opened with a key; else `subject`/`roles` from a token."""

    key_hash: str | None = None
    subject: str | None = None
    roles: tuple[str, ...] = ()
    expires_at: float | None = None  # epoch seconds: the token's expiry


class SessionSigner:
    """`secret` is read on first use (it may be a file in the data directory, which the
    service creates when it starts, not when the app is built)."""

    def __init__(self, secret: Callable[[], bytes], max_age_seconds: int) -> None:
        self._secret = secret
        self._signer: URLSafeTimedSerializer | None = None
        self.max_age = max_age_seconds

    @property
    def _serializer(self) -> URLSafeTimedSerializer:
        if self._signer is None:
            self._signer = URLSafeTimedSerializer(self._secret(), salt=SALT)
        return self._signer

    def sign(self, session: Session) -> str:
        payload: dict[str, Any] = {
            k: v for k, v in dataclasses.asdict(session).items() if v not in (None, ())
        }
        return self._serializer.dumps(payload)

    def read(self, cookie: str, now: float | None = None) -> Session | None:
        """The session in a cookie, or None when it is forged, damaged or expired."""
        try:
            payload = self._serializer.loads(cookie, max_age=self.max_age)
        except (SignatureExpired, BadSignature):
            return None
        if not isinstance(payload, dict):
            return None
        session = Session(
            key_hash=payload.get("key_hash"),
            subject=payload.get("subject"),
            roles=tuple(payload.get("roles", ())),
            expires_at=payload.get("expires_at"),
        )
        moment = time.time() if now is None else now
        if session.expires_at is not None and session.expires_at <= moment:
            return None
        return session
