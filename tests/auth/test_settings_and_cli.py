"""Unsafe auth settings stop start-up naming the variable; `keys` on the command line; the admin
key an embedded service creates and prints on its first start."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from netra_analytics.config import Settings
from netra_analytics.errors import ConfigError
from tests.support.processes import CLI, ServiceProcess

JWT = {"ANALYTICS_JWT_ISSUER": "https://auth.example.test", "ANALYTICS_JWT_AUDIENCE": "netra"}


@pytest.mark.parametrize(
    ("env", "variable", "says"),
    [
        ({"ANALYTICS_JWT_SECRET": "x" * 31, **JWT}, "ANALYTICS_JWT_SECRET", "at least 32 bytes"),
        (
            {"ANALYTICS_JWT_JWKS_URL": "http://auth.example.com/jwks", **JWT},
            "ANALYTICS_JWT_JWKS_URL",
            "must be https",
        ),
        ({"ANALYTICS_JWT_JWKS_URL": "file:///etc/passwd", **JWT}, "ANALYTICS_JWT_JWKS_URL", "http"),
        ({"ANALYTICS_JWT_SECRET": "x" * 32}, "ANALYTICS_JWT_ISSUER", "required"),
        (
            {"ANALYTICS_JWT_SECRET": "x" * 32, "ANALYTICS_JWT_ISSUER": "i"},
            "ANALYTICS_JWT_AUDIENCE",
            "required",
        ),
        (
            {
                "ANALYTICS_JWT_SECRET": "x" * 32,
                "ANALYTICS_JWT_JWKS_URL": "https://a.example/j",
                **JWT,
            },
            "ANALYTICS_JWT_JWKS_URL",
            "not both",
        ),
        ({"ANALYTICS_SESSION_SECRET": "short"}, "ANALYTICS_SESSION_SECRET", "32 bytes"),
        ({"ANALYTICS_CORS_ORIGINS": "app.example.com"}, "ANALYTICS_CORS_ORIGINS", "not an origin"),
        ({"ANALYTICS_CORS_ORIGINS": "https://a.example/path"}, "ANALYTICS_CORS_ORIGINS", "origin"),
        ({"ANALYTICS_INGEST_AUTH": "yes"}, "ANALYTICS_INGEST_AUTH", "on or off"),
        ({"ANALYTICS_REPORT_CONCURRENCY": "0"}, "ANALYTICS_REPORT_CONCURRENCY", "outside"),
    ],
)
def test_unsafe_settings_are_refused_naming_the_variable(
    env: dict[str, str], variable: str, says: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env)
    assert raised.value.variable == variable
    assert says in str(raised.value)


def test_safe_settings_are_taken() -> None:
    settings = Settings.from_env(
        {
            "ANALYTICS_JWT_JWKS_URL": "http://localhost:9000/jwks",
            **JWT,
            "ANALYTICS_CORS_ORIGINS": "https://app.example.com, https://www.example.com/",
            "ANALYTICS_INGEST_AUTH": "on",
        }
    )
    assert settings.jwt_jwks_url == "http://localhost:9000/jwks"
    assert settings.cors_origins == ("https://app.example.com", "https://www.example.com")
    assert settings.ingest_auth and Settings().cors_origins == ("*",)


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANALYTICS_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [str(CLI), "keys", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_keys_on_the_command_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    created = _cli(data_dir, "create", "--role", "analyst", "--name", "grafana")
    assert created.returncode == 0, created.stderr
    key = created.stdout.split()[-1]  # the key is the last word printed
    assert key.startswith("na_") and len(key) == 46
    again = _cli(data_dir, "create", "--role", "admin", "--name", "grafana")
    assert again.returncode == 1 and "exists" in again.stderr
    bad = _cli(data_dir, "create", "--role", "root", "--name", "x")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    listed = _cli(data_dir, "list")
    assert listed.returncode == 0 and "grafana\tanalyst" in listed.stdout
    assert key not in listed.stdout and key[3:] not in listed.stdout
    assert _cli(data_dir, "revoke", "grafana").returncode == 0
    assert "revoked: -" not in _cli(data_dir, "list").stdout
    assert _cli(data_dir, "revoke", "grafana").returncode == 1


@pytest.mark.slow
def test_the_first_embedded_start_creates_and_prints_an_admin_key_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    service = ServiceProcess(data_dir)
    service.start()
    try:
        headers = service.admin_headers()
        assert f"{service.url}/login with na_" in service.log()
        engagement = f"{service.url}/api/analytics/reports/engagement"
        assert httpx.get(engagement, headers=headers, timeout=10).status_code == 200
        assert httpx.get(engagement, timeout=10).status_code == 401
        assert service.stop()
        service.start()
        assert service.log().count("created the admin key") == 1  # not on the second start
        assert httpx.get(engagement, headers=headers, timeout=10).status_code == 200
    finally:
        service.kill()
