"""A small load generator for durability tests: threads posting batches, remembering which
event ids the service acknowledged."""

from __future__ import annotations

import random
import threading
from typing import Any

import httpx
import orjson

from tests.factories import BROWSER_USER_AGENT, body, random_event


class Load:
    def __init__(self, url: str, *, threads: int = 4, batch: int = 20, seed: int = 1) -> None:
        self.url = f"{url}/api/analytics/events"
        self.threads = threads
        self.batch = batch
        self.seed = seed
        self.sent: set[str] = set()
        self.acked: set[str] = set()
        self.statuses: dict[int, int] = {}
        self.last_error: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(30)

    def send_once(self, client: httpx.Client, rng: random.Random, user: str) -> int:
        events = [random_event(rng) for _ in range(self.batch)]
        ids = {e["event_id"] for e in events}
        with self._lock:
            self.sent |= ids
        try:
            reply = client.post(
                self.url, content=orjson.dumps(body(events, user_id=user)),
                headers={"content-type": "application/json"},
            )  # fmt: skip
        except httpx.HTTPError:
            return 0
        with self._lock:
            self.statuses[reply.status_code] = self.statuses.get(reply.status_code, 0) + 1
            if reply.status_code == 202:
                assert reply.json()["accepted"] == len(events)
                self.acked |= ids
            else:
                self.last_error = {
                    "status": reply.status_code,
                    "headers": dict(reply.headers),
                    "body": reply.text,
                }
        return reply.status_code

    def _run(self, n: int) -> None:
        rng = random.Random(self.seed * 1000 + n)
        with httpx.Client(timeout=10, headers={"user-agent": BROWSER_USER_AGENT}) as client:
            while not self._stop.is_set():
                self.send_once(client, rng, f"load-user-{rng.randrange(50)}")
