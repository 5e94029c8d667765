"""JWTs from the auth service, verified with PyJWT.

HS256 with a shared secret (`ANALYTICS_JWT_SECRET`), or RS256/ES256 with the public keys of a
JWKS (`ANALYTICS_JWT_JWKS_URL`), fetched by PyJWT's `PyJWKClient`: the key set is cached for
5 minutes and fetched again when a token names an unknown `kid` (a rotation), at most every
`ANALYTICS_JWKS_MIN_REFRESH_SECONDS`, so tokens with made-up `kid`s cannot make the service
hammer the auth service. Every token must carry `exp`, `iss`, `aud` and `sub`; `iss` and `aud`
must be the configured ones; `exp` and `nbf` are checked with a small leeway
(`ANALYTICS_JWT_LEEWAY_SECONDS`, 30 s). The algorithms accepted are fixed by the mode, never
read from the token, so `alg: none` and HS256-signed-with-the-public-key tokens are refused.

Why PyJWT: it is the most used of the three candidates, small (no framework), and ships the
JWKS client with rotation and a refresh cooldown that this needs; joserfc (by authlib's
author) has a cleaner JOSE model but no JWKS fetching, and authlib brings an OAuth framework
this service does not use.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import jwt

from netra_analytics.config import Settings

ASYMMETRIC = ["RS256", "ES256"]
JWKS_CACHE_SECONDS = 300
JWKS_FETCH_TIMEOUT = 5.0
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]


class InvalidToken(Exception):
    """A token that is not accepted; the message says why, without echoing the token."""


@dataclasses.dataclass(frozen=True)
class TokenClaims:
    subject: str
    roles: frozenset[str]
    expires_at: float  # epoch seconds


def looks_like_jwt(credential: str) -> bool:
    return credential.count(".") == 2


class TokenVerifier:
    """Checks tokens of the auth service configured in `settings` (see the module)."""

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_secret
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds
        self._roles_path = settings.jwt_roles_claim.split(".")
        self._jwks: jwt.PyJWKClient | None = None
        if settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(
                settings.jwt_jwks_url,
                lifespan=JWKS_CACHE_SECONDS,
                timeout=JWKS_FETCH_TIMEOUT,
                cooldown_duration=settings.jwks_min_refresh_seconds,
            )

    @property
    def enabled(self) -> bool:
        return self._secret is not None or self._jwks is not None

    async def verify(self, token: str) -> TokenClaims:
        """The claims of a valid token; raises InvalidToken saying why it is not."""
        if not self.enabled:
            raise InvalidToken("this service accepts no tokens (no auth service configured)")
        if self._jwks is not None:
            # Off the event loop: a JWKS fetch (first use, expiry, unknown kid) blocks.
            return await asyncio.to_thread(self._verify_jwks, token)
        return self._decode(token, self._secret or "", ["HS256"])

    def _verify_jwks(self, token: str) -> TokenClaims:
        assert self._jwks is not None
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError:
            raise InvalidToken("the auth service's keys could not be fetched") from None
        except jwt.PyJWKClientError as exc:
            raise InvalidToken(f"no key of the auth service verifies it: {exc}") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"malformed token: {exc}") from None
        return self._decode(token, key, ASYMMETRIC)

    def _decode(self, token: str, key: Any, algorithms: list[str]) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the token's issuer is not the configured one") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token's audience is not this service") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"invalid token: {exc}") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("the token's subject is not a string")
        return TokenClaims(subject, self._roles(claims), float(claims["exp"]))

    def _roles(self, claims: dict[str, Any]) -> frozenset[str]:
        """The roles at the configured claim: a list of strings or one space-separated string
        (OAuth's `scope` style); anything else is no role."""
        value: Any = claims
        for part in self._roles_path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str):
            return frozenset(value.split())
        if isinstance(value, list):
            return frozenset(v for v in value if isinstance(v, str))
        return frozenset()
