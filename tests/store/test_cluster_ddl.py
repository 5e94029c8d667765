"""The DDL generated for a ClickHouse cluster, checked as text (no cluster runs here)."""

from __future__ import annotations

import re

from netra_analytics.store.migrations import cluster_statements, load_migrations

CLUSTER = "analytics_cluster"


def _all() -> list[str]:
    return [s for m in load_migrations() for s in cluster_statements(m.statements, CLUSTER)]


def test_every_statement_runs_on_the_cluster() -> None:
    for statement in _all():
        assert f" ON CLUSTER {CLUSTER}" in statement.split("(")[0] + statement.split("AS")[0]


def test_tables_become_replicated_locals_behind_distributed_tables() -> None:
    statements = _all()
    for table, engine, args, sharding in (
        ("frontend_events", "ReplicatedMergeTree", "", "cityHash64(user_id)"),
        ("prompt_analytics", "ReplicatedReplacingMergeTree", ", version", "cityHash64(user_id)"),
        ("rejected_events", "ReplicatedMergeTree", "", "cityHash64(user_id)"),
        ("user_analytics_summary", "ReplicatedSummingMergeTree", "", "rand()"),
        ("activity_rollup", "ReplicatedAggregatingMergeTree", "", "rand()"),
        ("feedback_rollup", "ReplicatedSummingMergeTree", "", "rand()"),
        ("user_first_seen", "ReplicatedAggregatingMergeTree", "", "rand()"),
        ("follow_up_minutes", "ReplicatedSummingMergeTree", "", "rand()"),
        ("path_moves", "ReplicatedMergeTree", "", "rand()"),
        ("funnel_walks", "ReplicatedMergeTree", "", "cityHash64(user_id)"),
        ("funnel_builds", "ReplicatedMergeTree", "", "rand()"),
        ("prompt_rows_daily", "ReplicatedSummingMergeTree", "", "rand()"),
        ("recent_events", "ReplicatedMergeTree", "", "rand()"),
    ):
        [local] = [s for s in statements if re.search(rf"EXISTS analytics\.{table}_local ON", s)]
        assert (
            f"ENGINE = {engine}('/clickhouse/tables/{{shard}}/analytics/{table}_local', '{{replica}}'{args})"
            in local
        )
        [front] = [s for s in statements if re.search(rf"EXISTS analytics\.{table} ON", s)]
        assert front.endswith(
            f"AS analytics.{table}_local "
            f"ENGINE = Distributed({CLUSTER}, analytics, {table}_local, {sharding})"
        )


def test_local_tables_keep_the_single_node_definition() -> None:
    [local] = [
        s
        for s in _all()
        if s.startswith("CREATE TABLE IF NOT EXISTS analytics.frontend_events_local ON")
    ]
    assert "PARTITION BY toYYYYMM(timestamp)" in local
    assert "ORDER BY (user_id, timestamp, event_id)" in local
    assert "TTL toDateTime(timestamp) + INTERVAL 90 DAY" in local
    assert "INDEX idx_event_id event_id TYPE bloom_filter" in local


def test_materialized_views_read_their_nodes_local_events() -> None:
    views = [s for s in _all() if "MATERIALIZED VIEW" in s]
    assert len(views) == 8
    for view in views:
        source = "prompt_analytics" if "prompt_rows_daily" in view else "frontend_events"
        assert f"FROM analytics.{source}_local" in view
        assert f"FROM analytics.{source}\n" not in view


def test_plain_views_read_the_distributed_tables() -> None:
    daily, people, first_seen = [s for s in _all() if s.startswith("CREATE VIEW")]
    assert f"analytics.user_analytics_daily ON CLUSTER {CLUSTER}" in daily
    assert "FROM analytics.user_analytics_summary\n" in daily
    assert f"analytics.person_links ON CLUSTER {CLUSTER}" in people
    assert "FROM analytics.identity_links\n" in people
    assert f"analytics.person_first_seen ON CLUSTER {CLUSTER}" in first_seen


def test_database_is_created_on_the_cluster() -> None:
    assert _all()[0] == f"CREATE DATABASE IF NOT EXISTS analytics ON CLUSTER {CLUSTER}"


def test_column_changes_reach_the_local_tables_and_their_distributed_twins() -> None:
    altered = [
        s
        for s in _all()
        if s.startswith("ALTER TABLE analytics.frontend_events") and "MODIFY COLUMN" in s
    ]
    assert [s.split(" MODIFY")[0].strip() for s in altered] == [
        f"ALTER TABLE analytics.frontend_events_local ON CLUSTER {CLUSTER}",
        f"ALTER TABLE analytics.frontend_events ON CLUSTER {CLUSTER}",
    ]
    assert all("MODIFY COLUMN event_type LowCardinality(String)" in s for s in altered)
    added = [s for s in _all() if "ADD COLUMN IF NOT EXISTS anonymous_id" in s]
    assert [s.split(" ADD")[0].strip() for s in added] == [
        f"ALTER TABLE analytics.frontend_events_local ON CLUSTER {CLUSTER}",
        f"ALTER TABLE analytics.frontend_events ON CLUSTER {CLUSTER}",
    ]
