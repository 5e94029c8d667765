"""Grafana files in the layout of CONTRACTS-17-18, for the push and check tests."""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "grafana"
# What the fixture files read from the environment, as an operator would export it.
FIXTURE_ENV = {
    "GRAFANA_CLICKHOUSE_HOST": "clickhouse",
    "GRAFANA_CLICKHOUSE_PORT": "8123",
    "GRAFANA_CLICKHOUSE_PROTOCOL": "http",
    "GRAFANA_CLICKHOUSE_DATABASE": "analytics",
    "GRAFANA_CLICKHOUSE_USER": "grafana",
    "GRAFANA_CLICKHOUSE_PASSWORD": "ch-secret-p4ss",
    "GRAFANA_PROMETHEUS_URL": "http://prometheus:9090",
    "GRAFANA_NETRA_URL": "http://proxy:8080",
    "GRAFANA_NETRA_API_KEY": "na_fixture_key",
    "NETRA_ALERT_ERROR_RATE": "5%",
    "NETRA_ALERT_EMAIL": "ops@example.com",
}


def copy_fixtures(tmp_path: Path) -> Path:
    """A copy of the fixture files (tests change it)."""
    target = tmp_path / "grafana"
    shutil.copytree(FIXTURES, target)
    return target
