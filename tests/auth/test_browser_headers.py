"""CORS only where browsers of other sites belong, from the allow-list; security headers on
every reply; a CSP without inline script on the HTML pages, which carry none."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from netra_analytics.hardening import API_CSP, PAGE_CSP
from tests.factories import BROWSER_USER_AGENT, body, event

APP = "https://app.example.com"
OTHER = "https://evil.example"


def test_cors_comes_from_the_allow_list_on_ingestion_only(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(cors_origins=(APP,))
    sent = body([event("feature_usage")])
    headers = {"user-agent": BROWSER_USER_AGENT}
    allowed = client.post("/api/analytics/events", json=sent, headers=headers | {"origin": APP})
    assert allowed.status_code == 202 and allowed.headers["access-control-allow-origin"] == APP
    refused = client.post("/api/analytics/events", json=sent, headers=headers | {"origin": OTHER})
    assert "access-control-allow-origin" not in refused.headers
    preflight = client.options(
        "/api/analytics/events", headers={"origin": OTHER, "access-control-request-method": "POST"}
    )
    assert preflight.status_code == 400
    tag = client.get("/tag/netra-analytics.js", headers={"origin": APP})
    assert tag.headers["access-control-allow-origin"] == APP
    for path in ["/api/analytics/reports/engagement", "/api/analytics/keys", "/login"]:
        reply = client.get(path, headers={"origin": APP})
        assert "access-control-allow-origin" not in reply.headers, path
        preflight = client.options(
            path, headers={"origin": APP, "access-control-request-method": "GET"}
        )
        assert "access-control-allow-origin" not in preflight.headers, path


def test_every_reply_carries_the_security_headers(client: TestClient) -> None:
    replies = {
        "/api/analytics/reports/engagement": API_CSP,
        "/nowhere": API_CSP,
        "/health": API_CSP,
        "/tag/netra-analytics.js": API_CSP,
        "/demo": PAGE_CSP,
        "/login": PAGE_CSP,
        "/docs": "frame-ancestors 'none'",
    }
    for path, csp in replies.items():
        reply = client.get(path)
        assert reply.headers["x-content-type-options"] == "nosniff", path
        assert reply.headers["referrer-policy"] == "strict-origin-when-cross-origin", path
        assert reply.headers["x-frame-options"] == "DENY", path
        assert reply.headers["content-security-policy"] == csp, path
    assert (
        "script-src 'self';" in PAGE_CSP and "unsafe-inline" not in PAGE_CSP.split("style-src")[0]
    )


def test_the_pages_have_no_inline_script(client: TestClient) -> None:
    for path in ["/demo", "/login"]:
        page = client.get(path).text
        for tag in re.findall(r"<script[^>]*>", page):
            assert "src=" in tag, (path, tag)  # a file, never inline
        assert not re.search(r"<script[^>]*>\s*[^<\s]", page), path  # no body
        assert not re.search(r"\son[a-z]+=", page), path  # no inline event handlers
        for src in re.findall(r'<script src="([^"]+)"', page):
            assert client.get(src).status_code == 200, src
