"""What both backends must do alike: typed parameters, inserts, deduplication, errors."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID

import pytest

from netra_analytics.errors import StoreError, StoreUnavailable
from netra_analytics.store.base import Store


def test_typed_parameters_round_trip(any_store: Store) -> None:
    awkward = "it's a \\ test\twith a tab\nand a newline"
    row = any_store.query_rows(
        "SELECT {s:String} AS s, {n:UInt32} AS n, {f:Float64} AS f, {d:DateTime64(3)} AS d, "
        "{day:Date} AS day, {u:UUID} AS u, {a:Array(String)} AS a, {b:Bool} AS b",
        {"s": awkward, "n": 7, "f": 2.5, "d": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
         "day": date(2026, 2, 28), "u": UUID(int=5), "a": ["x'y", "back\\slash", awkward], "b": True},
    )  # fmt: skip
    assert row == [
        {"s": awkward, "n": 7, "f": 2.5, "d": "2026-01-02 03:04:05.678", "day": "2026-02-28",
         "u": str(UUID(int=5)), "a": ["x'y", "back\\slash", awkward], "b": True}
    ]  # fmt: skip


def _rows(n: int) -> bytes:
    return b"\n".join(
        b'{"event_id":"00000000-0000-4000-8000-00000000000%d","timestamp":"2026-11-25T10:00:00.000Z",'
        b'"user_id":"u","event_type":"chat_interaction","event_value":%d}' % (i, i)
        for i in range(n)
    )


def test_retried_block_with_the_same_token_counts_once_in_table_and_view(any_store: Store) -> None:
    settings = {
        "insert_deduplication_token": "batch-1",
        "deduplicate_blocks_in_dependent_materialized_views": "1",
    }
    for _ in range(3):
        any_store.insert_json_rows("frontend_events", _rows(3), settings=settings)
    [row] = any_store.query_rows(
        "SELECT count() AS n, sum(event_value) AS v, any(hour) AS h, any(date) AS d "
        "FROM analytics.frontend_events"
    )
    assert row == {"n": 3, "v": 3.0, "h": 10, "d": "2026-11-25"}
    [summary] = any_store.query_rows(
        "SELECT sum(total_events) AS n, sum(total_tokens_consumed) AS t "
        "FROM analytics.user_analytics_summary"
    )
    assert summary == {"n": 3, "t": 3.0}


def test_query_raw_formats(any_store: Store) -> None:
    assert any_store.query_raw("SELECT 1 AS a, 'x' AS b") == b"1\tx\n"
    assert any_store.query_raw("SELECT 1 AS a", fmt="JSONEachRow") == b'{"a":1}\n'


def test_bad_sql_is_a_store_error_not_an_outage(any_store: Store) -> None:
    with pytest.raises(StoreError) as raised:
        any_store.query_rows("SELECT no_such_column FROM analytics.frontend_events")
    assert not isinstance(raised.value, StoreUnavailable)
    assert "no_such_column" in str(raised.value)


def test_table_names_are_checked(any_store: Store) -> None:
    with pytest.raises(ValueError, match="not a table name"):
        any_store.insert_json_rows("frontend_events; DROP TABLE x", b"{}")


def test_long_parameter_lists(any_store: Store) -> None:
    # Past about 4 KB of parameters clickhouse-connect sends them as form fields, not in the URL.
    ids = [str(UUID(int=i)) for i in range(5000)]
    [row] = any_store.query_rows(
        "SELECT length({ids:Array(UUID)}) AS n, has({ids:Array(UUID)}, {probe:UUID}) AS found",
        {"ids": ids, "probe": ids[-1]},
    )
    assert row == {"n": 5000, "found": True}


def test_the_embedded_engine_runs_below_the_event_loops(any_store: Store) -> None:
    """chDB's query threads (inserts, views, reports) run at nice 10, whether the engine is in
    this process or served to the workers over HTTP (`chdb_backend.EMBEDDED_SETTINGS`)."""
    [row] = any_store.query_rows("SELECT getSetting('os_thread_priority') AS priority")
    assert int(row["priority"]) == 10
