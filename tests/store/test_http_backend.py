"""The HTTP backend (clickhouse-connect) against a ClickHouse HTTP endpoint served by chDB."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from urllib3 import encode_multipart_formdata

from netra_analytics.config import parse_clickhouse_url
from netra_analytics.errors import StoreError, StoreUnavailable
from netra_analytics.reports.funnel_walks import build, funnel_totals, stored_walks
from netra_analytics.reports.funnels import funnels_query, load_funnels
from netra_analytics.store.chdb_backend import ChdbStore
from netra_analytics.store.chdb_server import _form_parts
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


def test_funnel_walks_over_http(http_store: HttpStore) -> None:
    """Building and reading funnel walks through clickhouse-connect: the INSERT ... SELECT of a
    build and the joined walk take their parameters over HTTP too."""
    for table in ("frontend_events", "prompt_analytics", "funnel_walks", "funnel_builds"):
        http_store.execute(f"TRUNCATE TABLE analytics.{table}")
    events = [
        {"user_id": f"h{n % 4}", "session_id": "s", "event_type": kind, "properties": "{}",
         "event_category": "interaction", "timestamp": f"2026-11-0{1 + n % 5} 1{n % 10}:00:00"}
        for n, kind in enumerate(["chat_interaction", "feature_usage", "page_view"] * 8)
    ]  # fmt: skip
    http_store.insert_json_rows("frontend_events", b"\n".join(orjson.dumps(e) for e in events))
    prompt = {"user_id": "h1", "timestamp": "2026-11-02 08:00:00", "prompt_complexity_score": 0.8}
    http_store.insert_json_rows("prompt_analytics", orjson.dumps(prompt | {"version": 1}))
    funnels = load_funnels(None)
    build(http_store, funnels, date(2026, 11, 4), days=4)
    for start, end in (
        (date(2026, 11, 1), date(2026, 11, 3)),
        (date(2026, 11, 2), date(2026, 11, 6)),
    ):
        assert stored_walks(http_store, funnels, start, end) is not None
        text, params = funnels_query(funnels, start, end)
        [expected] = http_store.query_rows(text, params)
        assert funnel_totals(http_store, funnels, start, end) == expected
        assert expected["f0_reached_0"] > 0


def test_the_engine_owners_server_refuses_a_wrong_password_as_clickhouse_does(
    tmp_path: Path,
) -> None:
    """`store/chdb_server.py` (what the engine owner serves its workers): the right password
    answers, a wrong one is ClickHouse's 516 AUTHENTICATION_FAILED, and a bad query is the
    engine's own error with its code, never a dropped connection."""
    server = ChdbHttpServer(tmp_path / "db", user="netra", password="s3cret-per-start")
    server.start()
    try:
        good = HttpStore(parse_clickhouse_url(server.url), connect_timeout=2, timeout=10)
        assert good.query_rows("SELECT 1 + {n:UInt8} AS x", {"n": 2}) == [{"x": 3}]
        with pytest.raises(StoreError, match="Code: 62"):
            good.query_rows("SELEC nonsense")
        assert good.query_rows("SELECT 2 AS y") == [{"y": 2}]  # the connection still serves
        good.close()
        wrong = server.url.replace("s3cret-per-start", "guess")
        bad = HttpStore(parse_clickhouse_url(wrong), connect_timeout=2, timeout=10)
        with pytest.raises((StoreError, StoreUnavailable), match=r"516|Authentication failed"):
            bad.ping()
        raw = httpx.post(f"http://127.0.0.1:{server.port}/", content=b"SELECT 1")
        assert raw.status_code == 403
        assert raw.headers["x-clickhouse-exception-code"] == "516"
    finally:
        server.kill()


def test_a_client_gone_mid_request_is_one_warning_not_a_traceback(
    store: ChdbStore, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A worker or the prompt analysis process killed while it sends: the owner's store
    server logs one line (socketserver's default prints a traceback to stderr)."""
    import socket
    import struct
    import time

    from netra_analytics.store.chdb_server import ChdbHttpServer as Server

    server = Server(store, user="u", password="p")
    server.serve_in_thread()
    try:
        client = socket.create_connection(("127.0.0.1", server.port))
        client.sendall(b"GET /?query=SELECT+1 HTTP/1.1\r\nhost: x\r\n"
                       b"authorization: Basic dTpw\r\n\r\n")  # fmt: skip
        assert client.recv(4096).startswith(b"HTTP/1.1 200")
        client.sendall(b"GET /?query=SELECT+1 HT")  # the next request, cut short
        time.sleep(0.2)
        # SO_LINGER 0: close with a reset, as a process killed mid-request leaves its socket.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "went away" not in caplog.text:
            time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()
    assert "a store client went away mid-request" in caplog.text
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({}, "external table 'keys' has no structure"),
        ({"keys_structure": "x String) ENGINE = Log; --"}, "not a structure"),
        ({"keys_structure": "x String", "keys_format": "Native"}, "not a format"),
        ({"keys_types": "String"}, "columns by types are not served"),
    ],
)
def test_external_data_outside_the_allow_lists_is_refused_as_bad_arguments(
    chdb_http_server: ChdbHttpServer, arguments: dict[str, str], code: str
) -> None:
    """The engine owner's server reads external data as ClickHouse does (a multipart file per
    table, `<name>_structure`, `<name>_format`), and refuses a name, structure or format
    outside its allow-lists with 400 and code 36 before anything reaches the engine."""
    reply = httpx.post(
        f"http://127.0.0.1:{chdb_http_server.port}/",
        params={"query": "SELECT count() FROM keys", **arguments},
        files={"keys": ("keys.tsv", b"a\nb\n", "application/octet-stream")},
        auth=("default", ""),
    )
    assert reply.status_code == 400, reply.text
    assert reply.headers["x-clickhouse-exception-code"] == "36"
    assert code in reply.text
    good = httpx.post(
        f"http://127.0.0.1:{chdb_http_server.port}/",
        params={"query": "SELECT count() FROM keys", "keys_structure": "x String"},
        files={"keys": ("keys.tsv", b"a\nb\n", "application/octet-stream")},
        auth=("default", ""),
    )
    assert good.status_code == 200 and good.text == "2\n", good.text


_FIELD_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(
    fields=st.dictionaries(_FIELD_NAMES, st.text(max_size=200), max_size=5),
    files=st.dictionaries(_FIELD_NAMES, st.binary(max_size=2000), max_size=3),
)
def test_form_parts_are_read_as_the_client_encodes_them(
    fields: dict[str, str], files: dict[str, bytes]
) -> None:
    """What clickhouse-connect sends (urllib3's multipart encoder): every field and file comes
    back exactly, whatever bytes a file holds (CR, LF and dashes like a boundary's included)."""
    files = {name: data for name, data in files.items() if name not in fields}
    parts: dict[str, Any] = {**fields, **{n: (n, data) for n, data in files.items()}}
    body, content_type = encode_multipart_formdata(parts)
    assert _form_parts(content_type, body) == (fields, files)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(0, 400), garbage=st.binary(max_size=60))
def test_a_multipart_body_it_cannot_read_is_bad_arguments_never_a_failure(
    chdb_http_server: ChdbHttpServer, cut: int, garbage: bytes
) -> None:
    """A multipart body cut short or with bytes of no form in it is answered 400 (code 36) or,
    when what is left still reads, run (what the engine then refuses is its own error, in
    ClickHouse's form): never a dropped connection, and the server goes on serving."""
    body, content_type = encode_multipart_formdata({
        "keys": ("keys.tsv", b"a\nb\n"), "keys_structure": "x String",
        "query": "SELECT count() FROM keys",
    })  # fmt: skip
    broken = body[:cut] + garbage + body[cut + len(garbage) :]
    reply = httpx.post(
        f"http://127.0.0.1:{chdb_http_server.port}/",
        content=broken,
        headers={"content-type": content_type},
        auth=("default", ""),
    )
    assert reply.status_code in (200, 400, 500), reply.text
    if reply.status_code == 500:  # what reached the engine, refused by it in ClickHouse's form
        assert reply.text.startswith("Code: ") and "x-clickhouse-exception-code" in reply.headers
    if reply.status_code == 400:
        assert reply.headers["x-clickhouse-exception-code"] == "36", reply.text
    assert httpx.get(f"http://127.0.0.1:{chdb_http_server.port}/ping").status_code == 200


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("multipart/form-data", b"--x\r\n\r\n--x--\r\n", "without a boundary"),
        ("multipart/form-data; boundary=x", b"no parts at all", "multipart/form-data"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="query"\r\n\r\n\xff\xfe\r\n--x--\r\n',
            "not UTF-8",
        ),
    ],
)
def test_a_form_it_cannot_read_is_refused_with_the_reason(
    chdb_http_server: ChdbHttpServer, content_type: str, body: bytes, message: str
) -> None:
    reply = httpx.post(
        f"http://127.0.0.1:{chdb_http_server.port}/",
        content=body,
        headers={"content-type": content_type},
        auth=("default", ""),
    )
    assert reply.status_code == 400, reply.text
    assert reply.headers["x-clickhouse-exception-code"] == "36"
    assert message in reply.text
