"""The service's Dockerfile, validated as text (no container engine on the build machine):
multi-stage, pinned base, constraints, non-root, health check, port, data volume."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "Dockerfile").read_text()
# Instructions with their continuation lines joined, comments dropped.
INSTRUCTIONS = [
    line.strip()
    for line in re.sub(r"\\\n\s*", " ", TEXT).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def _all(keyword: str) -> list[str]:
    return [i[len(keyword) + 1 :] for i in INSTRUCTIONS if i.split()[0] == keyword]


def test_multi_stage_from_a_pinned_slim_python() -> None:
    args = dict(a.split("=", 1) for a in _all("ARG") if "=" in a)
    stages = [shlex.split(f) for f in _all("FROM")]
    assert [s[-1] for s in stages] == ["build", "runtime"]
    bases = {args.get(s[0].strip("${}"), s[0]) for s in stages}
    assert len(bases) == 1
    (base,) = bases
    # Python 3.11 (what constraints.txt is resolved and tested with), a patch version, slim.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base), base


def test_installs_with_the_pinned_constraints_and_no_index_at_runtime() -> None:
    runs = _all("RUN")
    assert any("pip wheel" in r and "-c constraints.txt" in r for r in runs)
    install = next(r for r in runs if "pip install" in r)
    assert "--no-index" in install and "-c /tmp/constraints.txt" in install
    assert "COPY --from=build /wheels /wheels" in INSTRUCTIONS


def test_runs_as_a_non_root_user_after_installing() -> None:
    users = _all("USER")
    assert users and users[-1] not in ("root", "0")
    last_user = max(i for i, line in enumerate(INSTRUCTIONS) if line.startswith("USER "))
    last_run = max(i for i, line in enumerate(INSTRUCTIONS) if line.startswith("RUN "))
    assert (
        last_run
        < last_user
        < INSTRUCTIONS.index(next(i for i in INSTRUCTIONS if i.startswith("CMD")))
    )


def test_health_check_port_volume_and_command() -> None:
    (check,) = _all("HEALTHCHECK")
    assert "/health" in check and "ANALYTICS_SERVICE_PORT" in check
    assert _all("EXPOSE") == ["8090"]
    env = " ".join(_all("ENV"))
    data_dir = re.search(r"ANALYTICS_DATA_DIR=(\S+)", env)
    assert data_dir is not None
    assert _all("VOLUME") == [f'["{data_dir.group(1)}"]']
    assert _all("CMD") == ['["netra-analytics", "serve"]']


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "data", "node_modules", "tests"} <= set(ignored)
