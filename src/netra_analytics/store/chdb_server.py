"""ClickHouse's HTTP interface served by the embedded engine (chDB), for worker processes.

chDB allows one data path per process, so with `ANALYTICS_WORKERS` > 1 the engine owner holds
the store and serves it on loopback; every worker then talks to it exactly as to a ClickHouse
server (`HttpStore`, clickhouse-connect), and the two modes share one code path. The tests'
stand-in for a ClickHouse server (`tests/support/chdb_http.py`) is this, in its own process.

The request shape is ClickHouse's: `query` in the URL or the body, data after it (an INSERT's
rows), `param_*` typed parameters in the URL or as multipart form fields (clickhouse-connect
sends long parameter lists that way), external data (multipart files, `<name>_structure`,
`<name>_format`), settings as URL arguments, `default_format`, `GET /ping`.

- Authentication: one user and a password (the owner draws a random one per start), as HTTP
  basic auth, `X-ClickHouse-User`/`X-ClickHouse-Key` headers or `user`/`password` arguments.
  A wrong one is answered as ClickHouse does: 403 with `Code: 516. DB::Exception: ...
  AUTHENTICATION_FAILED`.
- Errors: ClickHouse's own text (`Code: N. DB::Exception: ...`) with status 500 (400 for a
  request this server cannot read) and `X-ClickHouse-Exception-Code: N`, which is what
  clickhouse-connect turns into a `DatabaseError`.
- Bounded: at most `max_connections` connections are served at once (a thread each); more wait
  in the listen backlog. A connection idle for `idle_seconds` is closed, so keep-alive
  connections of clients that went away do not hold threads.
- Settings given as URL arguments are applied to the engine's one session before the query
  (`SET`, only when they change): they stay for later queries, which is harmless here because
  every client of this server is the service's `HttpStore`, which sends the same session
  settings on every request; per-statement settings travel in the SQL (`SETTINGS ...`).

Queries run one at a time on the store's lock (`ChdbStore.run_text`): the engine owner's own
work (migrations, the funnel walk builder) shares it.
"""

from __future__ import annotations

import base64
import hmac
import logging
import re
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from netra_analytics.store.base import ExternalTable
from netra_analytics.store.chdb_backend import ChdbStore

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
IDLE_SECONDS = 60.0
MAX_BODY_BYTES = 256 << 20  # an INSERT's rows: the writer's batches are a few MB at most

# URL arguments that are part of the protocol, not ClickHouse settings.
_PROTOCOL_ARGS = frozenset({
    "query", "database", "default_format", "query_id", "session_id", "compress", "user",
    "password", "wait_end_of_query", "client_protocol_version", "session_timeout",
    "cancel_http_readonly_queries_on_client_close", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "enable_http_compression", "session_check",
})  # fmt: skip
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_CODE = re.compile(r"Code: (\d+)\.")
AUTHENTICATION_FAILED = 516
UNKNOWN_SETTING = 115
BAD_ARGUMENTS = 36


def _form_parts(content_type: str, raw: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """A multipart/form-data body's fields, and its files (external data, by field name).

    Parsed by python-multipart (Starlette's form parser), which finds the boundaries with
    `bytes.find`: 0.2-0.5 ms for a 10,000-key lookup's body, where the email package's parser,
    used before, walked it line by line in Python for 10-13 ms. That time held the engine
    owner's interpreter lock, and the owner's event loop answers every worker's rate-limit
    decision (issue 17, bench/README "Tenth pass"). Raises `_Refused` (400) for a body that
    is not multipart/form-data with a boundary, or not UTF-8 in a field."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise _Refused(400, BAD_ARGUMENTS, "multipart/form-data without a boundary")
    parts: list[tuple[dict[bytes, bytes], list[bytes]]] = []
    header = [b"", b""]

    def on_part_begin() -> None:
        parts.append(({}, []))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        parts[-1][0][header[0].lower()] = header[1]
        header[0] = header[1] = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1][1].append(data[start:end])

    callbacks: MultipartCallbacks = {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_part_data": on_part_data,
    }  # fmt: skip
    parser = MultipartParser(boundary, callbacks)
    try:
        parser.write(raw)
        parser.finalize()
    except MultipartParseError as exc:
        raise _Refused(400, BAD_ARGUMENTS, f"multipart/form-data: {str(exc)[:200]}") from None
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for headers, chunks in parts:
        _, disposition = parse_options_header(headers.get(b"content-disposition"))
        name = disposition.get(b"name")
        if name is None:
            continue
        payload = b"".join(chunks)
        try:
            if b"filename" in disposition:
                files[name.decode()] = payload
            else:
                fields[name.decode()] = payload.decode()
        except UnicodeDecodeError:
            raise _Refused(400, BAD_ARGUMENTS, "a form field is not UTF-8") from None
    return fields, files


def _external_tables(files: dict[str, bytes], args: dict[str, str]) -> list[ExternalTable]:
    """The request's external data as ClickHouse reads it: each file a table named by its
    field, `<name>_structure` and `<name>_format` (TabSeparated if absent) in the arguments,
    which are taken out of `args`. `<name>_types` (columns named _1, _2, ...) is not served."""
    tables = []
    for name, data in files.items():
        structure = args.pop(f"{name}_structure", None)
        fmt = args.pop(f"{name}_format", "TabSeparated")
        if args.pop(f"{name}_types", None) is not None:
            raise _Refused(
                400, BAD_ARGUMENTS,
                f"external table {name[:64]!r}: columns by types are not served, send "
                f"{name[:64]}_structure",
            )  # fmt: skip
        if structure is None:
            raise _Refused(400, BAD_ARGUMENTS, f"external table {name[:64]!r} has no structure")
        try:
            tables.append(ExternalTable(name, structure, data, fmt))
        except ValueError as exc:
            raise _Refused(400, BAD_ARGUMENTS, str(exc)[:200]) from None
    return tables


class _Refused(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class ChdbHttpServer(ThreadingMixIn, HTTPServer):
    """Serves `store` on `host:port` (port 0: a free one, see `port`) until `shutdown()`."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(
        self,
        store: ChdbStore,
        *,
        user: str,
        password: str,
        host: str = "127.0.0.1",
        port: int = 0,
        max_connections: int = MAX_CONNECTIONS,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.store = store
        self.user, self.password = user, password
        self.idle_seconds = idle_seconds
        self._slots = threading.BoundedSemaphore(max_connections)
        self._applied: dict[str, str] = {}
        self._settings_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port

    def process_request(self, request: Any, client_address: Any) -> None:
        # Waits for a free slot before taking the next connection: the backlog holds the rest.
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """socketserver prints a traceback to stderr; here a client gone mid-request (a worker
        or the prompt analysis process killed) is a one-line warning, anything else an error
        in the JSON log."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log.warning("a store client went away mid-request", extra={"error": repr(error)})
        else:
            log.error("the store's HTTP interface failed on a request", exc_info=error)

    def authorised(self, user: str | None, password: str | None) -> bool:
        return (
            user is not None
            and password is not None
            and hmac.compare_digest(user.encode(), self.user.encode())
            and hmac.compare_digest(password.encode(), self.password.encode())
        )

    def run(
        self,
        sql: bytes,
        fmt: str,
        params: dict[str, str],
        settings: dict[str, str],
        tables: list[ExternalTable],
    ) -> bytes:
        with self._settings_lock:
            changed = {k: v for k, v in settings.items() if self._applied.get(k) != v}
            self._applied.update(changed)
        return self.store.run_text(sql, fmt, params, changed, tables)

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="chdb-http", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ChdbHttpServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.idle_seconds)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _credentials(self, args: dict[str, str]) -> tuple[str | None, str | None]:
        header = self.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                name, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None, None
            return name, secret
        user = self.headers.get("X-ClickHouse-User") or args.get("user")
        password = self.headers.get("X-ClickHouse-Key") or args.get("password")
        return user, password

    def _handle(self) -> None:
        try:
            self._answer()
        except _Refused as refused:
            text = f"Code: {refused.code}. DB::Exception: {refused}\n".encode()
            self._reply(refused.status, text, {"X-ClickHouse-Exception-Code": str(refused.code)})
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _answer(self) -> None:
        url = urlsplit(self.path)
        args = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if url.path == "/ping":
            self._reply(200, b"Ok.\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise _Refused(413, BAD_ARGUMENTS, f"body over {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(length) if length else b""
        if not self.server.authorised(*self._credentials(args)):
            raise _Refused(
                403, AUTHENTICATION_FAILED,
                f"{self._credentials(args)[0] or 'default'}: Authentication failed: password is "
                "incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)",
            )  # fmt: skip
        content_type = self.headers.get("Content-Type", "")
        tables: list[ExternalTable] = []
        if content_type.startswith("multipart/form-data"):
            fields, files = _form_parts(content_type, raw)
            args.update(fields)
            tables = _external_tables(files, args)
            raw = b""
        query = args.pop("query", None)
        if query is None and not raw:
            self._reply(200, b"Ok.\n")
            return
        # Bytes, as ClickHouse takes them (no check that they are UTF-8, as it makes none): an
        # insert's rows are megabytes, and decoding them, joining the text and chDB encoding it
        # back held the owner's interpreter lock for ~10 ms per insert (`_form_parts` says why
        # that matters); one join of bytes takes ~1 ms.
        sql = raw if query is None else b"\n".join((query.encode(), raw)) if raw else query.encode()
        # Values stay in ClickHouse's escaped text form: chDB parses them as the server does.
        params = {k[6:]: v for k, v in args.items() if k.startswith("param_")}
        settings = {
            k: v for k, v in args.items() if k not in _PROTOCOL_ARGS and not k.startswith("param_")
        }
        for name in settings:
            if not _SETTING_NAME.fullmatch(name):
                raise _Refused(400, UNKNOWN_SETTING, f"Unknown setting {name[:64]!r}")
        fmt = args.get("default_format", "TabSeparated")
        try:
            result = self.server.run(sql, fmt, params, settings, tables)
        except Exception as exc:  # chDB raises RuntimeError subclasses with ClickHouse's text
            text = str(exc).strip() or type(exc).__name__
            found = _CODE.search(text)
            code = int(found.group(1)) if found else 1001  # STD_EXCEPTION
            if not found:
                text = f"Code: {code}. DB::Exception: {text}"
            self._reply(500, text.encode() + b"\n", {"X-ClickHouse-Exception-Code": str(code)})
            return
        self._reply(200, result, {"X-ClickHouse-Format": fmt})

    def _reply(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("X-ClickHouse-Summary", '{"read_rows":"0","written_rows":"0"}')
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _handle
