"""The events endpoint answered by `app.HotRoutes`, past FastAPI's router: every reply still
goes through the app's own layers (request id, security and CORS headers, limits), and each
error class is answered as the router's exception handling answers it."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from fastapi.testclient import TestClient

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
