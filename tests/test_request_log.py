"""Request ids and the JSON access log (`request_log`): the id is echoed when sane, made up
otherwise, on every reply including errors, and in every log line of the request; the access
line holds the route template, status, duration and size, never the query string or the
client's address; its cost is bounded by a lines-per-second budget."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netra_analytics.logs import JsonFormatter
from netra_analytics.request_log import LogBudget
from tests.factories import BROWSER_USER_AGENT, body, event
from tests.support.processes import ServiceProcess

GENERATED = re.compile(r"[0-9a-f]{12}-[0-9a-f]+")
SANE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
CLIENT_IP = "203.0.113.7"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the service logs while the test runs, formatted as in production (at emit time,
    inside the request, as `logs.configure` does)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    """The service's lines (the test client, httpx, logs its own requests too)."""
    lines = [orjson.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if str(line["logger"]).startswith(("netra", "uvicorn"))]


@pytest.fixture
def observed(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(access_log_per_second=1000)


def test_a_sane_request_id_is_echoed_and_logged(
    observed: TestClient, json_log: io.StringIO
) -> None:
    reply = observed.get(
        "/api/analytics/reports/engagement?api_key=hunter2-secret",
        headers={"x-request-id": "trace-7f3a.b:c_d-1"},
    )
    assert reply.status_code == 200
    assert reply.headers["x-request-id"] == "trace-7f3a.b:c_d-1"
    [line] = [x for x in _lines(json_log) if x.get("logger") == "netra_analytics.access"]
    assert line["request_id"] == "trace-7f3a.b:c_d-1"
    assert line["method"] == "GET" and line["status"] == 200
    assert line["route"] == "/api/analytics/reports/engagement"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["bytes"] == len(reply.content)
    text = str(_lines(json_log))
    assert "hunter2" not in text and "api_key" not in text and CLIENT_IP not in text


def test_ids_are_made_up_when_absent_or_insane_and_sent_on_errors(
    observed: TestClient, json_log: io.StringIO
) -> None:
    insane = ["", "a" * 65, "has space", "<script>", "semi;colon", "tab\tbed", "ümlaut"]
    seen = set()
    for value in [None, *insane]:
        headers = {} if value is None else {b"x-request-id": value.encode()}
        reply = observed.get("/api/analytics/panels/no-such-panel", headers=headers)
        assert reply.status_code == 404
        request_id = reply.headers["x-request-id"]
        assert GENERATED.fullmatch(request_id) and request_id != value
        seen.add(request_id)
    assert len(seen) == 1 + len(insane)  # each new
    lines = [x for x in _lines(json_log) if x.get("logger") == "netra_analytics.access"]
    assert {x["request_id"] for x in lines} == seen
    # The route's template, never the path a client made up.
    assert {x["route"] for x in lines} == {"/api/analytics/panels/{panel_id}"}

    errors = {
        "415": observed.post("/api/analytics/events", content=b"x",
                             headers={"content-type": "text/html", "x-request-id": "e415"}),
        "431": observed.get("/health", headers={"x-big": "x" * 9000, "x-request-id": "e431"}),
        "401": observed.get("/api/analytics/reports/engagement",
                            headers={"authorization": "Bearer nope", "x-request-id": "e401"}),
        "404": observed.get("/nothing/here", headers={"x-request-id": "e404"}),
    }  # fmt: skip
    for status, reply in errors.items():
        assert str(reply.status_code) == status
        assert reply.headers["x-request-id"] == f"e{status}"
    routes = {x["request_id"]: x["route"] for x in _lines(json_log) if "route" in x}
    assert routes["e404"] == "unmatched" and routes["e415"] == "/api/analytics/events"


def test_every_line_logged_during_a_request_carries_its_id(
    observed: TestClient, json_log: io.StringIO
) -> None:
    """A client error is logged by the error handler (once a minute per kind): that line
    carries the id of the request that caused it."""
    reply = observed.post(
        "/api/analytics/events", content=b"{not json",
        headers={"content-type": "application/json", "x-request-id": "bad-body-1"},
    )  # fmt: skip
    assert reply.status_code == 400
    handler_lines = [x for x in _lines(json_log) if x.get("msg") == "client error answered 400"]
    assert handler_lines and handler_lines[-1]["request_id"] == "bad-body-1"


# What HTTP allows in a field value (RFC 9110 5.5): visible ASCII, spaces and tabs inside,
# and obs-text (bytes 0x80-0xff).
FIELD_VALUES = st.binary(max_size=100).filter(
    lambda v: v == v.strip(b" \t") and all(b in b" \t" or 0x21 <= b != 0x7F for b in v)
)


@given(FIELD_VALUES)
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_incoming_id_gives_a_sane_reply_id(observed: TestClient, value: bytes) -> None:
    """Whatever a client sends as its id, the reply's id is sane (no header injection, a
    bounded length), and it is the client's exactly when that was sane."""
    reply = observed.get("/health", headers={b"x-request-id": value})
    reply_id = reply.headers["x-request-id"]
    assert SANE.fullmatch(reply_id)
    sent = value.decode("latin-1")
    assert (reply_id == sent) == bool(SANE.fullmatch(sent))


def test_the_log_budget_bounds_lines_per_second_and_counts_the_rest() -> None:
    now = [100.0]
    budget = LogBudget(3, clock=lambda: now[0])
    admitted = [budget.admit() for _ in range(10)]
    assert admitted == [0, 0, 0] + [None] * 7
    now[0] += 1
    assert budget.admit() == 7  # the next line says how many were left out
    assert budget.admit() == 0


def test_the_access_log_is_off_when_asked(
    make_client: Callable[..., TestClient], json_log: io.StringIO
) -> None:
    client = make_client(access_log_per_second=0)
    reply = client.get("/health", headers={"x-request-id": "quiet-1"})
    assert reply.headers["x-request-id"] == "quiet-1"  # ids stay
    assert not [x for x in _lines(json_log) if x.get("logger") == "netra_analytics.access"]


@pytest.mark.slow
def test_the_served_process_logs_json_lines_and_scrapes_in_multiprocess_mode(
    tmp_path: Path,
) -> None:
    """`netra-analytics serve` with ANALYTICS_ACCESS_LOG=on writes one JSON line per request on
    stderr; with PROMETHEUS_MULTIPROC_DIR set, /metrics is served from the directory's files
    (prometheus_client's multiprocess collector) and still moves with events."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    service = ServiceProcess(
        tmp_path / "data",
        env={"ANALYTICS_ACCESS_LOG": "on", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
             "EVENT_FLUSH_INTERVAL_MS": "50"},
    )  # fmt: skip
    service.start()
    try:
        with httpx.Client(timeout=10, headers={"user-agent": BROWSER_USER_AGENT}) as client:
            reply = client.post(
                f"{service.url}/api/analytics/events?token=sekrit-value",
                json=body([event("feature_usage"), event("feature_usage")]),
                headers={"x-request-id": "served-1"},
            )
            assert reply.status_code == 202 and reply.headers["x-request-id"] == "served-1"
            scraped = client.get(f"{service.url}/metrics").text
        assert list(metrics_dir.glob("counter_*.db")), "no per-process files"
        assert re.search(
            r'^netra_event_ingestion_events_total\{event_type="feature_usage",outcome="accepted"\} '
            r"2\.0$", scraped, re.MULTILINE,
        )  # fmt: skip
    finally:
        service.stop()
    lines = [orjson.loads(x) for x in service.log().splitlines() if x.startswith("{")]
    [line] = [x for x in lines if x.get("request_id") == "served-1" and x.get("msg") == "request"]
    assert line["route"] == "/api/analytics/events" and line["status"] == 202
    assert line["method"] == "POST" and line["bytes"] > 0
    assert "sekrit" not in service.log() and "127.0.0.1:" not in str(line)
