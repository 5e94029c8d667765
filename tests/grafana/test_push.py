"""`grafana push` against the stand-in Grafana (tests/support/grafana_api.py): what Grafana
receives, idempotence, and one clear line per refusal."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from netra_analytics import cli
from tests.grafana.fixture_files import FIXTURE_ENV, copy_fixtures
from tests.support import grafana_api

TOKEN = "glsa_fixtureServiceAccountToken_0123456789"


@pytest.fixture
def grafana_dir(tmp_path: Path) -> Path:
    return copy_fixtures(tmp_path)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FIXTURE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GRAFANA_API_TOKEN", TOKEN)


def run_push(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    url: str,
    root: Path,
    *extra: str,
) -> tuple[int, list[str]]:
    monkeypatch.setenv("GRAFANA_API_URL", url)
    code = cli.main(["grafana", "push", "--dir", str(root), *extra])
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err
    return code, [line for line in (captured.out + captured.err).splitlines() if line]


@pytest.mark.usefixtures("environment")
def test_push_creates_every_item_as_grafana_documents_it(
    grafana_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with grafana_api.running(TOKEN) as (url, grafana):
        code, lines = run_push(monkeypatch, capsys, url, grafana_dir)

    assert code == 0, lines
    assert lines == [
        "folder netra-analytics: created",
        "datasource netra-clickhouse: created",
        "datasource netra-prometheus: created",
        "datasource netra-infinity: created",
        "dashboard netra-executive-overview: created",
        "contact point netra-operator: created",
        "notification policy tree: skipped (replacing a Grafana's whole policy tree is left to "
        "its operator; route to the contact point there)",
        "alert rule netra-error-rate: created",
        "alert rule netra-data-freshness: created",
        "rule group netra-service: unchanged",
    ]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in grafana.requests)
    assert grafana.folders["netra-analytics"]["title"] == "Netra Analytics"
    clickhouse = grafana.datasources["netra-clickhouse"]
    assert clickhouse["jsonData"] == {
        "host": "clickhouse",
        "port": "8123",
        "protocol": "http",
        "defaultDatabase": "analytics",
        "username": "grafana",
    }
    assert clickhouse["secureJsonData"] == {"password": "ch-secret-p4ss"}
    assert grafana.datasources["netra-prometheus"]["url"] == "http://prometheus:9090"
    assert grafana.datasources["netra-infinity"]["jsonData"]["allowedHosts"] == [
        "http://proxy:8080"
    ]
    dashboard = grafana.dashboards["netra-executive-overview"]
    assert dashboard["folderUid"] == "netra-analytics"
    posted = next(r.body for r in grafana.requests if r.path == "/api/dashboards/db")
    assert posted["overwrite"] is True and posted["folderUid"] == "netra-analytics"
    # Panel SQL and dashboard variables reach Grafana untouched (no env interpolation).
    fixture = json.loads((grafana_dir / "dashboards/netra-executive-overview.json").read_text())
    assert dashboard["dashboard"]["panels"] == fixture["panels"]
    rule = grafana.rules["netra-error-rate"]
    assert rule["folderUID"] == "netra-analytics" and rule["ruleGroup"] == "netra-service"
    assert rule["title"] == "Error rate over 5%"
    assert rule["annotations"]["summary"] == "Error rate is {{ $value }} (over 5%)"
    assert rule["provenance"] == "api"
    freshness = grafana.rules["netra-data-freshness"]
    assert "$__timeFilter(timestamp)" in freshness["data"][0]["model"]["rawSql"]
    assert freshness["noDataState"] == "Alerting" and freshness["for"] == "10m"
    assert grafana.groups[("netra-analytics", "netra-service")] == 60
    assert grafana.contact_points["netra-operator"]["settings"] == {"addresses": "ops@example.com"}


@pytest.mark.usefixtures("environment")
def test_second_push_changes_nothing_and_a_changed_item_is_updated(
    grafana_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with grafana_api.running(TOKEN) as (url, grafana):
        assert run_push(monkeypatch, capsys, url, grafana_dir)[0] == 0
        first_writes = len(grafana.writes())
        code, lines = run_push(monkeypatch, capsys, url, grafana_dir)
        second = grafana.writes()[first_writes:]

        assert code == 0
        outcomes = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in lines}
        # Datasources holding secrets are re-sent (Grafana never returns secrets to compare).
        assert outcomes.pop("datasource netra-clickhouse") == "updated"
        assert outcomes.pop("datasource netra-infinity") == "updated"
        outcomes.pop("notification policy tree")
        assert set(outcomes.values()) == {"unchanged"}, outcomes
        assert [(r.method, r.path) for r in second] == [
            ("PUT", "/api/datasources/uid/netra-clickhouse"),
            ("PUT", "/api/datasources/uid/netra-infinity"),
        ]

        path = grafana_dir / "dashboards/netra-executive-overview.json"
        doc = json.loads(path.read_text())
        doc["title"] = "Netra: Executive Overview (renamed)"
        path.write_text(json.dumps(doc))
        alerts = grafana_dir / "provisioning/alerting/netra-alerts.yaml"
        alerts.write_text(alerts.read_text().replace("interval: 1m", "interval: 2m"))
        code, lines = run_push(monkeypatch, capsys, url, grafana_dir)
        assert code == 0
        assert "dashboard netra-executive-overview: updated" in lines
        assert "rule group netra-service: updated (every 2m)" in lines
        assert grafana.dashboards["netra-executive-overview"]["dashboard"]["version"] == 2
        assert grafana.groups[("netra-analytics", "netra-service")] == 120
        assert set(grafana.rules) == {"netra-error-rate", "netra-data-freshness"}


@pytest.mark.usefixtures("environment")
def test_editable_push_sends_x_disable_provenance(
    grafana_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with grafana_api.running(TOKEN) as (url, grafana):
        code, _ = run_push(monkeypatch, capsys, url, grafana_dir, "--editable")
    assert code == 0
    alerting = [r for r in grafana.writes() if r.path.startswith("/api/v1/provisioning")]
    assert alerting and all(r.headers.get("x-disable-provenance") == "true" for r in alerting)
    assert grafana.rules["netra-error-rate"]["provenance"] == ""


@pytest.mark.usefixtures("environment")
def test_a_refused_token_is_one_line_and_exit_1(
    grafana_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with grafana_api.running("glsa_the_right_token") as (url, grafana):
        code, lines = run_push(monkeypatch, capsys, url, grafana_dir)
    assert code == 1
    assert lines == [
        "grafana push: Grafana refused the token (401 at GET /api/folders/netra-analytics): "
        "Invalid API key; check GRAFANA_API_TOKEN (a service account token of this Grafana)"
    ]
    assert grafana.writes() == []


@pytest.mark.usefixtures("environment")
def test_a_missing_plugin_is_one_line_per_item_and_the_rest_is_pushed(
    grafana_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plugins = frozenset({"yesoreyeram-infinity-datasource"})  # no ClickHouse, no Business Charts
    with grafana_api.running(TOKEN, plugins) as (url, grafana):
        code, lines = run_push(monkeypatch, capsys, url, grafana_dir)
    assert code == 1
    failed = [line for line in lines if ": failed: " in line]
    assert failed == [
        "datasource netra-clickhouse: failed: plugin grafana-clickhouse-datasource is not "
        "installed in this Grafana (install it: grafana cli plugins install "
        "grafana-clickhouse-datasource, or GF_PLUGINS_PREINSTALL)",
        "dashboard netra-executive-overview: failed: plugin volkovlabs-echarts-panel is not "
        "installed in this Grafana (install it: grafana cli plugins install "
        "volkovlabs-echarts-panel, or GF_PLUGINS_PREINSTALL)",
        # Grafana's own refusal of a rule over the datasource that could not be created.
        "alert rule netra-data-freshness: failed: Grafana answered 400: invalid alert rule: "
        "data source 'netra-clickhouse' not found",
    ]
    assert set(grafana.datasources) == {"netra-prometheus", "netra-infinity"}
    assert set(grafana.rules) == {"netra-error-rate"}


@pytest.mark.usefixtures("environment")
def test_grafana_refusing_one_item_is_one_line_with_its_message(
    grafana_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with grafana_api.running(TOKEN) as (url, grafana):
        # A datasource that Grafana's own file provisioning owns there (read-only).
        grafana.datasources["netra-prometheus"] = {
            "uid": "netra-prometheus", "name": "Netra Prometheus", "type": "prometheus",
            "url": "http://elsewhere:9090", "id": 99, "orgId": 1, "version": 1, "readOnly": True,
        }  # fmt: skip
        code, lines = run_push(monkeypatch, capsys, url, grafana_dir)
    assert code == 1
    assert [line for line in lines if "failed" in line] == [
        "datasource netra-prometheus: failed: Grafana answered 403: Cannot update read-only "
        "data source"
    ]
    assert grafana.datasources["netra-prometheus"]["url"] == "http://elsewhere:9090"
    assert "alert rule netra-error-rate: created" in lines  # the rest goes on


@pytest.mark.usefixtures("environment")
def test_an_unset_variable_stops_its_item_only(
    grafana_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GRAFANA_CLICKHOUSE_PASSWORD")
    with grafana_api.running(TOKEN) as (url, grafana):
        code, lines = run_push(monkeypatch, capsys, url, grafana_dir)
    assert code == 1
    assert (
        "datasource netra-clickhouse: failed: not pushed: GRAFANA_CLICKHOUSE_PASSWORD unset in "
        'the environment (file provisioning would use ""; export it, empty if that is meant)'
        in lines
    )
    assert "netra-clickhouse" not in grafana.datasources
    assert "netra-prometheus" in grafana.datasources


@pytest.mark.usefixtures("environment")
def test_unreachable_grafana_and_missing_settings_are_one_line(
    grafana_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with grafana_api.running(TOKEN) as (url, _):
        pass  # closed again: nothing listens on its port now
    code, lines = run_push(monkeypatch, capsys, url, grafana_dir)
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(f"grafana push: cannot reach Grafana at {url}")

    code, lines = run_push(monkeypatch, capsys, "TBD", grafana_dir)
    assert (code, lines) == (
        2,
        ["netra-analytics grafana push: set GRAFANA_API_URL and GRAFANA_API_TOKEN"],
    )

    (grafana_dir / "provisioning/datasources/netra.yaml").write_text("datasources: [unclosed")
    code, lines = run_push(monkeypatch, capsys, url, grafana_dir)
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(
        f"netra-analytics grafana push: {grafana_dir}/provisioning/"
        "datasources/netra.yaml: does not parse:"
    )


def test_the_stand_in_refuses_what_grafana_refuses() -> None:
    """The stand-in's checks themselves: overwrite, uids, plugin types, rule fields."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with grafana_api.running(TOKEN) as (url, _), httpx.Client(base_url=url, headers=auth) as client:
        assert client.post("/api/folders", json={"uid": "f", "title": "F"}).status_code == 200
        board = {"uid": "d1", "title": "D", "panels": []}
        first = client.post("/api/dashboards/db", json={"dashboard": board, "folderUid": "f"})
        assert first.json()["version"] == 1
        again = client.post("/api/dashboards/db", json={"dashboard": board, "folderUid": "f"})
        assert (again.status_code, again.json()["status"]) == (412, "version-mismatch")
        twin = {"uid": "d2", "title": "D"}
        same_name = client.post("/api/dashboards/db", json={"dashboard": twin, "folderUid": "f"})
        assert (same_name.status_code, same_name.json()["status"]) == (412, "name-exists")
        forced = client.post(
            "/api/dashboards/db", json={"dashboard": board, "folderUid": "f", "overwrite": True}
        )
        assert forced.json()["version"] == 2
        no_uid = client.post("/api/dashboards/db", json={"dashboard": {"title": "X"}})
        assert no_uid.status_code == 400
        plugin = client.post("/api/datasources", json={"name": "x", "type": "acme-datasource"})
        assert plugin.status_code == 400 and "not installed" in plugin.json()["message"]
        rule = client.post(
            "/api/v1/provisioning/alert-rules",
            json={
                "uid": "r",
                "title": "R",
                "folderUID": "f",
                "ruleGroup": "g",
                "for": "1m",
                "condition": "B",
                "data": [{"refId": "A", "datasourceUid": "__expr__", "model": {}}],
            },
        )
        assert rule.status_code == 400 and "condition B does not exist" in rule.json()["message"]
        bearer = client.get("/api/folders/f", headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
        assert bearer.status_code == 401 and bearer.json()["message"] == "Invalid API key"


def test_comparison_tolerates_what_grafana_adds_or_leaves_out() -> None:
    from netra_analytics.grafana.push import _contains, _seconds

    stored = {"uid": "r", "id": 7, "data": [{"model": {"expr": "up", "intervalMs": 1000}}]}
    assert _contains(stored, {"uid": "r", "labels": {}, "isPaused": False,
                              "data": [{"model": {"expr": "up"}}]})  # fmt: skip
    assert not _contains(stored, {"uid": "r", "labels": {"team": "x"}})
    assert not _contains(stored, {"data": [{"model": {"expr": "up"}}, {"model": {}}]})
    assert not _contains(stored, {"data": [{"model": {"expr": "down"}}]})
    assert _seconds("300s") == _seconds("5m") == 300
    assert _seconds("1h30m") == 5400


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not (ROOT / "grafana").is_dir(), reason="grafana/ is generated by h18gen")
def test_the_generated_files_push_cleanly_then_change_nothing() -> None:
    """The repository's own `grafana/` through the stand-in: every item accepted as Grafana
    documents it, and a second push writes only the datasources holding secrets."""
    from netra_analytics.grafana.push import push, referenced_variables

    root = ROOT / "grafana"
    env = {name: f"value-of-{name.lower()}" for name in referenced_variables(root)}
    with grafana_api.running(TOKEN) as (url, grafana):
        first = push(root, url, TOKEN, env, out=lambda line: None)
        assert not first.failed, first.lines
        written = len(grafana.writes())
        second = push(root, url, TOKEN, env, out=lambda line: None)
        assert not second.failed, second.lines
        again = grafana.writes()[written:]
    assert {r.path for r in again} <= {f"/api/datasources/uid/{uid}" for uid in grafana.datasources}
    dashboards = sorted(p.stem for p in (root / "dashboards").glob("*.json"))
    assert sorted(grafana.dashboards) == dashboards
    assert grafana.rules and all(
        r["folderUID"] == "netra-analytics" for r in grafana.rules.values()
    )
