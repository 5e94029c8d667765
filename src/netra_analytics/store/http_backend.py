"""ClickHouse server over HTTP, through clickhouse-connect (the official client).

Used when `CLICKHOUSE_ANALYTICS_URL` is set. The SQL is the embedded backend's, byte for byte;
the tests run this backend against a ClickHouse-compatible HTTP endpoint served by chDB
(`tests/support/chdb_http.py`), since no modern ClickHouse server installs on the build machine.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from netra_analytics.config import ClickHouseURL
from netra_analytics.errors import StoreError, StoreUnavailable
from netra_analytics.store.base import (
    SESSION_SETTINGS,
    ExternalTable,
    Params,
    checked_table,
    parse_json_each_row,
    settings_clause,
)

# clickhouse-connect logs a warning for every request that fails to connect, before raising:
# during an outage that is a line per attempt and per health probe. The failure reaches the
# caller as StoreUnavailable, which the writer and health report (once, then periodically).
logging.getLogger("clickhouse_connect").setLevel(logging.ERROR)


class HttpStore:
    def __init__(
        self, url: ClickHouseURL, *, connect_timeout: float = 5, timeout: float = 60
    ) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._client: Any = None

    @property
    def description(self) -> str:
        scheme = "https" if self._url.secure else "http"
        return f"ClickHouse server at {scheme}://{self._url.host}:{self._url.port}"

    def _connected(self) -> Any:
        # Connect on first use, and again after a failure, so that a server that was down at
        # start-up (or restarted since) is picked up without restarting the service.
        if self._client is None:
            import clickhouse_connect

            try:
                self._client = clickhouse_connect.get_client(
                    host=self._url.host,
                    port=self._url.port,
                    username=self._url.username,
                    password=self._url.password,
                    secure=self._url.secure,
                    compress=False,
                    connect_timeout=self._connect_timeout,
                    send_receive_timeout=self._timeout,
                    settings=SESSION_SETTINGS,
                    autogenerate_session_id=False,
                )
            except Exception as exc:
                raise StoreUnavailable(f"{self.description}: {exc}") from exc
        return self._client

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        client = self._connected()
        try:
            return getattr(client, method)(*args, **kwargs)
        except Exception as exc:
            from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

            if isinstance(exc, OperationalError) or not isinstance(exc, DatabaseError):
                self._client = None
                raise StoreUnavailable(f"{self.description}: {exc}") from exc
            raise StoreError(str(exc).strip().split("\n", 1)[0]) from exc

    def execute(self, sql: str, params: Params | None = None) -> None:
        self._call("command", sql, parameters=dict(params) if params else None)

    def query_rows(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        return parse_json_each_row(self.query_raw(sql, params, "JSONEachRow"))

    def query_raw(self, sql: str, params: Params | None = None, fmt: str = "TSV") -> bytes:
        data: bytes = self._call(
            "raw_query", sql, parameters=dict(params) if params else None, fmt=fmt
        )
        return data

    def query_rows_with_table(self, sql: str, table: ExternalTable) -> list[dict[str, Any]]:
        from clickhouse_connect.driver.external import ExternalData

        external = ExternalData(
            file_name=table.name, data=table.data, fmt=table.fmt, structure=table.structure
        )
        data: bytes = self._call("raw_query", sql, fmt="JSONEachRow", external_data=external)
        return parse_json_each_row(data)

    def insert_json_rows(
        self, table: str, rows: bytes, *, settings: Mapping[str, str] | None = None
    ) -> None:
        statement = (
            f"INSERT INTO {checked_table(table)}{settings_clause(settings)} FORMAT JSONEachRow"
        )
        self._call("command", statement, data=rows)

    def ping(self) -> None:
        self._call("command", "SELECT 1")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
