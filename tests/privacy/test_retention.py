"""Retention as documented: every table's TTL in the live schema equals the README's table,
every table is in it, the ClickHouse server's system logs get a TTL, and embedded chDB keeps
no system log at all, idle or under load."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import body, event, random_event
from tests.support.processes import wait_until

ROOT = Path(__file__).resolve().parents[2]
# Hold no personal data and must outlive everything: the migration ledger, and the API keys
# (name, role, SHA-256 of the key; a revoked key's rows stay so that it stays revoked).
NO_TTL = {"schema_migrations", "api_keys"}
# A MaterializedView's data and TTL live in its inner table, `.inner_id.<the view's uuid>`.
TABLES = """
SELECT t.name AS name, t.engine AS engine,
  if(t.engine = 'MaterializedView', i.engine_full, t.engine_full) AS engine_full
FROM system.tables AS t
LEFT JOIN system.tables AS i
  ON i.database = 'analytics' AND i.name = concat('.inner_id.', toString(t.uuid))
WHERE t.database = 'analytics' AND NOT startsWith(t.name, '.inner') AND t.engine != 'View'
"""
TTL = re.compile(r"\bTTL .+? \+ toInterval(Day|Month|Year)\((\d+)\)")
KEPT = re.compile(r"^(\d+) (day|month|year)s?\b")


def _readme_retention() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("### Retention", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"`\w+`", cells[0]):
            rows[cells[0].strip("`")] = cells[2]
    return rows


def _schema_ttls(store: ChdbStore) -> dict[str, tuple[str, int] | None]:
    out: dict[str, tuple[str, int] | None] = {}
    for row in store.query_rows(TABLES):
        match = TTL.search(row["engine_full"] or "")
        out[row["name"]] = (match.group(1).lower(), int(match.group(2))) if match else None
    return out


def test_every_table_has_the_ttl_the_readme_gives(chdb_store: ChdbStore) -> None:
    documented, live = _readme_retention(), _schema_ttls(chdb_store)
    assert set(documented) == set(live), "tables missing from the README or gone from the schema"
    for name, ttl in live.items():
        if name in NO_TTL:
            assert ttl is None and not KEPT.match(documented[name]), name
            continue
        assert ttl is not None, f"{name} has no TTL: give it one and a line in the README"
        kept = KEPT.match(documented[name])
        assert kept is not None, (name, documented[name])
        assert (kept.group(2), int(kept.group(1))) == ttl, (name, documented[name], ttl)


def test_the_server_config_bounds_every_system_log() -> None:
    config = ROOT / "deploy/clickhouse/config.d/system_log_ttl.xml"
    root = ET.parse(config).getroot()  # noqa: S314 (our own file, not untrusted input)
    logs = {child.tag: child for child in root}
    # The MergeTree system logs a ClickHouse server (24.x-25.x) enables by default.
    assert set(logs) >= {"query_log", "query_thread_log", "query_views_log", "part_log",
                         "trace_log", "metric_log", "asynchronous_metric_log", "crash_log",
                         "processors_profile_log", "opentelemetry_span_log", "error_log"}  # fmt: skip
    assert not set(logs) & {"text_log", "session_log", "zookeeper_log"}  # would enable them
    for name, element in logs.items():
        ttl = element.findtext("ttl") or ""
        engine = element.findtext("engine") or ""
        assert re.search(r"INTERVAL (7|30) DAY DELETE", ttl + engine), name
        assert not (element.find("engine") is not None and element.find("ttl") is not None)


def test_embedded_chdb_keeps_no_system_log_idle_or_under_load(
    client: TestClient, store: ChdbStore
) -> None:
    rng = random.Random(3)
    for n in range(20):
        events = [random_event(rng) for _ in range(10)] + [event("feature_usage")]
        reply = client.post("/api/analytics/events", content=orjson.dumps(body(events, user_id=f"u{n}")),
                            headers={"content-type": "application/json"})  # fmt: skip
        assert reply.status_code == 202
        client.get("/api/analytics/reports/user-activity",
                   params={"start_date": "2026-11-01", "end_date": "2026-11-30"})  # fmt: skip
    wait_until(
        lambda: (
            store.query_rows("SELECT count() AS n FROM analytics.frontend_events")[0]["n"] == 220
        )
    )
    logs = store.query_rows(
        "SELECT name, engine FROM system.tables WHERE database = 'system' "
        "AND (engine LIKE '%MergeTree' OR name LIKE '%\\_log')"
    )
    # chDB's one log is kept in memory (SystemUserQueryLog), none in a MergeTree on disk.
    assert all(row["engine"] == "SystemUserQueryLog" for row in logs), logs
    assert not store.query_rows("SELECT name FROM system.parts WHERE database = 'system'")
    ours = {
        str(row["uuid"])
        for row in store.query_rows(
            "SELECT uuid FROM system.tables WHERE database = 'analytics' "
            "UNION ALL SELECT uuid FROM system.databases WHERE name = 'analytics' "
            # tables other tests dropped, whose files go after a delay (Atomic databases)
            "UNION ALL SELECT uuid FROM system.dropped_tables"
        )
    }
    on_disk = {p.name for p in (store._path / "store").glob("*/*") if p.is_dir()}
    assert on_disk <= ours, on_disk - ours  # nothing under the data dir but our tables
    storage = client.get("/health/ready").json()["checks"]["storage"]
    sizes = storage["tables_bytes"]
    assert sizes["frontend_events"] > 0 and sizes["activity_rollup"] > 0  # views by their names
    assert not any(name.startswith(".inner") for name in sizes)
    assert storage["spool_bytes"] > 0
