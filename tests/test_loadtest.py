"""`netra-analytics loadtest`: the traffic is valid and realistic, the run never sends more than
asked and stays bounded when the service does not answer, only loopback is aimed at unless
allowed, the read-back endpoint is admin-only, and against a real service the figures add up
with the loss checked against the store counted independently after the service stopped."""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from netra_analytics import demo, loadtest
from netra_analytics.auth.keys import ANALYST, create_key
from netra_analytics.ingest.bots import is_bot
from netra_analytics.ingest.process import RequestInfo, process
from netra_analytics.loadtest.runner import READBACK_PATH, _parse_reply, _Plan, _target
from netra_analytics.loadtest.traffic import ENVIRONMENT, Traffic, session_prefix
from netra_analytics.store.chdb_backend import ChdbStore
from netra_analytics.taxonomy import EVENT_TYPES
from tests.support.processes import (
    CLI,
    REPO,
    Process,
    ServiceProcess,
    cli_query,
    free_port,
    wait_until,
)

RUN = "0123456789ab"


# --- the traffic ----------------------------------------------------------------------------


def test_every_request_is_a_valid_browser_request_of_the_run() -> None:
    traffic = Traffic(RUN, seed=3)
    now = datetime.now(UTC)
    types: collections.Counter[str] = collections.Counter()
    ids: set[str] = set()
    signed_in = 0
    ordinal = 0
    for n in range(400):
        browser, count = n * 7919 % 1000, 1 + n % 20
        body = traffic.body(browser, ordinal, count, now, traffic.start())
        agent = traffic.user_agent(browser).decode()
        batch = process(body, RequestInfo(received_at=now, user_agent=agent))
        assert [r.reply() for r in batch.rejected] == []
        assert len(batch.accepted) == count
        assert not is_bot(agent)
        sent = orjson.loads(body)
        context = sent["context"]
        assert context["environment"] == ENVIRONMENT
        assert context["session_id"] == f"{session_prefix(RUN)}{browser}"
        assert uuid.UUID(context["anonymous_id"])
        signed_in += "user_id" in context
        assert sent["sent_at"] == sent["events"][0]["timestamp"]
        for event in sent["events"]:
            assert uuid.UUID(event["event_id"]).version == 4
            ids.add(event["event_id"])
            types[event["event_type"]] += 1
        ordinal += count
    assert len(ids) == ordinal  # an id per event of the run, none twice
    assert set(types) == set(EVENT_TYPES)  # all seven
    assert types["chat_interaction"] > types["survey_response"]  # the demo's proportions
    assert 200 < signed_in < 360  # ~70 % signed in, the rest anonymous browsers
    assert {a.decode() for a in map(traffic.user_agent, range(8))} == set(demo.BROWSERS)


@given(
    rate=st.floats(0.01, 1e6, allow_nan=False),
    duration=st.floats(0.01, 3600, allow_nan=False),
    batch=st.integers(1, 500),
)
def test_the_plan_is_never_more_than_rate_times_duration(
    rate: float, duration: float, batch: int
) -> None:
    plan = _Plan(rate=rate, duration=duration, batch=batch, users=1)
    asked = rate * duration
    assert plan.requests * batch <= asked * (1 + 1e-9)
    assert (plan.requests + 1) * batch > asked * (1 - 1e-9)  # as many whole requests as fit
    assert (plan.requests - 1) * plan.interval < duration  # the last is due within the run


REPLIES = [
    (b"HTTP/1.1 202 Accepted\r\ncontent-length: 29\r\n\r\n"
     b'{"accepted":20,"rejected":[]}', 202, b'{"accepted":20,"rejected":[]}', False),
    (b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 2\r\n"
     b"Connection: close\r\n\r\n{}", 429, b"{}", True),
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n"
     b"3;x=1\r\nefg\r\n0\r\nx-trailer: 1\r\n\r\n", 200, b"abcdefg", False),
    (b"HTTP/1.1 204 No Content\r\n\r\n", 204, b"", False),
]  # fmt: skip


@given(order=st.permutations(range(len(REPLIES))), cuts=st.lists(st.integers(0, 400), max_size=8))
def test_replies_are_read_whole_however_the_bytes_arrive(order: list[int], cuts: list[int]) -> None:
    stream = b"".join(REPLIES[i][0] for i in order)
    buffer = bytearray()
    got = []
    at = 0
    for cut in [*sorted(c for c in cuts if c < len(stream)), len(stream)]:
        buffer += stream[at:cut]
        at = max(at, cut)
        while (reply := _parse_reply(buffer)) is not None:
            got.append((reply.status, reply.body, reply.close))
    assert got == [REPLIES[i][1:] for i in order]
    assert buffer == b""


def test_what_is_not_an_http_reply_is_refused() -> None:
    with pytest.raises(ValueError, match="not an HTTP"):
        _parse_reply(bytearray(b"SSH-2.0-OpenSSH\r\n\r\n"))
    with pytest.raises(ValueError, match="too large"):
        _parse_reply(bytearray(b"HTTP/1.1 200 OK\r\n" + b"x" * 70_000))


# --- bounds ---------------------------------------------------------------------------------


@pytest.fixture
def bare_server(tmp_path: Path) -> Iterator[tuple[str, Process]]:
    port = free_port()
    server = Process(
        [sys.executable, str(REPO / "tests" / "support" / "bare_server.py"), str(port)],
        log=tmp_path / "bare.log",
    )
    server.start()
    wait_until(lambda: "listening" in server.log(), 30)
    yield f"http://127.0.0.1:{port}", server
    server.kill()


def _totals(server: Process) -> dict[str, Any]:
    server.signal(15)
    server.wait(30)
    line = server.log().strip().splitlines()[-1]
    totals: dict[str, Any] = json.loads(line)
    return totals


def test_it_never_sends_more_than_asked(bare_server: tuple[str, Process]) -> None:
    url, server = bare_server
    started = time.monotonic()
    result = loadtest.run(url, rate=900, duration=2, batch=7, readback=False, progress=None)
    took = time.monotonic() - started
    received = _totals(server)
    assert result.planned_requests == 257  # 1,800 events asked: 257 requests of 7
    assert received["requests"] == result.requests_sent <= 257
    assert received["events"] == result.events_sent == 7 * result.requests_sent <= 1800
    assert result.requests_sent + result.requests_missed == 257
    assert result.acknowledged == result.events_sent  # the bare server accepts everything
    assert result.requests_sent >= 250  # and a bare server keeps up with 129 requests/s
    assert 1.9 < result.seconds < 3 and took < 6
    assert set(received["user_agents"]) <= {ua.lower() for ua in demo.BROWSERS}


def test_a_service_that_does_not_answer_costs_connections_not_memory() -> None:
    # A listening socket nobody accepts: connections complete in the kernel's backlog and
    # requests are taken, but no reply ever comes.
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        result = loadtest.run(url, rate=100, duration=1, batch=1, connections=4,
                              reply_grace=0.5, readback=False, progress=None)  # fmt: skip
        took = time.monotonic() - started
    assert result.requests_sent == 4  # one in flight per connection, none behind
    assert result.requests_unanswered == 4 and result.requests_answered == 0
    assert result.requests_missed == 96  # the rest came due with no connection free
    assert result.acknowledged == 0 and result.latency_ms["p99"] == 0
    assert took < 1 + 0.5 + 2  # the duration, the grace, start-up


def test_a_url_that_is_not_loopback_is_refused_unless_allowed() -> None:
    with pytest.raises(loadtest.LoadTestError, match=r"not a loopback address.*--allow-remote"):
        loadtest.run("http://192.0.2.1:8090", api_key="na_x", progress=None)
    assert _target("http://192.0.2.1:8090", allow_remote=True).host == "192.0.2.1"
    assert _target("http://localhost:8090", allow_remote=False).port == 8090
    assert _target("http://[::1]:8090/", allow_remote=False).host == "::1"
    reply = subprocess.run(
        [str(CLI), "loadtest", "--url", "http://192.0.2.1:8090", "--api-key", "na_x"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert reply.returncode == 2
    assert reply.stdout == ""
    lines = reply.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netra-analytics loadtest: 192.0.2.1 is not")


# --- the read-back endpoint -----------------------------------------------------------------


def test_the_read_back_counts_the_runs_events_for_admins_only(
    make_client: Callable[..., TestClient], chdb_store: ChdbStore
) -> None:
    analyst = create_key(chdb_store, f"analyst-{uuid.uuid4().hex[:8]}", ANALYST)
    client = make_client(event_batch_size=1, event_flush_interval_ms=20)
    traffic = Traffic(RUN)
    now = datetime.now(UTC)
    for n in range(3):
        body = traffic.body(n, n * 4, 4, now, traffic.start())
        agent = traffic.user_agent(n).decode()
        reply = client.post("/api/analytics/events", content=body,
                            headers={"content-type": "text/plain", "user-agent": agent})  # fmt: skip
        assert reply.status_code == 202 and reply.json()["accepted"] == 4
    path = READBACK_PATH.format(run_id=RUN)
    counted = wait_until(lambda: (r := client.get(path).json())["stored"] == 12 and r, timeout=30)
    assert counted == {"run_id": RUN, "environment": ENVIRONMENT, "stored": 12,
                       "distinct_events": 12, "duplicates": 0}  # fmt: skip
    assert client.get(READBACK_PATH.format(run_id="ba9876543210")).json()["stored"] == 0
    assert client.get(path, headers={"authorization": f"Bearer {analyst}"}).status_code == 403
    assert client.get(path, headers={"authorization": ""}).status_code == 401
    assert client.get(READBACK_PATH.format(run_id="NOT-A-RUN")).status_code == 422


# --- against the service --------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_against_the_service_adds_up_and_its_loss_is_the_stores(tmp_path: Path) -> None:
    limit = {"MAX_EVENTS_PER_USER_PER_MINUTE": "100"}  # ~12 a browser below; 200 from one
    service = ServiceProcess(tmp_path / "data", env={"EVENT_FLUSH_INTERVAL_MS": "200", **limit})
    service.start()
    key = service.admin_headers()["authorization"].removeprefix("Bearer ")
    command = [str(CLI), "loadtest", "--url", service.url, "--rate", "200", "--duration", "3",
               "--batch", "5", "--users", "50"]  # fmt: skip

    refused = subprocess.run([*command, "--api-key", "na_not-a-key"], capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("netra-analytics loadtest: the service refused the API key")

    env = {**os.environ, "NETRA_API_KEY": key}
    ran = subprocess.run([*command, "--json"], capture_output=True, env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr.decode()[-2000:]
    result = orjson.loads(ran.stdout)

    # One browser sending twice its limit: refusals are counted, and what passed is stored.
    one = [str(CLI), "loadtest", "--url", service.url, "--rate", "100", "--duration", "2",
           "--batch", "5", "--users", "1", "--json"]  # fmt: skip
    limited = orjson.loads(subprocess.run(one, capture_output=True, env=env, timeout=120).stdout)
    assert limited["events_sent"] == 200
    assert limited["acknowledged"] + limited["rate_limited"] == 200
    assert limited["acknowledged"] <= 100 and limited["statuses"].get("429", 0) >= 1
    assert (
        limited["rejected"].get("rate_limited", 0) + 5 * limited["statuses"]["429"]
        == (limited["rate_limited"])
    )
    assert limited["loss"] == 0 and limited["stored"] == limited["acknowledged"]
    assert service.stop()

    # Coherent: 600 events asked in 120 requests of 5, all sent on time, taken and stored.
    assert result["planned_requests"] == 120
    assert result["requests_sent"] + result["requests_missed"] == 120
    assert result["requests_missed"] == 0 and result["requests_failed"] == 0
    assert result["requests_answered"] == result["requests_sent"] == 120
    assert result["events_sent"] == 600 == result["acknowledged"]
    assert result["statuses"] == {} and result["rejected"] == {} and result["rate_limited"] == 0
    assert result["bot_requests"] == 0 and result["not_stored"] == 0
    assert 150 < result["acknowledged_per_second"] <= 210
    lat = result["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"] < 3000
    assert result["drained"] is True

    # The loss figure against the store, counted on its own with the service stopped.
    prefix = session_prefix(result["run_id"])
    counted = cli_query(
        service.data_dir,
        "SELECT count(), uniqExact(user_id, event_id), groupUniqArray(environment), "
        "uniqExact(session_id), uniqExact(event_type), groupUniqArray(user_agent) "
        f"FROM analytics.frontend_events WHERE startsWith(session_id, '{prefix}')",
    ).strip().split("\t")  # fmt: skip
    stored, distinct = int(counted[0]), int(counted[1])
    assert result["stored"] == stored and result["loss"] == result["acknowledged"] - stored == 0
    assert result["duplicates"] == stored - distinct == 0
    assert counted[2] == f"['{ENVIRONMENT}']"
    assert 20 < int(counted[3]) <= 50  # many browsers' sessions
    assert int(counted[4]) >= 5  # a mix of event types (600 events: the rare ones may be absent)
    assert all(ua in demo.BROWSERS for ua in json.loads(counted[5].replace("'", '"')))
    bots = cli_query(
        service.data_dir,
        f"SELECT count() FROM analytics.bot_events WHERE startsWith(session_id, '{prefix}')",
    )
    assert bots.strip() == "0"
