"""`RateLimitedLog`: one line per kind and interval, the count of the rest on the next."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netra_analytics.logs import RateLimitedLog, RateLimitFilter


def test_one_line_per_kind_and_interval_then_the_count(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    gate = RateLimitedLog(logging.getLogger("t.rate"), interval=60, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="t.rate"):
        for second in range(120):
            now[0] = float(second)
            for _ in range(10):
                gate.log(logging.INFO, "a", "client error %s", "a")
                gate.log(logging.INFO, "b", "client error %s", "b")
    lines = [(r.__dict__["kind"], r.__dict__["suppressed"]) for r in caplog.records]
    assert lines == [("a", 0), ("b", 0), ("a", 599), ("b", 599)]


@given(st.lists(st.text(max_size=3), max_size=300))
def test_it_remembers_at_most_max_kinds(kinds: list[str]) -> None:
    gate = RateLimitedLog(logging.getLogger("t.kinds"), max_kinds=10, clock=lambda: 0.0)
    for kind in kinds:
        gate.admit(kind)
        assert len(gate._kinds) <= 10


def test_the_filter_passes_a_library_line_once_per_interval() -> None:
    filter_ = RateLimitFilter()
    record = logging.makeLogRecord({"msg": "Invalid HTTP request received.", "levelno": 30})
    assert [filter_.filter(record) for _ in range(5)] == [True, False, False, False, False]
    error = logging.makeLogRecord({"msg": "boom", "levelno": 40})
    assert all(filter_.filter(error) for _ in range(3))  # errors are never held back
