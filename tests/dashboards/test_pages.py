"""The pages and static files, and every panel over an empty store (an empty state, never an
error)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from netra_analytics.dashboards.catalog import DASHBOARDS, PANELS
from netra_analytics.dashboards.routes import static_files


def test_every_dashboard_has_a_page(client: TestClient) -> None:
    for path in ["/", *(f"/dashboards/{board.name}" for board in DASHBOARDS)]:
        reply = client.get(path)
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/dashboards/static/app.js">' in reply.text
    assert 'data-dashboard="ai-spend"' in client.get("/dashboards/ai-spend").text
    assert client.get("/dashboards/nope").status_code == 404


def test_only_the_listed_static_files_are_served(client: TestClient) -> None:
    for name in ("vendor/echarts.min.js", "vendor/echarts-wordcloud.min.js", "app.js"):
        reply = client.get(f"/dashboards/static/{name}")
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/javascript")
    for licence in ("vendor/echarts.LICENSE", "vendor/echarts-wordcloud.LICENSE"):
        assert "Permission" in client.get(f"/dashboards/static/{licence}").text or "Apache" in (
            client.get(f"/dashboards/static/{licence}").text
        )
    for name in ("../routes.py", "..%2Froutes.py", "nope.js", "../sql/active_users.sql"):
        assert client.get(f"/dashboards/static/{name}").status_code == 404


def test_no_inline_script_style_or_handler() -> None:
    """What a strict Content-Security-Policy refuses: inline scripts, style attributes and
    event-handler attributes in the markup, and any other host."""
    for name, (content, _) in static_files().items():
        if name.startswith("vendor/") or not name.endswith((".html", ".js")):
            continue
        text = content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), name
        assert not re.search(r"\sstyle=|\son[a-z]+=", text), name
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), name
        assert "innerHTML" not in text, name  # text goes in as text: no markup injection


@pytest.mark.parametrize("panel", PANELS, ids=[p.id for p in PANELS])
def test_an_empty_store_answers_empty_panels(client: TestClient, panel: object) -> None:
    reply = client.get(f"/api/analytics/panels/{panel.id}")  # type: ignore[attr-defined]
    assert reply.status_code == 200, reply.text
    rows = reply.json()["rows"]
    if panel.id == "health_score":  # type: ignore[attr-defined]
        assert rows == [[80.0, 80.0]]  # nothing stored: no freshness, the rest perfect
    else:
        assert rows == [] or (len(rows) == 1 and rows[0][0] in (0, None))


def test_the_catalog_says_when_nothing_is_stored(client: TestClient) -> None:
    catalog = client.get("/api/analytics/dashboards").json()
    assert catalog["events_stored"] is False
    assert catalog["environments"] == [] and catalog["app_versions"] == []
