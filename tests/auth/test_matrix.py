"""The auth matrix that cannot rot: every route of the app, as the app lists them (`app.routes`,
through included routers and mounts), is either in the explicit public list or refuses an
anonymous request with 401. A new endpoint is therefore protected the day it is added, or this
test names it. The public list here is the test's own, compared with the app's, so that a
route made public by accident also fails here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from netra_analytics.app import create_app
from netra_analytics.auth import PUBLIC
from netra_analytics.config import Settings

# What issue 15 lets anyone reach, and why each may be public.
EXPECTED_PUBLIC = {
    "/api/analytics/events",  # ingestion, open to browsers (ANALYTICS_INGEST_AUTH to close)
    "/api/analytics/tag/heartbeat",  # the tag's heartbeat: ingestion too
    "/tag/{version}/netra-analytics.js",  # the tag
    "/tag/{name}",
    "/health",  # probes
    "/health/ready",
    "/metrics",  # counters only; see auth/access.py
    "/demo",  # the demo page (embedded mode) and its scripts
    "/demo/{name}",
    "/openapi.json",  # the API's description
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/api/analytics/schema",  # the event taxonomy, for integrators
    "/login",  # signing in and out
    "/logout",
}


def _routes() -> list[tuple[str, str]]:
    app = create_app(Settings(data_dir=Path("unused"), ip_hash_secret="test-secret-0123456789"))
    found = []
    for context in iter_route_contexts(app.routes):
        for method in sorted((context.methods or {"GET"}) - {"HEAD"}):
            found.append((method, str(context.path)))
    return found


ROUTES = _routes()
PROTECTED = [(m, p) for m, p in ROUTES if p not in EXPECTED_PUBLIC]


def test_the_public_list_is_what_the_issue_allows() -> None:
    assert set(PUBLIC) == EXPECTED_PUBLIC
    assert len(PROTECTED) >= 10  # the walk found the reports, not an empty app


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
def test_every_other_route_refuses_an_anonymous_request(
    anonymous: Callable[..., TestClient], method: str, path: str
) -> None:
    client = anonymous()
    url = path.replace("{", "").replace("}", "")  # any value: refused before it is read
    reply = client.request(method, url, headers={"accept": "application/json"})
    assert reply.status_code == 401, (method, path, reply.status_code, reply.text[:200])
    assert reply.headers["www-authenticate"].startswith("Bearer")
    assert "access-control-allow-origin" not in reply.headers


PUBLIC_ROUTES = [(m, p) for m, p in ROUTES if p in EXPECTED_PUBLIC]
FILLED = {"version": "0.0.0", "name": "netra-analytics.js"}


@pytest.mark.parametrize(
    ("method", "path"), PUBLIC_ROUTES, ids=[f"{m} {p}" for m, p in PUBLIC_ROUTES]
)
def test_every_public_route_answers_an_anonymous_request(
    anonymous: Callable[..., TestClient], method: str, path: str
) -> None:
    client = anonymous()
    url = path.format(**FILLED)
    reply = client.request(
        method, url, headers={"accept": "application/json"}, follow_redirects=False
    )
    assert reply.status_code not in (401, 403), (method, path, reply.text[:200])
    assert len(PUBLIC_ROUTES) >= len(EXPECTED_PUBLIC)


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
def test_every_other_route_is_documented_as_needing_a_credential(method: str, path: str) -> None:
    app = create_app(Settings(data_dir=Path("unused"), ip_hash_secret="test-secret-0123456789"))
    operation = app.openapi()["paths"].get(path, {}).get(method.lower())
    if operation is not None:  # routes outside the document (pages) have nothing to say
        assert operation["security"] == [{"bearer": []}]


def test_a_browser_asking_for_a_page_is_sent_to_the_login_page(
    anonymous: Callable[..., TestClient],
) -> None:
    client = anonymous()
    reply = client.get(
        "/api/analytics/reports/engagement?x=1",
        headers={"accept": "text/html"},
        follow_redirects=False,
    )
    assert reply.status_code == 303
    assert reply.headers["location"] == "/login?next=/api/analytics/reports/engagement%3Fx%3D1"
