"""The one small interface both ClickHouse backends implement.

Calls are synchronous and thread-safe: chDB releases the GIL while a query runs and
clickhouse-connect's HTTP pool is shared safely, so async callers run them with
`asyncio.to_thread`. Values always travel as ClickHouse typed parameters (`{name:Type}` in the
SQL, `params` beside it), or, when there are thousands, as a table sent with the query
(`ExternalTable`); never formatted into the statement.
"""

from __future__ import annotations

import dataclasses
import re
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


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,63}")
_COLUMN = re.compile(r"([a-z_][a-z0-9_]{0,63}) (String|UUID|UInt64|Int64|Float64|Date)")
# JSONCompactColumns: `[[column 1 values], [column 2 values], ...]`, one `orjson.dumps` for a
# whole table where JSONCompactEachRow takes one per row (the writer's lookup, `ingest.writer`).
EXTERNAL_FORMATS = frozenset({"JSONCompactColumns", "JSONCompactEachRow", "TabSeparated"})


@dataclasses.dataclass(frozen=True)
class ExternalTable:
    """Rows sent with a SELECT, which reads them as a temporary table named `name`: ClickHouse's
    "external data" (clickhouse.com/docs/engines/table-engines/special/external-data).

    For key lists of thousands (the batch writer's lookup of a batch's event ids): as two
    array parameters, 17,000 pairs cost ~150 ms of Python (clickhouse-connect binds them a
    character at a time) and ~100 ms of ClickHouse, 40 of it parsing them; as a table, ~5 ms
    and ~25 ms (issue 17, bench/README "Sixth pass").
    `structure` is `name Type, ...` (types from a short allow-list); `data` the rows in `fmt`.
    On a cluster the table exists on the node that was asked: read it with GLOBAL IN.
    Raises ValueError for a name, structure or format outside the allow-lists.
    """

    name: str
    structure: str
    data: bytes
    fmt: str = "JSONCompactEachRow"

    def __post_init__(self) -> None:
        if not _IDENTIFIER.fullmatch(self.name):
            raise ValueError(f"not a table name: {self.name!r}")
        if not all(_COLUMN.fullmatch(c.strip()) for c in self.structure.split(",")):
            raise ValueError(f"not a structure of `name Type` columns: {self.structure!r}")
        if self.fmt not in EXTERNAL_FORMATS:
            raise ValueError(f"not a format for external data: {self.fmt!r}")


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

    def query_rows_with_table(self, sql: str, table: ExternalTable) -> list[dict[str, Any]]:
        """Run a SELECT that reads `table` (sent with it, gone after it) and return its rows."""

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
