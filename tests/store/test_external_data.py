"""Rows sent with a query (ClickHouse's external data), on both backends, and the batch writer's
lookup of a batch's keys, which is built on them."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netra_analytics.errors import StoreError
from netra_analytics.ingest.spool import Spool
from netra_analytics.ingest.writer import CONFLICT, STORED, BatchWriter, Exclusion, line_fingerprint
from netra_analytics.store.base import ExternalTable, Store

# Any text a user id may hold: quotes, backslashes, tabs and newlines included, which TSV and
# ClickHouse's parameter form both escape.
USER_IDS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40
)
_run = itertools.count()


def _keys_table(pairs: list[tuple[str, str]]) -> ExternalTable:
    return ExternalTable(
        "batch_keys",
        "user_id String, event_id UUID",
        b"\n".join(orjson.dumps([user, event_id]) for user, event_id in pairs),
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(users=st.lists(USER_IDS, min_size=1, max_size=30))
def test_external_rows_arrive_as_sent(any_store: Store, users: list[str]) -> None:
    pairs = [(user, str(uuid.uuid4())) for user in users]
    rows = any_store.query_rows_with_table(
        "SELECT user_id, toString(event_id) AS id FROM batch_keys", _keys_table(pairs)
    )
    assert sorted((row["user_id"], row["id"]) for row in rows) == sorted(pairs)


def test_the_table_is_gone_after_its_query_even_a_failed_one(any_store: Store) -> None:
    table = _keys_table([("u", str(uuid.uuid4()))])
    with pytest.raises(StoreError):
        any_store.query_rows_with_table("SELECT no_such_column FROM batch_keys", table)
    with pytest.raises(StoreError, match="batch_keys"):
        any_store.query_rows("SELECT count() AS n FROM batch_keys")
    # The same name again, at once: nothing was left behind.
    assert any_store.query_rows_with_table("SELECT count() AS n FROM batch_keys", table) == [
        {"n": 1}
    ]
    with pytest.raises(StoreError, match="batch_keys"):
        any_store.query_rows("SELECT count() AS n FROM batch_keys")


@pytest.mark.parametrize(
    ("name", "structure", "fmt", "message"),
    [
        ("keys; DROP TABLE x", "user_id String", "JSONCompactEachRow", "not a table name"),
        ("keys", "user_id String) ENGINE = Log; --", "JSONCompactEachRow", "not a structure"),
        ("keys", "user_id Array(String)", "JSONCompactEachRow", "not a structure"),
        ("keys", "user_id String", "Native", "not a format"),
    ],
)
def test_names_structures_and_formats_come_from_allow_lists(
    name: str, structure: str, fmt: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ExternalTable(name, structure, b"", fmt)


def _row(event_id: str, user: str, properties: dict[str, int]) -> bytes:
    return orjson.dumps({
        "event_id": event_id, "timestamp": "2026-11-25T10:00:00.000Z", "user_id": user,
        "event_type": "feature_usage", "properties": orjson.dumps(properties).decode(),
    })  # fmt: skip


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    users=st.lists(USER_IDS, min_size=1, max_size=8, unique=True),
    kinds=st.lists(st.sampled_from(["stored", "bot", "conflict", "other_user", "new"]), min_size=1, max_size=40),
)  # fmt: skip
def test_the_writer_finds_exactly_the_batch_events_already_stored(
    any_store: Store, tmp_path_factory: pytest.TempPathFactory, users: list[str], kinds: list[str]
) -> None:
    """Every (event id, user) of a batch is looked up in frontend_events and bot_events: stored
    with the same content is STORED, with other content CONFLICT; an id stored for another user,
    or not stored, is not found."""
    run = next(_run)
    users = [f"x{run}-{user}" for user in users]
    stored: dict[str, list[bytes]] = {"frontend_events": [], "bot_events": []}
    candidates: dict[tuple[str, str], bytes] = {}
    expected: dict[tuple[str, str], Exclusion] = {}
    for n, kind in enumerate(kinds):
        user, event_id = users[n % len(users)], str(uuid.uuid4())
        line = _row(event_id, user, {"n": n})
        candidates[(event_id, user)] = line
        if kind in ("stored", "bot", "conflict"):
            content = {"n": n} if kind != "conflict" else {"n": -n - 1}
            table = "bot_events" if kind == "bot" else "frontend_events"
            stored[table].append(_row(event_id, user, content))
            why = CONFLICT if kind == "conflict" else STORED
            expected[(event_id, user)] = Exclusion(why, line_fingerprint(stored[table][-1]))
        elif kind == "other_user":
            stored["frontend_events"].append(_row(event_id, f"{user}-someone-else", {"n": n}))
    for table, lines in stored.items():
        if lines:
            any_store.insert_json_rows(table, b"\n".join(lines))
    spool = Spool(tmp_path_factory.mktemp("spool"), max_bytes=1 << 20)
    try:
        writer = BatchWriter(spool, any_store, batch_size=1, flush_interval=1.0)
        assert writer._already_stored(candidates) == expected
    finally:
        spool.close()


def test_a_batch_of_twenty_thousand_keys_is_looked_up_in_one_query(
    any_store: Store, tmp_path: Path
) -> None:
    """The writer's largest batch: one query, and the one stored event among them is found."""
    user = "many-keys"
    keys = [(str(uuid.uuid4()), f"{user}-{n}") for n in range(20_000)]
    any_store.insert_json_rows("frontend_events", _row(keys[-1][0], keys[-1][1], {"n": 1}))
    candidates = {key: _row(key[0], key[1], {"n": 1}) for key in keys}
    spool = Spool(tmp_path, max_bytes=1 << 20)
    try:
        writer = BatchWriter(spool, any_store, batch_size=1, flush_interval=1.0)
        [(key, found)] = writer._already_stored(candidates).items()
        assert (key, found.why) == (keys[-1], STORED)
    finally:
        spool.close()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(users=st.lists(USER_IDS, min_size=1, max_size=20, unique=True))
def test_inserted_rows_arrive_as_sent(any_store: Store, users: list[str]) -> None:
    """An insert's rows go to the engine as the bytes they are (not decoded and encoded back):
    any text, multi-byte characters included, is stored as sent."""
    run = next(_run)
    sent = {f"ins{run}-{user}": str(uuid.uuid4()) for user in users}
    any_store.insert_json_rows(
        "frontend_events",
        b"\n".join(_row(event_id, user, {"n": 1}) for user, event_id in sent.items()),
    )
    rows = any_store.query_rows_with_table(
        "SELECT user_id, toString(event_id) AS id FROM analytics.frontend_events "
        "WHERE user_id IN (SELECT user_id FROM batch_keys)",
        _keys_table(list(sent.items())),
    )
    assert {row["user_id"]: row["id"] for row in rows} == sent
