"""Hardening costs: the sanitiser's worst case per 10 KB of adversarial text, and what
authentication costs a request (API key, HS256 JWT, ES256 JWT from a JWKS) beside none.

    .venv/bin/python -m bench.security_bench     # about a minute

- sanitiser: `sanitise` over 10 KB texts built to make regular expressions backtrack (long
  runs of digits, `@`, dots, hyphens, colons, base64-like tokens, each also with one `@` and
  one `://` so that no shortcut skips a pattern), median of 7 runs per text, after a warm-up;
  ordinary prose beside them.
- auth: `GET /api/analytics/reports/engagement` (a report read from the in-process live
  state, no store query) in-process through Starlette's TestClient, 2,000 requests per
  credential per run, median of 5 runs; "none" is the same app with the guard overridden.
"""

from __future__ import annotations

import base64
import functools
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import save_results
from netra_analytics.prompts.sanitise import sanitise

SIZE = 10_000
REQUESTS = 2000


def adversarial_texts() -> dict[str, str]:
    rng = random.Random(15)
    runs = {
        "digits": "1" * SIZE,
        "digits and spaces": "1 " * (SIZE // 2),
        "digits and hyphens": "1-" * (SIZE // 2),
        "at signs": "@" * SIZE,
        "word@ repeated": "a@" * (SIZE // 2),
        "dots": "." * SIZE,
        "word. repeated": "a." * (SIZE // 2),
        "hyphens": "-" * SIZE,
        "word- repeated": "a-" * (SIZE // 2),
        "word: repeated (IPv6-like)": "a:" * (SIZE // 2),
        "1.2. repeated (IPv4-like)": "1.2." * (SIZE // 4),
        "+1 repeated (phone-like)": "+1 " * (SIZE // 3),
        "base64 token": base64.b64encode(rng.randbytes(SIZE))[:SIZE].decode(),
        "letters": "a" * SIZE,
    }
    texts = {name: (text + " x@y ://")[:SIZE] for name, text in runs.items()}
    texts["ordinary prose"] = ("How do I cut my model spend without hurting quality? " * 200)[:SIZE]
    return texts


def median_ms(work: Callable[[], Any], repeats: int) -> float:
    work()  # warm-up (compiled patterns, caches)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def sanitiser() -> dict[str, float]:
    return {
        name: round(median_ms(functools.partial(sanitise, text), 7), 2)
        for name, text in adversarial_texts().items()
    }


def auth_cost() -> dict[str, float]:
    from fastapi.testclient import TestClient
    from tests.auth.conftest import (
        AUDIENCE,
        HS256_SECRET,
        ISSUER,
        JwksServer,
        SigningKey,
        hs256,
    )

    from netra_analytics.app import create_app
    from netra_analytics.auth import guard
    from netra_analytics.auth.keys import ADMIN, create_key
    from netra_analytics.config import Settings
    from netra_analytics.store.chdb_backend import ChdbStore
    from netra_analytics.store.migrations import migrate

    base = Path(tempfile.mkdtemp())
    store = ChdbStore(base / "chdb")
    migrate(store)
    key = create_key(store, "bench", ADMIN)
    tokens = {"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    signing = SigningKey("ES256")

    def client(**changes: Any) -> TestClient:
        settings = Settings(
            data_dir=base / uuid.uuid4().hex,
            ip_hash_secret="bench-secret-0123456789",  # noqa: S106
            funnel_walk_days=0,
            **changes,
        )
        return TestClient(create_app(settings, store=store))

    results: dict[str, float] = {}
    with JwksServer() as jwks:
        jwks.keys = [signing]
        cases: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
            "none (guard overridden)": ({}, {}),
            "API key": ({}, {"authorization": f"Bearer {key}"}),
            "JWT HS256": (
                {"jwt_secret": HS256_SECRET, **tokens},
                {"authorization": "Bearer " + hs256(roles=["analyst"])},
            ),
            "JWT ES256 (JWKS)": (
                {"jwt_jwks_url": jwks.url, **tokens},
                {"authorization": "Bearer " + signing.token(roles=["analyst"])},
            ),
        }
        for name, (changes, headers) in cases.items():
            with client(**changes) as test_client:
                if not headers:
                    test_client.app.dependency_overrides[guard] = lambda: None  # type: ignore[attr-defined]
                url = "/api/analytics/reports/engagement"
                assert test_client.get(url, headers=headers).status_code == 200

                def batch(
                    c: TestClient = test_client, h: dict[str, str] = headers, u: str = url
                ) -> None:
                    for _ in range(REQUESTS):
                        c.get(u, headers=h)

                results[f"request, {name}"] = round(median_ms(batch, 5) * 1000 / REQUESTS, 1)
                if headers:
                    results[f"guard alone, {name}"] = guard_us(test_client.app, url, headers)
    store.close()
    return results


def guard_us(app: Any, path: str, headers: dict[str, str]) -> float:
    """µs of the guard itself (`auth.access.guard`) for one request, median of 5 x 2,000."""
    import asyncio

    from fastapi.routing import iter_route_contexts
    from starlette.requests import Request

    from netra_analytics.auth import guard

    route = next(c.original_route for c in iter_route_contexts(app.routes) if c.path == path)
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "app": app,
        "route": route,
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }

    async def run() -> float:
        await guard(Request(scope))
        times = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(REQUESTS):
                await guard(Request(scope))
            times.append((time.perf_counter() - started) / REQUESTS)
        return round(statistics.median(times) * 1e6, 1)

    return asyncio.run(run())


def main() -> None:
    sanitised = sanitiser()
    auth = auth_cost()
    summary = {
        "sanitiser_ms_per_10kb": sanitised,
        "sanitiser_worst_ms_per_10kb": max(sanitised.values()),
        "auth_us_per_request": auth,
        "note": "2-core build machine shared with other engineers' tests; medians",
    }
    save_results("security", summary)


if __name__ == "__main__":
    main()
