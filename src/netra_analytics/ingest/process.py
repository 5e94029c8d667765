"""From a request body to rows: decode, validate, enrich. Pure functions, no I/O.

The envelope (`events` and `context`) must be well formed or the whole request is refused
(400/413). Each event is then judged on its own: valid ones become `frontend_events` rows,
invalid ones are reported by index with every field error, and neither affects the other.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson

from netra_analytics.errors import BadRequest, PayloadTooLarge
from netra_analytics.privacy.redact import redact_event
from netra_analytics.prompts.sanitise import sanitise
from netra_analytics.taxonomy import (
    EVENT_TYPES,
    FREE_TEXT_FIELDS,
    MAX_EVENTS,
    Context,
    EventType,
    FieldError,
    Properties,
    field_error,
    properties_errors,
)

# A client clock further than this from ours is not trusted (DESIGN: "clamped").
MAX_CLOCK_SKEW = timedelta(hours=24)


class Envelope(msgspec.Struct):
    events: list[msgspec.Raw]
    context: Context


class WireEvent(msgspec.Struct, forbid_unknown_fields=True):
    event_type: str
    properties: msgspec.Raw
    timestamp: datetime | None = None
    event_id: uuid.UUID | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class RequestInfo:
    """What the service knows about a request besides its body."""

    received_at: datetime  # aware, UTC
    user_agent: str = ""
    ip_hash: str = ""
    country_code: str = ""


@dataclasses.dataclass(frozen=True)
class AcceptedEvent:
    index: int  # position in the request's events
    event_id: str
    event_type: str
    timestamp: datetime
    properties: Properties
    row: bytes  # one JSONEachRow line for frontend_events


@dataclasses.dataclass(frozen=True)
class RejectedEvent:
    index: int
    event_type: str | None
    reason: str
    errors: tuple[FieldError, ...]
    row: bytes  # one JSONEachRow line for rejected_events

    def reply(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "event_type": self.event_type,
            "reason": self.reason,
            "errors": [{"field": e.field, "message": e.message} for e in self.errors],
        }


@dataclasses.dataclass(frozen=True)
class Batch:
    context: Context
    accepted: list[AcceptedEvent]
    rejected: list[RejectedEvent]


_envelope_decoder = msgspec.json.Decoder(Envelope)
_event_decoder = msgspec.json.Decoder(WireEvent)
_property_decoders = {name: msgspec.json.Decoder(t.properties) for name, t in EVENT_TYPES.items()}


def decode_envelope(body: bytes) -> Envelope:
    try:
        envelope = _envelope_decoder.decode(body)
    except msgspec.ValidationError as exc:
        error = field_error(exc, "")
        raise BadRequest(
            f"invalid request body: {error.field or 'body'}: {error.message}"
        ) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if len(envelope.events) > MAX_EVENTS:
        raise PayloadTooLarge(
            f"{len(envelope.events)} events in one request; the limit is {MAX_EVENTS}"
        )
    return envelope


def process(body: bytes, info: RequestInfo) -> Batch:
    envelope = decode_envelope(body)
    context = envelope.context
    accepted: list[AcceptedEvent] = []
    rejected: list[RejectedEvent] = []
    seen_ids: set[str] = set()
    for index, raw in enumerate(envelope.events):
        outcome = _one_event(index, bytes(raw), context, info)
        if isinstance(outcome, AcceptedEvent):
            if outcome.event_id in seen_ids:
                outcome = _rejection(
                    index, bytes(raw), outcome.event_type, "duplicate_event_id",
                    [FieldError("event_id", "the same event_id appears earlier in this request")],
                    context, info,
                )  # fmt: skip
            else:
                seen_ids.add(outcome.event_id)
                accepted.append(outcome)
                continue
        rejected.append(outcome)
    return Batch(context, accepted, rejected)


def _one_event(
    index: int, raw: bytes, context: Context, info: RequestInfo
) -> AcceptedEvent | RejectedEvent:
    try:
        wire = _event_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        errors = [field_error(exc, "")]
        return _rejection(index, raw, _peek_event_type(raw), "invalid_event", errors, context, info)
    event_type = EVENT_TYPES.get(wire.event_type)
    if event_type is None:
        known = ", ".join(EVENT_TYPES)
        errors = [
            FieldError("event_type", f"unknown event type {wire.event_type!r}; known: {known}")
        ]
        return _rejection(index, raw, wire.event_type, "unknown_event_type", errors, context, info)
    try:
        props = _property_decoders[wire.event_type].decode(wire.properties)
    except msgspec.ValidationError:
        errors = properties_errors(event_type, bytes(wire.properties))
        return _rejection(index, raw, wire.event_type, "invalid_properties", errors, context, info)
    return _accept(index, wire, event_type, props, context, info)


def _peek_event_type(raw: bytes) -> str | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    event_type = value.get("event_type") if isinstance(value, dict) else None
    return event_type if isinstance(event_type, str) else None


def _accept(
    index: int,
    wire: WireEvent,
    event_type: EventType,
    props: Properties,
    context: Context,
    info: RequestInfo,
) -> AcceptedEvent:
    event_id = str(wire.event_id) if wire.event_id is not None else str(uuid.uuid4())
    props = _sanitised(props)
    timestamp, clock_note = _event_time(wire.timestamp, info.received_at)
    if clock_note:
        properties_json = orjson.dumps({**msgspec.to_builtins(props), **clock_note}).decode()
    else:
        properties_json = msgspec.json.encode(props).decode()
    category, action, label, value = event_type.columns(props)
    row = orjson.dumps(
        {
            # event_id first: the batch writer reads it back from the start of the line.
            "event_id": event_id,
            "timestamp": format_timestamp(timestamp),
            "user_id": context.user_id,
            "session_id": context.session_id,
            "event_type": event_type.name,
            "event_category": category,
            "event_action": action,
            "event_label": label,
            "event_value": value,
            "properties": properties_json,
            "user_agent": info.user_agent,
            "ip_address": info.ip_hash,
            "country_code": info.country_code,
            "page_path": context.page_path,
            "page_title": context.page_title,
            "referrer": context.referrer,
            "gtm_container_id": context.gtm_container_id,
            "environment": context.environment,
            "app_version": context.app_version,
        }
    )
    return AcceptedEvent(index, event_id, event_type.name, timestamp, props, row)


def _sanitised(props: Properties) -> Properties:
    changes = {}
    for name in FREE_TEXT_FIELDS:
        text = getattr(props, name, None)
        if text:
            clean = sanitise(text)
            if clean != text:
                changes[name] = clean
    return msgspec.structs.replace(props, **changes) if changes else props


def _event_time(client: datetime | None, received: datetime) -> tuple[datetime, dict[str, str]]:
    """The client's time, clamped to within a day of ours (and both kept when clamped)."""
    if client is None:
        return received, {}
    if client.tzinfo is None:
        client = client.replace(tzinfo=UTC)
    low, high = received - MAX_CLOCK_SKEW, received + MAX_CLOCK_SKEW
    if low <= client <= high:
        return client, {}
    clamped = min(max(client, low), high)
    note = {
        "_client_timestamp": format_timestamp(client),
        "_received_at": format_timestamp(received),
    }
    return clamped, note


def format_timestamp(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _rejection(
    index: int,
    raw: bytes,
    event_type: str | None,
    reason: str,
    errors: list[FieldError],
    context: Context,
    info: RequestInfo,
) -> RejectedEvent:
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        event = raw.decode(errors="replace")
    row = orjson.dumps(
        {
            "received_at": format_timestamp(info.received_at),
            "user_id": context.user_id,
            "session_id": context.session_id,
            "event_index": index,
            "event_type": event_type or "",
            "reason": reason,
            "errors": orjson.dumps([dataclasses.asdict(e) for e in errors]).decode(),
            "event": orjson.dumps(redact_event(event)).decode(),
            "user_agent": info.user_agent,
            "gtm_container_id": context.gtm_container_id,
            "app_version": context.app_version,
        }
    )
    return RejectedEvent(index, event_type, reason, tuple(errors), row)
