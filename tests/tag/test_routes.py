"""How the service serves the tag and the demo page, and takes the tag's heartbeat."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from netra_analytics.config import parse_clickhouse_url
from netra_analytics.tag.routes import asset, tag_version


def test_the_tag_is_served_minified_at_a_versioned_immutable_path(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    version = tag_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    pinned = client.get(f"/tag/{version}/netra-analytics.js")
    assert pinned.status_code == 200
    assert pinned.headers["content-type"].startswith("text/javascript")
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert pinned.text == asset("netra-analytics.min.js")
    assert len(pinned.text) < len(asset("netra-analytics.js")) / 1.5
    latest = client.get("/tag/netra-analytics.js")
    assert latest.text == pinned.text and latest.headers["cache-control"] == "public, max-age=300"
    assert "Netra Analytics browser tag" in client.get("/tag/netra-analytics.src.js").text
    other = client.get("/tag/0.0.1/netra-analytics.js")
    assert other.status_code == 404 and version in other.json()["detail"]


def test_heartbeats_show_in_readiness_per_container(
    make_client: Callable[..., TestClient],
) -> None:
    now = [1_795_000_000.0]
    client = make_client(clock=lambda: now[0])
    assert client.get("/health/ready").json()["checks"]["gtm_tags"] == {}
    heartbeat = "/api/analytics/tag/heartbeat"
    assert (
        client.post(heartbeat, params={"container": "GTM-AB12CD", "version": "1.0.0"}).status_code
        == 204
    )
    now[0] += 90
    assert (
        client.post(heartbeat, params={"container": "none", "version": "1.0.0"}).status_code == 204
    )
    tags = client.get("/health/ready").json()["checks"]["gtm_tags"]
    assert tags["GTM-AB12CD"] == {"last_fired": "2026-11-18T11:06:40.000+00:00", "seconds_ago": 90.0, "tag_version": "1.0.0"}  # fmt: skip
    assert tags["none"]["seconds_ago"] == 0.0
    for bad in ({"container": "<script>", "version": "1.0.0"}, {"container": "GTM-AB12CD", "version": "x"}, {}):  # fmt: skip
        reply = client.post(heartbeat, params=bad)
        assert reply.status_code == 422, bad
    assert set(client.get("/health/ready").json()["checks"]["gtm_tags"]) == {"GTM-AB12CD", "none"}


def test_the_demo_page_loads_the_pinned_tag_in_embedded_mode_only(
    make_client: Callable[..., TestClient],
) -> None:
    page = make_client().get("/demo")
    assert page.status_code == 200
    assert f'<script src="/tag/{tag_version()}/netra-analytics.js"></script>' in page.text
    server_mode = make_client(
        clickhouse=parse_clickhouse_url("clickhouse://ch.internal:8123/analytics")
    )
    assert server_mode.get("/demo").status_code == 404
