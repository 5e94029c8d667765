"""`POST /api/analytics/events`: a plain Starlette route, kept lean because it is the hot path.

Order of work: credentials, when sent or required (401/403: `auth.access`) → content type
(415) → size (413) → content encoding and charset (415, or repaired: see `body`) → envelope and
identity (400; 403 when a token's subject is not `context.user_id`) → each event (per-event
rejections, event time) → per-user rate limit (one round trip; events over the limit are
rejected as `rate_limited`, and 429 when none passed) → spool append with fsync → reply, with
the live state updated off the request path. A 202 means every accepted event is on disk; the
batch writer takes it from there. A known bot's events (`bots`) are accepted alike but stored
apart, in `bot_events`, and leave the live state alone. A request without consent (`consent`:
denied in the context, or the browser's DNT or Sec-GPC signal) stores nothing and is only
counted.

`POST /api/analytics/import` (historical import, backfills and server-side sources) shares
every step but three, set by `process.IMPORT`: larger requests; timestamps kept as sent, back to
the events' retention; each event may carry its own context. Instead of the per-user rate limit
it has its own bound, `throttle.EventBudget` (429 with Retry-After, the request refused whole).
A bot is judged by the user agent of the browser in the event's context, not by the import's
client. Only events of the last LIVE_WINDOW reach the live state (the real-time panels).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from netra_analytics import metrics
from netra_analytics.auth.access import check_sender, guard, ingest_principal
from netra_analytics.errors import NetraError, PayloadTooLarge, UnsupportedMedia, WriterDown
from netra_analytics.ingest.body import charset_of, decompress, to_utf8
from netra_analytics.ingest.bots import is_bot
from netra_analytics.ingest.consent import refusal
from netra_analytics.ingest.process import (
    EVENT_RETENTION,
    EVENTS,
    IMPORT,
    AcceptedEvent,
    Policy,
    RejectedEvent,
    RequestInfo,
    process,
)
from netra_analytics.ingest.throttle import EventBudget
from netra_analytics.ingest.writer import SpoolRecord, encode_record
from netra_analytics.live.activity import activity_from
from netra_analytics.service import Service

# sendBeacon posts strings as text/plain, which also spares browsers a CORS preflight.
ACCEPTED_MEDIA_TYPES = frozenset({"application/json", "text/plain"})
USER_AGENT_LIMIT = 512
# Imported events this recent also update the live state, as if they had just arrived.
LIVE_WINDOW = timedelta(minutes=5)


# prometheus_client's `labels()` validates and locks on every call (~10 µs): the hot path
# keeps each label set's child. Bounded: event types and outcomes are closed sets (an unknown
# event type is counted under the type it claimed only when rejected: at most MAX_CHILDREN).
MAX_CHILDREN = 4096
_children: dict[tuple[object, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, kept (the metrics are module-level: their ids are stable)."""
    key = (id(metric), *labels)
    child = _children.get(key)
    if child is None:
        child = metric.labels(*labels)
        if len(_children) < MAX_CHILDREN:
            _children[key] = child
    return child


async def post_events(request: Request) -> Response:
    try:
        response = await _ingest(request)
    except NetraError as exc:
        _child(metrics.REQUESTS, str(exc.status_code)).inc()
        raise
    _child(metrics.REQUESTS, str(response.status_code)).inc()
    return response


async def _ingest(request: Request) -> Response:
    service: Service = request.app.state.service
    sender = await ingest_principal(request)  # 401/403; None for an anonymous browser
    if (writer := service.writer_down()) is not None:  # a 202 would promise what none keeps
        raise WriterDown(writer.retry_after())
    headers = _headers(request)
    body = await _decoded_body(request, headers, EVENTS)
    received = service.clock()
    now_ms = int(received * 1000)
    user_agent = headers.get("user-agent", "")[:USER_AGENT_LIMIT]
    info = RequestInfo(
        received_at=datetime.fromtimestamp(received, UTC),
        user_agent=user_agent,
        ip_hash=service.hash_ip(request.client.host if request.client else None),
        country_code=_country(headers, service.settings.country_headers),
        max_event_age=timedelta(days=service.settings.max_event_age_days),
    )
    batch = process(body, info)
    check_sender(sender, batch.context.user_id)  # a signed-in page sends as its user only
    refused = refusal(batch.context.consent, headers, service.settings.privacy_signals)
    if refused is not None:
        return _not_stored(batch.accepted, len(batch.rejected), refused)
    bot = service.settings.bot_filter and is_bot(user_agent)
    limit = service.settings.max_events_per_user_per_minute
    decision = await service.live.take(
        batch.context.user_id, [e.event_id for e in batch.accepted], now_ms, limit
    )
    accepted = [e for e, ok in zip(batch.accepted, decision.admitted, strict=True) if ok]
    limited = [e for e, ok in zip(batch.accepted, decision.admitted, strict=True) if not ok]
    await _spool(service, received, accepted, batch.rejected, bot)
    if accepted and not bot:
        service.record_activity(activity_from(accepted, batch.context, now_ms))
    _count(accepted, batch.rejected, "bot" if bot else "accepted")
    if limited:
        metrics.RATE_LIMITED.inc(len(limited))
        _count(limited, [], "rate_limited")
    retry_after = decision.retry_after_seconds(now_ms)
    rejected = [r.reply() for r in batch.rejected] + [
        _rate_limited(e, limit, retry_after) for e in limited
    ]
    rejected.sort(key=lambda r: int(r["index"]))
    headers = {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(decision.remaining),
        "x-ratelimit-reset": str(retry_after),
    }
    status = 202
    if limited and not accepted:
        status = 429
        headers["retry-after"] = str(retry_after)
    reply: dict[str, Any] = {"accepted": len(accepted), "rejected": rejected}
    if bot:  # an integrator testing with curl learns where the events went
        reply["bot"] = True
    return Response(orjson.dumps(reply), status, headers, media_type="application/json")


def _not_stored(accepted: list[AcceptedEvent], invalid: int, why: str) -> Response:
    """The reply to a request whose events may not be stored: nothing is kept (not even the
    invalid events' rejection rows, which hold their payload), only counted."""
    for event in accepted:
        metrics.EVENTS_RECEIVED.labels(event.event_type, "no_consent").inc()
    if invalid:
        metrics.EVENTS_RECEIVED.labels("", "no_consent").inc(invalid)
    reply = {"accepted": 0, "rejected": [], "not_stored": len(accepted) + invalid,
             "consent": f"events not stored: {why}"}  # fmt: skip
    return Response(orjson.dumps(reply), 202, media_type="application/json")


async def post_import(request: Request) -> Response:
    """`POST /api/analytics/import`: historical events, for backfills and server-side sources.

    Body: the events body (`POST /api/analytics/events`), each event with a `timestamp` and
    optionally its own `context` (replacing the envelope's, which is then optional) with the
    browser's `user_agent`; at most `IMPORT.max_events` events and `IMPORT.max_body_bytes`.
    Replies: 202 `{"accepted": n, "rejected": [...]}` as the events endpoint (reasons also
    `beyond_retention`, older than EVENT_RETENTION, and `in_future`); 429 with Retry-After when
    the process's import bound (`ANALYTICS_IMPORT_EVENTS_PER_SECOND`) cannot take the request
    now (nothing of it is kept); 401/403 without an admin credential; 400, 413, 415, 503 as the
    events endpoint. Events whose context
    says `consent: denied` are not stored (`not_stored`); the import's own DNT or Sec-GPC
    headers are not a visitor's and are not read.
    """
    await guard(request)  # a plain route: the app's dependency does not run for it (admin)
    service: Service = request.app.state.service
    if (writer := service.writer_down()) is not None:
        raise WriterDown(writer.retry_after())
    body = await _decoded_body(request, _headers(request), IMPORT)
    received = service.clock()
    info = RequestInfo(
        received_at=datetime.fromtimestamp(received, UTC), max_event_age=EVENT_RETENTION
    )
    # Up to 5,000 events take a while to check: off the event loop, so that the browsers'
    # requests are served meanwhile.
    batch = await asyncio.to_thread(process, body, info, IMPORT)
    rate = service.settings.import_events_per_second
    budget = getattr(request.app.state, "import_budget", None)
    if budget is None:
        budget = EventBudget(rate, max(rate, IMPORT.max_events))
        request.app.state.import_budget = budget
    retry_after = budget.take(len(batch.accepted), time.monotonic())
    if retry_after:
        message = f"over {rate} imported events per second; retry in {retry_after} s"
        return Response(
            orjson.dumps({"error": "RateLimited", "message": message}),
            429,
            {"retry-after": str(retry_after)},
            media_type="application/json",
        )
    # A server-side source's own request headers say nothing of the visitors' wishes; their
    # contexts' `consent` does.
    refused = [e for e in batch.accepted if e.context.consent == "denied"]
    consented = [e for e in batch.accepted if e.context.consent != "denied"]
    for event in refused:
        metrics.EVENTS_RECEIVED.labels(event.event_type, "no_consent").inc()
    filter_bots = service.settings.bot_filter
    bots = [e for e in consented if filter_bots and is_bot(e.user_agent)]
    people = [e for e in consented if not (filter_bots and is_bot(e.user_agent))]
    await _spool(service, received, people, batch.rejected, False, imported=True)
    await _spool(service, received, bots, [], True, imported=True)
    _record_recent(service, people, received)
    _count(people, batch.rejected, "imported")
    _count(bots, [], "bot")
    reply: dict[str, Any] = {
        "accepted": len(consented),
        "rejected": [r.reply() for r in batch.rejected],
    }
    if refused:
        reply["not_stored"] = len(refused)
        reply["consent"] = "events not stored: their context.consent is denied"
    return Response(orjson.dumps(reply), 202, media_type="application/json")


def _record_recent(service: Service, events: list[AcceptedEvent], received: float) -> None:
    """Imported events of the last LIVE_WINDOW update the live state, one update per page of a
    session (what one browser request would have been)."""
    since = datetime.fromtimestamp(received, UTC) - LIVE_WINDOW
    pages: dict[tuple[str, str, str], list[AcceptedEvent]] = defaultdict(list)
    for event in events:
        if event.timestamp >= since:
            key = (event.context.user_id, event.context.session_id, event.context.page_path)
            pages[key].append(event)
    for group in pages.values():
        service.record_activity(activity_from(group, group[0].context, int(received * 1000)))


def _headers(request: Request) -> dict[str, str]:
    """The request's headers as a dict (lower-case names; the first of repeated ones, as
    Starlette's `Headers.get`): one pass, where each `Headers.get` scans them all."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in reversed(request.headers.raw)
    }


async def _decoded_body(request: Request, headers: Mapping[str, str], policy: Policy) -> bytes:
    """The body as UTF-8 JSON: content type (415), size (413), encoding and charset (`body`).
    `headers`: the request's (`_headers`)."""
    content_type = headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise UnsupportedMedia(
            f"content type {media_type or '(none)'!r} is not accepted; send application/json"
        )
    raw = await _read_body(request, headers, policy.max_body_bytes)
    return to_utf8(
        decompress(raw, headers.get("content-encoding", ""), policy.max_body_bytes),
        charset_of(content_type),
    )


async def _spool(
    service: Service,
    received: float,
    accepted: list[AcceptedEvent],
    rejected: list[RejectedEvent],
    bot: bool,
    *,
    imported: bool = False,
) -> None:
    """Append one record of events (each under its own context's user id) to the spool."""
    if accepted or rejected:
        record = SpoolRecord(
            received,
            [(e.event_id, e.context.user_id, e.row) for e in accepted],
            [r.row for r in rejected],
            bot,
            imported,
        )
        await service.spool.append(encode_record(record))


def _count(accepted: list[AcceptedEvent], rejected: list[RejectedEvent], outcome: str) -> None:
    counts: dict[tuple[str, str], int] = {}
    for key in [(e.event_type, outcome) for e in accepted] + [
        (r.event_type or "", r.reason) for r in rejected
    ]:
        counts[key] = counts.get(key, 0) + 1
    for (event_type, why), n in counts.items():
        _child(metrics.EVENTS_RECEIVED, event_type, why).inc(n)


def _rate_limited(event: AcceptedEvent, limit: int, retry_after: int) -> dict[str, Any]:
    message = f"over {limit} events per minute for this user; retry in {retry_after} s"
    return {
        "index": event.index,
        "event_type": event.event_type,
        "reason": "rate_limited",
        "errors": [{"field": "context.user_id", "message": message}],
    }


async def _read_body(request: Request, headers: Mapping[str, str], limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _country(headers: Mapping[str, str], names: tuple[str, ...]) -> str:
    for name in names:
        value = headers.get(name.lower(), "").strip().upper()
        if len(value) == 2 and value.isalnum():
            return value
    return ""
