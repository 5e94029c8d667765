"""Decoding, validation and enrichment as pure functions: no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from netra_analytics.errors import BadRequest, PayloadTooLarge
from netra_analytics.ingest.process import RequestInfo, format_timestamp, process
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


@pytest.mark.parametrize(("offset", "bound"), [(timedelta(days=3), 1), (timedelta(days=-40), -1)])
def test_clock_more_than_a_day_off_is_clamped_and_both_times_kept(
    offset: timedelta, bound: int
) -> None:
    client_time = NOW + offset
    sent = {**event("feature_usage"), "timestamp": client_time.isoformat()}
    row = _row(_process(body([sent])).accepted[0].row)
    assert row["timestamp"] == format_timestamp(NOW + bound * timedelta(hours=24))
    props = orjson.loads(row["properties"])
    assert props["_client_timestamp"] == format_timestamp(client_time)
    assert props["_received_at"] == format_timestamp(NOW)


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
