"""`grafana check` over files of the contract's layout: passes on good files, one clear line
per problem on broken ones. The generator's `schema` and `generate` modules are stubbed here
(they are h18gen's); `test_committed_files_pass` runs the real ones over `grafana/`."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from netra_analytics import cli
from netra_analytics.grafana.check import check
from tests.grafana.fixture_files import FIXTURES, copy_fixtures

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def grafana_dir(tmp_path: Path) -> Path:
    return copy_fixtures(tmp_path)


def _stub_schema(doc: dict[str, Any]) -> list[str]:
    return [] if isinstance(doc.get("panels"), list) else ["panels: required"]


@pytest.fixture
def generator(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Stub generator modules: `build()` writes the fixture files, `validate_dashboard`
    wants a `panels` list."""
    files = {
        p.relative_to(FIXTURES).as_posix(): p.read_text()
        for p in FIXTURES.rglob("*")
        if p.is_file()
    }
    generate = types.ModuleType("netra_analytics.grafana.generate")
    generate.build = lambda: dict(files)  # type: ignore[attr-defined]
    schema = types.ModuleType("netra_analytics.grafana.schema")
    schema.validate_dashboard = _stub_schema  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "netra_analytics.grafana.generate", generate)
    monkeypatch.setitem(sys.modules, "netra_analytics.grafana.schema", schema)
    return files


@pytest.mark.usefixtures("generator")
def test_good_files_pass(grafana_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(grafana_dir) == []
    assert cli.main(["grafana", "check", "--dir", str(grafana_dir)]) == 0
    assert "valid and up to date" in capsys.readouterr().out


def _edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_broken_files_fail_with_one_line_each(
    grafana_dir: Path, generator: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    alerts = "provisioning/alerting/netra-alerts.yaml"
    _edit(grafana_dir, alerts, "uid: netra-data-freshness", "uid: netra-error-rate")
    _edit(grafana_dir, alerts, "datasourceUid: netra-prometheus", "datasourceUid: netra-mimir")
    _edit(grafana_dir, "provisioning/dashboards/netra.yaml", "dashboards/netra", "dashboards")
    board = grafana_dir / "dashboards/netra-executive-overview.json"
    doc = json.loads(board.read_text())
    doc["panels"][0]["targets"][0]["datasource"]["uid"] = "netra-clickhose"
    del doc["panels"]
    doc["uid"] = "netra-overview"
    board.write_text(json.dumps(doc))
    (grafana_dir / "provisioning/alerting/contact-points.yaml").write_text("contactPoints: [\n")

    problems = check(grafana_dir)
    assert problems[0].startswith(
        "provisioning/alerting/contact-points.yaml: does not parse: while parsing a flow node"
    )
    assert problems[1:] == [
        "provisioning/dashboards/netra.yaml: options.path is '/var/lib/grafana/dashboards', but "
        "the dashboards are mounted at /var/lib/grafana/dashboards/netra",
        "dashboards/netra-executive-overview.json: holds dashboard uid 'netra-overview'; name the "
        "file netra-overview.json",
        "dashboards/netra-executive-overview.json: panels: required",
        "provisioning/alerting/netra-alerts.yaml: alert rule uid 'netra-error-rate' appears 2 times",
        "provisioning/alerting/netra-alerts.yaml: rule 'netra-error-rate' queries datasource uid "
        "'netra-mimir', not in provisioning/datasources/netra.yaml",
        "dashboards/netra-executive-overview.json: differs from what the generator writes; run "
        "`netra-analytics grafana generate`",
        "provisioning/alerting/contact-points.yaml: differs from what the generator writes; run "
        "`netra-analytics grafana generate`",
        "provisioning/alerting/netra-alerts.yaml: differs from what the generator writes; run "
        "`netra-analytics grafana generate`",
        "provisioning/dashboards/netra.yaml: differs from what the generator writes; run "
        "`netra-analytics grafana generate`",
    ]
    assert cli.main(["grafana", "check", "--dir", str(grafana_dir)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{grafana_dir}: {problem}" for problem in problems]


@pytest.mark.usefixtures("generator")
def test_unknown_datasource_in_a_panel_and_stale_files_are_reported(grafana_dir: Path) -> None:
    board = grafana_dir / "dashboards/netra-executive-overview.json"
    board.write_text(board.read_text().replace('"uid": "netra-clickhouse"}', '"uid": "netra-ch"}'))
    (grafana_dir / "dashboards/old-board.json").write_text('{"uid": "old-board", "panels": []}')
    (grafana_dir / "provisioning/datasources/netra.yaml").unlink()
    problems = check(grafana_dir)
    assert "provisioning/datasources/netra.yaml: missing" in problems
    assert (
        "dashboards/netra-executive-overview.json: datasource uid 'netra-ch' is not in "
        "provisioning/datasources/netra.yaml"
    ) in problems
    assert "dashboards/old-board.json: not written by the generator (stale?)" in problems
    assert (
        "provisioning/datasources/netra.yaml: missing; run `netra-analytics grafana generate`"
        in problems
    )


def test_a_missing_generator_is_a_problem_not_a_pass(
    grafana_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "netra_analytics.grafana.generate", None)
    monkeypatch.setitem(sys.modules, "netra_analytics.grafana.schema", None)
    problems = check(grafana_dir)
    assert [p for p in problems if p.startswith("cannot check against the generator")] == [
        "cannot check against the generator: import of netra_analytics.grafana.schema halted; "
        "None in sys.modules",
        "cannot check against the generator: import of netra_analytics.grafana.generate halted; "
        "None in sys.modules",
    ]


@pytest.mark.skipif(not (ROOT / "grafana").is_dir(), reason="grafana/ is generated by h18gen")
def test_committed_files_pass() -> None:
    """The repository's own `grafana/`, with the real generator and schema."""
    assert check(ROOT / "grafana") == []
