"""deploy/docker-compose.yml and the files it mounts, validated as text: no container engine
runs on the build machine (README, Deployment). Structure, pinned images, health-gated start
order, volumes, and every variable the service reads present or documented as defaulted."""

from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from netra_analytics.config import INTERNAL_ENV, Settings
from netra_analytics.grafana import layout
from netra_analytics.grafana.push import referenced_variables
from tests.grafana.fixture_files import FIXTURES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
WORKERS = sorted(name for name in SERVICES if re.fullmatch(r"netra-\d+", name))
# `image:tag` where the tag is a version (v1.2.3, 25.8.20.4, 7.4.2-alpine), never `latest`.
PINNED = re.compile(r"^[a-z0-9./_-]+:v?\d+(\.\d+){2,3}(-[a-z0-9.]+)?$")
# From CONTRACTS-17-18: what grafana/provisioning/datasources/netra.yaml reads.
GRAFANA_DATASOURCE_VARIABLES = {
    "GRAFANA_CLICKHOUSE_HOST", "GRAFANA_CLICKHOUSE_PORT", "GRAFANA_CLICKHOUSE_PROTOCOL",
    "GRAFANA_CLICKHOUSE_DATABASE", "GRAFANA_CLICKHOUSE_USER", "GRAFANA_CLICKHOUSE_PASSWORD",
    "GRAFANA_PROMETHEUS_URL", "GRAFANA_NETRA_URL", "GRAFANA_NETRA_API_KEY",
}  # fmt: skip
PLUGINS = {"grafana-clickhouse-datasource", "yesoreyeram-infinity-datasource",
           "volkovlabs-echarts-panel"}  # fmt: skip


class _Recorder(dict[str, str]):
    """An empty environment that records every name `Settings.from_env` asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.names.append(key)
        return default


def service_variables() -> list[str]:
    recorder = _Recorder()
    Settings.from_env(recorder)
    return recorder.names


def test_the_stack_has_its_services() -> None:
    assert set(SERVICES) == {"clickhouse", "redis", "migrate", "netra-1", "netra-2", "proxy",
                             "prometheus", "grafana"}  # fmt: skip
    assert WORKERS == ["netra-1", "netra-2"]


def test_every_image_is_pinned_by_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, service in SERVICES.items():
        image = service.get("image", "")
        assert PINNED.match(image), f"{name}: image {image!r} is not pinned by version"
        assert not image.endswith(":latest")
        if "build" in service:
            assert image == f"netra-analytics:{version}", name
    assert SERVICES["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")


def _healthchecked(name: str) -> bool:
    service = SERVICES[name]
    check = service.get("healthcheck")
    if check is not None:
        return not check.get("disable", False) and bool(check.get("test"))
    return "build" in service  # the service image's own HEALTHCHECK (Dockerfile)


def test_start_order_waits_for_health() -> None:
    for name, service in SERVICES.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert _healthchecked(dependency), f"{name} waits for {dependency}'s health check"
            else:
                assert (dependency, condition) == ("migrate", "service_completed_successfully")
    for worker in WORKERS:
        assert set(SERVICES[worker]["depends_on"]) == {"clickhouse", "redis", "migrate"}
    assert SERVICES["migrate"]["command"] == ["netra-analytics", "migrate"]
    assert set(SERVICES["proxy"]["depends_on"]) == set(WORKERS)
    for name in ("clickhouse", "redis", "proxy", "prometheus", "grafana"):
        assert _healthchecked(name), name


def _named_volumes(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for mount in service.get("volumes") or []:
        source, target = mount.split(":")[:2]
        if not source.startswith((".", "/")):
            yield source, target


def test_state_lives_in_named_volumes_one_per_worker() -> None:
    declared = set(COMPOSE["volumes"])
    used = {source for service in SERVICES.values() for source, _ in _named_volumes(service)}
    assert used == declared
    data = {worker: dict(_named_volumes(SERVICES[worker])) for worker in [*WORKERS, "migrate"]}
    sources = [source for volumes in data.values() for source in volumes]
    assert len(sources) == len(set(sources)), "each worker needs its own spool"
    for volumes in data.values():
        assert list(volumes.values()) == ["/var/lib/netra/data"]
    for name, target in (("clickhouse", "/var/lib/clickhouse"), ("redis", "/data"),
                         ("prometheus", "/prometheus"), ("grafana", "/var/lib/grafana")):  # fmt: skip
        assert target in dict(_named_volumes(SERVICES[name])).values(), name
    for service in SERVICES.values():
        for mount in service.get("volumes") or []:
            source = mount.split(":")[0]
            generated_later = source.startswith("../grafana") and not (ROOT / "grafana").is_dir()
            if source.startswith(".") and not generated_later:
                assert (DEPLOY / source).exists(), f"{source} is mounted but missing"


def _documented_defaults() -> set[str]:
    text = (DEPLOY / "netra.env").read_text()
    return set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", text, re.M))


def test_every_variable_the_service_reads_is_set_or_documented() -> None:
    # What the engine owner sets for its own worker processes is not the operator's to set.
    names = [name for name in service_variables() if name not in INTERNAL_ENV]
    assert len(names) > 40  # the recorder sees Settings.from_env's reads
    documented = _documented_defaults()
    for worker in [*WORKERS, "migrate"]:
        service = SERVICES[worker]
        assert service["env_file"] == ["netra.env"]
        environment = set(service["environment"])
        missing = [name for name in names if name not in environment | documented]
        assert not missing, f"{worker}: set these in compose or list them in deploy/netra.env"
        assert service["environment"]["CLICKHOUSE_ANALYTICS_URL"].startswith("clickhouse://netra:")
        assert "@clickhouse:8123/analytics" in service["environment"]["CLICKHOUSE_ANALYTICS_URL"]
        assert service["environment"]["REDIS_ANALYTICS_URL"].startswith("redis://redis:6379/")
    # Every variable in netra.env is one the service reads (no stale names).
    assert documented <= set(names)


def test_required_secrets_are_in_the_env_example() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text)) | set(
        re.findall(r"\$\{([A-Z_]+):-", text)
    )
    example = set(re.findall(r"^([A-Z_]+)=", (DEPLOY / ".env.example").read_text(), re.M))
    assert required and required <= example


def test_proxy_fronts_every_worker_and_is_the_trusted_forwarder() -> None:
    config = (DEPLOY / "nginx/nginx.conf").read_text()
    upstream = re.search(r"upstream netra \{(.*?)\}", config, re.S)
    assert upstream is not None
    assert sorted(re.findall(r"server (netra-\d+):8090", upstream.group(1))) == WORKERS
    address = SERVICES["proxy"]["networks"]["netra"]["ipv4_address"]
    for worker in WORKERS:
        assert SERVICES[worker]["environment"]["ANALYTICS_FORWARDED_ALLOW_IPS"] == address
    assert re.search(r"location = /metrics \{\s*return 404;", config)
    assert "non_idempotent" not in config  # an ingestion POST is never sent twice


def test_prometheus_scrapes_every_worker() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "netra-analytics")
    assert job["metrics_path"] == "/metrics"
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert sorted(targets) == [f"{worker}:8090" for worker in WORKERS]


def test_clickhouse_config_and_users() -> None:
    mounts = dict(m.split(":")[:2] for m in SERVICES["clickhouse"]["volumes"])
    assert mounts["./clickhouse/config.d/system_log_ttl.xml"] == (
        "/etc/clickhouse-server/config.d/system_log_ttl.xml"
    )
    assert mounts["./clickhouse/users.d/netra.xml"] == "/etc/clickhouse-server/users.d/netra.xml"
    users = ET.parse(DEPLOY / "clickhouse/users.d/netra.xml").getroot()  # noqa: S314 (ours)
    environment = SERVICES["clickhouse"]["environment"]
    for user, grant in (("netra", "GRANT ALL ON analytics.*"),
                        ("grafana", "GRANT SELECT ON analytics.*")):  # fmt: skip
        element = users.find(f"users/{user}")
        assert element is not None
        password = element.find("password")
        assert password is not None and password.get("from_env") in environment
        assert [q.text for q in element.iterfind("grants/query")] == [grant]
    profile = users.findtext("users/grafana/profile")
    assert users.findtext(f"profiles/{profile}/readonly") in ("1", "2")
    default_networks = [ip.text for ip in users.iterfind("users/default/networks/ip")]
    assert set(default_networks) == {"::1", "127.0.0.1"}


def test_grafana_is_provisioned_from_the_repository_with_pinned_plugins() -> None:
    grafana = SERVICES["grafana"]
    mounts = dict(m.split(":")[:2] for m in grafana["volumes"])
    assert mounts["../grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["../grafana/dashboards"] == layout.DASHBOARDS_MOUNT
    environment = grafana["environment"]
    plugins = dict(p.split("@") for p in environment["GF_PLUGINS_PREINSTALL_SYNC"].split(","))
    assert set(plugins) == PLUGINS
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", version) for version in plugins.values())
    assert environment["GF_PLUGINS_PREINSTALL_AUTO_UPDATE"] == "false"
    assert set(environment) >= GRAFANA_DATASOURCE_VARIABLES
    assert environment["GRAFANA_CLICKHOUSE_USER"] == "grafana"  # the read-only user


@pytest.mark.parametrize(
    "root",
    [FIXTURES, pytest.param(ROOT / "grafana", marks=pytest.mark.skipif(
        not (ROOT / "grafana").is_dir(), reason="grafana/ is generated by h18gen"))],
)  # fmt: skip
def test_grafana_gets_every_variable_its_provisioning_reads(root: Path) -> None:
    referenced = referenced_variables(root)
    assert referenced
    if root == FIXTURES:  # the fixture's own alert settings are not the stack's
        referenced -= {"NETRA_ALERT_ERROR_RATE", "NETRA_ALERT_EMAIL"}
    assert referenced <= set(SERVICES["grafana"]["environment"])
    provider = yaml.safe_load((root / layout.DASHBOARD_PROVIDERS).read_text())
    assert provider["providers"][0]["options"]["path"] == layout.DASHBOARDS_MOUNT
