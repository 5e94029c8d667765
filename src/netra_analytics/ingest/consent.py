"""Consent on the server: whether a request's events may be stored at all.

Our tag sends nothing without consent (GTM consent mode), but any other source (a server, a
mobile app, another tag) reaches the endpoint directly, so the service decides too, from:

- `context.consent`: `denied` from a source that asked the visitor itself;
- the browser's privacy signals, honoured by default (`ANALYTICS_PRIVACY_SIGNALS=off` turns
  them off): `DNT: 1` (Do Not Track, W3C Tracking Preference Expression, 2019) and
  `Sec-GPC: 1` (Global Privacy Control, W3C draft 2024; a valid opt-out of sale/sharing
  under the CCPA regulations, §7025).

A refused request's events are dropped before the spool, the live state and the rate
limiter, and only counted (`netra_event_ingestion_events_total{outcome="no_consent"}`); the reply
says so, so that an integrator sees why nothing arrived.
"""

from __future__ import annotations

from collections.abc import Mapping

SIGNALS = (("sec-gpc", "Sec-GPC: 1"), ("dnt", "DNT: 1"))


def refusal(consent: str, headers: Mapping[str, str], honour_signals: bool) -> str | None:
    """Why this request's events may not be stored (for the reply), or None when they may.

    `consent` is `context.consent` ("granted", "denied" or "" for absent); `headers` the
    request's (case-insensitive, as Starlette's); a signal counts only when its value is
    exactly "1" (both specifications define no other opt-out value). A signal outweighs
    `consent: granted` (the conservative reading of the CCPA regulations, §7025(c)(3): the
    signal is processed, and the site may ask the visitor to make an exception)."""
    if consent == "denied":
        return "context.consent is denied"
    if honour_signals:
        for name, shown in SIGNALS:
            if headers.get(name, "").strip() == "1":
                return f"the browser sent {shown}"
    return None
