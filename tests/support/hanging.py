"""A TCP proxy in front of a store that can be made to hang: it keeps accepting connections and
holding them open, and answers nothing (what a ClickHouse stuck on a lock or a dead disk does).

`hang()` stops relaying on every connection, new and open; `resume()` relays again, bytes held
meanwhile included. Runs in the test process, in daemon threads.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading

from tests.support.processes import free_port


class HangingProxy:
    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.url = f"clickhouse://127.0.0.1:{self.port}/analytics"
        self._target = target_port
        self._relaying = threading.Event()
        self._relaying.set()
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def hang(self) -> None:
        self._relaying.clear()

    def resume(self) -> None:
        self._relaying.set()

    def close(self) -> None:
        self._closed.set()
        self._relaying.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        self._relaying.wait()  # a new connection during a hang is accepted, then left waiting
        try:
            upstream = socket.create_connection(("127.0.0.1", self._target), timeout=5)
        except OSError:
            client.close()
            return
        self._sockets.append(upstream)
        pairs = {client: upstream, upstream: client}
        try:
            while not self._closed.is_set():
                self._relaying.wait()
                readable, _, _ = select.select(list(pairs), [], [], 0.1)
                for sock in readable:
                    if not self._relaying.is_set():
                        break  # hold the bytes in the kernel until resumed
                    data = sock.recv(65536)
                    if not data:
                        return
                    pairs[sock].sendall(data)
        except OSError:
            return
        finally:
            for sock in pairs:
                with contextlib.suppress(OSError):
                    sock.close()
