"""Helpers shared by the benchmarks: ports, readiness, and wrk runs parsed into numbers."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from tests.support.processes import TCP_LISTEN, tcp_sockets_by_pid

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EVENTS_PER_REQUEST = 20
USER_MARKER = "__USER__"
USERS = 5000  # at ~1,000 requests/s each user sends ~240 events a minute


def request_body() -> bytes:
    """A realistic 20-event batch (a chat turn, its thread, features, timings) without event
    ids, so the service assigns a fresh id to every event of every request."""
    sys.path.insert(0, str(REPO))
    from tests.factories import EXAMPLES

    kinds = list(EXAMPLES)
    events = [
        {"event_type": kinds[i % len(kinds)], "properties": EXAMPLES[kinds[i % len(kinds)]]}
        for i in range(EVENTS_PER_REQUEST)
    ]
    # wrk replaces __USER__ per request (see run_wrk): many users, as in production, so that
    # the per-user limit of 1,000 events a minute is not what is being measured.
    context = {"user_id": USER_MARKER, "session_id": f"s-{USER_MARKER}", "page_path": "/chat"}
    return orjson.dumps({"events": events, "context": context})


def save_results(name: str, summary: dict[str, Any]) -> None:
    """Write the whole summary to bench/results/<name>.json and print it without the raw runs."""
    out = REPO / "bench" / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(url)


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"port {port}")


def run_wrk(url: str, body_file: Path, seconds: int) -> dict[str, float]:
    script = body_file.with_suffix(".lua")
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{body_file}", "rb")\nlocal body = f:read("*a")\nf:close()\n'
        f'local head, tail = body:match("^(.-){USER_MARKER}(.*)$")\n'
        "request = function()\n"
        "  if head == nil then return wrk.format(nil, nil, nil, body) end\n"
        f'  local user = "u" .. math.random(1, {USERS})\n'
        f'  return wrk.format(nil, nil, nil, head .. user .. tail:gsub("{USER_MARKER}", user))\n'
        "end\n"
    )
    out = subprocess.run(
        ["wrk", "-t2", "-c50", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return parse_wrk(out, seconds, EVENTS_PER_REQUEST)


def parse_wrk(out: str, seconds: int, events_per_request: int) -> dict[str, float]:
    """wrk's `--latency` report as numbers: requests, 2xx, socket errors, rates, p50/p99 (ms)."""
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    latency = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"\s+(50|99)%\s+(\S+)", out)}
    ok = requests - (int(non_2xx.group(1)) if non_2xx else 0)
    return {
        "requests": requests,
        "ok_requests": ok,
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
        "req_per_s": requests / seconds,
        "events_per_s": ok * events_per_request / seconds,
        "p50_ms": latency.get("50", float("nan")),
        "p99_ms": latency.get("99", float("nan")),
    }


def _ms(text: str) -> float:
    value = float(re.match(r"[\d.]+", text).group(0))  # type: ignore[union-attr]
    if text.endswith("us"):
        return value / 1000
    if text.endswith("ms"):
        return value
    if text.endswith("s"):
        return value * 1000
    return value


class BenchService:
    """`netra-analytics serve` on a fresh data directory, ready when constructed."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, ready_timeout: float = 300
    ) -> None:
        self.data_dir = data_dir
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "ANALYTICS_DATA_DIR": str(data_dir), "ANALYTICS_SERVICE_PORT": str(port),
                    "ANALYTICS_SERVICE_HOST": "127.0.0.1", "ANALYTICS_LOG_LEVEL": "warning", **(env or {})}  # fmt: skip
        # Reports need a credential: an admin key made in the (embedded) store before the
        # service opens it, sent by `headers`.
        self.headers = {"authorization": f"Bearer {admin_key(data_dir / 'chdb')}"}
        self.process = subprocess.Popen([str(BIN / "netra-analytics"), "serve"], env=self.env)
        wait_http(f"{self.url}/health/ready", timeout=ready_timeout)
        # The first worker answers ready while another may still be starting, and a load of
        # persistent connections opened then would all stay with the first: wait until every
        # worker listens (each on its own socket, see `workers.reuse_port_listeners`).
        workers = int(self.env.get("ANALYTICS_WORKERS", "1"))
        deadline = time.monotonic() + ready_timeout
        while workers > 1 and len(tcp_sockets_by_pid(port, TCP_LISTEN)) < workers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{workers} workers listening on {port}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(120)


SCHED_IDLE = 5  # /proc/<pid>/sched's `policy` of a SCHED_IDLE process (sched(7))


def service_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user + system, `/proc/<pid>/stat`) used so far by a service started as
    `pid`, by role: `owner` (the process itself), `workers` (its children serving HTTP) and
    `analysis` (its SCHED_IDLE child, the prompt analysis, which only takes what the others
    leave). Children that exited are not counted, so read it before stopping the service."""
    tick = os.sysconf("SC_CLK_TCK")
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    out = {"owner": 0.0, "workers": 0.0, "analysis": 0.0}
    for child in [pid, *(int(c) for c in children.split())]:
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            sched = Path(f"/proc/{child}/sched").read_text()
        except OSError:  # exited meanwhile
            continue
        seconds = (int(fields[11]) + int(fields[12])) / tick
        policy = re.search(r"^policy\s*:\s*(\d+)", sched, re.MULTILINE)
        if child == pid:
            out["owner"] += seconds
        elif policy is not None and int(policy.group(1)) == SCHED_IDLE:
            out["analysis"] += seconds
        elif b"spawn_main" in cmdline:  # not multiprocessing's resource tracker
            out["workers"] += seconds
    return out


def admin_key(chdb: Path) -> str:
    """A new admin key in the embedded store at `chdb`, which no process may hold open."""
    from netra_analytics.auth.keys import ADMIN, create_key
    from netra_analytics.store.chdb_backend import ChdbStore
    from netra_analytics.store.migrations import migrate

    store = ChdbStore(chdb)
    try:
        migrate(store)
        return create_key(store, f"bench-{os.getpid()}-{time.monotonic_ns()}", ADMIN)
    finally:
        store.close()


def percentile(values: list[float], q: float) -> float:
    """The q-th quantile, as one of the values (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def median(runs: list[dict[str, Any]], *path: str) -> float:
    """The median over repeated runs of the number at `path` in each run's result."""
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        values.append(float(value))
    return float(statistics.median(values))
