"""The events endpoint answered by `app.HotRoutes`, in front of FastAPI's and the app's
middleware: every reply still carries what the app's own layers give (request id, security and
CORS headers, limits), each error class is answered as the router's exception handling answers
it, and any request is answered exactly as the whole middleware stack answers it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netra_analytics.hardening import MAX_HEADER_VALUE
from netra_analytics.ingest import routes
from tests.factories import body, event

URL = "/api/analytics/events"
ORIGIN = "https://app.example.com"


def _layers_ran(reply: object) -> None:
    headers = reply.headers  # type: ignore[attr-defined]
    assert headers["x-request-id"]  # RequestObserver
    assert headers["x-content-type-options"] == "nosniff"  # SecurityHeaders
    assert headers["access-control-allow-origin"] in {"*", ORIGIN}  # BrowserCORS


def test_accepted_events_and_each_error_class(make_client: Callable[..., TestClient]) -> None:
    client = make_client(ingest_auth=True)
    payload = orjson.dumps(body([event("feature_usage")], user_id="hot-user"))
    # HTTPException (auth.refuse): FastAPI's {"detail"} with its challenge header.
    refused = client.post(URL, content=payload, headers={"origin": ORIGIN, "authorization": ""})
    assert refused.status_code == 401
    assert set(refused.json()) == {"detail"}
    assert refused.headers["www-authenticate"].startswith("Bearer")
    _layers_ran(refused)
    # NetraError: the app's {"error", "message"}.
    key = {"authorization": client.headers["authorization"], "origin": ORIGIN}
    media = client.post(URL, content=payload, headers={**key, "content-type": "text/csv"})
    assert media.status_code == 415 and media.json()["error"] == "UnsupportedMedia"
    _layers_ran(media)
    # A body over the limit is answered before the endpoint parses it.
    big = client.post(
        URL, content=b"x" * (2 << 20), headers={**key, "content-type": "application/json"}
    )
    assert big.status_code == 413
    _layers_ran(big)
    accepted = client.post(
        URL, content=payload, headers={**key, "content-type": "application/json"}
    )
    assert accepted.status_code == 202 and accepted.json()["accepted"] == 1
    _layers_ran(accepted)


def test_other_methods_take_the_router(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    assert client.get(URL).status_code == 405
    preflight = client.options(
        URL, headers={"origin": ORIGIN, "access-control-request-method": "POST",
                      "access-control-request-headers": "content-type"},
    )  # fmt: skip
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]


def test_unexpected_exception_and_header_bounds(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client()
    payload = orjson.dumps(body([event("feature_usage")], user_id="hot-bounds"))
    json = {"origin": ORIGIN, "content-type": "application/json"}
    too_long = client.post(
        URL, content=payload, headers={**json, "x-big": "a" * (MAX_HEADER_VALUE + 1)}
    )
    assert too_long.status_code == 431 and too_long.json()["error"] == "HeaderTooLarge"
    _layers_ran(too_long)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(routes, "process", broken)
    crashed = client.post(URL, content=payload, headers=json)
    assert crashed.status_code == 500 and crashed.json()["error"] == "InternalError"
    assert "a bug" not in crashed.text
    _layers_ran(crashed)


# Header values that vary between two answers to one request: the clock's and new ids.
_VARYING = {"date", "x-ratelimit-reset"}

_requests = st.fixed_dictionaries(
    {
        "origin": st.sampled_from([None, ORIGIN, "https://other.example", "null", ""]),
        "content_type": st.sampled_from(
            [
                None,
                "application/json",
                "text/plain;charset=UTF-8",
                "text/csv",
                "application/json; charset=latin-1",
            ]
        ),
        "payload": st.sampled_from(
            ["valid", "two", "invalid_event", "malformed", "no_context", "empty"]
        ),
        "request_id": st.sampled_from([None, "trace-1.2:3", "bad id with spaces", "x" * 65]),
        "extra": st.sampled_from(
            [{}, {"dnt": "1"}, {"x-big": "a" * (MAX_HEADER_VALUE + 1)}, {"sec-gpc": "1"}]
        ),
    }
)


def _payload(kind: str, user: str) -> bytes:
    one = body([event("feature_usage")], user_id=user)
    if kind == "valid":
        return orjson.dumps(one)
    if kind == "two":
        return orjson.dumps(
            body([event("feature_usage"), event("performance_metric")], user_id=user)
        )
    if kind == "invalid_event":
        return orjson.dumps(body([{"event_type": "feature_usage", "properties": {}}], user_id=user))
    if kind == "no_context":
        return orjson.dumps({"events": one["events"]})
    if kind == "empty":
        return b""
    return b'{"events": [' + user.encode()


@pytest.fixture(params=[("*",), (ORIGIN,)], ids=["any-origin", "one-origin"])
def hot_and_stacked(
    request: pytest.FixtureRequest, make_client: Callable[..., TestClient]
) -> tuple[TestClient, TestClient]:
    """Two services with the same settings; the second without its hot routes (its events
    route then takes FastAPI's router and every middleware)."""
    hot, stacked = (make_client(cors_origins=request.param) for _ in range(2))
    stacked.app.hot_routes = None  # type: ignore[attr-defined]
    return hot, stacked


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sent=_requests)
def test_answered_as_the_middleware_stack_answers(
    hot_and_stacked: tuple[TestClient, TestClient], sent: dict[str, Any]
) -> None:
    """The same request gets the same status, body and headers from both services."""
    user = f"hot-{uuid.uuid4().hex[:12]}"  # a fresh user: the same rate-limit answer from both
    headers = {k: v for k, v in {
        "origin": sent["origin"], "content-type": sent["content_type"],
        "x-request-id": sent["request_id"], **sent["extra"],
    }.items() if v is not None}  # fmt: skip
    payload = _payload(sent["payload"], user)
    answers = [c.post(URL, content=payload, headers=headers) for c in hot_and_stacked]
    assert answers[0].status_code == answers[1].status_code
    assert answers[0].content == answers[1].content
    seen = [
        sorted(
            (k, v) for k, v in a.headers.multi_items() if k not in _VARYING and k != "x-request-id"
        )
        for a in answers
    ]
    assert seen[0] == seen[1]
    ids = [a.headers["x-request-id"] for a in answers]
    if sent["request_id"] == "trace-1.2:3":
        assert ids == ["trace-1.2:3", "trace-1.2:3"]
    else:
        assert all(i and i != sent["request_id"] for i in ids)
