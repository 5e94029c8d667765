"""A bare HTTP/1.1 server that answers every POST like the events endpoint without doing its
work: `202 {"accepted": n, "rejected": []}`, n counted as the `"event_type"` keys in the body.

For the load test's own tests and for measuring what the generator costs: it counts what it
received and, on SIGTERM, prints `{"requests": r, "events": e, "user_agents": [...]}` on stdout.

    python tests/support/bare_server.py PORT
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import cast

import uvloop

TOTALS = {"requests": 0, "events": 0}
AGENTS: set[str] = set()


class Bare(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            length = int(_header(head, b"content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            AGENTS.add(_header(head, b"user-agent").decode())
            events = body.count(b'"event_type":')
            TOTALS["requests"] += 1
            TOTALS["events"] += events
            reply = b'{"accepted":%d,"rejected":[]}' % events
            self.transport.write(
                b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(reply), reply)
            )


def _header(head: bytes, name: bytes) -> bytes:
    """A header's value in a lower-cased request head; empty when absent."""
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip() == name:
            return value.strip()
    return b""


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    server = await loop.create_server(Bare, "127.0.0.1", port)
    print("listening", flush=True)
    await stop
    server.close()
    print(json.dumps({**TOTALS, "user_agents": sorted(AGENTS)}), flush=True)


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
