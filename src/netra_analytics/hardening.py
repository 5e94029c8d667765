"""Browser-facing hardening, as ASGI middleware (wired in `app.py`): header size bounds, CORS
on ingestion and the tag only, and security headers on every reply."""

from __future__ import annotations

import orjson
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_HEADER_BYTES = 16384  # all of a request's header names and values
MAX_HEADER_VALUE = 8192  # one header's value (a JWT is well under 2 KB)


class BoundedHeaders:
    """Refuses requests whose headers are over the limits with a JSON 431 naming the limit,
    before any route reads them (the HTTP server's own limit is far higher)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope.get("headers", [])
            total = sum(len(name) + len(value) for name, value in headers)
            longest = max((len(value) for _, value in headers), default=0)
            problem = None
            if total > MAX_HEADER_BYTES:
                problem = f"request headers of {total} bytes; the limit is {MAX_HEADER_BYTES}"
            elif longest > MAX_HEADER_VALUE:
                problem = f"a header value of {longest} bytes; the limit is {MAX_HEADER_VALUE}"
            if problem is not None:
                error = {"error": "HeaderTooLarge", "message": problem}
                await Response(orjson.dumps(error), 431, media_type="application/json")(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


# Where browsers of other sites may call (CORS): ingestion, the tag and its heartbeat. Reports,
# panels, dashboards and admin answer no CORS headers, so no other site's page can read them.
CORS_PATHS = ("/api/analytics/events", "/api/analytics/tag/", "/tag/")


class BrowserCORS:
    """CORSMiddleware on `CORS_PATHS` only, from `ANALYTICS_CORS_ORIGINS` (default `*`)."""

    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
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
                headers = list(message.get("headers", ()))
                names = set()
                html = False
                for name, value in headers:  # one pass: this runs for every reply
                    name = name.lower()
                    names.add(name)
                    if name == b"content-type":
                        html = html or value.startswith(b"text/html")
                csp = _VIEWER_CSP if viewer else _PAGE_CSP if html else _API_CSP
                if names.isdisjoint(_SECURITY_NAMES):  # the usual case: none set by the route
                    headers += SECURITY_HEADERS
                    headers.append(csp)
                else:
                    headers.extend(h for h in (*SECURITY_HEADERS, csp) if h[0] not in names)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)
