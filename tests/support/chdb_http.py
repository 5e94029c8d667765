"""A ClickHouse-compatible HTTP endpoint served by chDB, in a process of its own.

No modern ClickHouse server installs on the build machine, so the HTTP backend
(clickhouse-connect) is tested against the service's own `store/chdb_server.py` (what the
engine owner serves its workers) in front of the real ClickHouse engine. Run it as its own
process (`python tests/support/chdb_http.py PATH PORT [USER PASSWORD]`): chDB allows one data
path per process, and a test that kills this process is a real store outage.
"""

from __future__ import annotations

import sys
from pathlib import Path

from netra_analytics.store.chdb_backend import ChdbStore
from netra_analytics.store.chdb_server import ChdbHttpServer


def serve(path: str, port: int, user: str = "default", password: str = "") -> None:
    server = ChdbHttpServer(ChdbStore(Path(path)), user=user, password=password, port=port)
    server.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), *sys.argv[3:5])
