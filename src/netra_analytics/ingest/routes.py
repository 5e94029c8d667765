"""`POST /api/analytics/events`: a plain Starlette route, kept lean because it is the hot path.

Order of work: credentials, when sent or required (401/403: `auth.access`) → content type
(415) → size (413) → content encoding and charset (415, or repaired: see `body`) → envelope and
identity (400; 403 when a token's subject is not `context.user_id`) → each event (per-event
rejections, event time) → per-user rate limit (one round trip; events over the limit are
rejected as `rate_limited`, and 429 when none passed) → spool append with fsync → reply, with
the live state updated off the request path. A 202 means every accepted event is on disk; the
batch writer takes it from there. A known bot's events (`bots`) are accepted alike but stored
apart, in `bot_events`, and leave the live state alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from netra_analytics import metrics
from netra_analytics.auth.access import check_sender, ingest_principal
from netra_analytics.errors import NetraError, PayloadTooLarge, UnsupportedMedia
from netra_analytics.ingest.body import charset_of, decompress, to_utf8
from netra_analytics.ingest.bots import is_bot
from netra_analytics.ingest.process import AcceptedEvent, RequestInfo, process
from netra_analytics.ingest.writer import SpoolRecord, encode_record
from netra_analytics.live.activity import activity_from
from netra_analytics.service import Service
from netra_analytics.taxonomy import MAX_BODY_BYTES

# sendBeacon posts strings as text/plain, which also spares browsers a CORS preflight.
ACCEPTED_MEDIA_TYPES = frozenset({"application/json", "text/plain"})
USER_AGENT_LIMIT = 512


async def post_events(request: Request) -> Response:
    try:
        response = await _ingest(request)
    except NetraError as exc:
        metrics.REQUESTS.labels(str(exc.status_code)).inc()
        raise
    metrics.REQUESTS.labels(str(response.status_code)).inc()
    return response


async def _ingest(request: Request) -> Response:
    service: Service = request.app.state.service
    sender = await ingest_principal(request)  # 401/403; None for an anonymous browser
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise UnsupportedMedia(
            f"content type {media_type or '(none)'!r} is not accepted; send application/json"
        )
    raw = await _read_body(request)
    body = to_utf8(
        decompress(raw, request.headers.get("content-encoding", ""), MAX_BODY_BYTES),
        charset_of(request.headers.get("content-type", "")),
    )
    received = service.clock()
    now_ms = int(received * 1000)
    user_agent = request.headers.get("user-agent", "")[:USER_AGENT_LIMIT]
    info = RequestInfo(
        received_at=datetime.fromtimestamp(received, UTC),
        user_agent=user_agent,
        ip_hash=service.hash_ip(request.client.host if request.client else None),
        country_code=_country(request, service.settings.country_headers),
        max_event_age=timedelta(days=service.settings.max_event_age_days),
    )
    batch = process(body, info)
    check_sender(sender, batch.context.user_id)  # a signed-in page sends as its user only
    bot = service.settings.bot_filter and is_bot(user_agent)
    limit = service.settings.max_events_per_user_per_minute
    decision = await service.live.take(
        batch.context.user_id, [e.event_id for e in batch.accepted], now_ms, limit
    )
    accepted = [e for e, ok in zip(batch.accepted, decision.admitted, strict=True) if ok]
    limited = [e for e, ok in zip(batch.accepted, decision.admitted, strict=True) if not ok]
    if accepted or batch.rejected:
        record = SpoolRecord(
            received,
            [(e.event_id, batch.context.user_id, e.row) for e in accepted],
            [r.row for r in batch.rejected],
            bot,
        )
        await service.spool.append(encode_record(record))
    if accepted and not bot:
        service.record_activity(activity_from(accepted, batch.context, now_ms))
    outcome = "bot" if bot else "accepted"
    for event in accepted:
        metrics.EVENTS_RECEIVED.labels(event.event_type, outcome).inc()
    for rejection in batch.rejected:
        metrics.EVENTS_RECEIVED.labels(rejection.event_type or "", rejection.reason).inc()
    if limited:
        metrics.RATE_LIMITED.inc(len(limited))
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


def _rate_limited(event: AcceptedEvent, limit: int, retry_after: int) -> dict[str, Any]:
    message = f"over {limit} events per minute for this user; retry in {retry_after} s"
    return {
        "index": event.index,
        "event_type": event.event_type,
        "reason": "rate_limited",
        "errors": [{"field": "context.user_id", "message": message}],
    }


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body of {declared} bytes; the limit is {MAX_BODY_BYTES}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"body over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _country(request: Request, headers: tuple[str, ...]) -> str:
    for name in headers:
        value = request.headers.get(name, "").strip().upper()
        if len(value) == 2 and value.isalnum():
            return value
    return ""
