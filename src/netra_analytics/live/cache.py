"""The in-process report cache: bounded in bytes, and expired entries freed as time passes.

Entries are kept in the order they were put. Reports are cached for one TTL
(`ANALYTICS_REPORT_CACHE_SECONDS`), so that order is also the order in which they expire, and
the oldest entry is the next to expire: `sweep` frees expired entries from the front, one step
per expired entry (amortised O(1) per put), and is called on every read and write of the cache
and, by the live state, on every ingestion request, so an idle cache does not hold a minute-old
megabyte until the next report is asked for. When a put would pass `max_bytes`, the oldest
entries go first (first in, first out: also the ones nearest to expiry). A value larger than
`max_bytes // 8` is not cached at all, so one huge report cannot empty the cache.

Sizes counted are the value's bytes plus the key's; Python's per-object overhead (~100 bytes
per entry) is left out.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
LARGEST_SHARE = 8  # a value may use at most 1/8 of the cache


class ReportCache:
    def __init__(
        self, max_bytes: int = DEFAULT_MAX_BYTES, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bytes | None:
        """The value put under `key`, if it has not expired (None otherwise)."""
        now = self._clock()
        self.sweep(now)
        found = self._entries.get(key)
        if found is None or found[0] <= now:
            return None
        return found[1]

    def put(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """Keep `value` for `ttl_seconds`; the oldest entries make room for it."""
        now = self._clock()
        self.sweep(now)
        self._drop(key)
        size = len(value) + len(key)
        if size > self.max_bytes // LARGEST_SHARE:
            return
        while self._entries and self.bytes + size > self.max_bytes:
            self._drop(next(iter(self._entries)))
        self._entries[key] = (now + ttl_seconds, value)
        self.bytes += size

    def sweep(self, now: float | None = None) -> None:
        """Free the expired entries at the front (oldest first)."""
        now = self._clock() if now is None else now
        while self._entries:
            key, (expires, _) = next(iter(self._entries.items()))
            if expires > now:
                return
            self._drop(key)

    def _drop(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self.bytes -= len(found[1]) + len(key)
