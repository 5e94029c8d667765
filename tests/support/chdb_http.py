"""A ClickHouse-compatible HTTP endpoint served by chDB, for tests of the HTTP backend.

No modern ClickHouse server installs on the build machine, so the HTTP backend
(clickhouse-connect) is tested against this: the ClickHouse HTTP interface's request shape
(`query` in the URL or body, data after it, `param_*` typed parameters in the URL or as
multipart form fields, settings as URL arguments, errors as non-200 with the exception text) in front of the real ClickHouse engine.
Run it as its own process (`python tests/support/chdb_http.py PATH PORT`): chDB allows one data
path per process, and a test that kills this process is a real store outage.
"""

from __future__ import annotations

import sys
import threading
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# URL arguments that are part of the protocol, not ClickHouse settings.
_PROTOCOL_ARGS = {
    "query", "database", "default_format", "query_id", "session_id", "compress", "user",
    "password", "wait_end_of_query", "client_protocol_version", "session_timeout",
    "cancel_http_readonly_queries_on_client_close", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "enable_http_compression",
}  # fmt: skip


def _form_fields(content_type: str, raw: bytes) -> dict[str, str]:
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode()
    return fields


def serve(path: str, port: int) -> None:
    from chdb import session

    chdb_session = session.Session(path)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _handle(self) -> None:
            url = urlsplit(self.path)
            args = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):
                # Long parameter lists travel as form fields (`query`, `param_*`) instead.
                args.update(_form_fields(content_type, raw))
                raw = b""
            body = raw.decode()
            query = args.pop("query", None)
            if url.path == "/ping" or (query is None and not body):
                self._reply(200, b"Ok.\n")
                return
            sql = body if query is None else query + ("\n" + body if body else "")
            # Values stay in ClickHouse's escaped text form: chDB parses them as the server does.
            params = {k[6:]: v for k, v in args.items() if k.startswith("param_")}
            settings = {
                k: v
                for k, v in args.items()
                if k not in _PROTOCOL_ARGS and not k.startswith("param_")
            }
            fmt = args.get("default_format", "TabSeparated")
            try:
                with lock:
                    for name, value in settings.items():
                        chdb_session.query(f"SET {name} = '{value}'")
                    result = chdb_session.query(sql, fmt, params=params or None)
            except Exception as exc:
                self._reply(500, str(exc).encode(), {"X-ClickHouse-Exception-Code": "1"})
                return
            self._reply(200, result.bytes(), {"X-ClickHouse-Format": fmt})

        def _reply(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("X-ClickHouse-Summary", '{"read_rows":"0","written_rows":"0"}')
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
