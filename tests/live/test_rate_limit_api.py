"""The per-user limit and the engagement report through the HTTP API, on both backends."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.factories import body, event

URL = "/api/analytics/events"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["in-process", "redis"])
def live_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "in-process":
        return {}
    request.getfixturevalue("redis_db")
    return {"redis_url": request.getfixturevalue("redis_server").url}


def _send(client: TestClient, n: int, user: str = "heavy") -> Any:
    payload = body([event("feature_usage") for _ in range(n)], user_id=user)
    return client.post(
        URL, content=orjson.dumps(payload), headers={"content-type": "application/json"}
    )


def test_a_batch_crossing_the_limit_is_cut_at_the_limit(
    make_client: Callable[..., TestClient], live_settings: dict[str, Any]
) -> None:
    clock = Clock()
    client = make_client(clock=clock, **live_settings)
    assert _send(client, 400).json()["accepted"] == 400
    assert _send(client, 400).json()["accepted"] == 400
    reply = _send(client, 400)
    assert reply.status_code == 202
    data = reply.json()
    assert data["accepted"] == 200
    assert [r["index"] for r in data["rejected"]] == list(range(200, 400))
    assert {r["reason"] for r in data["rejected"]} == {"rate_limited"}
    assert reply.headers["x-ratelimit-limit"] == "1000"
    assert reply.headers["x-ratelimit-remaining"] == "0"
    assert reply.headers["x-ratelimit-reset"] == "60"


def test_many_batches_then_429_then_the_window_slides(
    make_client: Callable[..., TestClient], live_settings: dict[str, Any]
) -> None:
    clock = Clock()
    client = make_client(clock=clock, **live_settings)
    accepted = 0
    for _ in range(120):
        accepted += _send(client, 10).json()["accepted"]
        clock.now += 0.1
    assert accepted == 1000
    refused = _send(client, 10)
    assert refused.status_code == 429
    assert refused.json()["accepted"] == 0
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["retry-after"] == refused.headers["x-ratelimit-reset"]
    other = _send(client, 10, user="someone-else")
    assert other.status_code == 202 and other.headers["x-ratelimit-remaining"] == "990"
    clock.now += 61  # a minute later every admission has left the window
    again = _send(client, 10)
    assert again.status_code == 202 and again.json()["accepted"] == 10
    assert again.headers["x-ratelimit-remaining"] == "990"


def test_invalid_events_do_not_count(
    make_client: Callable[..., TestClient], live_settings: dict[str, Any]
) -> None:
    client = make_client(max_events_per_user_per_minute=5, **live_settings)
    payload = body([{"event_type": "nope", "properties": {}}] * 10, user_id="u")
    reply = client.post(
        URL, content=orjson.dumps(payload), headers={"content-type": "application/json"}
    )
    assert reply.status_code == 202
    assert reply.headers["x-ratelimit-remaining"] == "5"


def test_an_accepted_event_is_visible_in_engagement_within_a_second(
    make_client: Callable[..., TestClient], live_settings: dict[str, Any]
) -> None:
    client = make_client(**live_settings)
    chat = event("chat_interaction", response_time_ms=1200.0)
    failed = event("performance_metric", success=False)
    sent = time.monotonic()
    payload = body([chat, failed, event("feature_usage")], user_id="viewer")
    assert (
        client.post(
            URL, content=orjson.dumps(payload), headers={"content-type": "application/json"}
        ).status_code
        == 202
    )
    while True:
        report = client.get("/api/analytics/reports/engagement").json()
        if report["events_last_5_minutes"] == 3:
            break
        assert time.monotonic() - sent < 1.0, report
        time.sleep(0.01)
    assert report["active_users"] == 1 and report["active_chat_sessions"] == 1
    assert report["avg_ai_response_time_ms"] == pytest.approx(1200.0)
    assert report["error_rate_percent"] == pytest.approx(100 / 3)
    assert report["events_per_second"] == pytest.approx(3 / 60)
    assert report["source"] == ("redis" if live_settings else "in-process")


def test_hot_prompts_endpoint_shows_sanitised_text(
    make_client: Callable[..., TestClient], live_settings: dict[str, Any]
) -> None:
    client = make_client(**live_settings)
    prompts = [
        event("chat_interaction", prompt_text="How do I reach ops@corp.example about cost?")
        for _ in range(3)
    ]
    prompts.append(
        event("chat_interaction", prompt_text="HOW do I reach bob@else.example about cost")
    )
    client.post(
        URL, content=orjson.dumps(body(prompts)), headers={"content-type": "application/json"}
    )
    for _ in range(100):
        hot = client.get("/api/analytics/reports/hot-prompts?limit=5").json()
        if hot:
            break
        time.sleep(0.01)
    assert len(hot) == 1  # case, punctuation and the address do not make a new question
    assert hot[0]["count"] == 4
    assert "@" not in hot[0]["text"] and "[EMAIL]" in hot[0]["text"]
    assert client.get("/api/analytics/reports/hot-prompts?limit=0").status_code == 422


def test_session_endpoint(
    make_client: Callable[..., TestClient], live_settings: dict[str, Any]
) -> None:
    client = make_client(**live_settings)
    payload = body(
        [event("chat_interaction", thread_id="t-7"), event("feature_usage")], user_id="reader"
    )
    client.post(URL, content=orjson.dumps(payload), headers={"content-type": "application/json"})
    for _ in range(100):
        found = client.get("/api/analytics/reports/sessions/session-reader")
        if found.status_code == 200:
            break
        time.sleep(0.01)
    session = found.json()
    assert (session["user_id"], session["event_count"], session["current_thread"]) == (
        "reader",
        "2",
        "t-7",
    )
    assert session["current_page"] == "/chat" and session["pages_visited"] == "1"
    assert client.get("/api/analytics/reports/sessions/nobody").status_code == 404


def test_health_answers_at_once_while_hot_prompts_are_ranked(
    make_client: Callable[..., TestClient],
) -> None:
    """Issue 13: with ~80,000 distinct prompts in the window each hot-prompts call took
    0.2-0.5 s on the event loop, and /health as long. Now what is ranked is bounded and ranked
    in a thread: /health answers at once while hot-prompts calls run back to back."""
    from netra_analytics.live.base import Activity

    client = make_client()
    live = client.app.state.service.live.local  # type: ignore[attr-defined]
    now_ms = int(time.time() * 1000)

    async def fill() -> None:
        for start in range(0, 80_000, 500):
            prompts = [(f"h{i:06d}", f"question {i}") for i in range(start, start + 500)]
            await live.record(
                Activity(now_ms, "u", "s", "/", None, {"events": 1.0}, Counter(), prompts)
            )

    client.portal.call(fill)  # type: ignore[union-attr]
    stop = threading.Event()
    hot_calls: list[float] = []

    def hammer() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            assert client.get("/api/analytics/reports/hot-prompts?limit=100").status_code == 200
            hot_calls.append(time.perf_counter() - started)

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in threads:
        thread.start()
    health: list[float] = []
    try:
        deadline = time.perf_counter() + 20
        # At least 40 probes, and for as long as the rankings take to run five times (a loaded
        # machine runs them slower; the probes must overlap them).
        while (len(health) < 40 or len(hot_calls) < 5) and time.perf_counter() < deadline:
            started = time.perf_counter()
            assert client.get("/health").status_code == 200
            health.append(time.perf_counter() - started)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(hot_calls) >= 5
    health.sort()
    # Before: half of the /health calls waited behind a ranking (median ~50 ms on the 2-core
    # build machine); now the median is the route's own few milliseconds.
    assert health[len(health) // 2] < 0.02 and health[-1] < 0.25, health
