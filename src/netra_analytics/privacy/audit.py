"""The audit log: who did what to whose data (deletions, exports, API keys), kept two years.

Each entry: when, who (`actor`: the API key's name or the token's subject), the action, the
person concerned as a keyed hash (`subject_hash`), details (counts per table, a key's name
and role) and the request id. No other personal data: a person's id is never written here,
so the log outlives their erasure and still proves it happened.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import orjson

from netra_analytics.store.base import Store

ACTIONS = ("user_deleted", "user_exported", "key_created", "key_revoked")
READ = """
SELECT at, actor, action, subject, detail, request_id
FROM analytics.audit_log
WHERE at >= {since:DateTime64(3)} AND ({action:String} = '' OR action = {action:String})
ORDER BY at DESC
LIMIT {limit:UInt32}
"""


def subject_hash(secret: bytes, user_id: str) -> str:
    """HMAC-SHA256 of the person's id (hex, 64 characters) with the service's secret (the one
    that keys the IP hashes, `ANALYTICS_IP_HASH_SECRET`), under its own label so that the
    two never match. Whoever knows the id and the secret can find its entries; nobody else
    can tell whose they are."""
    return hmac.new(secret, b"subject\0" + user_id.encode(), hashlib.sha256).hexdigest()


def record(
    store: Store,
    *,
    actor: str,
    action: str,
    subject: str = "",
    detail: dict[str, Any] | None = None,
    request_id: str = "",
) -> None:
    """Append one entry (blocking: run it in a thread). `action` is one of ACTIONS."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    row = {
        "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        "actor": actor,
        "action": action,
        "subject": subject,
        "detail": orjson.dumps(detail or {}).decode(),
        "request_id": request_id,
    }
    store.insert_json_rows("audit_log", orjson.dumps(row), settings={"insert_deduplicate": "0"})


def read(store: Store, since: datetime, action: str, limit: int) -> list[dict[str, Any]]:
    """The newest entries from `since` on, newest first, at most `limit`."""
    rows = store.query_rows(READ, {"since": since, "action": action, "limit": limit})
    for row in rows:
        row["detail"] = orjson.loads(row["detail"] or "{}")
    return rows
