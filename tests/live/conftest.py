from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netra_analytics.live.memory import InProcessLiveState
from netra_analytics.live.redis_backend import RedisLiveState
from netra_analytics.live.remote import LiveStateServer, RemoteLiveState


@pytest.fixture(params=["in-process", "redis", "remote"])
def backend_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Builds the backend under test inside the test's own event loop. `remote`: the
    in-process state served over a Unix socket (`live/remote.py`, what the engine owner
    serves its workers), used through the client, the server in the same loop."""
    if request.param == "in-process":
        return InProcessLiveState
    if request.param == "remote":
        return lambda: _served(InProcessLiveState(), tmp_path / "live.sock")
    url = request.getfixturevalue("redis_server").url
    request.getfixturevalue("redis_db")
    return lambda: RedisLiveState(url, prefix="test:")


class _Served(RemoteLiveState):
    """A client whose server (of `state`) starts with its first call, in the same loop."""

    def __init__(self, state: InProcessLiveState, path: Path) -> None:
        super().__init__(path)
        self.server = LiveStateServer(state, path)
        self._started = False

    async def _connected(self) -> Any:
        if not self._started:
            self._started = True
            await self.server.start()
        return await super()._connected()

    async def close(self) -> None:
        await super().close()
        await self.server.close()


def _served(state: InProcessLiveState, path: Path) -> _Served:
    return _Served(state, path)
