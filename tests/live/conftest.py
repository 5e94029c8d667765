from __future__ import annotations

from typing import Any

import pytest

from netra_analytics.live.memory import InProcessLiveState
from netra_analytics.live.redis_backend import RedisLiveState


@pytest.fixture(params=["in-process", "redis"])
def backend_factory(request: pytest.FixtureRequest) -> Any:
    """Builds the backend under test inside the test's own event loop."""
    if request.param == "in-process":
        return InProcessLiveState
    url = request.getfixturevalue("redis_server").url
    request.getfixturevalue("redis_db")
    return lambda: RedisLiveState(url, prefix="test:")
