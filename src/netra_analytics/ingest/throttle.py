"""The historical import's own bound: a token bucket of events per second, per process. Pure.

Imports do not count against the browsers' per-user rate limit (they carry many people's
history), but a backfill must not take the writer and the cores from live traffic: each process
admits at most `rate` imported events per second on average, in bursts of up to `burst`
(at least one full import request, so a request of the largest size can always pass in time).
A request is admitted whole or refused whole (429 with Retry-After): an import client retries
the same batch, and event ids make that safe.
"""

from __future__ import annotations

import math


class EventBudget:
    """Not thread-safe: used from the event loop only."""

    def __init__(self, rate: float, burst: float) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at: float | None = None

    def take(self, events: int, now: float) -> int:
        """Admit `events` at `now` (seconds, monotonic): 0 when admitted (and spent), else the
        whole seconds to wait before this request would pass (nothing is spent)."""
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        need = min(float(events), self.burst)
        if need <= self._tokens:
            self._tokens -= need
            return 0
        return max(1, math.ceil((need - self._tokens) / self.rate))
