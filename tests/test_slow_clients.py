"""Slow and partial requests time out and free their memory, on a real uvicorn process (raw
sockets: an HTTP client library would not send half a request)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.slow

TIMEOUT = 2  # ANALYTICS_REQUEST_TIMEOUT_SECONDS in these tests
HEAD = (
    b"POST /api/analytics/events HTTP/1.1\r\nHost: test\r\ncontent-type: application/json\r\n"
    b"content-length: 1000000\r\n\r\n"
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        tmp_path_factory.mktemp("slow") / "data",
        env={"ANALYTICS_REQUEST_TIMEOUT_SECONDS": str(TIMEOUT)},
    )
    process.start()
    yield process
    process.kill()


def _rss_mb(service: ServiceProcess) -> float:
    assert service.proc is not None
    status = Path(f"/proc/{service.proc.pid}/status").read_text()
    [line] = [x for x in status.splitlines() if x.startswith("VmRSS:")]
    return int(line.split()[1]) / 1024


def _connect(service: ServiceProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=TIMEOUT + 10)
    return sock


def _reply(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (b"reset" if it reset it:
    a server that answers before reading a whole body, then closes, resets the connection
    when unread bytes are left, and the reply may be lost with it)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        return b"reset"
    return b"".join(chunks)


def _partial_bodies(service: ServiceProcess, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        sock = _connect(service)
        sock.sendall(HEAD + b"x" * 999_000)  # and never the last 1,000 bytes
        socks.append(sock)
    return socks


def test_partial_bodies_time_out_with_408_and_free_their_memory(service: ServiceProcess) -> None:
    rounds = []
    for _ in range(4):
        started = time.monotonic()
        socks = _partial_bodies(service, 40)
        # While 40 MB of bodies wait, the service answers others at once.
        health = httpx.get(f"{service.url}/health", timeout=1)
        assert health.status_code == 200
        replies = [_reply(sock) for sock in socks]
        waited = time.monotonic() - started
        for sock in socks:
            sock.close()
        assert all(r.startswith(b"HTTP/1.1 408 ") for r in replies), replies[0][:200]
        assert all(b"connection: close" in r.lower() for r in replies)
        assert b'"error":"RequestTimeout"' in replies[0]
        assert TIMEOUT <= waited < TIMEOUT + 8
        rounds.append(_rss_mb(service))
    # Each round held ~40 MB until its timeout; what it held is reused by the next rounds
    # rather than added to them (without the timeout: +40 MB a round, never returned). The
    # allocator may keep up to a round's worth after the first (CI once saw 639 -> 672 MB,
    # then 672, 672): the rounds after it must not grow.
    assert rounds[1] - rounds[0] < 45, rounds
    assert rounds[-1] - rounds[1] < 25, rounds
    log = service.log()
    assert "Traceback" not in log
    # One line for 160 timeouts: logged once per kind and minute.
    assert log.count("request answered 408") == 1, log[-2000:]


def test_a_body_that_trickles_in_times_out_as_a_whole(service: ServiceProcess) -> None:
    with _connect(service) as sock:
        sock.sendall(HEAD.replace(b"1000000", b"100"))
        started = time.monotonic()
        try:
            for _ in range(20):  # a byte every 0.25 s: never idle for long, never done in time
                sock.sendall(b"x")
                time.sleep(0.25)
        except OSError:
            pass  # closed by the server: what this test wants
        reply = _reply(sock)
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < TIMEOUT + 3


def test_a_request_head_that_never_completes_times_out(service: ServiceProcess) -> None:
    with _connect(service) as partial, _connect(service) as idle:
        partial.sendall(b"POST /api/analytics/events HTTP/1.1\r\nHost: test\r\nContent-")
        started = time.monotonic()
        reply = _reply(partial)
        assert reply.startswith(b"HTTP/1.1 408 ") and b"request head not received" in reply
        assert TIMEOUT <= time.monotonic() - started < TIMEOUT + 3
        assert _reply(idle) == b""  # nothing was asked: closed without a reply
    # A request that completes in time on a kept-alive connection is answered as usual.
    with httpx.Client(base_url=service.url) as client:
        assert client.get("/health").status_code == 200
        time.sleep(TIMEOUT / 2)
        assert client.get("/health").status_code == 200


def test_bodies_in_flight_are_bounded(tmp_path: Path) -> None:
    process = ServiceProcess(
        tmp_path / "data",
        env={"ANALYTICS_REQUEST_TIMEOUT_SECONDS": "5",
             "ANALYTICS_MAX_INFLIGHT_BODY_BYTES": str(1 << 20)},
    )  # fmt: skip
    process.start()
    try:
        socks = []
        for _ in range(3):  # 3 x 600 KB held: past 1 MiB
            sock = _connect(process)
            sock.sendall(HEAD + b"x" * 600_000)
            socks.append(sock)
            time.sleep(0.3)
        replies = [_reply(sock) for sock in socks]
        for sock in socks:
            sock.close()
        # The first is let in (and times out, its sender stalled); a later one is refused.
        assert replies[0].startswith(b"HTTP/1.1 408 ")
        refused = [r for r in replies[1:] if r == b"reset" or r.startswith(b"HTTP/1.1 503 ")]
        assert refused, replies
        assert all(b"retry-after: 1" in r.lower() for r in refused if r != b"reset")
        # Once they are gone, a whole request goes through.
        reply = httpx.post(f"{process.url}/api/analytics/events", content=b"{}",
                           headers={"content-type": "application/json"})  # fmt: skip
        assert reply.status_code == 400
    finally:
        process.kill()


def test_malformed_requests_are_logged_once_not_per_request(service: ServiceProcess) -> None:
    for _ in range(30):
        with _connect(service) as sock:
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            assert _reply(sock).startswith(b"HTTP/1.1 400 ")
    assert service.log().count("Invalid HTTP request received.") == 1
