"""Real processes for tests: the service, a chDB-backed ClickHouse HTTP endpoint, redis-server."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("netra-analytics")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Any, timeout: float = 30.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except Exception:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


TCP_LISTEN, TCP_ESTABLISHED = "0A", "01"  # states in /proc/net/tcp


def tcp_sockets_by_pid(port: int, state: str) -> dict[int, int]:
    """pid -> how many TCP sockets of that process on local `port` are in `state` (Linux's
    /proc/net/tcp and tcp6, matched to each process's descriptors by inode, as `ss -p` does)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                    inodes.add(fields[9])
    found: dict[int, int] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        found[int(pid)] = found.get(int(pid), 0) + 1
    return found


STARTED: list[Process] = []  # killed at the end of the test session, whatever happened


class Process:
    def __init__(self, args: list[str], *, env: dict[str, str] | None = None, log: Path) -> None:
        self.args, self.env, self.log_path = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_start = 0  # the log's size when this run started (`start`)
        STARTED.append(self)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_start = self._log_size()
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(
                self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def log(self) -> str:
        """The whole log file: every run with this log path, this one last."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_since(self, offset: int) -> str:
        """The log from byte `offset` on (`log_start`: this run's own lines; a process started
        again on the same data directory appends to the same file)."""
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def _log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0


class ServiceProcess(Process):
    """`netra-analytics serve` with its own data directory and port."""

    def __init__(
        self,
        data_dir: Path,
        *,
        env: dict[str, str] | None = None,
        port: int | None = None,
        workers: int = 1,
    ) -> None:
        """`workers` > 1: the engine owner and that many worker processes (workers.py)."""
        self.port = port or free_port()
        self.data_dir = data_dir
        full_env = {
            **os.environ,
            "ANALYTICS_DATA_DIR": str(data_dir),
            "ANALYTICS_SERVICE_PORT": str(self.port),
            "ANALYTICS_SERVICE_HOST": "127.0.0.1",
            "ANALYTICS_FUNNEL_WALK_DAYS": "0",  # no background builds unless a test asks
            "ANALYTICS_WORKERS": str(workers),
            **(env or {}),
        }
        super().__init__(
            [str(CLI), "serve"], env=full_env, log=data_dir.parent / f"{data_dir.name}.log"
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, *, wait_ready: bool = True) -> None:
        super().start()
        wait_until(lambda: httpx.get(f"{self.url}/health", timeout=1).status_code == 200, 60)
        if wait_ready:
            wait_until(
                lambda: httpx.get(f"{self.url}/health/ready", timeout=5).status_code == 200, 60
            )

    def worker_pids(self) -> list[int]:
        """The worker processes of an engine owner (uvicorn's spawned children)."""
        assert self.proc is not None
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.proc.pid and b"spawn_main" in cmdline:
                found.append(int(entry.name))
        return sorted(set(found) - set(self.analysis_pids()))

    def analysis_pids(self) -> list[int]:
        """The prompt analysis processes the owner started, the latest last (from its log)."""
        return [
            int(line["pid"])
            for line in self.json_log()
            if line.get("msg") == "prompt analysis process started"
        ]

    def json_log(self) -> list[dict[str, Any]]:
        """The log's JSON lines."""
        lines = []
        for text in self.log().splitlines():
            with contextlib.suppress(ValueError):
                line = json.loads(text)
                if isinstance(line, dict):
                    lines.append(line)
        return lines

    def ready(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.url}/health/ready", timeout=10).json()
        return body

    def admin_headers(self) -> dict[str, str]:
        """`Authorization` with the admin key an embedded service prints on its first start."""
        found = re.findall(r"sign in at \S+ with (na_\S+)", self.log())
        assert found, "the service printed no admin key (not its first start, or not embedded)"
        return {"authorization": f"Bearer {found[-1]}"}

    def stop(self) -> bool:
        """SIGTERM, then whether the shutdown completed (uvicorn re-raises the signal after a
        graceful shutdown, so the exit status is -SIGTERM either way), said after this signal."""
        before = self._log_size()
        self.signal(signal.SIGTERM)
        status = self.wait(90)
        return status in (0, -signal.SIGTERM) and (
            "Application shutdown complete." in self.log_since(before)
        )


def cli_query(data_dir: Path, sql: str, *, env: dict[str, str] | None = None) -> str:
    """Run `netra-analytics query` (its own process, so its own chDB) and return stdout."""
    result = subprocess.run(
        [str(CLI), "query", sql],
        env={**os.environ, "ANALYTICS_DATA_DIR": str(data_dir), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


class ChdbHttpServer(Process):
    """A ClickHouse HTTP endpoint over chDB (see chdb_http.py), in its own process."""

    def __init__(self, data_path: Path, *, user: str = "default", password: str = "") -> None:
        self.port = free_port()
        script = str(Path(__file__).with_name("chdb_http.py"))
        super().__init__(
            [sys.executable, script, str(data_path), str(self.port), user, password],
            log=data_path.parent / "chdb_http.log",
        )
        credentials = f"{user}:{password}@" if password else ""
        self.url = f"clickhouse://{credentials}127.0.0.1:{self.port}/analytics"

    def start(self) -> None:
        super().start()
        wait_until(lambda: _port_open(self.port), 60)


class RedisServer(Process):
    """A real redis-server on a free port, with no persistence."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        binary = shutil.which("redis-server") or "redis-server"
        super().__init__(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(directory)],
            log=directory / "redis.log",
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/2"

    def start(self) -> None:
        super().start()
        wait_until(lambda: _port_open(self.port), 30)
