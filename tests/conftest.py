from __future__ import annotations

import dataclasses
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as redis_sync
from fastapi.testclient import TestClient

from netra_analytics.app import create_app
from netra_analytics.auth.keys import ADMIN, create_key
from netra_analytics.config import Settings
from netra_analytics.store.chdb_backend import ChdbStore
from netra_analytics.store.migrations import migrate
from tests.support.processes import STARTED, RedisServer

# Every table (and materialized view's table) holding data; the migration ledger stays, and so
# do the API keys (the session's admin key serves every test; key tests use their own names).
DATA_TABLES = """
SELECT name FROM system.tables
WHERE database = 'analytics' AND name NOT IN ('schema_migrations', 'api_keys')
  AND NOT startsWith(name, '.inner')
  AND (engine LIKE '%MergeTree' OR engine = 'MaterializedView')
"""


@pytest.fixture(scope="session")
def chdb_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbStore]:
    """The test process's one chDB (one data path per process), migrated once."""
    store = ChdbStore(tmp_path_factory.mktemp("chdb") / "chdb")
    migrate(store)
    yield store
    store.close()


@pytest.fixture(scope="session")
def admin_headers(chdb_store: ChdbStore) -> dict[str, str]:
    """`Authorization` for an admin key of the session's store: the test clients send it by
    default, since every report needs a credential (tests/auth test the refusals)."""
    key = create_key(chdb_store, f"test-admin-{uuid.uuid4().hex[:8]}", ADMIN)
    return {"authorization": f"Bearer {key}"}


@pytest.fixture
def store(chdb_store: ChdbStore) -> ChdbStore:
    """The shared chDB, emptied for this test."""
    for row in chdb_store.query_rows(DATA_TABLES):
        table = row["name"]
        chdb_store.execute(f"TRUNCATE TABLE analytics.{table}")
    return chdb_store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        event_batch_size=1,
        event_flush_interval_ms=20,
        ip_hash_secret="test-secret-0123456789",
        funnel_walk_days=0,  # no background builds unless a test asks for them
    )


@pytest.fixture
def client(
    store: ChdbStore, settings: Settings, admin_headers: dict[str, str]
) -> Iterator[TestClient]:
    app = create_app(settings, store=store)
    with TestClient(app, client=("203.0.113.7", 50000), headers=admin_headers) as test_client:
        yield test_client


@pytest.fixture
def make_client(
    store: ChdbStore, tmp_path: Path, admin_headers: dict[str, str]
) -> Iterator[Callable[..., TestClient]]:
    """Build a client with other settings: make_client(event_batch_size=...)."""
    clients: list[TestClient] = []

    def build(clock: Callable[[], float] = time.time, **changes: object) -> TestClient:
        base = Settings(
            data_dir=tmp_path / f"data{len(clients)}",
            ip_hash_secret="test-secret-0123456789",
            funnel_walk_days=0,  # no background builds unless a test asks for them
        )
        settings = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
        app = create_app(settings, store=store, clock=clock)
        test_client = TestClient(app, headers=admin_headers)
        test_client.__enter__()
        clients.append(test_client)
        return test_client

    yield build
    for test_client in clients:
        test_client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run `make test`, which installs it")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    _SESSION_REDIS["server"] = server
    server.start()
    yield server
    server.kill()


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[redis_sync.Redis]:
    client = redis_sync.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test() -> Iterator[None]:
    """A test that fails half-way must not leave servers running into the next one."""
    before = len(STARTED)
    yield
    for process in STARTED[before:]:
        if not isinstance(process, RedisServer) or process is not _SESSION_REDIS.get("server"):
            process.kill()


_SESSION_REDIS: dict[str, RedisServer] = {}
