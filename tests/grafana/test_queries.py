"""Every ClickHouse query of the generated dashboards and alert rules, expanded exactly as the
ClickHouse plugin expands it (`grafana.macros`), runs on the embedded store filled by the demo
generator and answers the columns its panel draws; filtered by the environment variable it
counts what Python counts over the demo's events. The Infinity panels' URLs answer, through the
service, the columns their queries declare; the Prometheus queries name declared metrics."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from netra_analytics.dashboards.catalog import PANELS_BY_ID
from netra_analytics.grafana import alerts, generate
from netra_analytics.grafana.dashboards import OPERATIONS, all_dashboards
from netra_analytics.grafana.macros import ALL, QueryContext, expand
from netra_analytics.store.chdb_backend import ChdbStore
from tests.dashboards.conftest import Filled

# The columns each Grafana panel type reads from its query (field config, chart functions).
NUMERIC = (int, float)


def targets(
    datasource: str, embedded: bool = False
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(dashboard uid, panel, target) of every target reading `datasource`."""
    return [
        (uid, panel, target)
        for uid, doc in all_dashboards(embedded).items()
        for panel in doc["panels"]
        for target in panel["targets"]
        if target["datasource"]["uid"] == datasource
    ]


CLICKHOUSE_TARGETS = targets("netra-clickhouse")
INFINITY_TARGETS = targets("netra-infinity")
# The panels the embedded flavour reads through the service and the default does not.
EMBEDDED_TARGETS = [
    (uid, panel, target)
    for uid, panel, target in targets("netra-infinity", embedded=True)
    if (uid, panel["title"]) not in {(u, p["title"]) for u, p, _ in INFINITY_TARGETS}
]


def context(filled: Filled, **variables: str) -> QueryContext:
    values = {"environment": ALL, "app_version": ALL, "tz": "Europe/Paris"} | variables
    start = (filled.now - timedelta(days=30)).replace(microsecond=0)
    end = (filled.now + timedelta(minutes=1)).replace(microsecond=0)
    return QueryContext(start, end, timedelta(hours=1), values)


def run(store: ChdbStore, sql: str, at: QueryContext) -> list[dict[str, Any]]:
    return store.query_rows(expand(sql, at))


def check_rows(panel: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """The rows have what the Grafana panel draws."""
    assert rows, panel["title"]
    columns = list(rows[0])
    kind = panel["type"]
    if kind == "stat":
        assert len(rows) == 1 and isinstance(rows[0]["value"], NUMERIC)
    elif kind == "timeseries":
        assert columns[0] == "period"
        times = [datetime.fromisoformat(str(r["period"])) for r in rows]
        assert times == sorted(times)
        assert all(isinstance(r[c], NUMERIC) for r in rows for c in columns[1:])
    elif kind in ("barchart", "piechart"):
        assert isinstance(rows[0][columns[0]], str) and len(columns) >= 2
        assert all(isinstance(r[c], NUMERIC) for r in rows for c in columns[1:])
    elif kind == "volkovlabs-echarts-panel":
        used = set(re.findall(r'column\("(\w+)"\)', panel["options"]["getOption"]))
        assert used <= set(columns), (panel["title"], used, columns)
        assert all(isinstance(r[c], NUMERIC) for r in rows for c in used - {"term"})
    else:
        raise AssertionError(f"unexpected panel type {kind}")


@pytest.mark.parametrize(
    ("uid", "panel", "target"),
    CLICKHOUSE_TARGETS,
    ids=[f"{u}:{p['title']}" for u, p, _ in CLICKHOUSE_TARGETS],
)
def test_every_clickhouse_panel_query_runs_and_has_its_columns(
    filled: Filled, chdb_store: ChdbStore, uid: str, panel: dict[str, Any], target: dict[str, Any]
) -> None:
    rows = run(chdb_store, target["rawSql"], context(filled))
    check_rows(panel, rows)


def title_query(uid: str, title: str) -> str:
    [sql] = [t["rawSql"] for u, p, t in CLICKHOUSE_TARGETS if u == uid and p["title"] == title]
    return str(sql)


def test_the_environment_variable_filters_as_python_counts(
    filled: Filled, chdb_store: ChdbStore
) -> None:
    sql = title_query("netra-user-behavior", "Active users")
    for environment in ("production", "staging"):
        at = context(filled, environment=environment)
        [row] = run(chdb_store, sql, at)
        people = {
            e["context"]["user_id"]
            for e in filled.events
            if e["context"].get("environment") == environment
            and at.start <= datetime.fromisoformat(e["timestamp"]) <= at.end
        }
        assert people and row["value"] == len(people), environment
    [everyone] = run(chdb_store, sql, context(filled))
    assert everyone["value"] == len({e["context"]["user_id"] for e in filled.events})


def test_the_chat_volume_sums_to_pythons_count(filled: Filled, chdb_store: ChdbStore) -> None:
    at = context(filled)
    rows = run(chdb_store, title_query("netra-executive-overview", "Chat volume by hour"), at)
    prompts = sum(
        1
        for e in filled.events
        if e["event_type"] == "chat_interaction"
        and e["properties"].get("message_type") == "user_prompt"
    )
    assert sum(r["prompts"] for r in rows) == prompts
    starts = [datetime.fromisoformat(str(r["period"])) for r in rows]
    assert all(s.minute == 0 and s.second == 0 for s in starts)  # hour buckets ($__timeInterval)


def test_the_variables_queries_list_the_demo_values(filled: Filled, chdb_store: ChdbStore) -> None:
    doc = all_dashboards()["netra-executive-overview"]
    found = {}
    for variable in doc["templating"]["list"][:2]:
        rows = run(chdb_store, variable["query"], context(filled))
        found[variable["name"]] = [next(iter(r.values())) for r in rows]
    environments = {e["context"].get("environment") for e in filled.events} - {None, ""}
    assert found["environment"] == sorted(environments)
    assert found["app_version"] and found["app_version"] == sorted(found["app_version"])


def test_the_ingestion_stalled_rule_query_runs(filled: Filled, chdb_store: ChdbStore) -> None:
    [rule] = [r for r in alerts.rules() if r.language == "sql"]
    [row] = run(chdb_store, rule.query, context(filled))
    newest = max(datetime.fromisoformat(e["timestamp"]) for e in filled.events)
    expected = (datetime.now(UTC) - newest).total_seconds()
    assert abs(row["data_age_seconds"] - expected) <= 5
    assert row["data_age_seconds"] < alerts.Thresholds().data_age_seconds  # not firing


def iso_z(moment: datetime) -> str:
    """A time as Grafana's `:date:iso` formats it (JavaScript's toISOString: ms, `Z`)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def infinity_csv(
    filled: Filled, target: dict[str, Any], **variables: str
) -> tuple[list[str], list[list[str]]]:
    """The CSV the Infinity query asks the service for, its URL's variables replaced as Grafana
    replaces them (the range as ISO times; a text-box variable as it is, empty by default)."""
    at = context(filled)
    grafana_values = {
        "${__from:date:iso}": iso_z(at.start),
        "${__to:date:iso}": iso_z(at.end),
        "${tz}": "Europe/Paris",
        "${environment}": variables.get("environment", ""),
        "${app_version}": variables.get("app_version", ""),
    }
    params = {
        p["key"]: grafana_values.get(p["value"], p["value"])
        for p in target["url_options"]["params"]
    }
    assert not any("$" in v for v in params.values()), params
    panel_id = target["url"].removeprefix("/api/analytics/panels/")
    assert panel_id in PANELS_BY_ID and target["url"] == f"/api/analytics/panels/{panel_id}"
    reply = filled.client.get(target["url"], params=params)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/csv")
    header, *rows = list(csv.reader(io.StringIO(reply.text)))
    return header, rows


def check_csv(target: dict[str, Any], header: list[str], rows: list[list[str]]) -> None:
    """The CSV has the declared columns (the survey scales: those of the kinds answered), and
    the cells declared numbers parse as numbers."""
    declared = {c["selector"]: c["type"] for c in target["columns"]}
    assert rows and header[0] == next(iter(declared))
    if header[0] == "scale":
        assert len(header) > 1 and set(header) <= set(declared)
    else:
        assert header == list(declared)
    for row in rows:
        for name, cell in zip(header, row, strict=True):
            if declared[name] == "number" and cell != "":
                float(cell)


@pytest.mark.parametrize(
    ("uid", "panel", "target"),
    INFINITY_TARGETS + EMBEDDED_TARGETS,
    ids=[f"{u}:{p['title']}" for u, p, _ in INFINITY_TARGETS]
    + [f"embedded:{u}:{p['title']}" for u, p, _ in EMBEDDED_TARGETS],
)
def test_every_infinity_panel_url_answers_its_declared_columns(
    filled: Filled, uid: str, panel: dict[str, Any], target: dict[str, Any]
) -> None:
    header, rows = infinity_csv(filled, target)
    check_csv(target, header, rows)


def test_the_embedded_flavour_passes_the_environment_to_the_service(
    filled: Filled, chdb_store: ChdbStore
) -> None:
    [target] = [
        t
        for u, p, t in EMBEDDED_TARGETS
        if u == "netra-user-behavior" and p["title"] == "Active users"
    ]
    sql = title_query("netra-user-behavior", "Active users")
    for environment in ("production", "staging"):
        header, [row] = infinity_csv(filled, target, environment=environment)
        [expected] = run(chdb_store, sql, context(filled, environment=environment))
        assert header == ["value", "previous"] and int(row[0]) == expected["value"] > 0


def metric_names() -> set[str]:
    from prometheus_client import REGISTRY

    import netra_analytics.metrics  # noqa: F401  (declares the metrics)

    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


PROMQL_NAMES = sorted(
    {
        name
        for expr in [e for _, _, e, _ in OPERATIONS]
        + [r.query for r in alerts.rules() + alerts.rules(True) if r.language == "promql"]
        for name in re.findall(r"\bnetra_\w+", expr)
    }
)


def test_prometheus_queries_name_declared_metrics() -> None:
    declared = metric_names()
    if "netra_event_ingestion_events_total" not in declared:
        pytest.skip("metrics.py does not yet declare the metrics of CONTRACTS-17-18 (h17obs)")
    histogram_parts = {n for n in PROMQL_NAMES if n.endswith("_bucket")}
    missing = [n for n in PROMQL_NAMES if n not in declared and n not in histogram_parts]
    missing += [n for n in histogram_parts if n not in declared]
    assert missing == []


def test_the_generated_files_hold_every_rule_query_checked_here() -> None:
    text = generate.build()["provisioning/alerting/netra-alerts.yaml"]
    assert all(rule.uid in text for rule in alerts.rules())


def test_the_app_version_variable_and_time_zone_reach_the_query(
    filled: Filled, chdb_store: ChdbStore
) -> None:
    version = Counter(e["context"].get("app_version") for e in filled.events).most_common(1)[0][0]
    at = context(filled, app_version=version, tz="America/New_York")
    rows = run(
        chdb_store, title_query("netra-prompt-analytics", "Usage patterns (hour × weekday)"), at
    )
    zone = ZoneInfo("America/New_York")
    expected = Counter(
        (moment.hour, moment.isoweekday())
        for e in filled.events
        if e["context"].get("app_version") == version
        for moment in [datetime.fromisoformat(e["timestamp"]).astimezone(zone)]
    )
    assert {(r["hour"], r["weekday"]): r["events"] for r in rows} == dict(expected)
