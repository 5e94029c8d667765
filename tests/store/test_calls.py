"""Store calls off the loop: bounded threads, a timeout on each call, outages logged briefly."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from netra_analytics.errors import StoreUnavailable
from netra_analytics.store.calls import OutageLog, StoreCalls


def test_results_and_errors_come_back() -> None:
    async def scenario() -> None:
        calls = StoreCalls("test", workers=2, timeout=5)
        assert await calls.run(lambda a, b: a + b, 2, 3) == 5
        with pytest.raises(ZeroDivisionError):
            await calls.run(lambda: 1 / 0)
        assert calls.busy == 0
        calls.close()

    asyncio.run(scenario())


def test_a_hung_call_times_out_holds_its_thread_and_never_queues_more() -> None:
    release = threading.Event()

    async def scenario() -> None:
        calls = StoreCalls("test", workers=1, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=r"no answer from the store within 0\.3 s"):
            await calls.run(release.wait)
        assert 0.25 < time.monotonic() - started < 1.0
        assert calls.busy == 1  # the thread still waits on the store
        with pytest.raises(StoreUnavailable, match="still waiting"):
            await calls.run(lambda: 1, wait_for_thread=False)  # at once: a health probe
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="still waiting"):
            await calls.run(lambda: 1)  # waits for a thread, up to the timeout
        assert 0.25 < time.monotonic() - started < 1.0
        release.set()  # the store answers at last: the thread is free again
        for _ in range(100):
            if calls.busy == 0:
                break
            await asyncio.sleep(0.01)
        assert await calls.run(lambda: 7) == 7
        assert all(t.daemon for t in threading.enumerate() if t.name.startswith("test-"))
        calls.close()

    asyncio.run(scenario())


def test_an_outage_is_logged_once_then_each_interval_and_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    outage = OutageLog(logging.getLogger("test.outage"), "store write", clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.outage"):
        for _ in range(2400):  # eight attempts a second for five minutes
            outage.failed("connection refused")
            now[0] += 0.125
        outage.succeeded()
    lines = [r for r in caplog.records if r.name == "test.outage"]
    assert len(lines) == 1 + 4 + 1  # at 0 s; at 60, 120, 180 and 240 s; at the end
    assert lines[0].failures == 1  # type: ignore[attr-defined]
    assert lines[1].failures_since_last_line == 480  # type: ignore[attr-defined]
    assert lines[-1].getMessage() == "store write works again"
    assert lines[-1].failures == 2400  # type: ignore[attr-defined]
