from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_sync

from netra_analytics.live.memory import InProcessLiveState
from netra_analytics.live.redis_backend import RedisLiveState
from tests.support.processes import RedisServer


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[redis_sync.Redis]:
    client = redis_sync.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(params=["in-process", "redis"])
def backend_factory(request: pytest.FixtureRequest) -> Any:
    """Builds the backend under test inside the test's own event loop."""
    if request.param == "in-process":
        return InProcessLiveState
    url = request.getfixturevalue("redis_server").url
    request.getfixturevalue("redis_db")
    return lambda: RedisLiveState(url, prefix="test:")
