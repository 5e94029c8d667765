"""Who is asking, and whether they may: the one guard every route of the app goes through.

Credentials, in order: `Authorization: Bearer <credential>` (an API key, `na_...`, or a JWT of
the auth service), else the dashboard's session cookie. A header that is present but not
valid is refused (401) even when a cookie would do: a client that sends one means it.

Access, by route (the route's path template, so `/tag/{name}` is one entry):

- `PUBLIC`: ingestion, the tag and its heartbeat, health, metrics, the demo page, the OpenAPI
  document and its pages, the event schema, the login page. Everything else needs a credential
  (401 without one): a route added tomorrow is protected unless someone adds it here, and
  `tests/auth/test_matrix.py` walks every route to hold that.
- `OWN_USER`: routes a signed-in person without a role may call for themselves only: the
  route's user parameter must equal their token's subject (403 otherwise).
- `OWN_USER_PATH`: the same for a user named in the path (a person's own export).
- `ADMIN_PREFIXES`, and every method other than GET and HEAD: admin only (keys, the import,
  erasure, export, the audit log, and `/api/analytics/admin/...`: the load test's read-back).
- The rest (reports, panels, dashboards, hot prompts): analyst or admin.

Roles: `admin` may do everything; `analyst` reads; `ingest` (keys only) sends events when
ingestion needs a credential (`ANALYTICS_INGEST_AUTH=on`) and nothing else; a token whose roles
claim holds none of these is a plain signed-in user.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request

from netra_analytics.auth.keys import ADMIN, ANALYST, INGEST, ApiKey, KeyTable, looks_like_key
from netra_analytics.auth.sessions import COOKIE, Session, SessionSigner
from netra_analytics.auth.tokens import InvalidToken, TokenVerifier
from netra_analytics.config import Settings
from netra_analytics.store.base import Store

PUBLIC = frozenset(
    {
        "/api/analytics/events",
        "/api/analytics/tag/heartbeat",
        "/tag/{version}/netra-analytics.js",
        "/tag/{name}",
        "/health",
        "/health/ready",
        # Process counters only (no user, prompt or key): scraped without credentials, like
        # most Prometheus targets; restrict it at the network or proxy where that matters.
        "/metrics",
        "/demo",
        "/demo/{name}",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/api/analytics/schema",
        "/login",
        "/logout",
    }
)
# Route -> its query parameter naming the user a plain signed-in user may ask about.
OWN_USER = {"/api/analytics/reports/user-activity": "user_id"}
# Route -> its path parameter naming the user a signed-in person may ask about for themselves
# (their export; admins may ask about anyone).
OWN_USER_PATH = {"/api/analytics/users/{user_id}/export": "user_id"}
ADMIN_PREFIXES = (
    "/api/analytics/admin",
    "/api/analytics/import",
    "/api/analytics/keys",
    "/api/analytics/users",
    "/api/analytics/erasures",
    "/api/analytics/audit",
)
READ_METHODS = frozenset({"GET", "HEAD"})
BEARER = "bearer"


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who a request is from. `name`: the key's name, or the token's subject."""

    kind: str  # "key" or "token"
    name: str
    roles: frozenset[str]

    @property
    def subject(self) -> str | None:
        """The person a token speaks for; keys speak for no one."""
        return self.name if self.kind == "token" else None

    def may(self, role: str) -> bool:
        return ADMIN in self.roles or role in self.roles


def refuse(status: int, message: str) -> HTTPException:
    """401 (with the `WWW-Authenticate` challenge RFC 6750 asks for) or 403."""
    headers = {"www-authenticate": 'Bearer realm="netra-analytics"'} if status == 401 else None
    return HTTPException(status, message, headers)


class Authenticator:
    """Turns credentials into a Principal; held by the app (`app.state.auth`)."""

    def __init__(
        self,
        settings: Settings,
        store: Callable[[], Store | None],
        session_secret: Callable[[], bytes],
    ) -> None:
        self.keys = KeyTable(store)
        self.tokens = TokenVerifier(settings)
        self.sessions = SessionSigner(session_secret, settings.session_hours * 3600)
        self.ingest_required = settings.ingest_auth

    async def credential(self, credential: str) -> Principal:
        """The principal of a key or token; raises 401 saying why it is refused."""
        return (await self.session_for(credential))[0]

    async def session_for(self, credential: str) -> tuple[Principal, Session]:
        """The principal of a key or token, and the dashboard session it opens (401 when
        refused): a key's session holds its hash, a token's its subject, roles and expiry."""
        if looks_like_key(credential):
            key = await self.keys.lookup(credential)
            if key is None:
                raise refuse(401, "unknown or revoked API key")
            return _key_principal(key), Session(key_hash=key.key_hash)
        try:
            claims = await self.tokens.verify(credential)
        except InvalidToken as exc:
            raise refuse(401, str(exc)) from None
        principal = Principal("token", claims.subject, claims.roles)
        roles = tuple(sorted(claims.roles))
        return principal, Session(subject=claims.subject, roles=roles, expires_at=claims.expires_at)

    async def from_request(self, request: Request) -> Principal | None:
        """The request's principal; None when it carries no credential at all."""
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, credential = header.strip().partition(" ")
            credential = credential.strip()
            if scheme.lower() != BEARER or not credential or " " in credential:
                raise refuse(401, "malformed Authorization header: send 'Bearer <key or token>'")
            return await self.credential(credential)
        return await self.from_cookie(request)

    async def from_cookie(self, request: Request) -> Principal | None:
        """The principal of the request's session cookie; None without a valid one (forged,
        expired, or its key revoked)."""
        cookie = request.cookies.get(COOKIE)
        session = self.sessions.read(cookie) if cookie else None
        if session is None:
            return None
        if session.key_hash is not None:
            key = await self.keys.by_hash(session.key_hash)
            return None if key is None else _key_principal(key)
        if session.subject:
            return Principal("token", session.subject, frozenset(session.roles))
        return None


def _key_principal(key: ApiKey) -> Principal:
    return Principal("key", key.name, frozenset({key.role}))


def route_path(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", request.url.path))


def required_role(path: str, method: str) -> str:
    """The role a route needs beyond being signed in (OWN_USER aside)."""
    if path.startswith(ADMIN_PREFIXES) or method not in READ_METHODS:
        return ADMIN
    return ANALYST


async def guard(request: Request) -> Principal | None:
    """The app-wide dependency (`FastAPI(dependencies=...)`): 401 without a valid credential
    on a route outside PUBLIC, 403 without the role the route needs. A browser asking for a
    page (GET, Accept: text/html) is sent to the login page instead of a 401."""
    path = route_path(request)
    if path in PUBLIC:
        return None
    auth: Authenticator = request.app.state.auth
    principal = await auth.from_request(request)
    if principal is None:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            target = quote(
                request.url.path + (f"?{request.url.query}" if request.url.query else "")
            )
            raise HTTPException(303, "sign in first", {"location": f"/login?next={target}"})
        raise refuse(401, "credentials required: 'Authorization: Bearer <key or token>'")
    request.state.principal = principal
    role = required_role(path, request.method)
    if principal.may(role):
        return principal
    own_path = OWN_USER_PATH.get(path)
    if own_path is not None and principal.subject is not None:
        if request.path_params.get(own_path) == principal.subject:
            return principal
        raise refuse(403, "you may export only your own data")
    own = OWN_USER.get(path)
    if own is not None and role == ANALYST and principal.subject is not None:
        asked = request.query_params.get(own)
        if asked == principal.subject:
            return principal
        raise refuse(403, f"you may read only your own activity: {own} must be your own id")
    raise refuse(403, f"this needs the {role} role")


async def ingest_principal(request: Request) -> Principal | None:
    """Who sends events: None for an anonymous browser (allowed unless ingestion needs a
    credential: 401). A key must have the ingest or admin role (403)."""
    auth: Authenticator = request.app.state.auth
    principal = await auth.from_request(request) if "authorization" in request.headers else None
    if principal is None:
        if auth.ingest_required:
            raise refuse(401, "ingestion needs 'Authorization: Bearer <token or ingest key>'")
        return None
    if principal.kind == "key" and not principal.may(INGEST):
        raise refuse(403, "this key may not send events; use an ingest key")
    return principal


def check_sender(principal: Principal | None, user_id: str) -> None:
    """A token's subject must be the user the events are sent as (403 otherwise)."""
    if principal is not None and principal.subject is not None and principal.subject != user_id:
        raise refuse(403, "context.user_id is not the signed-in user (the token's subject)")


def document_security(document: dict[str, Any]) -> None:
    """Add the bearer scheme to an OpenAPI document, on every operation outside PUBLIC."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`netra-analytics keys create`) or a JWT of the auth service",
    }
    for path, operations in document.get("paths", {}).items():
        if path in PUBLIC:
            continue
        for operation in operations.values():
            if isinstance(operation, dict):
                operation["security"] = [{BEARER: []}]
                operation.setdefault("responses", {}).update(
                    {
                        "401": {"description": "No valid credential"},
                        "403": {"description": "The credential lacks the role"},
                    }
                )
