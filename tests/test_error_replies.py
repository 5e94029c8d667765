"""Error replies, over every route: never a 5xx for a bad request, never SQL or a traceback in a
body, always JSON, and always the CORS headers the route has (a browser otherwise sees only a
network error). Store errors answer a fixed message and are logged once, on one short line; any
other exception a route lets out is a JSON 500 `InternalError`, CORS headers included.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import Response

from netra_analytics import app as app_module
from netra_analytics.app import LOGGED_DETAIL_CHARS, create_app
from netra_analytics.config import Settings
from netra_analytics.errors import StoreError, StoreUnavailable, public_error
from netra_analytics.hardening import CORS_PATHS
from netra_analytics.store.base import Params
from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import body, event

ORIGIN = {"origin": "https://app.example.com"}
LEAKS = ("SELECT", "FROM analytics.", "Traceback", "DB::Exception", 'File "')
HOSTILE = [
    "", " ", "' OR 1=1 --", "'; DROP TABLE analytics.frontend_events; --", "right/UTC",
    "posix/Asia/Tokyo", "../../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%00", "\x00", "-1",
    "0", "1e309", "NaN", "-Infinity", "99999999999999999999999999", "9999-12-31", "0001-01-01",
    "2026-13-45", "1970-01-01T00:00:00+14:00", "😀" * 30, "a" * 5000, "{start:Date}", "\\N",
    "null", "[]", "{}", "true", "<script>alert(1)</script>",
]  # fmt: skip
BODIES = [b"", b"' OR 1=1 --", b"{}", b"[]", b"null", b'{"events": "x"}',
          b'{"events": [], "context": {}}', b"\xff\xfe", b"a" * 5000]  # fmt: skip
# A usable value of every query parameter of every route (a test checks none is missing), so
# that each parameter can be made hostile alone while the others let the request through.
TODAY = datetime.now(UTC).date()
USABLE = {
    "start_date": str(TODAY - timedelta(days=9)),
    "end_date": str(TODAY),
    "granularity": "day",
    "user_id": "u1",
    "tz": "Europe/Paris",
    "limit": "10",
    "category": "cost_optimisation",
    "min_frequency": "2",
    "time_range": "24h",
    "funnel": "onboarding",
    "paths": "5",
    "container": "GTM-ABCD12",
    "version": "1.0.0",
    "since": str(TODAY - timedelta(days=9)) + "T00:00:00Z",
    "action": "user_deleted",
    "next": "/",
    "from": (TODAY - timedelta(days=2)).isoformat(),
    "to": TODAY.isoformat(),
    "environment": "production",
    "app_version": "1.4.2",
    "page_path": "/chat",
    "model": "gpt-4o",
    "format": "csv",
}
LOGIN_PAGES = {"/login", "/logout"}


def _settings(directory: Path) -> Settings:
    return Settings(data_dir=directory, ip_hash_secret="test-secret-0123456789",
                    funnel_walk_days=0, report_cache_seconds=0)  # fmt: skip


@pytest.fixture(scope="module")
def walker(
    chdb_store: ChdbStore, tmp_path_factory: pytest.TempPathFactory, admin_headers: dict[str, str]
) -> Iterator[TestClient]:
    app = create_app(_settings(tmp_path_factory.mktemp("walk") / "data"), store=chdb_store)
    with TestClient(app, headers=admin_headers) as client:
        yield client


def _routes() -> list[tuple[str, str, APIRoute | None]]:
    """(method, path, the APIRoute if FastAPI's) of every route of the app, HEAD aside."""
    app = create_app(_settings(Path("unused")))
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        for method in sorted((context.methods or {"GET"}) - {"HEAD"}):
            found.append(
                (method, str(context.path), route if isinstance(route, APIRoute) else None)
            )
    return found


ROUTES = _routes()


def _fill(path: str, value: str) -> str:
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + quote(value, safe="") + path[end + 1 :]
    return path


def _check(reply: Any, what: str) -> None:
    assert reply.status_code < 500, (what, reply.status_code, reply.text[:500])
    for leak in LEAKS:
        assert leak not in reply.text, (what, reply.text[:500])
    # CORS on ingestion and the tag only: no other site's page may read reports or admin.
    cors = reply.headers.get("access-control-allow-origin")
    path = reply.request.url.path
    assert cors == ("*" if path.startswith(CORS_PATHS) else None), (what, reply.headers)
    assert reply.headers["x-content-type-options"] == "nosniff", (what, reply.headers)
    if reply.status_code >= 400 and path not in LOGIN_PAGES:  # those answer with their form
        assert reply.headers["content-type"].startswith("application/json"), (what, reply.text)


def _call(client: TestClient, method: str, path: str, params: dict[str, str], body: bytes) -> Any:
    headers = ORIGIN | ({"content-type": "application/json"} if method == "POST" else {})
    return client.request(method, path, params=params, content=body or None, headers=headers)


def test_every_query_parameter_has_a_usable_value() -> None:
    names = {p.alias for _, _, route in ROUTES if route for p in route.dependant.query_params}
    assert names <= set(USABLE), names - set(USABLE)


@pytest.mark.parametrize(
    ("method", "path", "route"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
def test_every_route_with_hostile_parameters(
    walker: TestClient, method: str, path: str, route: APIRoute | None
) -> None:
    """Each hostile value in every path and query parameter at once (and in one the route does
    not know), then in each query parameter alone beside usable values of the others, and in
    both dates of a range."""
    names = [p.alias for p in route.dependant.query_params] if route else []
    for n, value in enumerate(HOSTILE):
        params = dict.fromkeys([*names, "unknown"], value)
        body = BODIES[n % len(BODIES)] if method == "POST" else b""
        _check(_call(walker, method, _fill(path, value), params, body), f"{value!r} everywhere")
        usable = {other: USABLE[other] for other in names}
        for name in names:
            params = usable | {name: value}
            _check(_call(walker, method, _fill(path, "x"), params, b"{}"), f"{name}={value!r}")
        if {"start_date", "end_date"} <= set(names):  # a range of one hostile day
            params = usable | {"start_date": value, "end_date": value}
            _check(_call(walker, method, path, params, b""), f"both dates {value!r}")


@pytest.mark.parametrize(
    "path",
    ["/tag/..%2F..%2Fetc%2Fpasswd", "/api/analytics/reports/%2e%2e/%2e%2e/etc/passwd",
     "/api/analytics/reports/sessions/..%2F..%2F", "/nowhere", "/api/analytics/reports/",
     "/tag/" + "a" * 3000, "/api/analytics/reports/user-activity/' OR 1=1 --"],
)  # fmt: skip
def test_unknown_and_traversing_paths_are_json_404s(walker: TestClient, path: str) -> None:
    reply = walker.get(path, headers=ORIGIN)
    assert reply.status_code == 404
    _check(reply, path)


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/api/analytics/events"),
                                              ("PUT", "/api/analytics/reports/user-activity")])  # fmt: skip
def test_a_method_a_route_does_not_have_is_a_405(
    walker: TestClient, method: str, path: str
) -> None:
    reply = walker.request(method, path, headers=ORIGIN)
    assert reply.status_code == 405
    _check(reply, f"{method} {path}")


def test_the_preflight_allows_compressed_bodies(walker: TestClient) -> None:
    reply = walker.options(
        "/api/analytics/events",
        headers=ORIGIN | {"access-control-request-method": "POST",
                          "access-control-request-headers": "content-type, content-encoding"},
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    allowed = {h.strip() for h in reply.headers["access-control-allow-headers"].lower().split(",")}
    assert {"content-type", "content-encoding"} <= allowed


# Store errors and unexpected exceptions, from a store that fails on demand.

SQL_IN_MESSAGE = (
    "Code: 36. DB::Exception: Cannot load time zone right/UTC: In scope SELECT multiIf("
    + "x = 'hour', toStartOfHour(bucket, 'right/UTC'), 1) AS period_start FROM analytics."
    + "activity_rollup WHERE resolution = 'day' " * 40
    + "\nStack trace:\n0. DB::Exception::Exception(...)"
)


class _Failing:
    """The session's chDB, until `failure` is set: then every SELECT raises it."""

    def __init__(self, store: ChdbStore) -> None:
        self._store = store
        self.failure: BaseException | None = None

    def query_rows(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        if self.failure is not None:
            raise self.failure
        return self._store.query_rows(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture
def failing(
    chdb_store: ChdbStore, tmp_path: Path, admin_headers: dict[str, str]
) -> Iterator[tuple[TestClient, _Failing]]:
    store = _Failing(chdb_store)
    app = create_app(_settings(tmp_path / "data"), store=store)

    async def boom(request: Request) -> Response:
        raise KeyError("a bug: SELECT 1 FROM analytics.frontend_events")

    app.add_route("/boom", boom, methods=["GET"])
    with TestClient(app, headers=admin_headers) as client:
        # The key table is read while the store works; it is kept when a later read fails.
        assert client.get("/api/analytics/reports/engagement").status_code == 200
        yield client, store


REPORT_CALLS = [
    "/api/analytics/reports/user-activity?start_date=2026-11-01&end_date=2026-11-02",
    "/api/analytics/reports/user-activity?start_date=2026-11-01&end_date=2026-11-02&tz=Asia/Tokyo",
    "/api/analytics/reports/feedback?start_date=2026-11-01&end_date=2026-11-02",
    "/api/analytics/reports/ai-spend?start_date=2026-11-01&end_date=2026-11-02",
    "/api/analytics/reports/journeys?start_date=2026-11-01&end_date=2026-11-02",
    "/api/analytics/reports/prompts?time_range=7d",
    "/api/analytics/reports/prompt-intelligence",
]


@pytest.mark.parametrize("url", REPORT_CALLS)
def test_a_store_error_answers_a_fixed_message_and_logs_one_short_line(
    failing: tuple[TestClient, _Failing], url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client, store = failing
    store.failure = StoreError(SQL_IN_MESSAGE)
    with caplog.at_level(logging.WARNING, logger="netra_analytics.app"):
        reply = client.get(url, headers=ORIGIN)
    assert reply.status_code == 500
    assert reply.json() == {"error": "StoreError", "message": StoreError.public_message}
    _check_error_reply(reply)
    [record] = [r for r in caplog.records if r.name == "netra_analytics.app"]
    assert record.exc_info is None and "\n" not in record.getMessage()
    detail: str = record.__dict__["error"]
    assert detail.startswith("Code: 36. DB::Exception: Cannot load time zone right/UTC")
    assert len(detail) == LOGGED_DETAIL_CHARS and "\n" not in detail


def test_the_user_activity_example_no_longer_reaches_the_store(walker: TestClient) -> None:
    """The request of issue 12 that answered 500 with ClickHouse's text and the SQL."""
    reply = walker.get("/api/analytics/reports/user-activity",
                       params={"start_date": "2026-11-01", "end_date": "2026-11-02", "tz": "right/UTC"},
                       headers=ORIGIN)  # fmt: skip
    assert reply.status_code == 422
    assert [p["loc"] for p in reply.json()["detail"]] == [["query", "tz"]]
    _check(reply, "tz=right/UTC")


def test_a_store_that_does_not_answer_is_a_503_to_retry(
    failing: tuple[TestClient, _Failing],
) -> None:
    client, store = failing
    store.failure = StoreUnavailable("ClickHouse server at http://10.0.0.9:8123: SELECT timed out")
    reply = client.get(REPORT_CALLS[2], headers=ORIGIN)
    assert reply.status_code == 503
    assert reply.json() == {"error": "StoreUnavailable", "message": StoreUnavailable.public_message}
    assert reply.headers["retry-after"] == "5"
    _check_error_reply(reply)


@pytest.mark.parametrize(
    "failure",
    [ZeroDivisionError("division by zero"), RuntimeError("Traceback (most recent call last):"),
     KeyError("SELECT x FROM analytics.frontend_events"), RecursionError(), OverflowError()],
)  # fmt: skip
@pytest.mark.parametrize("url", REPORT_CALLS)
def test_any_unexpected_exception_in_a_report_is_a_json_500_with_cors(
    failing: tuple[TestClient, _Failing],
    url: str,
    failure: Exception,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, store = failing
    store.failure = failure
    with caplog.at_level(logging.ERROR, logger="netra_analytics.app"):
        reply = client.get(url, headers=ORIGIN)
    assert reply.status_code == 500
    assert reply.json() == {"error": "InternalError", "message": app_module.INTERNAL_MESSAGE}
    _check_error_reply(reply)
    [record] = [r for r in caplog.records if r.name == "netra_analytics.app"]
    assert record.exc_info is not None and record.exc_info[1] is failure  # the bug, with its stack


def test_an_unexpected_exception_in_a_plain_route_is_a_json_500_with_cors(
    failing: tuple[TestClient, _Failing], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = failing
    reply = client.get("/boom", headers=ORIGIN)
    assert reply.status_code == 500
    assert reply.json()["error"] == "InternalError"
    _check_error_reply(reply)

    async def broken(request: Request) -> Response:
        raise UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid continuation byte")

    monkeypatch.setattr("netra_analytics.ingest.routes._ingest", broken)
    reply = client.post("/api/analytics/events", content=b"{}", headers=ORIGIN)
    assert reply.status_code == 500
    assert reply.json()["error"] == "InternalError"
    _check_error_reply(reply)


def test_a_request_without_origin_gets_the_same_json_500(
    failing: tuple[TestClient, _Failing],
) -> None:
    client, _ = failing
    reply = client.get("/boom")
    assert reply.status_code == 500
    assert reply.json() == {"error": "InternalError", "message": app_module.INTERNAL_MESSAGE}


def _check_error_reply(reply: Any) -> None:
    assert reply.headers["content-type"] == "application/json"
    cors = "*" if reply.request.url.path.startswith(CORS_PATHS) else None
    assert reply.headers.get("access-control-allow-origin") == cors
    for leak in LEAKS:
        assert leak not in reply.text


def test_health_shows_the_kind_of_a_store_error_not_its_text(
    failing: tuple[TestClient, _Failing],
) -> None:
    client, store = failing
    store.failure = StoreError(SQL_IN_MESSAGE)
    reply = client.get("/health/ready", headers=ORIGIN)
    assert reply.status_code == 503
    assert reply.json()["checks"]["clickhouse"]["error"] == StoreError.public_message
    _check_error_reply(reply)


def test_public_errors_never_carry_the_exceptions_text() -> None:
    assert public_error(StoreError(SQL_IN_MESSAGE)) == StoreError.public_message
    assert public_error(StoreUnavailable("SELECT 1")) == StoreUnavailable.public_message
    assert public_error(ValueError("SELECT secret FROM analytics.x")) == "ValueError"
    assert public_error(TimeoutError()) == "no answer in time"


def test_a_bug_a_request_triggers_is_logged_once_a_minute_not_per_request(
    failing: tuple[TestClient, _Failing], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = failing
    with caplog.at_level(logging.INFO, logger="netra_analytics.app"):
        replies = [client.get("/boom", headers=ORIGIN) for _ in range(50)]
    assert {r.status_code for r in replies} == {500}
    records = [r for r in caplog.records if r.name == "netra_analytics.app"]
    assert len(records) == 1 and records[0].exc_info is not None  # once, with its stack
    assert records[0].__dict__["suppressed"] == 0


def test_client_errors_are_logged_once_per_kind_and_minute(
    failing: tuple[TestClient, _Failing], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = failing
    with caplog.at_level(logging.INFO, logger="netra_analytics.app"):
        for _ in range(30):
            client.post(
                "/api/analytics/events",
                content=b"{not json",
                headers={"content-type": "application/json"},
            )
            client.post(
                "/api/analytics/events", content=b"{}", headers={"content-type": "image/png"}
            )
    records = [r for r in caplog.records if r.name == "netra_analytics.app"]
    assert sorted(r.__dict__["kind"] for r in records) == [
        "400 BadRequest /api/analytics/events",
        "415 UnsupportedMedia /api/analytics/events",
    ]
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in records)


@pytest.mark.parametrize("failure", [OSError(5, "Input/output error"), RuntimeError("a bug")])
def test_a_failed_spool_write_is_a_json_500_and_the_next_request_is_kept(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    """The spool's thread answers a failed write (a disk error, or any other exception) to the
    requests of that write only: each is a JSON 500 without the exception's text, so none is
    acknowledged, and the next request is written and acknowledged as usual."""
    spool = client.app.state.service.spool  # type: ignore[attr-defined]
    original = spool._write_durably
    calls: list[bytes] = []

    def failing_once(data: bytes) -> None:
        calls.append(data)
        if len(calls) == 1:
            raise failure
        original(data)

    monkeypatch.setattr(spool, "_write_durably", failing_once)
    payload = body([event("feature_usage")], user_id="spool-failure")
    reply = client.post("/api/analytics/events", json=payload, headers=ORIGIN)
    assert reply.status_code == 500
    assert reply.json()["error"] == "InternalError"
    _check_error_reply(reply)
    assert str(failure) not in reply.text
    durable = spool.durable_end
    reply = client.post("/api/analytics/events", json=payload, headers=ORIGIN)
    assert reply.status_code == 202 and reply.json()["accepted"] == 1
    assert len(calls) == 2 and spool.durable_end > durable
