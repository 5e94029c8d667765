"""The one small interface both ClickHouse backends implement.

Calls are synchronous and thread-safe: chDB releases the GIL while a query runs and
clickhouse-connect's HTTP pool is shared safely, so async callers run them with
`asyncio.to_thread`. Values always travel as ClickHouse typed parameters (`{name:Type}` in the
SQL, `params` beside it), never formatted into the statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol
from uuid import UUID

import orjson

DATABASE = "analytics"

Params = Mapping[str, Any]

# Every connection works in UTC so that `toDate(timestamp)` and the `date`/`hour` defaults mean
# the same day on every machine; reports convert to a caller's time zone explicitly.
SESSION_SETTINGS: dict[str, str] = {
    "session_timezone": "UTC",
    "output_format_json_quote_64bit_integers": "0",
    "date_time_input_format": "best_effort",
    # Tables read with FINAL are partitioned by the month of a timestamp in their sorting key,
    # so the rows of one key never span partitions: FINAL may merge each partition alone.
    "do_not_merge_across_partitions_select_final": "1",
}


class Store(Protocol):
    """A ClickHouse to run SQL on: embedded chDB or a server over HTTP."""

    @property
    def description(self) -> str: ...

    def execute(self, sql: str, params: Params | None = None) -> None:
        """Run a statement that returns nothing (DDL, ALTER, OPTIMIZE ...)."""

    def query_rows(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        """Run a SELECT and return its rows as dicts (column name -> value)."""

    def query_raw(self, sql: str, params: Params | None = None, fmt: str = "TSV") -> bytes:
        """Run a SELECT and return ClickHouse's own output in `fmt`."""

    def insert_json_rows(
        self, table: str, rows: bytes, *, settings: Mapping[str, str] | None = None
    ) -> None:
        """Insert newline-separated JSON objects (JSONEachRow) into `analytics.<table>`."""

    def ping(self) -> None:
        """Raise if the store cannot answer `SELECT 1`."""

    def close(self) -> None: ...


_ESCAPES = str.maketrans(
    {"\\": "\\\\", "'": "\\'", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"}
)


def render_param(value: Any, *, nested: bool = False) -> str:
    """A Python value in ClickHouse's text form, as a query parameter carries it.

    ClickHouse reads a parameter in its escaped text form (as in TSV): top-level strings have
    backslashes and control characters escaped; inside arrays they are quoted literals.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        text = value.isoformat(sep=" ", timespec="milliseconds")
        return f"'{text}'" if nested else text
    if isinstance(value, date):
        return f"'{value.isoformat()}'" if nested else value.isoformat()
    if isinstance(value, UUID):
        return f"'{value}'" if nested else str(value)
    if isinstance(value, str):
        escaped = value.translate(_ESCAPES)
        return f"'{escaped}'" if nested else escaped
    if isinstance(value, Sequence):
        return "[" + ",".join(render_param(v, nested=True) for v in value) + "]"
    raise TypeError(f"cannot pass a {type(value).__name__} as a ClickHouse parameter")


def render_params(params: Params | None) -> dict[str, str] | None:
    if not params:
        return None
    return {name: render_param(value) for name, value in params.items()}


def parse_json_each_row(raw: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in raw.splitlines() if line]


def settings_clause(settings: Mapping[str, str] | None) -> str:
    """`SETTINGS a = 'x', b = 'y'` for an INSERT; names are checked, values are quoted."""
    if not settings:
        return ""
    parts = []
    for name, value in settings.items():
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a setting name: {name!r}")
        parts.append(f"{name} = {render_param(str(value), nested=True)}")
    return " SETTINGS " + ", ".join(parts)


def checked_table(table: str) -> str:
    if not table.replace("_", "").isalnum():
        raise ValueError(f"not a table name: {table!r}")
    return f"{DATABASE}.{table}"
