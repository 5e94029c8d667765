from __future__ import annotations

from collections.abc import Iterator

import pytest

from netra_analytics.config import parse_clickhouse_url
from netra_analytics.store.base import Store
from netra_analytics.store.chdb_backend import ChdbStore
from netra_analytics.store.http_backend import HttpStore
from netra_analytics.store.migrations import migrate
from tests.support.processes import ChdbHttpServer


@pytest.fixture(scope="session")
def chdb_http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbHttpServer]:
    process = ChdbHttpServer(tmp_path_factory.mktemp("chdb-http") / "db")
    process.start()
    yield process
    process.kill()


@pytest.fixture(scope="session")
def http_store(chdb_http_server: ChdbHttpServer) -> Iterator[HttpStore]:
    store = HttpStore(parse_clickhouse_url(chdb_http_server.url), connect_timeout=2, timeout=30)
    migrate(store)
    yield store
    store.close()


@pytest.fixture(params=["chdb", "http"])
def any_store(request: pytest.FixtureRequest, store: ChdbStore, http_store: HttpStore) -> Store:
    """Each backend in turn, with empty event tables. The HTTP one is asked for here, not when
    its turn comes: a session's server started inside a test is stopped with that test."""
    if request.param == "chdb":
        return store
    http = http_store
    for table in ("frontend_events", "user_analytics_summary", "rejected_events"):
        http.execute(f"TRUNCATE TABLE analytics.{table}")
    return http
