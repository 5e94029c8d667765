"""Embedded ClickHouse: chDB in this process, persisted under the data directory.

Calls are serialised by a lock: chDB keeps query parameters on the connection, so two threads
querying at once (the batch writer's lookup, the prompt worker's thread load) could run with
each other's parameters ("Substitution `user` is not set" was seen under load).

chDB allows one data path per process, so embedded mode has one engine owner; with several
worker processes the owner serves this store to them over HTTP (`chdb_server`). chdb is
imported here, lazily, because importing it and then forking can hang the child.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from netra_analytics.errors import StoreError
from netra_analytics.store.base import (
    SESSION_SETTINGS,
    ExternalTable,
    Params,
    checked_table,
    parse_json_each_row,
    render_param,
    render_params,
    settings_clause,
)

# The embedded engine shares the machine's cores with the event loops that answer browsers:
# its query threads (inserts and their views, reports) run at a lower priority (ClickHouse's
# `os_thread_priority`, a nice value), so that under load a request waits less for a core.
# Measured with two workers at a paced 10,000 events/s (issue 17, bench/README.md, 30 s
# runs): request p99 49-58 ms with it (4 runs), 61-108 ms without (7 runs). A ClickHouse
# server is left as its operator set it.
EMBEDDED_SETTINGS = {"os_thread_priority": "10"}


class ChdbStore:
    def __init__(self, path: Path) -> None:
        from chdb import session

        path.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.Lock()
        try:
            self._session = session.Session(str(path))
        except RuntimeError as exc:
            raise StoreError(
                f"cannot open the embedded store at {path} ({exc}); if the service is running, "
                "stop it first: embedded ClickHouse allows one process per data directory"
            ) from exc
        for name, value in {**SESSION_SETTINGS, **EMBEDDED_SETTINGS}.items():
            self._session.query(f"SET {name} = {render_param(value, nested=True)}")

    @property
    def description(self) -> str:
        return f"chDB (embedded) at {self._path}"

    def _run(
        self, sql: str, params: Params | None, fmt: str, tables: Sequence[ExternalTable] = ()
    ) -> bytes:
        try:
            with self._lock, self._external(tables):
                result = self._session.query(sql, fmt, params=render_params(params))
        except Exception as exc:  # chDB raises RuntimeError subclasses with ClickHouse's text
            raise StoreError(str(exc).split("\n", 1)[0]) from exc
        data: bytes = result.bytes()
        return data

    def execute(self, sql: str, params: Params | None = None) -> None:
        self._run(sql, params, "TSV")

    def query_rows(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        return parse_json_each_row(self._run(sql, params, "JSONEachRow"))

    def query_raw(self, sql: str, params: Params | None = None, fmt: str = "TSV") -> bytes:
        return self._run(sql, params, fmt)

    def query_rows_with_table(self, sql: str, table: ExternalTable) -> list[dict[str, Any]]:
        return parse_json_each_row(self._run(sql, None, "JSONEachRow", [table]))

    @contextlib.contextmanager
    def _external(self, tables: Sequence[ExternalTable]) -> Iterator[None]:
        """The tables as temporary tables of the session while the block runs (the caller holds
        the lock: no other query sees them). chDB has no external data of its own."""
        made: list[str] = []
        try:
            for table in tables:  # names and structures are checked by ExternalTable
                self._session.query(
                    f"CREATE TEMPORARY TABLE {table.name} ({table.structure}) ENGINE = Memory"
                )
                made.append(table.name)
                self._session.query(
                    f"INSERT INTO {table.name} FORMAT {table.fmt}\n" + table.data.decode()
                )
            yield
        finally:
            for name in made:
                self._session.query(f"DROP TEMPORARY TABLE IF EXISTS {name}")

    def insert_json_rows(
        self, table: str, rows: bytes, *, settings: Mapping[str, str] | None = None
    ) -> None:
        statement = (
            f"INSERT INTO {checked_table(table)}{settings_clause(settings)} FORMAT JSONEachRow\n"
        )
        # As bytes: chDB takes them as they are, where text is decoded here and encoded back
        # there, ~10 ms of a batch's megabytes holding the interpreter lock (`chdb_server`).
        query = b"".join((statement.encode(), rows))
        try:
            with self._lock:
                self._session.query(query, "TSV")
        except Exception as exc:
            raise StoreError(str(exc).split("\n", 1)[0]) from exc

    def ping(self) -> None:
        self._run("SELECT 1", None, "TSV")

    def run_text(
        self,
        sql: bytes,
        fmt: str,
        params: Mapping[str, str],
        settings: Mapping[str, str],
        tables: Sequence[ExternalTable] = (),
    ) -> bytes:
        """For ClickHouse's HTTP interface (`chdb_server`): `sql` as the request's bytes (an
        insert's rows after its statement, never decoded), `params` already in ClickHouse's
        text form, `settings` applied to the session first (and kept), `tables` the request's
        external data; raises chDB's own exception, whose text is ClickHouse's."""
        with self._lock:
            for name, value in settings.items():
                self._session.query(f"SET {name} = {render_param(value, nested=True)}")
            with self._external(tables):
                data: bytes = self._session.query(sql, fmt, params=dict(params) or None).bytes()
        return data

    def close(self) -> None:
        self._session.close()
