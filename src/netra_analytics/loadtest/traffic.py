"""The load test's requests: what a browser running the tag sends, built cheaply.

The events are the demo's (`demo.demo_events`: page loads, chat threads with prompts and
answers, feature use, surveys, feedback, errors; all seven event types in the proportions a
day of the product produces), generated once at start-up into a pool and serialised to bytes
with two holes each, the event id and the timestamp. A request takes `batch` consecutive events
of the pool from a random place (a stretch of one person's visit, as the tag queues them) and
fills the holes by joining bytes: no JSON encoding, no UUID call and no date formatting per
event on the hot path, so the generator leaves the CPU to the service.

Each request is a browser's (`browser` in [0, users)): its stable anonymous id, its own session
of this run, one of the demo's real browser user agents (none is on the bot list), and, for
`SIGNED_IN_SHARE` of the browsers, the signed-in person's id beside the anonymous id, as the
tag sends after `identify()`. The run marker is in every request: `context.environment` is
`ENVIRONMENT` and the session id starts with `session_prefix(run_id)`.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import orjson

from netra_analytics import demo

ENVIRONMENT = "loadtest"  # context.environment of every event a load test sends
SIGNED_IN_SHARE = 7  # in 10: browsers whose person has signed in (user_id + anonymous_id)
POOL_USERS = 200  # demo people whose events make the pool (~2,000 events a day)
POOL_DAYS = 3
EVENTS_PATH = "/api/analytics/events"
CONTENT_TYPE = "text/plain;charset=UTF-8"  # what the tag's fetch and sendBeacon send


def session_prefix(run_id: str) -> str:
    """What every session id of run `run_id` starts with (the read-back's marker)."""
    return f"{ENVIRONMENT}-{run_id}-"


def event_id(run_id: str, ordinal: int) -> str:
    """The `ordinal`-th event id of a run, a version-4-shaped UUID: the run id's 48 random bits,
    then the ordinal (unique within the run, so unique per person too)."""
    return f"{run_id[:8]}-{run_id[8:12]}-4000-8000-{ordinal:012x}"


def anonymous_id(browser: int) -> str:
    """Browser `browser`'s stable anonymous id (the same in every run, like a returning
    visitor's)."""
    return f"{browser:08x}-6c74-4000-8000-6c6f61647465"


class Traffic:
    """Request bodies of one run. `body(browser, first, count, now)` is the JSON body of a
    request of `count` events from `browser`, whose event ids are ordinals `first` ..
    `first + count - 1` of the run, stamped `now` (`timestamp` and `sent_at`)."""

    def __init__(self, run_id: str, *, seed: int = 1, now: datetime | None = None) -> None:
        if len(run_id) != 12 or any(c not in "0123456789abcdef" for c in run_id):
            raise ValueError("run_id must be 12 lower-case hex digits")
        self.run_id = run_id
        self.rng = random.Random(seed)
        events = demo.generate(users=POOL_USERS, days=POOL_DAYS, seed=seed, now=now)
        if not events:
            raise RuntimeError("the demo generated no events")  # cannot happen: days >= 1
        self.heads: list[bytes] = []  # '{"event_type":"...","event_id":"'
        self.tails: list[bytes] = []  # '","properties":{...}}'
        self.pages: list[bytes] = []  # the request context's page fields, from its first event
        for event in events:
            self.heads.append(b'{"event_type":"%s","event_id":"' % event["event_type"].encode())
            self.tails.append(b'","properties":' + orjson.dumps(event["properties"]) + b"}")
            self.pages.append(_page_fields(event["context"]))
        self.types = [event["event_type"] for event in events]
        self._id_prefix = event_id(run_id, 0)[:-12].encode()
        self._session = session_prefix(run_id)
        self._agents = [agent.encode() for agent in demo.BROWSERS]

    def __len__(self) -> int:
        return len(self.heads)

    def user_agent(self, browser: int) -> bytes:
        return self._agents[browser % len(self._agents)]

    def start(self) -> int:
        """A random place in the pool for the next request's events."""
        return self.rng.randrange(len(self.heads))

    def body(self, browser: int, first: int, count: int, now: datetime, start: int) -> bytes:
        """The request body (see the class): events `start`, `start + 1`, ... of the pool
        (wrapping around), the context of `browser`."""
        stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()
        middle = b'","timestamp":"' + stamp
        size = len(self.heads)
        parts = [b'{"events":[']
        prefix = self._id_prefix
        for n in range(count):
            at = (start + n) % size
            if n:
                parts.append(b",")
            parts += (self.heads[at], prefix, b"%012x" % (first + n), middle, self.tails[at])
        anonymous = anonymous_id(browser)
        signed_in = browser % 10 < SIGNED_IN_SHARE
        user = f'"user_id":"{ENVIRONMENT}-user-{browser}",' if signed_in else ""
        parts.append(
            f'],"context":{{{user}"anonymous_id":"{anonymous}",'
            f'"session_id":"{self._session}{browser}",'.encode()
        )
        parts += (self.pages[start % size], b'},"sent_at":"', stamp, b'"}')
        return b"".join(parts)


def _page_fields(context: dict[str, Any]) -> bytes:
    """The context's page and app fields as JSON members (no braces), environment replaced."""
    fields = {
        "page_path": context["page_path"],
        "page_title": context["page_title"],
        "referrer": context["referrer"],
        "gtm_container_id": context["gtm_container_id"],
        "environment": ENVIRONMENT,
        "app_version": context["app_version"],
    }
    return orjson.dumps(fields)[1:-1]


def utc_now() -> datetime:
    return datetime.now(UTC)
