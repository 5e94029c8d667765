"""The people erased lately, for the writers and prompt workers of every process.

An erasure (privacy/erasure.py) deletes what the store holds; events of the person still in a
spool (this process's or another worker's) would be stored after it. Each erasure is recorded
first in `analytics.erasures` (the person as a keyed hash, and when it was asked for): a
writer or prompt worker leaves out every event of such a person received before that time,
reading the list again at most once a second. Events received after the erasure are stored,
as those of a new person.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from netra_analytics.privacy.audit import subject_hash
from netra_analytics.store.base import Store

RECENT = """
SELECT subject, max(requested_at) AS latest
FROM analytics.erasures
WHERE requested_at > now64(3) - INTERVAL {days:UInt32} DAY
GROUP BY subject
"""
WINDOW_DAYS = 8  # longer than an event can wait in a spool (the writer's backoff, a long outage)
REFRESH_SECONDS = 1.0


class ErasedPeople:
    def __init__(
        self, store: Store, secret: bytes, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store, self._secret, self._clock = store, secret, clock
        self._requested: dict[str, float] = {}  # subject hash -> epoch seconds
        self._refreshed = float("-inf")

    def refresh(self) -> None:
        """Read the list again if it is over a second old (blocking: the caller's thread)."""
        now = self._clock()
        if now - self._refreshed < REFRESH_SECONDS:
            return
        rows = self._store.query_rows(RECENT, {"days": WINDOW_DAYS})
        self._requested = {str(row["subject"]): _epoch(str(row["latest"])) for row in rows}
        self._refreshed = now

    def requested(self) -> dict[str, float]:
        """Subject hash (`privacy.audit.subject_hash`) -> when its latest erasure was asked
        (epoch seconds), as last read."""
        return dict(self._requested)

    def __bool__(self) -> bool:
        return bool(self._requested)

    def erased(self, user_id: str, received_at: float) -> bool:
        """Whether an event of `user_id` received at `received_at` (epoch seconds) belongs to
        a person erased after it arrived."""
        if not self._requested:
            return False
        requested = self._requested.get(subject_hash(self._secret, user_id))
        return requested is not None and received_at < requested


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace(" ", "T") + "+00:00").timestamp()
