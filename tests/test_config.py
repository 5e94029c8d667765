from __future__ import annotations

import json
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from netra_analytics.config import Settings
from netra_analytics.errors import ConfigError
from netra_analytics.service import writer_insert_interval
from tests.support.processes import CLI


def test_defaults_are_the_specs() -> None:
    settings = Settings.from_env({})
    assert settings.port == 8090
    assert settings.event_batch_size == 100
    assert settings.event_flush_interval_ms == 5000
    assert settings.max_events_per_user_per_minute == 1000
    assert settings.data_dir == Path("./data")
    assert settings.embedded and settings.redis_url is None and settings.grafana_api_url is None
    assert settings.store_timeout_seconds == 30 and settings.shutdown_seconds == 20


def test_fault_settings_parse() -> None:
    settings = Settings.from_env(
        {"ANALYTICS_STORE_TIMEOUT_SECONDS": "2.5", "ANALYTICS_SHUTDOWN_SECONDS": "12"}
    )
    assert (settings.store_timeout_seconds, settings.shutdown_seconds) == (2.5, 12.0)


def test_spec_example_values_parse() -> None:
    settings = Settings.from_env(
        {
            "ANALYTICS_SERVICE_PORT": "8091",
            "CLICKHOUSE_ANALYTICS_URL": "clickhouse://localhost:8123/analytics",
            "REDIS_ANALYTICS_URL": "redis://localhost:6379/2",
            "GRAFANA_API_URL": "TBD",
            "EVENT_BATCH_SIZE": "250",
            "EVENT_FLUSH_INTERVAL_MS": "1000",
            "MAX_EVENTS_PER_USER_PER_MINUTE": "50",
            "ANALYTICS_DATA_DIR": "/var/lib/netra",
        }
    )
    assert settings.port == 8091
    assert settings.clickhouse is not None
    assert (settings.clickhouse.host, settings.clickhouse.port) == ("localhost", 8123)
    assert not settings.clickhouse.secure and settings.clickhouse.database == "analytics"
    assert settings.redis_url == "redis://localhost:6379/2"
    assert settings.grafana_api_url is None
    assert (settings.event_batch_size, settings.event_flush_interval_ms) == (250, 1000)
    assert settings.max_events_per_user_per_minute == 50
    assert settings.data_dir == Path("/var/lib/netra")


def test_the_memory_and_timeout_bounds_parse() -> None:
    settings = Settings.from_env(
        {"ANALYTICS_REPORT_CACHE_MAX_BYTES": "16777216", "ANALYTICS_HOT_PROMPTS_TRACKED": "500",
         "ANALYTICS_SIMILARITY_MAX_PROMPTS": "5000", "ANALYTICS_SIMILARITY_MAX_AGE_DAYS": "7",
         "ANALYTICS_REQUEST_TIMEOUT_SECONDS": "12.5",
         "ANALYTICS_MAX_INFLIGHT_BODY_BYTES": "8388608",
         "ANALYTICS_PROMPT_THREAD_CACHE_BYTES": "2097152"}
    )  # fmt: skip
    assert (settings.report_cache_max_bytes, settings.hot_prompts_tracked) == (16 << 20, 500)
    assert (settings.similarity_max_prompts, settings.similarity_max_age_days) == (5000, 7)
    assert (settings.request_timeout_seconds, settings.max_inflight_body_bytes) == (12.5, 8 << 20)
    assert settings.prompt_thread_cache_bytes == 2 << 20
    assert Settings.from_env({}).prompt_thread_cache_bytes == 64 << 20


def test_worker_processes_parse_and_default_to_one() -> None:
    assert Settings.from_env({}).workers == 1
    worker = Settings.from_env(
        {"ANALYTICS_WORKERS": "3", "NETRA_WORKER_PROCESS": "1", "NETRA_LIVE_SOCKET": "/x/l.sock"}
    )
    assert (worker.workers, worker.worker_process, str(worker.live_socket)) == (
        3,
        True,
        "/x/l.sock",
    )
    assert not Settings.from_env({"ANALYTICS_WORKERS": "3"}).worker_process


def test_https_clickhouse_defaults_to_8443() -> None:
    settings = Settings.from_env({"CLICKHOUSE_ANALYTICS_URL": "https://ch.example.com"})
    assert settings.clickhouse is not None and settings.clickhouse.secure
    assert settings.clickhouse.port == 8443


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ANALYTICS_SERVICE_PORT", "eighty"),
        ("ANALYTICS_SERVICE_PORT", "70000"),
        ("CLICKHOUSE_ANALYTICS_URL", "mysql://localhost/analytics"),
        ("CLICKHOUSE_ANALYTICS_URL", "clickhouse://localhost:port/analytics"),
        ("CLICKHOUSE_ANALYTICS_URL", "clickhouse://localhost:8123/other"),
        ("REDIS_ANALYTICS_URL", "http://localhost:6379"),
        ("GRAFANA_API_URL", "ftp://grafana"),
        ("EVENT_BATCH_SIZE", "0"),
        ("EVENT_FLUSH_INTERVAL_MS", "-5"),
        ("MAX_EVENTS_PER_USER_PER_MINUTE", "1.5"),
        ("CLICKHOUSE_CLUSTER", "prod; DROP"),
        ("ANALYTICS_IP_HASH_SECRET", "short"),
        ("ANALYTICS_STORE_TIMEOUT_SECONDS", "0"),
        ("ANALYTICS_STORE_TIMEOUT_SECONDS", "soon"),
        ("ANALYTICS_SHUTDOWN_SECONDS", "600"),
        ("ANALYTICS_REPORT_CACHE_MAX_BYTES", "1000"),
        ("ANALYTICS_HOT_PROMPTS_TRACKED", "ten"),
        ("ANALYTICS_SIMILARITY_MAX_PROMPTS", "0"),
        ("ANALYTICS_SIMILARITY_MAX_AGE_DAYS", "-1"),
        ("ANALYTICS_REQUEST_TIMEOUT_SECONDS", "0.1"),
        ("ANALYTICS_REQUEST_TIMEOUT_SECONDS", "soon"),
        ("ANALYTICS_MAX_INFLIGHT_BODY_BYTES", "1e9"),
        ("ANALYTICS_PROMPT_THREAD_CACHE_BYTES", "1000"),
        ("ANALYTICS_WORKERS", "0"),
        ("ANALYTICS_WORKERS", "65"),
        ("ANALYTICS_WORKERS", "two"),
    ],
)
def test_bad_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: value})
    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}: ")


def test_bad_value_stops_start_up_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(CLI), "serve"],
        env={"ANALYTICS_SERVICE_PORT": "not-a-port", "ANALYTICS_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "ANALYTICS_SERVICE_PORT" in lines[0] and "'not-a-port'" in lines[0]


TWENTY_CONDITIONS = [{"name": f"s{n}", "match": {"event_label": f"l{n}"}} for n in range(20)]


@pytest.mark.parametrize(
    ("funnels", "says"),
    [
        ("not json", "Expecting value"),
        ('{"funnels": {}}', "at least one funnel"),
        ('{"funnels": {"f": []}}', "funnel 'f' has no steps"),
        ('{"funnels": {"f": [{"name": "a", "match": {"user_id": "u1"}}]}}', "step 0: match"),
        ('{"funnels": {"f": [{"name": "a", "active_days": 0}]}}', "at least 1"),
        ('{"funnels": {"f": [{"name": "a", "prompt_complexity_at_least": 2}]}}', "between 0"),
        ('{"funnels": {"f": [{"match": {}}]}}', "needs a name"),
        (
            json.dumps({"funnels": {"f": TWENTY_CONDITIONS}}),
            "more than 19 step conditions",
        ),
    ],
)
def test_bad_funnels_file_names_the_variable(tmp_path: Path, funnels: str, says: str) -> None:
    path = tmp_path / "funnels.json"
    path.write_text(funnels)
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"ANALYTICS_FUNNELS": str(path)})
    assert raised.value.variable == "ANALYTICS_FUNNELS"
    assert says in str(raised.value)


def test_packaged_funnels_file_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "funnels.json"
    path.write_text((resources.files("netra_analytics.reports") / "data/funnels.json").read_text())
    assert Settings.from_env({"ANALYTICS_FUNNELS": str(path)}).funnels_file == path


@pytest.mark.parametrize(
    ("env", "seconds"),
    [
        ({}, 1.0),  # one process: the setting as it is
        ({"ANALYTICS_WORKERS": "3"}, 1.0),  # the engine owner: it writes no events
        ({"ANALYTICS_WORKERS": "3", "NETRA_WORKER_PROCESS": "1"}, 3.0),
        ({"ANALYTICS_WORKERS": "2", "NETRA_WORKER_PROCESS": "1",
          "ANALYTICS_MIN_INSERT_INTERVAL_MS": "1500"}, 3.0),
        ({"ANALYTICS_WORKERS": "4", "NETRA_WORKER_PROCESS": "1",
          "ANALYTICS_MIN_INSERT_INTERVAL_MS": "0"}, 0.0),
    ],
)  # fmt: skip
def test_the_insert_interval_is_the_services_shared_by_its_writers(
    env: dict[str, str], seconds: float
) -> None:
    """N workers' writers each wait N intervals: together, one insert of events per interval."""
    assert writer_insert_interval(Settings.from_env(env)) == seconds
