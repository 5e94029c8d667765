"""Redaction of events kept for debugging (`rejected_events`).

A rejected event is stored so an integrator can see what their tag sent, but its text may hold
anything a user typed. Only the taxonomy's structured fields (ids, enums, names) keep their
string values; free text and unknown fields keep their length, which is enough to debug a
schema problem.
"""

from __future__ import annotations

from typing import Any

from netra_analytics.taxonomy import STRUCTURED_FIELDS


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return f"[REDACTED {len(value)} chars]"
    return "[REDACTED]"


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def redact_event(event: Any) -> Any:
    """A copy of a decoded event whose free text is replaced by `[REDACTED n chars]`."""
    if not isinstance(event, dict):
        return _redacted(event)
    props = event.get("properties")
    cleaned = dict(event)
    if isinstance(props, dict):
        cleaned["properties"] = {
            key: value if key in STRUCTURED_FIELDS and _scalar(value) else _redacted(value)
            for key, value in props.items()
        }
    elif props is not None:
        cleaned["properties"] = _redacted(props)
    for key in cleaned:
        if key not in {"event_type", "timestamp", "event_id", "properties"}:
            cleaned[key] = _redacted(cleaned[key])
    return cleaned
