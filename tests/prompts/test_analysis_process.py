"""The prompt analysis process's pieces that workers and the owner rely on, on real spools: the
state a worker's /health/ready reports from its spool, and waiting for a previous process to
let go of a spool."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from netra_analytics import prompt_process
from netra_analytics.config import Settings
from netra_analytics.ingest.spool import Spool, SpoolBusy, SpoolFollower
from netra_analytics.prompts.worker import (
    BEHIND_SECONDS,
    CONSUMER,
    RECOVERY_NOTE,
    STATE_NOTE,
    STATE_STALE_SECONDS,
    outside_status,
    state_note,
)

NOW = 1_800_000_000.0


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    owned = Spool(tmp_path, max_bytes=1 << 20, outside_readers=(CONSUMER,))
    yield owned
    owned.close()


def test_no_state_noted_yet_is_not_running(spool: Spool) -> None:
    status = outside_status(spool, NOW)
    assert status["status"] == "not_running"
    assert status["lag_seconds"] is None and status["noted_seconds_ago"] is None


@pytest.mark.parametrize(
    ("noted_ago", "lag", "windows", "expected"),
    [
        (0.5, 0.2, [], "ok"),
        (STATE_STALE_SECONDS - 1, 0.2, [], "ok"),
        (STATE_STALE_SECONDS + 1, 0.2, [], "not_running"),  # stopped, crashed, restarting
        (0.5, BEHIND_SECONDS + 1, [], "behind"),
        (0.5, 0.2, [[1_700_000_000_000, 1_700_000_060_000]], "recovering"),
        (STATE_STALE_SECONDS + 1, 0.2, [[1, 2]], "not_running"),
    ],
)
def test_the_state_a_worker_reports_from_its_spool(
    spool: Spool, noted_ago: float, lag: float, windows: list[list[int]], expected: str
) -> None:
    spool.write_note(STATE_NOTE, state_note(lag, NOW - noted_ago))
    if windows:
        spool.write_note(RECOVERY_NOTE, orjson.dumps(windows))
    status = outside_status(spool, NOW)
    assert status["status"] == expected
    assert status["lag_seconds"] == lag
    assert status["noted_seconds_ago"] == round(noted_ago, 1)
    assert len(status["recovery_windows"]) == len(windows)


def test_a_damaged_state_note_reads_as_not_running(spool: Spool) -> None:
    spool.write_note(STATE_NOTE, b'{"at": "yesterday"')
    assert outside_status(spool, NOW)["status"] == "not_running"


def test_a_new_process_waits_for_the_last_one_to_let_go_of_a_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An analysis process whose owner was killed holds its spools up to a second longer;
    its successor waits for them rather than fail at start-up."""
    settings = Settings(data_dir=tmp_path)
    held = SpoolFollower(tmp_path / "spool", reader=CONSUMER, max_bytes=1 << 20)
    threading.Timer(1.5, held.close).start()
    follower = asyncio.run(prompt_process._follower(tmp_path / "spool", settings))
    follower.close()

    monkeypatch.setattr(prompt_process, "FOLLOWER_WAIT_SECONDS", 0.5)
    stuck = SpoolFollower(tmp_path / "spool", reader=CONSUMER, max_bytes=1 << 20)
    with pytest.raises(SpoolBusy):
        asyncio.run(prompt_process._follower(tmp_path / "spool", settings))
    stuck.close()


IDLE_CHILD = """
import os, threading, time
os.nice(19)
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling classes")
def test_a_process_told_to_stop_leaves_the_idle_class_in_every_thread() -> None:
    """An analysis process at SCHED_IDLE gets no CPU while the cores are busy, so it could not
    get through a stop: `leave_idle_class` moves all its threads back to SCHED_OTHER."""
    child = subprocess.Popen([sys.executable, "-c", IDLE_CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        threads = [int(t) for t in os.listdir(f"/proc/{child.pid}/task")]
        assert len(threads) == 2
        assert {os.sched_getscheduler(t) for t in threads} == {os.SCHED_IDLE}
        prompt_process.leave_idle_class(child.pid)
        assert {os.sched_getscheduler(t) for t in threads} == {os.SCHED_OTHER}
        if os.geteuid() == 0:  # nice can be lowered only with privilege
            assert {os.getpriority(os.PRIO_PROCESS, t) for t in threads} == {0}
    finally:
        child.kill()
        child.communicate()
    prompt_process.leave_idle_class(child.pid)  # ended: nothing to do, no error
