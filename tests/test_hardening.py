"""Fair sharing and hostile input: a report query stopped at its time bound with a 503 while
ingestion keeps answering, memory bounds, the report threads, and the input bounds."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from bench.security_bench import adversarial_texts
from fastapi.testclient import TestClient

from netra_analytics.errors import QueryLimit
from netra_analytics.prompts.sanitise import sanitise
from netra_analytics.store.base import Params
from netra_analytics.store.bounded import BoundedStore
from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import BROWSER_USER_AGENT, body, event
from tests.support.processes import wait_until
from tests.test_error_replies import HOSTILE, ROUTES, USABLE, _fill

FEEDBACK = "/api/analytics/reports/feedback?start_date=2026-11-01&end_date=2026-11-02"
SLOW = "SELECT sum(sleepEachRow(0.05)) AS x FROM numbers(1000)"  # 50 s unbounded


class _SlowReports:
    """The session's chDB, where every bounded (report) query becomes SLOW, with its bounds."""

    def __init__(self, store: ChdbStore) -> None:
        self._store = store
        self.slow = False

    def query_rows(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        if self.slow and "max_execution_time" in sql:
            bounds = sql[sql.rindex("\nSETTINGS") :]
            return self._store.query_rows(SLOW + bounds + ", max_block_size = 1")
        return self._store.query_rows(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _ingest_seconds(client: TestClient, n: int) -> list[float]:
    took = []
    for i in range(n):
        started = time.perf_counter()
        reply = client.post(
            "/api/analytics/events",
            json=body([event("feature_usage")], user_id=f"u{i}"),
            headers={"user-agent": BROWSER_USER_AGENT},
        )
        took.append(time.perf_counter() - started)
        assert reply.status_code == 202, reply.text
    return took


def test_a_slow_report_ends_with_503_at_its_bound_while_ingestion_answers(
    chdb_store: ChdbStore, make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    slow = _SlowReports(chdb_store)
    client = make_client(report_timeout_seconds=1, report_cache_seconds=0)
    client.app.state.service.store = slow  # type: ignore[attr-defined]
    usual = statistics.median(_ingest_seconds(client, 20))
    slow.slow = True
    answer: dict[str, Any] = {}

    def report() -> None:
        started = time.monotonic()
        answer["reply"] = client.get(FEEDBACK)
        answer["seconds"] = time.monotonic() - started

    running = threading.Thread(target=report)
    running.start()
    time.sleep(0.1)
    during = _ingest_seconds(client, 20)  # while the report's query holds the embedded engine
    running.join(30)
    reply = answer["reply"]
    assert reply.status_code == 503, reply.text
    assert "time bound (1 s, ANALYTICS_REPORT_TIMEOUT_SECONDS)" in reply.json()["message"]
    assert 0.9 < answer["seconds"] < 10
    assert "SELECT" not in reply.text
    # Ingestion answered as usual (spool, not the store): within 5x its median, or 100 ms.
    assert statistics.median(during) < max(5 * usual, 0.1), (usual, during)


def test_a_report_over_its_memory_bound_is_a_503_naming_it(chdb_store: ChdbStore) -> None:
    bounded = BoundedStore(chdb_store, seconds=30, memory_bytes=20_000_000)
    with pytest.raises(QueryLimit, match="memory bound \\(20000000 bytes"):
        bounded.query_rows("SELECT groupArray(number) FROM numbers(10000000)\n-- a comment")
    assert bounded.query_rows("SELECT 1 AS one") == [{"one": 1}]


# --- Input bounds: each refusal names its limit ---------------------------------------------

EVENTS = "/api/analytics/events"
BROWSER = {"user-agent": BROWSER_USER_AGENT}


def _rejected(client: TestClient, sent: dict[str, Any]) -> list[dict[str, Any]]:
    reply = client.post(EVENTS, json=sent, headers=BROWSER)
    assert reply.status_code == 202, reply.text
    rejected: list[dict[str, Any]] = reply.json()["rejected"]
    return rejected


def test_each_input_bound_is_named_in_its_refusal(client: TestClient) -> None:
    long_prompt = event("chat_interaction", prompt_text="a" * 65_537)
    [too_long] = _rejected(client, body([long_prompt, event("feature_usage")]))
    assert too_long["errors"] == [
        {"field": "properties.prompt_text", "message": "Expected `str` of length <= 65536"}
    ]
    many = event("feature_usage")
    many["properties"].update({f"k{i}" * 200: i for i in range(100)})
    [crowded] = _rejected(client, body([many]))
    assert crowded["errors"] == [
        {"field": "properties", "message": "104 properties; the limit is 64 per event"}
    ]
    stranger = event("feature_usage")
    stranger["properties"]["x" * 10_000] = 1
    [unknown] = _rejected(client, body([stranger]))
    assert unknown["errors"] == [{"field": "properties." + "x" * 64, "message": "unknown field"}]
    user = client.post(
        EVENTS, json=body([event("feature_usage")], user_id="u" * 257), headers=BROWSER
    )
    assert (
        user.status_code == 400 and "context.user_id: Expected `str` of length <= 256" in user.text
    )


def test_a_deeply_nested_event_is_rejected_alone(client: TestClient) -> None:
    deep = event("feature_usage", feature_name="DEEP")
    raw = orjson.dumps(body([deep, event("feature_usage")])).replace(
        b'"DEEP"', b'{"a":' * 5000 + b"1" + b"}" * 5000
    )
    reply = client.post(EVENTS, content=raw, headers=BROWSER | {"content-type": "application/json"})
    assert reply.status_code == 202 and reply.json()["accepted"] == 1
    assert reply.json()["rejected"][0]["errors"][0]["message"] == (
        "nested deeper than 1,000 levels to be an event"
    )


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({f"x-h{i}": "v" * 1000 for i in range(17)}, "the limit is 16384"),
        (
            {"authorization": "Bearer " + "a" * 9000},
            "a header value of 9007 bytes; the limit is 8192",
        ),
    ],
)
def test_headers_over_their_limits_are_a_431(
    client: TestClient, headers: dict[str, str], says: str
) -> None:
    for path in (EVENTS, "/api/analytics/reports/engagement", "/health"):
        reply = (
            client.post(path, headers=headers)
            if path == EVENTS
            else client.get(path, headers=headers)
        )
        assert reply.status_code == 431, reply.text
        assert reply.json()["error"] == "HeaderTooLarge" and says in reply.json()["message"]


@pytest.mark.parametrize(("name", "text"), sorted(adversarial_texts().items()))
def test_the_sanitiser_is_linear_on_adversarial_text(name: str, text: str) -> None:
    """60 KB (a prompt's limit is 64 KB) of each adversarial text: a few ms per 10 KB measured
    (bench/README.md); before the bounded patterns, `a.a.a...` cost ~1 s per 10 KB and grew
    with the square of the length (~37 s at 64 KB)."""
    long_text = text * 6
    started = time.perf_counter()
    sanitise(long_text)
    assert time.perf_counter() - started < 0.5, name


# --- SQL injection and path traversal in every report parameter -----------------------------

INJECTIONS = [
    *(v for v in HOSTILE if any(c in v for c in "';{\\%") or ".." in v),
    "1); DROP TABLE analytics.api_keys; --",
    "x' UNION SELECT key_hash FROM analytics.api_keys --",
    "../../../../data/ip_hash.key",
    "analytics.frontend_events",
]
DATA_TABLES = """
SELECT name FROM system.tables
WHERE database = 'analytics' AND engine LIKE '%MergeTree' AND NOT startsWith(name, '.inner')
ORDER BY name
"""


def _fingerprint(store: ChdbStore) -> dict[str, Any]:
    """Every table's row count and a hash of its rows: any change to stored data shows."""
    found = {}
    for row in store.query_rows(DATA_TABLES):
        table = row["name"]
        [summary] = store.query_rows(
            f"SELECT count() AS n, sum(cityHash64(*)) AS h FROM analytics.{table}"
        )
        found[table] = (summary["n"], summary["h"])
    return found


def test_injection_and_traversal_in_report_parameters_change_and_leak_nothing(
    client: TestClient, store: ChdbStore
) -> None:
    for n in range(3):
        sent = client.post(
            EVENTS, json=body([event("chat_interaction")], user_id=f"u{n}"), headers=BROWSER
        )
        assert sent.status_code == 202
    written = ("frontend_events", "prompt_analytics")  # the writer and the prompt worker
    wait_until(lambda: all(_fingerprint(store)[t][0] == 3 for t in written), timeout=15)
    before = _fingerprint(store)
    assert before["frontend_events"][0] == 3 and before["api_keys"][0] >= 1
    calls = 0
    for method, path, route in ROUTES:
        if method != "GET" or route is None or not path.startswith("/api/analytics/"):
            continue
        names = [p.alias for p in route.dependant.query_params]
        usable = {name: USABLE[name] for name in names}
        for value in INJECTIONS:
            for name in names:
                reply = client.get(_fill(path, "x"), params=usable | {name: value})
                calls += 1
                assert reply.status_code < 500, (path, name, value, reply.text[:300])
                echoed = reply.text.replace(
                    orjson.dumps(value).decode()[1:-1], ""
                )  # a 422 quotes it
                for leak in ("DB::Exception", "SELECT", "key_hash", "Traceback", "na_"):
                    assert leak not in echoed, (path, name, value, reply.text[:300])
            reply = client.get(_fill(path, value))
            assert reply.status_code < 500 and "DB::Exception" not in reply.text
    assert calls > 100
    after = _fingerprint(store)
    # A person's export is audited (who asked, the person as a keyed hash): the one table that
    # may grow, and only by those entries.
    audited = store.query_rows("SELECT DISTINCT action FROM analytics.audit_log")
    assert {row["action"] for row in audited} <= {"user_exported"}
    after.pop("audit_log"), before.pop("audit_log")
    assert after == before
