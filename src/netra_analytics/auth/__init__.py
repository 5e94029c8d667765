"""Access control: API keys, JWTs of the auth service, the dashboard's session, and the one
guard every route goes through (`access`). README "Security" says it for operators."""

from __future__ import annotations

from netra_analytics.auth.access import (
    PUBLIC,
    Authenticator,
    Principal,
    check_sender,
    document_security,
    guard,
    ingest_principal,
)
from netra_analytics.auth.keys import ADMIN, create_key, list_keys
from netra_analytics.store.base import Store

BOOTSTRAP_KEY_NAME = "admin"


def bootstrap_admin_key(store: Store, dashboard: str) -> str | None:
    """On a store with no key at all, create an admin key and print it once with the
    dashboard's address, so that `make run` opens the dashboard in one step. Returns the key,
    or None when any key exists (revoked ones too: revoking every key is not a reset)."""
    if list_keys(store):
        return None
    key = create_key(store, BOOTSTRAP_KEY_NAME, ADMIN)
    # stdout, not the log: the key must not sit in log files. Printed once, never again.
    print(
        f"netra-analytics: first start, created the admin key {BOOTSTRAP_KEY_NAME!r} (shown once; "
        f"keep it): sign in at {dashboard}login with {key}",
        flush=True,
    )
    return key


__all__ = [
    "PUBLIC",
    "Authenticator",
    "Principal",
    "bootstrap_admin_key",
    "check_sender",
    "document_security",
    "guard",
    "ingest_principal",
]
