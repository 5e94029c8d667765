"""The migrations create the spec's schema, idempotently (checked against system.columns)."""

from __future__ import annotations

from netra_analytics.store.chdb_backend import ChdbStore
from netra_analytics.store.migrations import load_migrations, migrate, split_statements

# Transcribed from the product spec, independently of the .sql files.
SPEC_COLUMNS = {
    "frontend_events": {
        "event_id": "UUID", "timestamp": "DateTime64(3)", "user_id": "String",
        # the browser's anonymous id beside the id the event is stored under (migration 0014)
        "anonymous_id": "String",
        "session_id": "String", "event_type": "String", "event_category": "String",
        "event_action": "String", "event_label": "String", "event_value": "Float64",
        "properties": "String", "user_agent": "String", "ip_address": "String",
        "country_code": "String", "page_path": "String", "page_title": "String",
        "referrer": "String", "gtm_container_id": "String", "environment": "String",
        "app_version": "String", "date": "Date", "hour": "UInt8",
    },
    "prompt_analytics": {
        "prompt_id": "UUID", "timestamp": "DateTime64(3)", "user_id": "String",
        "thread_id": "String", "prompt_hash": "String", "prompt_category": "String",
        "prompt_intent": "String", "prompt_complexity_score": "Float32",
        "response_quality_score": "Float32", "response_relevance_score": "Float32",
        "follow_up_generated": "Bool", "is_repeat_question": "Bool",
        "similar_prompts": "Array(String)", "estimated_cost_cents": "Float32",
        # NULL when no event reported a cost; then the additions (see the migration)
        "actual_cost_cents": "Nullable(Float32)", "session_id": "String", "prompt_text": "String",
        "model_used": "String", "signals": "String", "version": "UInt64",
        # computed by ClickHouse from signals (MATERIALIZED, migration 0010)
        "answered": "Bool", "errors_after": "UInt32", "answer_output_tokens": "UInt64",
        "answer_response_time_ms": "Float64",
    },
    "user_analytics_summary": {
        "user_id": "String", "date": "Date", "total_events": "UInt64",
        "chat_interactions": "UInt64", "threads_created": "UInt64",
        "feature_interactions": "UInt64", "total_tokens_consumed": "Float64",
        # the spec's avg_response_time, kept as sum and count (see the migration's comment)
        "response_time_sum_ms": "Float64", "response_time_count": "UInt64",
        "ai_response_time_sum_ms": "Float64", "ai_response_count": "UInt64",
    },
    "user_analytics_daily": {
        "user_id": "String", "date": "Date", "total_events": "UInt64",
        "chat_interactions": "UInt64", "threads_created": "UInt64",
        "feature_interactions": "UInt64", "total_tokens_consumed": "Float64",
        "avg_response_time": "Nullable(Float64)", "avg_ai_response_time": "Nullable(Float64)",
    },
}  # fmt: skip


# Stored as dictionaries (migration 0007): the same values, read faster.
LOW_CARDINALITY = {
    "frontend_events": {
        "event_type", "event_category", "event_action", "event_label", "page_path",
        "country_code", "gtm_container_id", "environment", "app_version",
    },
    "prompt_analytics": {"prompt_category", "prompt_intent", "model_used"},
}  # fmt: skip


def _columns(store: ChdbStore, table: str) -> dict[str, str]:
    rows = store.query_rows(
        "SELECT name, type FROM system.columns WHERE database = 'analytics' AND table = {t:String} "
        "ORDER BY position",
        {"t": table},
    )
    return {row["name"]: row["type"] for row in rows}


def _table(store: ChdbStore, name: str) -> dict[str, str]:
    [row] = store.query_rows(
        "SELECT engine, engine_full, partition_key, sorting_key FROM system.tables "
        "WHERE database = 'analytics' AND name = {n:String}",
        {"n": name},
    )
    return {k: str(v) for k, v in row.items()}


def test_tables_have_the_specs_columns_in_order(store: ChdbStore) -> None:
    for table, columns in SPEC_COLUMNS.items():
        dictionaries = LOW_CARDINALITY.get(table, set())
        expected = {
            name: f"LowCardinality({kind})" if name in dictionaries else kind
            for name, kind in columns.items()
        }
        assert _columns(store, table) == expected, table


def test_engines_partitions_orders_and_ttls(store: ChdbStore) -> None:
    events = _table(store, "frontend_events")
    assert events["engine"] == "MergeTree"
    assert events["partition_key"] == "toYYYYMM(timestamp)"
    assert events["sorting_key"] == "user_id, timestamp, event_id"
    assert "TTL toDateTime(timestamp) + toIntervalDay(90)" in events["engine_full"]
    assert "index_granularity = 8192" in events["engine_full"]
    bots = _table(store, "bot_events")
    assert bots["sorting_key"] == "user_id, timestamp, event_id"
    assert "TTL toDateTime(timestamp) + toIntervalDay(30)" in bots["engine_full"]
    prompts = _table(store, "prompt_analytics")
    assert prompts["engine"] == "ReplacingMergeTree"
    assert prompts["sorting_key"] == "user_id, timestamp, prompt_id"
    assert "TTL toDateTime(timestamp) + toIntervalDay(180)" in prompts["engine_full"]
    summary = _table(store, "user_analytics_summary")
    assert summary["engine"] == "MaterializedView"
    inner = store.query_rows(
        "SELECT engine, engine_full FROM system.tables WHERE database = 'analytics' "
        "AND name LIKE '.inner%' ORDER BY engine"
    )
    assert [table["engine"] for table in inner] == [
        "AggregatingMergeTree",
        "AggregatingMergeTree",
        "AggregatingMergeTree",  # identity_links
        "MergeTree",  # recent_events: a copy of the last three days
        "SummingMergeTree",
        "SummingMergeTree",
        "SummingMergeTree",
        "SummingMergeTree",
    ]
    for table in inner:
        if table["engine"] == "MergeTree":
            assert "TTL date + toIntervalDay(3)" in table["engine_full"]
        elif "last_linked" in table["engine_full"]:  # identity links: as long as the events
            assert "TTL toDateTime(last_linked) + toIntervalDay(90)" in table["engine_full"]
        else:
            assert "toIntervalYear(2)" in table["engine_full"]  # aggregated metrics: two years


def test_migrating_again_changes_nothing(store: ChdbStore) -> None:
    before = {t: _columns(store, t) for t in SPEC_COLUMNS}
    assert migrate(store) == []
    assert migrate(store) == []
    assert {t: _columns(store, t) for t in SPEC_COLUMNS} == before
    versions = store.query_rows(
        "SELECT version FROM analytics.schema_migrations FINAL ORDER BY version"
    )
    assert [r["version"] for r in versions] == [m.version for m in load_migrations()]


def test_a_half_applied_migration_runs_again(store: ChdbStore) -> None:
    # Forget that the last migration ran: its statements are all IF NOT EXISTS.
    last = load_migrations()[-1].version
    store.execute("DELETE FROM analytics.schema_migrations WHERE version = {v:UInt32}", {"v": last})
    applied = migrate(store)
    assert applied == [f"{last:04d}_{load_migrations()[-1].name}"]


def test_statements_split_on_line_ends_and_skip_comments() -> None:
    sql = "-- a comment; with a semicolon\nCREATE TABLE a (x UInt8) ENGINE = Log;\n\nSELECT ';'\n  ;\n"
    assert split_statements(sql) == ("CREATE TABLE a (x UInt8) ENGINE = Log", "SELECT ';'")


def test_views_added_later_are_filled_from_the_events_already_stored(store: ChdbStore) -> None:
    store.execute(
        "INSERT INTO analytics.frontend_events (user_id, event_type, event_action, properties) "
        "VALUES ('a', 'feature_usage', 'open', '{}'), ('b', 'feedback_submission', 'nps', "
        "'{\"score\": 10}'), ('b', 'chat_interaction', 'user_prompt', '{}')"
    )
    for view in ("activity_rollup", "feedback_rollup"):  # as before their migrations existed
        store.execute(f"DROP TABLE analytics.{view}")
    store.execute("DELETE FROM analytics.schema_migrations WHERE version IN (5, 6)")
    assert migrate(store) == ["0005_activity_rollup", "0006_feedback_rollup"]
    [activity] = store.query_rows(
        "SELECT sum(total_events) AS events, uniqExactMerge(users) AS users "
        "FROM analytics.activity_rollup WHERE resolution = 'day'"
    )
    assert (int(activity["events"]), int(activity["users"])) == (3, 2)
    [feedback] = store.query_rows(
        "SELECT sum(answers) AS n, sumIf(answers, score = 10) AS tens FROM analytics.feedback_rollup"
    )
    assert (int(feedback["n"]), int(feedback["tens"])) == (1, 1)
