"""No raw IP address and no unsanitised personal data reaches ClickHouse, the spool, Redis or
the logs: values are planted in events, then looked for everywhere the service writes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis as redis_sync
from fastapi.testclient import TestClient

from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import body, event
from tests.support.processes import wait_until

CLIENT_IP = "203.0.113.7"  # the TestClient's address (conftest)
PLANTED = {
    "jane.roe@private.example": "EMAIL",
    "4111 1111 1111 1111": "CARD",
    "+44 20 7946 0958": "PHONE",
    "sk-proj-Plant3dK3yValue9876543210": "API_KEY",
    "198.51.100.77": "IP_ADDRESS",
    "GB82 WEST 1234 5698 7654 32": "IBAN",
}


def _events() -> list[dict[str, Any]]:
    email, card, phone, key, ip, iban = PLANTED
    return [
        event("chat_interaction", prompt_text=f"I am {email}, card {card}, key {key}"),
        event("chat_interaction", prompt_text=f"call {phone} from {ip}"),
        event("feedback_submission", comment=f"refund to {iban} please, mail {email}"),
        event(
            "error_tracking",
            error_message=f"login failed for {email}",
            stack_trace=f"at pay({card})",
        ),
        event("survey_response", response_value=f"reach me on {phone}"),
        # an invalid event carrying the same values goes to rejected_events
        {
            "event_type": "chat_interaction",
            "properties": {"prompt_text": f"{email} {card}", "note": key},
        },
    ]


def _redis_dump(url: str) -> str:
    """Every key and value in Redis as text (bytes read raw: HyperLogLogs are binary)."""
    client = redis_sync.Redis.from_url(url)
    parts: list[Any] = []
    for key in client.scan_iter("*"):
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            parts.append(client.get(key))
        elif kind == "hash":
            parts.append(str(client.hgetall(key)))
        elif kind == "list":
            parts.append(str(client.lrange(key, 0, -1)))
        elif kind == "set":
            parts.append(str(client.smembers(key)))
        elif kind == "zset":
            parts.append(str(client.zrange(key, 0, -1)))
        parts.append(key)
    client.close()
    return "\n".join(p.decode(errors="replace") if isinstance(p, bytes) else str(p) for p in parts)


def test_planted_values_are_nowhere(
    make_client: Callable[..., TestClient],
    store: ChdbStore,
    redis_server: Any,
    redis_db: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(redis_url=redis_server.url, event_batch_size=1, event_flush_interval_ms=10)
    reply = client.post("/api/analytics/events", content=orjson.dumps(body(_events())),
                        headers={"content-type": "application/json"})  # fmt: skip
    assert reply.json()["accepted"] == 5
    wait_until(
        lambda: store.query_rows("SELECT count() AS n FROM analytics.frontend_events")[0]["n"] == 5
    )
    wait_until(
        lambda: store.query_rows("SELECT count() AS n FROM analytics.rejected_events")[0]["n"] == 1
    )
    wait_until(lambda: redis_db.exists("netra:hot_prompts_cache"))

    everything = [CLIENT_IP, *PLANTED]
    stored = store.query_raw("SELECT * FROM analytics.frontend_events FORMAT JSONEachRow").decode()
    stored += store.query_raw("SELECT * FROM analytics.rejected_events FORMAT JSONEachRow").decode()
    spool = b"".join(
        p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "spool" in p.parts
    )
    redis_text = _redis_dump(redis_server.url)
    logs = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    for value in everything:
        assert value not in stored, value
        assert value.encode() not in spool, value
        assert value not in redis_text, value
        assert value not in logs, value
    for placeholder in ("[EMAIL]", "[CARD]", "[API_KEY]", "[IBAN]", "[PHONE]"):
        assert placeholder in stored
    assert "[EMAIL]" in redis_text  # the hot prompt is kept, sanitised
