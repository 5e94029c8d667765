"""The dashboard's sign-in: `GET /login` (the form), `POST /login` (a key or a token of the
auth service, in the form body, never in a URL), `POST /logout`. See `sessions` for the cookie.
And `GET /api/analytics/keys` (admin): the keys, never their text or hash.
"""

from __future__ import annotations

import asyncio
import html
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from netra_analytics.auth.access import Authenticator
from netra_analytics.auth.keys import list_keys
from netra_analytics.auth.sessions import COOKIE

router = APIRouter(tags=["sign-in"])

MAX_FORM_BYTES = 8192  # a key is 46 characters, a JWT a few hundred
HOME = "/"

SIGN_IN_FORM = """<form method="post" action="/login">
<p class="error">{error}</p>
<label for="credential">API key or auth-service token</label>
<input type="password" id="credential" name="credential" autocomplete="current-password" required>
<input type="hidden" name="next" value="{next}">
<button type="submit" id="sign-in">Sign in</button>
<p class="hint">Create a key with
<code>netra-analytics keys create --role analyst --name you</code>.</p>
</form>"""
SIGNED_IN = """<p>Signed in as <strong id="who">{name}</strong> ({roles}).</p>
<p><a href="/">Open the dashboard</a></p>
<form method="post" action="/logout"><button type="submit" id="sign-out">Sign out</button></form>"""


@cache
def _page() -> str:
    return (resources.files("netra_analytics.auth") / "login.html").read_text()


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _page().replace("{{BODY}}", body), status, headers={"cache-control": "no-store"}
    )


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (no `//host`, no scheme), so the
    login page cannot be used to send people elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return HOME
    return target


@router.get("/login", include_in_schema=False)
async def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    auth: Authenticator = request.app.state.auth
    principal = await auth.from_cookie(request)
    if principal is not None:
        roles = ", ".join(sorted(principal.roles)) or "no role"
        return _html(SIGNED_IN.format(name=html.escape(principal.name), roles=html.escape(roles)))
    return _html(SIGN_IN_FORM.format(error="", next=html.escape(safe_next(next))))


@router.post("/login", include_in_schema=False)
async def login(request: Request) -> Response:
    auth: Authenticator = request.app.state.auth
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"the sign-in form is over {MAX_FORM_BYTES} bytes")
    try:
        form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
    except ValueError:
        raise HTTPException(400, "the sign-in form has unexpected fields") from None
    credential = (form.get("credential") or [""])[0].strip()
    target = safe_next((form.get("next") or [""])[0])
    try:
        _, session = await auth.session_for(credential) if credential else (None, None)
    except HTTPException as exc:
        message = html.escape(f"Not signed in: {exc.detail}")
        return _html(SIGN_IN_FORM.format(error=message, next=html.escape(target)), 401)
    if session is None:
        form_html = SIGN_IN_FORM.format(error="Enter a key or a token.", next=html.escape(target))
        return _html(form_html, 400)
    response = RedirectResponse(target, 303)
    response.set_cookie(
        COOKIE,
        auth.sessions.sign(session),
        max_age=auth.sessions.max_age,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", 303)
    response.delete_cookie(
        COOKIE, path="/", secure=request.url.scheme == "https", httponly=True, samesite="strict"
    )
    return response


@router.get(
    "/api/analytics/keys",
    tags=["admin"],
    summary="The API keys (admin): name, role, created_at, revoked_at (ISO 8601, UTC or null)",
    description="Never a key or its hash. Create and revoke keys with `netra-analytics keys`.",
)
async def keys(request: Request) -> list[dict[str, Any]]:
    service = request.app.state.service
    if service.store is None or not service.schema_ready.is_set():
        raise HTTPException(503, "the store is not ready yet")
    return [
        {
            "name": key.name,
            "role": key.role,
            "created_at": key.created_at.isoformat(),
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        }
        for key in await asyncio.to_thread(list_keys, service.store)
    ]
