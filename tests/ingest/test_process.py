"""Decoding, validation and enrichment as pure functions: no I/O."""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netra_analytics.errors import BadRequest, PayloadTooLarge
from netra_analytics.ingest.process import (
    RequestInfo,
    TimeRejection,
    event_time,
    format_timestamp,
    process,
)
from tests.factories import EXAMPLES, body, event

NOW = datetime(2026, 11, 25, 12, 0, 0, 123000, tzinfo=UTC)
INFO = RequestInfo(received_at=NOW, user_agent="UA/1.0", ip_hash="abc123", country_code="DE")


def _process(payload: Any) -> Any:
    return process(orjson.dumps(payload), INFO)


def _row(line: bytes) -> dict[str, Any]:
    row: dict[str, Any] = orjson.loads(line)
    return row


def test_every_type_becomes_a_row_with_context_and_enrichment() -> None:
    events = [event(t) for t in EXAMPLES]
    batch = _process(
        body(events, page_title="Chat", referrer="https://x/", gtm_container_id="GTM-1",
             environment="prod", app_version="1.2.3")
    )  # fmt: skip
    assert batch.rejected == []
    assert [a.event_type for a in batch.accepted] == list(EXAMPLES)
    for sent, accepted in zip(events, batch.accepted, strict=True):
        row = _row(accepted.row)
        assert row["event_id"] == sent["event_id"] == accepted.event_id
        assert row["user_id"] == "user-1" and row["session_id"] == "session-user-1"
        assert row["page_path"] == "/chat" and row["page_title"] == "Chat"
        assert row["referrer"] == "https://x/" and row["gtm_container_id"] == "GTM-1"
        assert (row["environment"], row["app_version"]) == ("prod", "1.2.3")
        assert (row["user_agent"], row["ip_address"], row["country_code"]) == (
            "UA/1.0",
            "abc123",
            "DE",
        )
        assert row["event_type"] == sent["event_type"]
        props = orjson.loads(row["properties"])
        for key, value in sent["properties"].items():
            if key not in {
                "prompt_text",
                "comment",
                "response_value",
                "error_message",
                "stack_trace",
            }:
                assert props[key] == value


def test_event_line_starts_with_event_id() -> None:
    batch = _process(body([event("feature_usage")]))
    assert batch.accepted[0].row.startswith(b'{"event_id":"')


def test_server_assigns_an_event_id_when_the_client_sends_none() -> None:
    sent = event("feature_usage")
    del sent["event_id"]
    batch = _process(body([sent]))
    assert uuid.UUID(batch.accepted[0].event_id).version == 4


def test_mixed_batch_keeps_valid_events_and_explains_invalid_ones() -> None:
    events: list[Any] = [
        event("feature_usage"),
        {"event_type": "chat_interaction", "properties": {"thread_id": "t"}},
        "not an object",
        {"event_type": "rocket_launch", "properties": {}},
        {"event_type": "feature_usage", "properties": {}, "surprise": 1},
        event("error_tracking"),
    ]
    batch = _process(body(events))
    assert [a.event_type for a in batch.accepted] == ["feature_usage", "error_tracking"]
    reasons = {r.index: (r.event_type, r.reason) for r in batch.rejected}
    assert reasons == {
        1: ("chat_interaction", "invalid_properties"),
        2: (None, "invalid_event"),
        3: ("rocket_launch", "unknown_event_type"),
        4: ("feature_usage", "invalid_event"),
    }
    missing = {e.field for e in batch.rejected[0].errors}
    assert missing == {
        f"properties.{f}" for f in ("message_id", "message_type", "prompt_length", "is_follow_up")
    }
    assert batch.rejected[3].errors[0].field == "surprise"


def test_duplicate_event_id_in_one_request_is_rejected() -> None:
    first = event("feature_usage")
    batch = _process(body([first, {**event("feature_usage"), "event_id": first["event_id"]}]))
    assert len(batch.accepted) == 1
    assert batch.rejected[0].reason == "duplicate_event_id"


def test_timestamp_within_a_day_is_kept() -> None:
    sent = {**event("feature_usage"), "timestamp": "2026-11-24T13:00:00.5+01:00"}
    accepted = _process(body([sent])).accepted[0]
    assert _row(accepted.row)["timestamp"] == "2026-11-24T12:00:00.500Z"
    assert "_client_timestamp" not in orjson.loads(_row(accepted.row)["properties"])


def test_naive_timestamp_is_utc_and_missing_one_is_receive_time() -> None:
    naive = {**event("feature_usage"), "timestamp": "2026-11-25T11:00:00"}
    missing = event("feature_usage")
    del missing["timestamp"]
    rows = [_row(a.row) for a in _process(body([naive, missing])).accepted]
    assert rows[0]["timestamp"] == "2026-11-25T11:00:00.000Z"
    assert rows[1]["timestamp"] == format_timestamp(NOW)


def _sent(offset: timedelta | None, sent_at: datetime | None = None) -> dict[str, Any]:
    """A one-event body whose event happened `offset` from NOW by the client's clock."""
    sent = event("feature_usage")
    if offset is not None:
        sent["timestamp"] = (NOW + offset).isoformat()
    payload = body([sent])
    if sent_at is not None:
        payload["sent_at"] = sent_at.isoformat()
    return payload


def test_a_client_clock_that_is_off_is_corrected_by_sent_at() -> None:
    # The browser's clock runs 3 days fast: it stamps an event 10 minutes before it sends it.
    fast = timedelta(days=3)
    payload = _sent(fast - timedelta(minutes=10), sent_at=NOW + fast)
    row = _row(_process(payload).accepted[0].row)
    assert row["timestamp"] == format_timestamp(NOW - timedelta(minutes=10))
    props = orjson.loads(row["properties"])
    assert props["_client_timestamp"] == (NOW + fast - timedelta(minutes=10)).isoformat()
    assert props["_sent_at"] == format_timestamp(NOW + fast)
    assert props["_received_at"] == format_timestamp(NOW)


def test_an_event_queued_offline_for_days_counts_on_its_own_day() -> None:
    # Captured on Monday, delivered on Thursday by a browser whose clock is right.
    payload = _sent(-timedelta(days=3), sent_at=NOW)
    row = _row(_process(payload).accepted[0].row)
    assert row["timestamp"] == format_timestamp(NOW - timedelta(days=3))
    assert "_client_timestamp" not in orjson.loads(row["properties"])


def test_latency_is_not_taken_for_skew() -> None:
    payload = _sent(-timedelta(seconds=5), sent_at=NOW - timedelta(milliseconds=800))
    row = _row(_process(payload).accepted[0].row)
    assert row["timestamp"] == format_timestamp(NOW - timedelta(seconds=5))


@pytest.mark.parametrize(
    "offset", [timedelta(seconds=30), timedelta(hours=23), timedelta(days=400)]
)
def test_no_event_is_stored_in_the_future(offset: timedelta) -> None:
    row = _row(_process(_sent(offset)).accepted[0].row)
    assert row["timestamp"] == format_timestamp(NOW)
    props = orjson.loads(row["properties"])
    assert props["_client_timestamp"] == (NOW + offset).isoformat()
    assert props["_received_at"] == format_timestamp(NOW)


def test_events_older_than_the_bound_are_refused_pointing_to_import() -> None:
    old = _sent(-timedelta(days=7, minutes=1), sent_at=NOW)
    batch = _process({**old, "events": [*old["events"], event("feature_usage")]})
    assert [a.index for a in batch.accepted] == [1]
    [rejected] = batch.rejected
    assert (rejected.index, rejected.reason) == (0, "too_old")
    assert rejected.errors[0].field == "timestamp"
    assert "7 days" in rejected.errors[0].message and "import" in rejected.errors[0].message
    assert _row(_process(_sent(-timedelta(days=6, hours=23), sent_at=NOW)).accepted[0].row)


def test_the_bound_is_a_setting() -> None:
    info = dataclasses.replace(INFO, max_event_age=timedelta(days=2))
    batch = process(orjson.dumps(_sent(-timedelta(days=3))), info)
    assert [r.reason for r in batch.rejected] == ["too_old"]


@pytest.mark.parametrize(
    "timestamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00"]
)
def test_timestamps_at_the_ends_of_the_calendar_cost_only_their_event(timestamp: str) -> None:
    batch = _process(
        body([{**event("feature_usage"), "timestamp": timestamp}, event("chat_interaction")])
    )
    assert [a.event_type for a in batch.accepted][-1] == "chat_interaction"
    if timestamp.startswith("9999"):  # in the future: stored at the time it was received
        assert _row(batch.accepted[0].row)["timestamp"] == format_timestamp(NOW)
    else:
        assert [r.reason for r in batch.rejected] == ["too_old"]


@given(
    client=st.datetimes(timezones=st.timezones() | st.just(UTC) | st.none()),
    sent=st.none() | st.datetimes(timezones=st.just(UTC)),
)
@settings(max_examples=300, deadline=None)
def test_any_time_and_clock_gives_a_time_in_range_or_a_reason(
    client: datetime, sent: datetime | None
) -> None:
    outcome = event_time(client, None if sent is None else int(sent.timestamp() * 1000), NOW,
                         timedelta(days=7))  # fmt: skip
    if isinstance(outcome, TimeRejection):
        assert (outcome.reason, outcome.error.field) == ("too_old", "timestamp")
        return
    assert NOW - timedelta(days=7) <= outcome.timestamp <= NOW
    assert outcome.timestamp.tzinfo is not None
    format_timestamp(outcome.timestamp)


def test_bad_timestamp_is_a_field_error() -> None:
    batch = _process(body([{**event("feature_usage"), "timestamp": "yesterday"}]))
    assert batch.rejected[0].errors[0].field == "timestamp"


def test_free_text_is_sanitised_before_it_becomes_a_row() -> None:
    sent = event("chat_interaction", prompt_text="mail jane@corp.example, card 4111 1111 1111 1111")
    row = _row(_process(body([sent])).accepted[0].row)
    props = orjson.loads(row["properties"])
    assert props["prompt_text"] == "mail [EMAIL], card [CARD]"
    assert props["prompt_length"] == EXAMPLES["chat_interaction"]["prompt_length"]
    assert b"jane@corp.example" not in _process(body([sent])).accepted[0].row


def test_rejected_row_redacts_free_text_and_unknown_fields() -> None:
    sent = {"event_type": "chat_interaction",
            "properties": {"thread_id": "t-9", "prompt_text": "my email is jane@corp.example",
                           "phone": "+1 555 0100 222"}}  # fmt: skip
    rejection = _process(body([sent])).rejected[0]
    row = _row(rejection.row)
    assert b"jane@corp.example" not in rejection.row and b"555" not in rejection.row
    stored = orjson.loads(row["event"])
    assert stored["properties"]["thread_id"] == "t-9"
    assert stored["properties"]["prompt_text"] == "[REDACTED 29 chars]"
    assert row["reason"] == "invalid_properties" and row["event_index"] == 0


@pytest.mark.parametrize(
    "payload",
    [b"", b"{", b"[]", b'{"events": []}', b'{"context": {"user_id": "u", "session_id": "s"}}',
     b'{"events": {}, "context": {"user_id": "u", "session_id": "s"}}',
     b'{"events": [], "context": {"user_id": "", "session_id": "s"}}',
     b'{"events": [], "context": {"user_id": 5, "session_id": "s"}}'],
)  # fmt: skip
def test_malformed_envelope_is_bad_request(payload: bytes) -> None:
    with pytest.raises(BadRequest) as raised:
        process(payload, INFO)
    assert type(raised.value) is BadRequest
    assert str(raised.value)


def test_more_than_500_events_is_too_large() -> None:
    with pytest.raises(PayloadTooLarge):
        _process(body([event("feature_usage") for _ in range(501)]))
    assert len(_process(body([event("feature_usage") for _ in range(500)])).accepted) == 500


def test_a_naive_timestamp_is_utc_whatever_the_machines_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        naive = {**event("feature_usage"), "timestamp": "2026-11-25T11:00:00"}
        row = _row(_process(body([naive])).accepted[0].row)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert row["timestamp"] == "2026-11-25T11:00:00.000Z"


def _strftime_reference(moment: datetime) -> str:
    """How timestamps were formatted before the fast path (strftime): the reference."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30))  # naive: local time
    | st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.timezones())
)
def test_timestamps_are_formatted_as_strftime_did(moment: datetime) -> None:
    expected = _strftime_reference(moment)
    assert format_timestamp(moment) == expected
    assert format_timestamp(moment) == expected  # again: now from the one-entry cache
    same_value = moment.replace()  # an equal time in another object is formatted afresh
    assert format_timestamp(same_value) == expected
