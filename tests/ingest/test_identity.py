"""Whose events: anonymous ids, placeholders, identify, per-user event ids and bots.

The pure rules (`ingest.identity`) and the endpoint over the real embedded store.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from netra_analytics.errors import BadRequest
from netra_analytics.ingest import identity
from netra_analytics.ingest.bots import is_bot
from netra_analytics.store.chdb_backend import ChdbStore
from netra_analytics.taxonomy import Context
from tests.factories import BROWSER_USER_AGENT, event
from tests.support.processes import wait_until

URL = "/api/analytics/events"


def _context(**fields: str) -> Context:
    return msgspec.convert({"session_id": "s1", **fields}, Context)


def _post(client: TestClient, events: list[Any], user_agent: str = BROWSER_USER_AGENT,
          **context: str) -> Any:  # fmt: skip
    payload = {"events": events, "context": {"session_id": "s1", "page_path": "/", **context}}
    return client.post(URL, content=orjson.dumps(payload),
                       headers={"content-type": "application/json", "user-agent": user_agent})  # fmt: skip


def _rows(store: ChdbStore, sql: str) -> list[dict[str, Any]]:
    return store.query_rows(sql)


def _count(store: ChdbStore, table: str = "frontend_events") -> int:
    return int(store.query_rows(f"SELECT count() AS n FROM analytics.{table}")[0]["n"])


# --- pure ---------------------------------------------------------------------------------------


def test_an_anonymous_visitor_is_their_browser() -> None:
    resolved = identity.resolve(_context(anonymous_id="b-1"))
    assert (resolved.user_id, resolved.anonymous_id) == ("b-1", "b-1")


def test_a_signed_in_user_keeps_their_id_and_the_browser_is_linked() -> None:
    resolved = identity.resolve(_context(user_id=" u-7 ", anonymous_id="b-1"))
    assert (resolved.user_id, resolved.anonymous_id) == ("u-7", "b-1")


@pytest.mark.parametrize(
    "value", ["anonymous", "undefined", "NULL", " None ", "[object Object]", "0"]
)
@pytest.mark.parametrize("field", ["user_id", "anonymous_id"])
def test_placeholders_are_refused_naming_the_field(field: str, value: str) -> None:
    with pytest.raises(BadRequest, match=f"context.{field}: .*placeholder"):
        identity.resolve(
            _context(**{field: value, "anonymous_id": "b-1", "user_id": "u-1"} | {field: value})
        )


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_blank_ids_count_as_absent(blank: str) -> None:
    assert identity.resolve(_context(user_id=blank, anonymous_id="b-2")).user_id == "b-2"
    with pytest.raises(BadRequest, match=r"context\.user_id"):
        identity.resolve(_context(user_id=blank))


def test_control_characters_and_blank_sessions_are_refused() -> None:
    with pytest.raises(BadRequest, match="control"):
        identity.resolve(_context(user_id="u\x00"))
    with pytest.raises(BadRequest, match="session_id"):
        identity.resolve(Context(session_id="  ", user_id="u"))


@given(user=st.text(max_size=20), anonymous=st.text(max_size=20))
@settings(max_examples=300, deadline=None)
def test_any_ids_resolve_to_a_real_id_or_a_reason(user: str, anonymous: str) -> None:
    try:
        resolved = identity.resolve(_context(user_id=user, anonymous_id=anonymous))
    except BadRequest as exc:
        assert str(exc).startswith("context.")
        return
    assert resolved.user_id.strip() == resolved.user_id != ""
    assert resolved.user_id.lower() not in identity.PLACEHOLDER_IDS
    assert resolved.user_id in (user.strip(), anonymous.strip())


@pytest.mark.parametrize(
    ("user_agent", "bot"),
    [
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36", True),
        ("Googlebot/2.1 (+http://www.google.com/bot.html)", True),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", True),
        (BROWSER_USER_AGENT, False),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", False),
        ("", False),
    ],
)  # fmt: skip
def test_bots_are_known_by_user_agent(user_agent: str, bot: bool) -> None:
    assert is_bot(user_agent) is bot


# --- the endpoint -------------------------------------------------------------------------------


def test_three_anonymous_visitors_are_three_people(client: TestClient, store: ChdbStore) -> None:
    for n in range(3):
        reply = _post(client, [event("feature_usage")], anonymous_id=f"browser-{n}")
        assert reply.status_code == 202 and reply.json()["accepted"] == 1
    wait_until(lambda: _count(store) == 3, timeout=20)
    users = _rows(store, "SELECT DISTINCT user_id FROM analytics.frontend_events ORDER BY user_id")
    assert [r["user_id"] for r in users] == ["browser-0", "browser-1", "browser-2"]
    engagement = client.get("/api/analytics/reports/engagement").json()
    assert engagement["active_users"] == 3


def test_anonymous_visitors_are_rate_limited_each_on_their_own(
    make_client: Any, store: ChdbStore
) -> None:
    client = make_client(max_events_per_user_per_minute=2)
    for n in range(3):
        reply = _post(
            client, [event("feature_usage"), event("feature_usage")], anonymous_id=f"b{n}"
        )
        assert reply.json()["accepted"] == 2  # the third visitor is not refused
    assert _post(client, [event("feature_usage")], anonymous_id="b0").status_code == 429


@pytest.mark.parametrize("value", ["anonymous", "undefined", "   "])
def test_a_placeholder_user_id_is_a_400_naming_it(client: TestClient, value: str) -> None:
    reply = _post(client, [event("feature_usage")], user_id=value)
    assert reply.status_code == 400
    assert reply.json()["message"].startswith("context.user_id")


def test_identify_links_the_browser_to_the_person(client: TestClient, store: ChdbStore) -> None:
    assert _post(client, [event("feature_usage")], anonymous_id="b-9").status_code == 202
    assert (
        _post(client, [event("feature_usage")], anonymous_id="b-9", user_id="alice").status_code
        == 202
    )
    wait_until(lambda: _count(store) == 2, timeout=20)
    rows = _rows(
        store, "SELECT user_id, anonymous_id FROM analytics.frontend_events ORDER BY user_id"
    )
    assert [(r["user_id"], r["anonymous_id"]) for r in rows] == [("alice", "b-9"), ("b-9", "b-9")]
    links = _rows(store, "SELECT anonymous_id, user_id FROM analytics.identity_links FINAL")
    assert [(r["anonymous_id"], r["user_id"]) for r in links] == [("b-9", "alice")]


def test_the_same_event_id_from_two_users_is_two_events(
    client: TestClient, store: ChdbStore
) -> None:
    nil = "00000000-0000-0000-0000-000000000000"
    for user in ("u-a", "u-b"):
        reply = _post(client, [{**event("feature_usage"), "event_id": nil}], user_id=user)
        assert reply.json()["accepted"] == 1
    wait_until(lambda: _count(store) == 2, timeout=20)
    rows = _rows(store, "SELECT user_id FROM analytics.frontend_events ORDER BY user_id")
    assert [r["user_id"] for r in rows] == ["u-a", "u-b"]


def test_a_retry_is_stored_once_and_a_conflict_is_reported(
    client: TestClient, store: ChdbStore
) -> None:
    first = event("feature_usage")
    assert _post(client, [first], user_id="u-c").json()["accepted"] == 1
    wait_until(lambda: _count(store) == 1, timeout=20)
    # The same event again (a retry, sent later): not stored twice, nothing reported.
    assert _post(client, [{**first}], user_id="u-c").json()["accepted"] == 1
    # Another event under the same id: not stored, reported as duplicate_event_id.
    other = {**event("feature_usage", feature_name="other"), "event_id": first["event_id"]}
    assert _post(client, [other], user_id="u-c").status_code == 202

    def conflicts() -> list[dict[str, Any]]:
        return _rows(store, "SELECT reason, errors FROM analytics.rejected_events")

    wait_until(lambda: len(conflicts()) == 1, timeout=20)
    assert _count(store) == 1
    [conflict] = conflicts()
    assert conflict["reason"] == "duplicate_event_id"
    assert first["event_id"] in conflict["errors"]
    [stored] = _rows(store, "SELECT event_label FROM analytics.frontend_events")
    assert stored["event_label"] == "cost_explorer"  # the first event's, kept


def test_bot_traffic_is_counted_apart_and_kept_out_of_reports(
    client: TestClient, store: ChdbStore
) -> None:
    for agent in ("Mozilla/5.0 HeadlessChrome/120.0.0.0 Safari/537.36", "Googlebot/2.1"):
        reply = _post(
            client, [event("chat_interaction")], user_agent=agent, user_id=f"crawler-{uuid.uuid4()}"
        )
        assert reply.status_code == 202
        assert reply.json() == {"accepted": 1, "rejected": [], "bot": True}
    assert _post(client, [event("chat_interaction")], user_id="person").json()["accepted"] == 1
    wait_until(lambda: _count(store, "bot_events") == 2 and _count(store) == 1, timeout=20)
    assert client.get("/api/analytics/reports/engagement").json()["active_users"] == 1
    metrics = client.get("/metrics").text
    assert (
        'netra_event_ingestion_events_total{event_type="chat_interaction",outcome="bot"} 2.0'
        in metrics
    )


def test_the_bot_filter_can_be_turned_off(make_client: Any, store: ChdbStore) -> None:
    client = make_client(bot_filter=False)
    assert (
        "bot"
        not in _post(
            client, [event("feature_usage")], user_agent="Googlebot/2.1", user_id="g"
        ).json()
    )
    wait_until(lambda: _count(store) == 1, timeout=20)


@pytest.mark.parametrize("granularity", ["day", "hour"])
def test_a_persons_activity_includes_what_they_did_before_signing_in(
    client: TestClient, store: ChdbStore, granularity: str
) -> None:
    # Browser b-1: two events signed out, then alice signs in (one event). Later bob signs in
    # on the same browser: its signed-out history stays alice's, not bob's.
    for _ in range(2):
        _post(client, [event("feature_usage")], anonymous_id="b-1")
    _post(client, [event("chat_interaction")], anonymous_id="b-1", user_id="alice")
    _post(client, [event("chat_interaction")], anonymous_id="b-1", user_id="bob")
    _post(client, [event("feature_usage")], anonymous_id="b-2")  # someone else, never signed in
    wait_until(lambda: _count(store) == 5, timeout=20)
    today = datetime.now(UTC).date().isoformat()

    def totals(user: str) -> tuple[int, int, int]:
        reply = client.get("/api/analytics/reports/user-activity",
                           params={"start_date": today, "end_date": today, "user_id": user,
                                   "granularity": granularity})  # fmt: skip
        assert reply.status_code == 200, reply.text
        periods = reply.json()["periods"]
        return (sum(p["total_events"] for p in periods),
                sum(p["feature_interactions"] for p in periods),
                max(p["active_users"] for p in periods))  # fmt: skip

    assert totals("alice") == (3, 2, 1)  # one person, however many ids
    assert totals("bob") == (1, 0, 1)
    assert totals("b-2") == (1, 1, 1)


@given(st.text(max_size=20))
def test_an_id_is_refused_exactly_when_it_holds_a_control_character(text: str) -> None:
    """C0 (below 32), DEL and C1 (127-159): the regular expression's class is that range."""
    control = any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)
    try:
        identity.resolve(_context(user_id=f"u{text}x"))
    except BadRequest as exc:
        assert control == ("control" in str(exc))
    else:
        assert not control
