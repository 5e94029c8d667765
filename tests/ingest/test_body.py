"""Whatever bytes arrive, a batch is never lost to its encoding and never answers 5xx.

Unit tests of `ingest.body` (pure) and of the endpoint over the real embedded store: encodings,
compression, byte-order marks, lone surrogates, nesting, numbers; each class also as a
Hypothesis property: no 5xx, and the valid events beside the damage are kept.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netra_analytics.errors import BadRequest, PayloadTooLarge, UnsupportedMedia
from netra_analytics.ingest.body import charset_of, decompress, split_envelope, to_utf8
from netra_analytics.ingest.process import RequestInfo, process
from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import body, event
from tests.support.processes import wait_until

URL = "/api/analytics/events"


def _json(payload: Any) -> bytes:
    return orjson.dumps(payload)


def _with_title(title_json: bytes) -> bytes:
    """A valid one-event body whose page_title is the given raw JSON string token."""
    return _json(body([event("feature_usage")], page_title="TITLE")).replace(b'"TITLE"', title_json)


# --- pure ---------------------------------------------------------------------------------------


def test_a_lone_surrogate_escape_becomes_the_replacement_character() -> None:
    fixed = to_utf8(_with_title(b'"Caf\\ud83d"'), None)
    assert orjson.loads(fixed)["context"]["page_title"] == "Caf\ufffd"


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b'"\\ud83d\\ude00"', "\U0001f600"),  # a real pair stays
        (b'"\\ude00\\ud83d"', "\ufffd\ufffd"),  # reversed: both lone
        (b'"\\\\ud83d"', "\\ud83d"),  # an escaped backslash, then text: not an escape
        (b'"\\\\\\ud83d"', "\\\ufffd"),  # a backslash, then a lone escape
        (b'"a\\uD83Dz"', "a\ufffdz"),  # upper case hex
    ],
)
def test_surrogate_escapes_in_context(raw: bytes, text: str) -> None:
    assert orjson.loads(to_utf8(_with_title(raw), None))["context"]["page_title"] == text


def test_latin1_declared_is_transcoded_and_undeclared_bytes_are_replaced() -> None:
    raw = _with_title('"café"'.encode("latin-1"))
    assert orjson.loads(to_utf8(raw, "ISO-8859-1"))["context"]["page_title"] == "café"
    assert orjson.loads(to_utf8(raw, None))["context"]["page_title"] == "caf\ufffd"
    assert charset_of("application/json; charset=ISO-8859-1") == "ISO-8859-1"
    assert charset_of('text/plain;charset="utf-8"') == '"utf-8"'
    assert charset_of("application/json") is None
    with pytest.raises(UnsupportedMedia, match="charset"):
        to_utf8(raw, "klingon-8")


def test_a_byte_order_mark_is_dropped() -> None:
    raw = b"\xef\xbb\xbf" + _json(body([event("feature_usage")]))
    assert orjson.loads(to_utf8(raw, None))["events"]


def test_gzip_and_deflate_bodies_are_inflated_others_refused() -> None:
    raw = _json(body([event("feature_usage")]))
    assert decompress(gzip.compress(raw), "gzip", 1 << 20) == raw
    assert decompress(zlib.compress(raw), "deflate", 1 << 20) == raw
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert decompress(raw_deflate.compress(raw) + raw_deflate.flush(), "Deflate", 1 << 20) == raw
    assert decompress(raw, "identity", 1 << 20) == raw
    with pytest.raises(UnsupportedMedia, match="br"):
        decompress(raw, "br", 1 << 20)
    with pytest.raises(BadRequest, match="gzip"):
        decompress(raw, "gzip", 1 << 20)
    with pytest.raises(BadRequest, match="truncated"):
        decompress(gzip.compress(raw)[:-12], "gzip", 1 << 20)
    bomb = gzip.compress(b"[" * (5 << 20))
    with pytest.raises(PayloadTooLarge):
        decompress(bomb, "gzip", 1 << 20)


def test_a_body_nested_5000_deep_costs_only_its_event() -> None:
    nest = b'{"a":' * 5000 + b"1" + b"}" * 5000
    deep = b'{"event_type": "feature_usage", "properties": ' + nest + b"}"
    good = _json(event("feature_usage"))
    raw = (
        b'{"events":['
        + good
        + b","
        + deep
        + b","
        + _json(event("feature_usage"))
        + b'],"context":'
        + _json(body([])["context"])
        + b"}"
    )
    batch = process(raw, RequestInfo(received_at=_now()))
    assert [a.index for a in batch.accepted] == [0, 2]
    assert [(r.index, r.reason) for r in batch.rejected] == [(1, "invalid_event")]
    assert "nested" in batch.rejected[0].errors[0].message


def test_split_envelope_finds_members_without_recursion() -> None:
    parts = split_envelope(b'{"context": {"a": "]}"}, "events": [ {"x": [1, {"y": "\\""}]} , 2 ]}')
    assert parts.events == [b'{"x": [1, {"y": "\\""}]}', b"2"]
    assert parts.context == b'{"a": "]}"}'
    with pytest.raises(BadRequest):
        split_envelope(b"[" * 10_000)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


# --- the endpoint -------------------------------------------------------------------------------


def _count(store: ChdbStore) -> int:
    return int(store.query_rows("SELECT count() AS n FROM analytics.frontend_events")[0]["n"])


@pytest.mark.parametrize(
    ("raw", "headers"),
    [
        (
            _with_title('"café"'.encode("latin-1")),
            {"content-type": "application/json; charset=ISO-8859-1"},
        ),
        (_with_title(b'"caf\xe9"'), {"content-type": "application/json"}),
        (_with_title(b'"Caf\\ud83d"'), {"content-type": "text/plain;charset=UTF-8"}),
        (
            b"\xef\xbb\xbf" + _json(body([event("feature_usage")])),
            {"content-type": "application/json"},
        ),
        (
            gzip.compress(_json(body([event("feature_usage")]))),
            {"content-type": "application/json", "content-encoding": "gzip"},
        ),
        (
            zlib.compress(_json(body([event("feature_usage")]))),
            {"content-type": "application/json", "content-encoding": "deflate"},
        ),
    ],
)
def test_the_issues_bodies_are_stored(
    client: TestClient, store: ChdbStore, raw: bytes, headers: dict[str, str]
) -> None:
    reply = client.post(URL, content=raw, headers={**headers, "origin": "https://app.example"})
    assert reply.status_code == 202, reply.text
    assert reply.json()["accepted"] == 1
    assert reply.headers["access-control-allow-origin"]
    wait_until(lambda: _count(store) == 1, timeout=20)


def test_brotli_is_refused_not_taken_for_plain(client: TestClient) -> None:
    raw = _json(body([event("feature_usage")]))
    reply = client.post(
        URL, content=raw, headers={"content-type": "application/json", "content-encoding": "br"}
    )
    assert reply.status_code == 415
    assert "Content-Encoding" in reply.json()["message"]


def test_deep_nesting_is_not_a_5xx(client: TestClient) -> None:
    reply = client.post(URL, content=b'{"a":' * 5000 + b"1" + b"}" * 5000,
                        headers={"content-type": "application/json"})  # fmt: skip
    assert reply.status_code == 400


# Hypothesis: the damage goes into one event of three; the other two must be accepted.
_damage = st.one_of(
    st.binary(max_size=64).map(lambda b: b'{"event_type": "' + b.replace(b'"', b"") + b'"}'),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=3000).map(lambda n: b'{"a":' * n + b"0" + b"}" * n),
    st.sampled_from([b"1e400", b"-1e-400", b"123456789012345678901234567890", b"NaN", b"-0"]),
    st.text(max_size=40).map(lambda t: _json({"event_type": t, "properties": {}})),
    st.lists(st.sampled_from([b"\\ud83d", b"\\ude00", b"\\\\", b"\xe9", b"\xff", b"a", b"\\u0000"]),
             max_size=8).map(lambda parts: b'{"event_type": "feature_usage", "properties": {"x": "' + b"".join(parts) + b'"}}'),
    # An event's own context (the import's; an unknown field for the events endpoint).
    st.one_of(st.text(max_size=12), st.sampled_from(["undefined", "null", " ", "\u0001"])).map(
        lambda uid: _json({**event("feature_usage"), "context": {"user_id": uid, "session_id": uid}})),
    st.binary(max_size=32).map(lambda b: _json(event("feature_usage"))[:-1] + b', "context": "' + b.replace(b'"', b"") + b'"}'),
)  # fmt: skip
ENDPOINTS = pytest.mark.parametrize("url", [URL, "/api/analytics/import"])


@pytest.fixture(scope="module")
def module_client(
    tmp_path_factory: pytest.TempPathFactory, chdb_store: ChdbStore, admin_headers: dict[str, str]
) -> Iterator[TestClient]:
    from netra_analytics.app import create_app
    from netra_analytics.config import Settings

    settings_ = Settings(data_dir=tmp_path_factory.mktemp("body") / "data", ip_hash_secret="test-secret-0123456789",
                         funnel_walk_days=0, max_events_per_user_per_minute=10_000_000)  # fmt: skip
    # The admin key: the import needs it (the events endpoint takes it as any browser's request).
    with TestClient(create_app(settings_, store=chdb_store), headers=admin_headers) as test_client:
        yield test_client


@ENDPOINTS
@given(
    damage=_damage,
    title=st.binary(max_size=24),
    charset=st.sampled_from([None, "utf-8", "latin-1"]),
)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_damage_in_one_event_never_costs_the_others(
    module_client: TestClient, url: str, damage: bytes, title: bytes, charset: str | None
) -> None:
    title_text = title.replace(b'"', b"").replace(b"\\", b"")
    context = _json(body([])["context"]).replace(
        b'"session_id":', b'"page_title": "' + title_text + b'", "session_id":'
    )
    events = [_json(event("feature_usage")), damage, _json(event("feature_usage"))]
    raw = b'{"events":[' + b",".join(events) + b'],"context":' + context + b"}"
    content_type = "application/json" + (f"; charset={charset}" if charset else "")
    reply = module_client.post(url, content=raw, headers={"content-type": content_type})
    assert reply.status_code < 500, reply.text
    if reply.status_code == 202:
        assert reply.json()["accepted"] >= 2
    else:  # the damage broke the JSON itself: nothing can be read, refused as a whole
        assert reply.status_code == 400, reply.text
        assert "JSON" in reply.json()["message"]


@ENDPOINTS
@given(raw=st.binary(max_size=512))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_arbitrary_bytes_never_give_a_5xx(module_client: TestClient, url: str, raw: bytes) -> None:
    reply = module_client.post(url, content=raw, headers={"content-type": "application/json"})
    assert 400 <= reply.status_code < 500
    assert reply.json()["message"]
