"""The committed `grafana/` files are what the generator builds from the catalog (and stop being
so when the catalog changes), the dashboards validate against Grafana's schema, every panel the
spec names is there, and the provisioning files have the agreed uids and variables."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from netra_analytics import cli
from netra_analytics.dashboards import catalog
from netra_analytics.dashboards.catalog import PANELS, Visualisation
from netra_analytics.grafana import generate
from netra_analytics.grafana.dashboards import CLICKHOUSE, INFINITY, source
from netra_analytics.grafana.schema import validate_dashboard

ROOT = Path(__file__).resolve().parents[2] / "grafana"
UIDS = ("netra-executive-overview", "netra-prompt-analytics", "netra-user-behavior",
        "netra-user-engagement", "netra-ai-spend")  # fmt: skip

# The spec's "Grafana Dashboards" section: dashboard -> (panel title, Grafana panel type).
SPEC_PANELS = {
    "netra-executive-overview": [
        ("Active users (5 min)", "stat"), ("Chat volume by hour", "timeseries"),
        ("Top features by usage", "barchart"), ("System health score", "stat"),
    ],
    "netra-prompt-analytics": [
        ("Common terms", "volkovlabs-echarts-panel"),
        ("Usage patterns (hour × weekday)", "volkovlabs-echarts-panel"),
        ("Follow-up question rate", "stat"), ("Unanswered questions", "table"),
    ],
    "netra-user-behavior": [
        ("User journeys", "volkovlabs-echarts-panel"),
        ("Weekly cohort retention", "volkovlabs-echarts-panel"),
        ("User segments", "piechart"), ("Average session duration", "stat"),
    ],
}  # fmt: skip


def committed() -> dict[str, str]:
    return {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
        for path in sorted(ROOT.rglob("*"))
        if path.is_file()
    }


def dashboards(embedded: bool = False) -> dict[str, dict[str, Any]]:
    return {
        Path(name).stem: json.loads(text)
        for name, text in generate.build(embedded=embedded).items()
        if name.startswith("dashboards/")
    }


def test_the_committed_files_are_the_generated_ones() -> None:
    assert committed() == generate.build(), "run: netra-analytics grafana generate"


def test_a_catalog_change_without_regenerating_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    panel = catalog.PANELS_BY_ID["active_users"]
    changed = dataclasses.replace(panel, title="Active people")
    monkeypatch.setitem(catalog.PANELS_BY_ID, "active_users", changed)
    built = generate.build()
    assert built != committed()
    differing = sorted(name for name in built if built[name] != committed().get(name))
    assert differing == [
        "dashboards/netra-executive-overview.json", "dashboards/netra-user-behavior.json",
    ]  # fmt: skip


def test_the_build_is_deterministic() -> None:
    assert generate.build() == generate.build()


def test_every_dashboard_validates_against_grafanas_schema() -> None:
    found = dashboards()
    assert set(UIDS) <= set(found)
    for uid, doc in found.items():
        assert validate_dashboard(doc) == [], uid
        assert doc["uid"] == uid and doc["schemaVersion"] == 42


def test_the_schema_refuses_a_broken_dashboard() -> None:
    doc = dashboards()["netra-user-behavior"]
    doc["panels"][0]["gridPos"] = {"h": "tall"}
    doc["refresh"] = 5
    errors = validate_dashboard(doc)
    assert any(e.startswith("panels/0/gridPos") for e in errors), errors
    assert any(e.startswith("refresh") for e in errors), errors


def test_every_panel_the_spec_names_is_there() -> None:
    found = dashboards()
    for uid, panels in SPEC_PANELS.items():
        present = {(p["title"], p["type"]) for p in found[uid]["panels"]}
        assert set(panels) <= present, uid


def test_each_catalog_dashboard_has_its_panels_with_unique_ids_and_no_overlap() -> None:
    found = dashboards()
    for board in catalog.DASHBOARDS:
        panels = found[f"netra-{board.name}"]["panels"]
        assert [p["title"] for p in panels] == [catalog.PANELS_BY_ID[i].title for i in board.panels]
        assert len({p["id"] for p in panels}) == len(panels)
        cells = [
            (x, y)
            for p in panels
            for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
            for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])
        ]
        assert len(cells) == len(set(cells)) and all(x < 24 for x, _ in cells), board.name


def test_sql_panels_read_clickhouse_and_the_others_infinity() -> None:
    for panel in PANELS:
        query = panel.query
        sql = isinstance(query, catalog.SqlQuery) and query.shape is None
        assert source(panel) is (CLICKHOUSE if sql else INFINITY), panel.id
    targets = [t for doc in dashboards().values() for p in doc["panels"] for t in p["targets"]]
    assert {t["datasource"]["uid"] for t in targets} == {
        "netra-clickhouse", "netra-infinity", "netra-prometheus",
    }  # fmt: skip


def test_dashboards_with_filtered_panels_have_the_environment_and_version_variables() -> None:
    for board in catalog.DASHBOARDS:
        filtered = any(
            f in catalog.PANELS_BY_ID[p].filters
            for p in board.panels
            for f in (catalog.Filter.environment, catalog.Filter.app_version)
        )
        for embedded, kind in ((False, "query"), (True, "textbox")):
            doc = dashboards(embedded)[f"netra-{board.name}"]
            found = doc["templating"].get("list", [])
            assert [v["name"] for v in found][-1] == "tz"
            if filtered:
                assert [v["name"] for v in found[:2]] == ["environment", "app_version"]
                assert {v["type"] for v in found[:2]} == {kind}
            else:
                assert len(found) == 1, board.name


def test_the_embedded_flavour_reads_every_panel_through_the_service() -> None:
    files = generate.build(embedded=True)
    assert "netra-clickhouse" not in "".join(files.values())
    for uid, doc in dashboards(embedded=True).items():
        assert validate_dashboard(doc) == [], uid
        for panel in doc["panels"]:
            [target] = panel["targets"]
            assert target["datasource"]["uid"] in ("netra-infinity", "netra-prometheus")
    sources = yaml.safe_load(files["provisioning/datasources/netra.yaml"])["datasources"]
    assert {d["uid"] for d in sources} == {"netra-prometheus", "netra-infinity"}


def test_the_business_charts_panels_carry_their_chart_function() -> None:
    kinds = {Visualisation.heatmap, Visualisation.sankey, Visualisation.wordcloud,
             Visualisation.cohort_matrix}  # fmt: skip
    titles = {p.title for p in PANELS if p.visualisation in kinds}
    for doc in dashboards().values():
        for panel in doc["panels"]:
            if panel["title"] in titles:
                assert panel["type"] == "volkovlabs-echarts-panel"
                body = panel["options"]["getOption"]
                assert "context.panel.data.series" in body and "function chartOption(" in body
                assert "import " not in body and "export " not in body


def test_provisioning_files_name_the_agreed_uids_and_environment_variables() -> None:
    files = generate.build()
    sources = yaml.safe_load(files["provisioning/datasources/netra.yaml"])
    assert sources["apiVersion"] == 1
    by_uid = {d["uid"]: d for d in sources["datasources"]}
    assert set(by_uid) == {"netra-clickhouse", "netra-prometheus", "netra-infinity"}
    text = files["provisioning/datasources/netra.yaml"]
    for variable in ("HOST", "PORT", "PROTOCOL", "DATABASE", "USER", "PASSWORD"):
        assert f"$GRAFANA_CLICKHOUSE_{variable}" in text
    assert by_uid["netra-infinity"]["secureJsonData"] == {"bearerToken": "$GRAFANA_NETRA_API_KEY"}
    assert by_uid["netra-prometheus"]["url"] == "$GRAFANA_PROMETHEUS_URL"
    provider = yaml.safe_load(files["provisioning/dashboards/netra.yaml"])["providers"][0]
    assert provider["folder"] == "Netra Analytics"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/netra"
    rules = yaml.safe_load(files["provisioning/alerting/netra-alerts.yaml"])
    [group] = rules["groups"]
    assert group["folder"] == "Netra Analytics" and len(group["rules"]) == 7
    for rule in group["rules"]:
        assert rule["uid"].startswith("netra-") and rule["condition"] == "C"
        assert {"for", "noDataState", "execErrState", "data", "title"} <= set(rule)
        assert "folderUID" not in rule  # the file format names the folder on the group
    points = yaml.safe_load(files["provisioning/alerting/contact-points.yaml"])
    assert points["policies"][0]["receiver"] == points["contactPoints"][0]["name"]


def test_the_cli_writes_the_files_and_sets_thresholds(tmp_path: Path) -> None:
    assert cli.main(["grafana", "generate", "--out", str(tmp_path),
                     "--threshold", "error_rate_percent=2.5"]) == 0  # fmt: skip
    rules = yaml.safe_load((tmp_path / "provisioning/alerting/netra-alerts.yaml").read_text())
    [error_rate] = [r for r in rules["groups"][0]["rules"] if r["uid"] == "netra-error-rate"]
    [threshold] = [q for q in error_rate["data"] if q["refId"] == "C"]
    assert threshold["model"]["conditions"][0]["evaluator"]["params"] == [2.5]
    written = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert written == set(generate.build())
    assert cli.main(["grafana", "generate", "--out", str(tmp_path), "--threshold", "x=1"]) == 2


def test_time_series_over_the_store_are_hourly_at_the_finest() -> None:
    for doc in dashboards().values():
        for panel in doc["panels"]:
            sql = panel["targets"][0].get("rawSql", "")
            if panel["type"] == "timeseries" and "$__timeInterval(" in sql:
                assert panel["interval"] == "1h", panel["title"]
            elif panel["type"] == "timeseries" and panel["datasource"]["uid"] != "netra-prometheus":
                assert panel["transformations"][0]["id"] == "convertFieldType", panel["title"]
