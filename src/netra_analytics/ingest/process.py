"""From a request body to rows: decode, validate, enrich. Pure functions, no I/O.

The envelope (`events` and `context`) must be well formed or the whole request is refused
(400/413). Each event is then judged on its own: valid ones become `frontend_events` rows,
invalid ones are reported by index with every field error, and neither affects the other.

Two endpoints take bodies of this shape, and differ only in a few rules, a `Policy`: the
browser's events endpoint (`EVENTS`: 500 events, 1 MiB, clock skew corrected by `sent_at`,
the tag's offline age bound) and the historical import (`IMPORT`: 5,000 events, 8 MiB,
timestamps kept as sent back to the events' retention, each event may carry its own context).
"""

from __future__ import annotations

import dataclasses
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson

from netra_analytics.errors import BadRequest, PayloadTooLarge
from netra_analytics.ingest import identity
from netra_analytics.ingest.body import split_envelope
from netra_analytics.ingest.ids import new_event_id
from netra_analytics.privacy.redact import redact_event
from netra_analytics.prompts.sanitise import sanitise
from netra_analytics.taxonomy import (
    EVENT_TYPES,
    FREE_TEXT_FIELDS,
    MAX_BODY_BYTES,
    MAX_EVENTS,
    Context,
    EventType,
    FieldError,
    Properties,
    ShortText,
    field_error,
    properties_errors,
)

# Events as old as the tag keeps them in its offline queue are counted on their own day.
DEFAULT_MAX_EVENT_AGE = timedelta(days=7)
# A clock this close to ours is taken as right: the skew is then only the network's latency.
SKEW_TOLERANCE_MS = 2000
_EPOCH = datetime(1970, 1, 1)  # naive on purpose: see _epoch_ms
# How long frontend_events keeps an event (its TTL, migration 0001): an import reaches back this
# far; an older event would be deleted on arrival. A test compares it with the migration.
EVENT_RETENTION = timedelta(days=90)


# The decoders stop at Python's recursion limit (sys.getrecursionlimit(), 1,000 by default):
# no event of the taxonomy nests more than a few levels, so that is the bound a body meets.
TOO_DEEP = f"nested deeper than {sys.getrecursionlimit():,} levels"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Policy:
    """The rules by which one endpoint takes a body of events (the module docstring).

    `max_events` and `max_body_bytes` (also once inflated) bound one request (413 beyond);
    `correct_clock`: move each event by the skew between the envelope's `sent_at` and our clock
    (the browser), or keep its timestamp as sent (a backfill, whose timestamps are the history);
    `require_timestamp`: an event without one is refused rather than stamped with the time of
    receipt; `too_old_reason` and `too_old_hint` name and explain the rejection of an event older
    than the request's `max_event_age`; `event_context`: each event may carry its own `context`
    (with the `user_agent` of the browser that saw it), which replaces the envelope's.
    """

    name: str
    max_events: int
    max_body_bytes: int
    correct_clock: bool
    require_timestamp: bool
    too_old_reason: str
    too_old_hint: str
    event_context: bool


EVENTS = Policy(
    name="events",
    max_events=MAX_EVENTS,
    max_body_bytes=MAX_BODY_BYTES,
    correct_clock=True,
    require_timestamp=False,
    too_old_reason="too_old",
    too_old_hint="send older history through the historical import",
    event_context=False,
)
# 5,000 events: the batch the writer inserts fastest (DESIGN.md: ~250k rows/s at 5,000 rows);
# 8 MiB leaves ~1.6 KB per event, several times a typical event with its context.
IMPORT = Policy(
    name="import",
    max_events=5000,
    max_body_bytes=8 << 20,
    correct_clock=False,
    require_timestamp=True,
    too_old_reason="beyond_retention",
    too_old_hint="events are kept 90 days, so an older one would be deleted on arrival",
    event_context=True,
)


class ImportContext(Context, frozen=True):
    """An imported event's context: the browser's context plus the `user_agent` of the browser
    that saw the event (the import's own client is not it; empty for a server-side source)."""

    user_agent: ShortText = ""


class Envelope(msgspec.Struct):
    events: list[msgspec.Raw]
    context: Context
    sent_at: object = None  # read leniently: a bad value costs the correction, not the batch


class WireEvent(msgspec.Struct, forbid_unknown_fields=True):
    event_type: str
    properties: msgspec.Raw
    timestamp: datetime | None = None
    event_id: uuid.UUID | None = None


class ImportEnvelope(msgspec.Struct):
    events: list[msgspec.Raw]
    context: ImportContext | None = None  # the default of events without their own
    sent_at: object = None  # accepted for symmetry with the events body; not used


class ImportWireEvent(WireEvent, forbid_unknown_fields=True):
    context: ImportContext | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class RequestInfo:
    """What the service knows about a request besides its body."""

    received_at: datetime  # aware, UTC
    user_agent: str = ""
    ip_hash: str = ""
    country_code: str = ""
    max_event_age: timedelta = DEFAULT_MAX_EVENT_AGE


@dataclasses.dataclass(frozen=True)
class AcceptedEvent:
    index: int  # position in the request's events
    event_id: str
    event_type: str
    timestamp: datetime
    properties: Properties
    row: bytes  # one JSONEachRow line for frontend_events
    context: Context  # resolved (`identity.resolve`): `user_id` is the id it is stored under
    user_agent: str  # the browser's, as stored (for bot detection)


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
    context: Context  # the envelope's; a blank one (`NO_CONTEXT`) when an import has none
    accepted: list[AcceptedEvent]
    rejected: list[RejectedEvent]


NO_CONTEXT = Context(session_id="")  # stands for an import envelope's missing context

_envelope_decoder = msgspec.json.Decoder(Envelope)
_import_envelope_decoder = msgspec.json.Decoder(ImportEnvelope)
_event_decoder = msgspec.json.Decoder(WireEvent)
_import_event_decoder = msgspec.json.Decoder(ImportWireEvent)
_property_decoders = {name: msgspec.json.Decoder(t.properties) for name, t in EVENT_TYPES.items()}


_context_decoder = msgspec.json.Decoder(Context)
_import_context_decoder = msgspec.json.Decoder(ImportContext)


def decode_envelope(body: bytes, policy: Policy = EVENTS) -> Envelope | ImportEnvelope:
    """The request's envelope, its context resolved to the person (`identity.resolve`).

    `body` is UTF-8 JSON (`body.to_utf8`). Raises BadRequest (400) for a body that is not JSON
    or an envelope that is not well formed, PayloadTooLarge (413) over `policy.max_events`.
    """
    decoder = _import_envelope_decoder if policy.event_context else _envelope_decoder
    envelope: Envelope | ImportEnvelope
    try:
        envelope = decoder.decode(body)
    except RecursionError:
        envelope = _decode_deep(body, policy)
    except msgspec.ValidationError as exc:
        error = field_error(exc, "")
        raise BadRequest(
            f"invalid request body: {error.field or 'body'}: {error.message}"
        ) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if len(envelope.events) > policy.max_events:
        raise PayloadTooLarge(
            f"{len(envelope.events)} events in one request; the limit is {policy.max_events}"
        )
    if envelope.context is not None:
        envelope.context = identity.resolve(envelope.context)
    return envelope


def _decode_deep(body: bytes, policy: Policy) -> Envelope | ImportEnvelope:
    """The envelope of a body nested too deeply to decode at once: its members one by one."""
    parts = split_envelope(body)
    events = [msgspec.Raw(event) for event in parts.events]
    if parts.context is None and policy.event_context:
        return ImportEnvelope(events)
    if parts.context is None:
        raise BadRequest("invalid request body: context: required field is missing")
    decoder = _import_context_decoder if policy.event_context else _context_decoder
    try:
        context = decoder.decode(parts.context)
    except RecursionError:
        raise BadRequest(f"invalid request body: context: {TOO_DEEP}") from None
    except msgspec.ValidationError as exc:
        error = field_error(exc, "context")
        raise BadRequest(f"invalid request body: {error.field}: {error.message}") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if isinstance(context, ImportContext):
        return ImportEnvelope(events, context)
    return Envelope(events, context)


def process(body: bytes, info: RequestInfo, policy: Policy = EVENTS) -> Batch:
    """Decode, validate and enrich one request's body (UTF-8 JSON) into rows, by `policy`. Pure.

    Raises BadRequest (400/413) when the body or envelope is refused as a whole; every other
    problem is one event's rejection, reported by index.
    """
    envelope = decode_envelope(body, policy)
    context = envelope.context or NO_CONTEXT
    sent_ms = _sent_at_ms(envelope.sent_at) if policy.correct_clock else None
    accepted: list[AcceptedEvent] = []
    rejected: list[RejectedEvent] = []
    seen_ids: set[tuple[str, str]] = set()  # (user, event id): ids are unique per person
    for index, raw in enumerate(envelope.events):
        outcome = _one_event(index, bytes(raw), context, info, sent_ms, policy)
        if isinstance(outcome, AcceptedEvent):
            key = (outcome.context.user_id, outcome.event_id)
            if key in seen_ids:
                outcome = _rejection(
                    index, bytes(raw), outcome.event_type, "duplicate_event_id",
                    [FieldError("event_id", "the same event_id appears earlier in this request")],
                    context, info,
                )  # fmt: skip
            else:
                seen_ids.add(key)
                accepted.append(outcome)
                continue
        rejected.append(outcome)
    return Batch(context, accepted, rejected)


def _one_event(
    index: int,
    raw: bytes,
    context: Context,
    info: RequestInfo,
    sent_ms: int | None,
    policy: Policy,
) -> AcceptedEvent | RejectedEvent:
    wire: WireEvent
    try:
        wire = (_import_event_decoder if policy.event_context else _event_decoder).decode(raw)
    except RecursionError:
        errors = [FieldError("", f"{TOO_DEEP} to be an event")]
        return _rejection(index, b"null", None, "invalid_event", errors, context, info)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        errors = (
            [field_error(exc, "")]
            if isinstance(exc, msgspec.ValidationError)
            else [FieldError("", f"not valid JSON: {exc}")]
        )
        return _rejection(index, raw, _peek_event_type(raw), "invalid_event", errors, context, info)
    if isinstance(wire, ImportWireEvent):
        try:
            context = _event_context(wire.context, context)
        except BadRequest as exc:
            field, _, message = str(exc).partition(": ")
            errors = [FieldError(field, message)]
            # Not the envelope's person's event: whose it is, is what could not be read.
            return _rejection(index, raw, wire.event_type, "invalid_event", errors,
                              NO_CONTEXT, info)  # fmt: skip
    event_type = EVENT_TYPES.get(wire.event_type)
    if event_type is None:
        known = ", ".join(EVENT_TYPES)
        errors = [
            FieldError("event_type", f"unknown event type {wire.event_type!r}; known: {known}")
        ]
        return _rejection(index, raw, wire.event_type, "unknown_event_type", errors, context, info)
    try:
        props = _property_decoders[wire.event_type].decode(wire.properties)
    except RecursionError:
        errors = [FieldError("properties", TOO_DEEP)]
        return _rejection(index, raw, wire.event_type, "invalid_properties", errors, context, info)
    except msgspec.ValidationError:
        errors = properties_errors(event_type, bytes(wire.properties))
        return _rejection(index, raw, wire.event_type, "invalid_properties", errors, context, info)
    if wire.timestamp is None and policy.require_timestamp:
        errors = [FieldError("timestamp", f"required by the {policy.name} endpoint")]
        return _rejection(index, raw, wire.event_type, "invalid_event", errors, context, info)
    moment = event_time(
        wire.timestamp, sent_ms, info.received_at, info.max_event_age, policy=policy
    )
    if isinstance(moment, TimeRejection):
        errors = [moment.error]
        return _rejection(index, raw, wire.event_type, moment.reason, errors, context, info)
    return _accept(index, wire, event_type, props, context, info, moment)


def _event_context(own: ImportContext | None, envelope: Context) -> Context:
    """An imported event's context: its own (resolved), else the envelope's. BadRequest names
    the field when it has neither, or an id is a placeholder."""
    if own is not None:
        return identity.resolve(own)
    if envelope is NO_CONTEXT:
        raise BadRequest("context: required, in the event or in the envelope")
    return envelope


def _peek_event_type(raw: bytes) -> str | None:
    try:
        value = orjson.loads(raw)
    except (orjson.JSONDecodeError, RecursionError):
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
    moment: EventTime,
) -> AcceptedEvent:
    event_id = str(wire.event_id) if wire.event_id is not None else new_event_id()
    props = _sanitised(props)
    timestamp, clock_note = moment.timestamp, moment.note
    if clock_note:
        properties_json = orjson.dumps({**msgspec.to_builtins(props), **clock_note}).decode()
    else:
        properties_json = msgspec.json.encode(props).decode()
    category, action, label, value = event_type.columns(props)
    # An import's client is not the browser: the browser's user agent comes with the context.
    user_agent = context.user_agent if isinstance(context, ImportContext) else info.user_agent
    row = orjson.dumps(
        {
            # event_id first: the batch writer reads it back from the start of the line.
            "event_id": event_id,
            "timestamp": format_timestamp(timestamp),
            "user_id": context.user_id,
            "anonymous_id": context.anonymous_id,
            "session_id": context.session_id,
            "event_type": event_type.name,
            "event_category": category,
            "event_action": action,
            "event_label": label,
            "event_value": value,
            "properties": properties_json,
            "user_agent": user_agent,
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
    return AcceptedEvent(
        index, event_id, event_type.name, timestamp, props, row, context, user_agent
    )


# Each event type's free-text fields (attribute names): most types have none or one, so an
# event is not asked for the six names of every type.
_FREE_TEXT_OF: dict[type, tuple[str, ...]] = {
    t.properties: tuple(
        f.name for f in msgspec.structs.fields(t.properties) if f.encode_name in FREE_TEXT_FIELDS
    )
    for t in EVENT_TYPES.values()
}


def _sanitised(props: Properties) -> Properties:
    changes = {}
    for name in _FREE_TEXT_OF[type(props)]:
        text = getattr(props, name)
        if text:
            clean = sanitise(text)
            if clean != text:
                changes[name] = clean
    return msgspec.structs.replace(props, **changes) if changes else props


@dataclasses.dataclass(frozen=True)
class EventTime:
    timestamp: datetime  # aware, UTC: what is stored
    note: dict[str, str]  # the raw times, when the stored time is not the client's


@dataclasses.dataclass(frozen=True)
class TimeRejection:
    reason: str  # `Policy.too_old_reason`, or `in_future` (import)
    error: FieldError


def event_time(
    client: datetime | None,
    sent_ms: int | None,
    received: datetime,
    max_age: timedelta,
    *,
    policy: Policy = EVENTS,
) -> EventTime | TimeRejection:
    """When an event happened, by the service's clock; a TimeRejection when it cannot be taken.

    Rules (README, "Event time"): the client's `timestamp` corrected by the skew between the
    client's and the service's clocks, `received - sent_at` (ignored within SKEW_TOLERANCE_MS,
    which is only latency; `sent_ms` is None without a correction); older than `max_age` before
    `received` is refused (`policy.too_old_reason`). A time after `received` becomes `received`
    with the correction (a browser); without it (an import, timestamps as sent) it is refused as
    `in_future` beyond SKEW_TOLERANCE_MS, and otherwise stored as `received`. Without
    `timestamp`, `received`. When the stored time is not the client's, the raw times are kept
    (`_client_timestamp`, `_sent_at`, `_received_at`). Arithmetic is on integer milliseconds,
    so no date is out of range.
    """
    if client is None:
        return EventTime(received, {})
    received_ms = _epoch_ms(received)
    client_ms = _epoch_ms(client)
    if not policy.correct_clock:
        sent_ms = None
    skew_ms = 0 if sent_ms is None else received_ms - sent_ms
    if abs(skew_ms) <= SKEW_TOLERANCE_MS:
        skew_ms = 0
    if not policy.correct_clock and client_ms > received_ms + SKEW_TOLERANCE_MS:
        error = FieldError(
            "timestamp", f"event time {client.isoformat()} is after the request was received"
        )
        return TimeRejection("in_future", error)
    corrected_ms = min(client_ms + skew_ms, received_ms)
    oldest_ms = received_ms - max_age // timedelta(milliseconds=1)
    if corrected_ms < oldest_ms:
        days = max_age / timedelta(days=1)
        corrected = (
            " (after correcting the client's clock by sent_at)" if policy.correct_clock else ""
        )
        error = FieldError(
            "timestamp",
            f"event time {client.isoformat()} is more than {days:g} days before the request"
            f"{corrected}; {policy.too_old_hint}",
        )
        return TimeRejection(policy.too_old_reason, error)
    if corrected_ms == client_ms:  # a naive time is UTC, not this machine's local time
        aware = client if client.tzinfo is not None else client.replace(tzinfo=UTC)
        return EventTime(aware.astimezone(UTC), {})
    note = {"_client_timestamp": client.isoformat(), "_received_at": format_timestamp(received)}
    if sent_ms is not None:
        note["_sent_at"] = _format_ms(sent_ms)
    return EventTime(datetime.fromtimestamp(corrected_ms / 1000, UTC), note)


def _epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of any datetime (naive: UTC), without leaving the range."""
    offset = moment.utcoffset() or timedelta(0)
    return (moment.replace(tzinfo=None) - _EPOCH - offset) // timedelta(milliseconds=1)


def _format_ms(ms: int) -> str:
    try:
        return format_timestamp(datetime.fromtimestamp(ms / 1000, UTC))
    except (OverflowError, ValueError, OSError):
        return str(ms)


def _sent_at_ms(value: object) -> int | None:
    """The envelope's `sent_at` in epoch ms; None when absent or unreadable (then no correction)."""
    if not isinstance(value, str):
        return None
    try:
        return _epoch_ms(msgspec.convert(value, datetime))
    except msgspec.ValidationError:
        return None


# The last time formatted and its text: the events of a request mostly share one time (the
# request's, when the browser sent none), so most calls answer from here. A tuple, swapped
# whole, so that threads (the import's) never see one's time with another's text.
_last_formatted: tuple[datetime | None, str] = (None, "")


def format_timestamp(moment: datetime) -> str:
    """`moment` in UTC as ClickHouse reads a DateTime64(3): `2026-11-30T20:57:35.123Z` (ms,
    truncated). A naive `moment` is taken as this machine's local time (`astimezone`)."""
    global _last_formatted
    last = _last_formatted
    if moment is last[0]:
        return last[1]
    utc = moment.astimezone(UTC)
    if utc.year >= 1000:  # isoformat (C) pads the year to four digits, strftime does not
        text = utc.isoformat(timespec="milliseconds")[:23] + "Z"
    else:
        text = utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    _last_formatted = (moment, text)
    return text


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
    row = rejected_row(
        received_at=info.received_at,
        user_id=context.user_id,
        session_id=context.session_id,
        event_index=index,
        event_type=event_type or "",
        reason=reason,
        errors=errors,
        event=event,
        user_agent=info.user_agent,
        gtm_container_id=context.gtm_container_id,
        app_version=context.app_version,
    )
    return RejectedEvent(index, event_type, reason, tuple(errors), row)


def rejected_row(
    *,
    received_at: datetime,
    user_id: str,
    session_id: str,
    event_index: int,
    event_type: str,
    reason: str,
    errors: list[FieldError],
    event: object,
    user_agent: str,
    gtm_container_id: str,
    app_version: str,
) -> bytes:
    """One JSONEachRow line for `rejected_events`; `event` (as sent) has its free text redacted."""
    return orjson.dumps(
        {
            "received_at": format_timestamp(received_at),
            "user_id": user_id,
            "session_id": session_id,
            "event_index": event_index,
            "event_type": event_type,
            "reason": reason,
            "errors": orjson.dumps([dataclasses.asdict(e) for e in errors]).decode(),
            "event": orjson.dumps(redact_event(event)).decode(),
            "user_agent": user_agent,
            "gtm_container_id": gtm_container_id,
            "app_version": app_version,
        }
    )
