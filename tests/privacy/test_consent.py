"""Consent on the server: `context.consent`, `DNT: 1` and `Sec-GPC: 1` store nothing, for any
source, and are counted; the rules over every combination, and the endpoint over the real
embedded store (a consented marker sent after shows the writer had its chance)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from netra_analytics.ingest.consent import refusal
from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import BROWSER_USER_AGENT, body, event
from tests.support.processes import wait_until

URL = "/api/analytics/events"
TABLES = ("frontend_events", "rejected_events", "bot_events", "prompt_analytics")


@given(
    consent=st.sampled_from(["", "granted", "denied"]),
    dnt=st.sampled_from([None, "0", "1", " 1 ", "yes"]),
    gpc=st.sampled_from([None, "0", "1", "true"]),
    honour=st.booleans(),
)
def test_stored_only_with_consent_and_no_honoured_signal(
    consent: str, dnt: str | None, gpc: str | None, honour: bool
) -> None:
    headers = {name: value for name, value in (("dnt", dnt), ("sec-gpc", gpc)) if value is not None}
    signalled = any(v is not None and v.strip() == "1" for v in (dnt, gpc))
    refused = refusal(consent, headers, honour)
    assert (refused is not None) == (consent == "denied" or (honour and signalled))
    if consent == "denied":
        assert refused == "context.consent is denied"


def _no_consent_count() -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if (
                sample.name == "netra_event_ingestion_events_total"
                and sample.labels.get("outcome") == "no_consent"
            ):
                total += sample.value
    return total


def _post(client: TestClient, payload: dict[str, Any], **headers: str) -> Any:
    return client.post(URL, content=orjson.dumps(payload),
                       headers={"content-type": "application/json",
                                "user-agent": BROWSER_USER_AGENT, **headers})  # fmt: skip


def _counts(store: ChdbStore) -> dict[str, int]:
    return {
        table: int(store.query_rows(f"SELECT count() AS n FROM analytics.{table}")[0]["n"])
        for table in TABLES
    }


CASES: list[tuple[str, dict[str, str], dict[str, str], str]] = [
    ("context", {"consent": "denied"}, {}, "context.consent is denied"),
    ("dnt", {}, {"DNT": "1"}, "the browser sent DNT: 1"),
    ("gpc", {}, {"Sec-GPC": "1"}, "the browser sent Sec-GPC: 1"),
    ("gpc over granted", {"consent": "granted"}, {"Sec-GPC": "1"}, "the browser sent Sec-GPC: 1"),
]


@pytest.mark.parametrize(("case", "context", "headers", "why"), CASES, ids=[c[0] for c in CASES])
def test_a_request_without_consent_stores_nothing_and_is_counted(
    make_client: Callable[..., TestClient],
    store: ChdbStore,
    case: str,
    context: dict[str, str],
    headers: dict[str, str],
    why: str,
) -> None:
    client = make_client(event_batch_size=1, event_flush_interval_ms=10)
    before = _no_consent_count()
    chat = event("chat_interaction", prompt_text="my email is a@b.example", prompt_length=23)
    bad = {"event_type": "chat_interaction", "properties": {}}  # invalid: not stored either
    reply = _post(client, body([chat, event("feature_usage"), bad], user_id="u-no", **context),
                  **headers)  # fmt: skip
    assert reply.status_code == 202, reply.text
    assert reply.json() == {"accepted": 0, "rejected": [], "not_stored": 3,
                            "consent": f"events not stored: {why}"}  # fmt: skip
    assert _no_consent_count() - before == 3
    marker = _post(client, body([event("feature_usage")], user_id="u-yes"))
    assert marker.json()["accepted"] == 1
    wait_until(lambda: _counts(store)["frontend_events"] == 1)
    assert _counts(store) == {"frontend_events": 1, "rejected_events": 0, "bot_events": 0,
                              "prompt_analytics": 0}  # fmt: skip
    [row] = store.query_rows("SELECT user_id FROM analytics.frontend_events")
    assert row["user_id"] == "u-yes"
    engagement = client.get("/api/analytics/reports/engagement").json()
    assert engagement["active_users"] == 1  # the refused visitor is not in the live state


@pytest.mark.parametrize("headers", [{"DNT": "0"}, {"Sec-GPC": "0"}, {}])
def test_no_signal_or_a_zero_stores_as_usual(
    make_client: Callable[..., TestClient], store: ChdbStore, headers: dict[str, str]
) -> None:
    client = make_client()
    assert _post(client, body([event("feature_usage")]), **headers).json()["accepted"] == 1
    wait_until(lambda: _counts(store)["frontend_events"] == 1)


def test_signals_can_be_turned_off_but_context_consent_cannot(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    client = make_client(privacy_signals=False)
    assert (
        _post(client, body([event("feature_usage")]), DNT="1", **{"Sec-GPC": "1"}).json()[
            "accepted"
        ]
        == 1
    )
    denied = _post(client, body([event("feature_usage")], consent="denied"))
    assert denied.json()["not_stored"] == 1
    wait_until(lambda: _counts(store)["frontend_events"] == 1)


def test_an_unknown_consent_value_is_a_400_naming_the_field(client: TestClient) -> None:
    reply = _post(client, body([event("feature_usage")], consent="maybe"))
    assert reply.status_code == 400
    assert "context.consent" in reply.text


def test_the_import_honours_each_events_own_consent_not_its_clients_headers(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    client = make_client()
    denied, granted = event("feature_usage"), event("feature_usage")
    denied["context"] = {"user_id": "refused", "session_id": "s1", "consent": "denied"}
    granted["context"] = {"user_id": "agreed", "session_id": "s2"}
    reply = client.post("/api/analytics/import", content=orjson.dumps({"events": [denied, granted]}),
                        headers={"content-type": "application/json", "DNT": "1"})  # fmt: skip
    assert reply.status_code == 202, reply.text
    assert (reply.json()["accepted"], reply.json()["not_stored"]) == (1, 1)
    wait_until(lambda: _counts(store)["frontend_events"] == 1)
    [row] = store.query_rows("SELECT user_id FROM analytics.frontend_events")
    assert row["user_id"] == "agreed"
