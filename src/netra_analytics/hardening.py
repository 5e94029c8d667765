"""Browser-facing hardening, as ASGI middleware (wired in `app.py`): header size bounds, CORS
on ingestion and the tag only, and security headers on every reply."""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_HEADER_BYTES = 16384  # all of a request's header names and values
MAX_HEADER_VALUE = 8192  # one header's value (a JWT is well under 2 KB)


def header_problem(headers: list[tuple[bytes, bytes]]) -> str | None:
    """Why a request's headers are over the limits (MAX_HEADER_BYTES in all, MAX_HEADER_VALUE
    for one value), or None."""
    total = sum(len(name) + len(value) for name, value in headers)
    longest = max((len(value) for _, value in headers), default=0)
    if total > MAX_HEADER_BYTES:
        return f"request headers of {total} bytes; the limit is {MAX_HEADER_BYTES}"
    if longest > MAX_HEADER_VALUE:
        return f"a header value of {longest} bytes; the limit is {MAX_HEADER_VALUE}"
    return None


def header_too_large(problem: str) -> Response:
    """The 431 reply for `header_problem`'s answer."""
    error = {"error": "HeaderTooLarge", "message": problem}
    return Response(orjson.dumps(error), 431, media_type="application/json")


class BoundedHeaders:
    """Refuses requests whose headers are over the limits with a JSON 431 naming the limit,
    before any route reads them (the HTTP server's own limit is far higher)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = header_problem(scope.get("headers", []))
            if problem is not None:
                await header_too_large(problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


# Where browsers of other sites may call (CORS): ingestion, the tag and its heartbeat. Reports,
# panels, dashboards and admin answer no CORS headers, so no other site's page can read them.
CORS_PATHS = ("/api/analytics/events", "/api/analytics/tag/", "/tag/")


def browser_cors(app: ASGIApp, origins: tuple[str, ...]) -> CORSMiddleware:
    """Starlette's CORSMiddleware as this service answers CORS: `origins` may call, with GET
    and POST, the tag's request headers, and the rate-limit headers readable by the page."""
    return CORSMiddleware(
        app,
        allow_origins=list(origins),
        allow_methods=["GET", "POST"],
        allow_headers=["content-type", "content-encoding", "authorization"],
        expose_headers=[
            "retry-after",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ],
        max_age=86400,
    )


class BrowserCORS:
    """CORSMiddleware on `CORS_PATHS` only, from `ANALYTICS_CORS_ORIGINS` (default `*`)."""

    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.cors = browser_cors(app, origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(CORS_PATHS):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


# Pages carry no inline script (the demo's scripts are files), so scripts come from this site
# only; inline styles are allowed (they cannot run code). OpenAPI's /docs and /redoc load
# FastAPI's viewer from its CDN with an inline bootstrap script, so they keep only the
# framing rule.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
VIEWER_PATHS = ("/docs", "/redoc")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"DENY"),
]
_CSP = b"content-security-policy"
_PAGE_CSP = (_CSP, PAGE_CSP.encode())
_API_CSP = (_CSP, API_CSP.encode())
_VIEWER_CSP = (_CSP, b"frame-ancestors 'none'")
_SECURITY_NAMES = frozenset({*(name for name, _ in SECURITY_HEADERS), _CSP})


class SecurityHeaders:
    """Security headers on every reply, errors included: no MIME sniffing, no referrer to
    other sites beyond the origin, no framing (clickjacking), and a Content-Security-Policy:
    PAGE_CSP for HTML, API_CSP (nothing may load) for everything else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        viewer = str(scope.get("path", "")).startswith(VIEWER_PATHS)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": secured(message.get("headers", ()), viewer)}
            await send(message)

        await self.app(scope, receive, sending)


def secured(
    headers: Iterable[tuple[bytes, bytes]], viewer: bool = False
) -> list[tuple[bytes, bytes]]:
    """A reply's headers with the security headers added (those the route set are kept): the
    CSP by what the reply is (`viewer`: the OpenAPI viewers' pages)."""
    out = list(headers)
    names: set[bytes] = set()
    html = False
    for name, value in out:  # one pass: this runs for every reply
        name = name.lower()
        names.add(name)
        if name == b"content-type":
            html = html or value.startswith(b"text/html")
    csp = _VIEWER_CSP if viewer else _PAGE_CSP if html else _API_CSP
    if names.isdisjoint(_SECURITY_NAMES):  # the usual case: none set by the route
        out += SECURITY_HEADERS
        out.append(csp)
    else:
        out.extend(h for h in (*SECURITY_HEADERS, csp) if h[0] not in names)
    return out
