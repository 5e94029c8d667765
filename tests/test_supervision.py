"""The supervisor of background workers: restarts with backoff, failing until a run settles,
down (ingestion refuses) after crashes in a row, and a stop that ends it."""

from __future__ import annotations

import asyncio

import pytest

from netra_analytics import service
from netra_analytics.service import Supervisor


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "FIRST_RESTART_SECONDS", 0.02)
    monkeypatch.setattr(service, "SETTLE_SECONDS", 0.3)


def test_a_crashing_worker_is_restarted_reported_and_settles() -> None:
    runs: list[int] = []
    seen: list[dict[str, object]] = []

    async def scenario() -> None:
        stop = asyncio.Event()
        ran = asyncio.Condition()

        async def worker() -> None:
            async with ran:
                runs.append(len(runs))
                ran.notify_all()
            if len(runs) <= 3:
                raise RuntimeError(f"crash {len(runs)}")
            await stop.wait()

        supervisor = Supervisor("test", worker)
        async with ran:
            await ran.wait_for(lambda: len(runs) >= 3)
        await asyncio.sleep(0)  # the supervisor takes the crash
        seen.append(supervisor.status())
        assert supervisor.failing and supervisor.down  # three crashes in a row
        assert supervisor.retry_after() >= 1
        async with ran:
            await ran.wait_for(lambda: len(runs) >= 4)
        assert supervisor.failing  # restarted, not settled yet
        await asyncio.sleep(0.4)
        assert not supervisor.failing and not supervisor.down
        seen.append(supervisor.status())

        async def stop_worker(task: asyncio.Task[None]) -> None:
            stop.set()
            await task

        await supervisor.stop(stop_worker)
        assert supervisor.task.done()

    asyncio.run(scenario())
    assert seen[0]["status"] == "failing" and seen[0]["last_crash"] == "RuntimeError: crash 3"
    assert seen[0]["crashes_in_a_row"] == 3
    assert seen[1]["status"] == "running" and seen[1]["restarts"] == 3


def test_stop_between_two_runs_ends_the_supervision() -> None:
    async def scenario() -> None:
        crashed = asyncio.Event()

        async def worker() -> None:
            crashed.set()
            raise RuntimeError("always")

        supervisor = Supervisor("test", worker)
        await crashed.wait()
        await asyncio.sleep(0)  # the supervisor takes the crash and waits to restart
        assert supervisor.next_restart is not None

        async def never(task: asyncio.Task[None]) -> None:
            raise AssertionError("no run to stop")

        await supervisor.stop(never)
        assert supervisor.task.done()

    asyncio.run(scenario())
