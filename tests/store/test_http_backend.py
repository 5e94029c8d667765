"""The HTTP backend (clickhouse-connect) against a ClickHouse HTTP endpoint served by chDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from netra_analytics.config import parse_clickhouse_url
from netra_analytics.errors import StoreUnavailable
from netra_analytics.store.chdb_backend import ChdbStore
from netra_analytics.store.http_backend import HttpStore
from netra_analytics.store.migrations import migrate
from tests.support.processes import ChdbHttpServer

SCHEMA = (
    "SELECT table, name, type, default_expression FROM system.columns "
    "WHERE database = 'analytics' AND table NOT LIKE '.inner%' ORDER BY table, position"
)


def test_same_migrations_give_the_same_schema_as_embedded(
    http_store: HttpStore, store: ChdbStore
) -> None:
    assert http_store.query_rows(SCHEMA) == store.query_rows(SCHEMA)
    assert migrate(http_store) == []


def test_outage_is_unavailable_and_the_backend_reconnects(tmp_path: Path) -> None:
    server = ChdbHttpServer(tmp_path / "db")
    server.start()
    store = HttpStore(parse_clickhouse_url(server.url), connect_timeout=1, timeout=5)
    store.ping()
    server.kill()
    with pytest.raises(StoreUnavailable):
        store.ping()
    server.start()  # same port, same data
    store.ping()
    store.close()
    server.kill()
