"""Erasure and export of one person, over the real embedded store and a running service.

A person (with a browser they used signed out first) is planted in every table of the schema
that has a `user_id` column, found from the live schema: a new such table that the plant or
the erasure does not cover fails here. Then the export is checked against what was sent, the
person is erased (with events of theirs still in the spool), and nothing of them is left: by
query, and in the bytes of every file under the data directories. Another person is untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient

from netra_analytics.privacy.audit import subject_hash
from netra_analytics.privacy.export import export_lines
from netra_analytics.reports.funnel_walks import build
from netra_analytics.reports.funnels import load_funnels
from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import BROWSER_USER_AGENT, EXAMPLES, body, event
from tests.support.processes import wait_until

PERSON, BROWSER, OTHER = "erase-me-5c1d", "browser-of-erase-me", "keep-me-9a2e"
TEXT = "quokka zeppelin tariff question"  # plain words: the sanitiser keeps them
OTHER_TEXT = "wombat dirigible budget question"
URL = "/api/analytics/events"
LIVE = "/api/analytics/reports"
PEOPLE_TABLES = """
SELECT t.name AS name FROM system.tables AS t
INNER JOIN system.columns AS c ON c.database = t.database AND c.table = t.name
WHERE t.database = 'analytics' AND t.engine NOT IN ('View') AND NOT startsWith(t.name, '.inner')
  AND c.name = 'user_id'
ORDER BY name
"""


def _post(client: TestClient, events: list[dict[str, Any]], ua: str = BROWSER_USER_AGENT,
          **context: str) -> Any:  # fmt: skip
    reply = client.post(URL, content=orjson.dumps(body(events, **context)),
                        headers={"content-type": "application/json", "user-agent": ua})  # fmt: skip
    assert reply.status_code == 202, reply.text
    return reply.json()


def _every_type(text: str) -> list[dict[str, Any]]:
    return [
        event(kind, prompt_text=text, prompt_length=len(text)) if kind == "chat_interaction"
        else event(kind)
        for kind in EXAMPLES
    ]  # fmt: skip


def _count(store: ChdbStore, table: str, ids: list[str]) -> int:
    rows = store.query_rows(
        "SELECT count() AS n FROM analytics.{t:Identifier} WHERE user_id IN {ids:Array(String)}",
        {"t": table, "ids": ids},
    )
    return int(rows[0]["n"])


def _files_containing(roots: list[Path], needle: bytes) -> list[str]:
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and needle in path.read_bytes():
                found.append(str(path))
    return found


def test_a_person_is_exported_then_erased_everywhere(
    make_client: Callable[..., TestClient], store: ChdbStore, tmp_path: Path
) -> None:
    client = make_client(event_batch_size=500, event_flush_interval_ms=300)
    data_dir = tmp_path / "data0"
    sent: list[str] = []  # the event ids of the person, browser included
    # Signed out on their browser first, then signed in on it (identity_links).
    sent += [e["event_id"] for e in _post_all(client, _every_type(TEXT), user_id="",
                                              anonymous_id=BROWSER, session_id="s-b")]  # fmt: skip
    sent += [e["event_id"] for e in _post_all(client, _every_type(TEXT), user_id=PERSON,
                                              anonymous_id=BROWSER, session_id="s-p")]  # fmt: skip
    invalid = {"event_type": "chat_interaction", "properties": {"prompt_text": TEXT}}
    assert _post(client, [invalid], user_id=PERSON)["rejected"]  # rejected_events
    assert _post(client, [event("feature_usage")], ua="Googlebot/2.1", user_id=PERSON)["bot"]
    others = _post_all(client, _every_type(OTHER_TEXT), user_id=OTHER, session_id="s-o")
    wait_until(lambda: _count(store, "frontend_events", [PERSON, BROWSER]) == len(sent), 30)
    wait_until(lambda: _count(store, "prompt_analytics", [PERSON, BROWSER, OTHER]) == 3, 30)
    wait_until(lambda: _count(store, "rejected_events", [PERSON]) == 1, 30)
    wait_until(lambda: _count(store, "bot_events", [PERSON]) == 1, 30)
    build(store, load_funnels(None), datetime.now(UTC).date(), days=1)  # funnel_walks

    tables = [row["name"] for row in store.query_rows(PEOPLE_TABLES)]
    planted = {t: _count(store, t, [PERSON, BROWSER]) for t in tables}
    assert all(planted.values()), f"plant the person in every table with user_id: {planted}"
    kept = {t: _count(store, t, [OTHER]) for t in tables}

    # Export: every event sent, in one stream with its header and end lines; paging changes
    # nothing.
    reply = client.get(f"/api/analytics/users/{PERSON}/export")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in reply.content.splitlines()]
    assert lines[0]["export"]["browsers"] == [BROWSER]
    assert set(lines[0]["export"]["tables"]) >= {"frontend_events", "prompt_analytics"}
    exported = [line["row"] for line in lines[1:-1] if line["table"] == "frontend_events"]
    assert sorted(row["event_id"] for row in exported) == sorted(sent)
    assert {row["event_type"] for row in exported} == set(EXAMPLES)  # surveys, feedback too
    prompts = [line["row"] for line in lines[1:-1] if line["table"] == "prompt_analytics"]
    assert sorted(p["prompt_text"] for p in prompts) == [TEXT, TEXT]
    assert lines[-1]["end"]["rows"]["frontend_events"] == len(sent)
    assert b"".join(export_lines(store, PERSON, page=3)).splitlines()[1:-1] == \
        reply.content.splitlines()[1:-1]  # fmt: skip

    # A damaged spool record naming the person, set aside by the spool (quarantine).
    quarantine = data_dir / "spool" / "quarantine"
    quarantine.mkdir(exist_ok=True)
    (quarantine / "12345.bad").write_bytes(b"\x00garbled " + PERSON.encode() + b" garbled")
    assert client.get(f"{LIVE}/sessions/s-p").json()["user_id"] == PERSON
    # Events still in the spool when the erasure is asked for go too.
    late = _post_all(client, [event("feature_usage")], user_id=PERSON, session_id="s-p")
    assert late
    started = client.delete(f"/api/analytics/users/{PERSON}")
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["state"] == "running"
    deadline = time.monotonic() + 150
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = client.get(job["status"]).json()
        if status["state"] != "running":
            break
        time.sleep(1)
    assert status["state"] == "done", status
    result = status["result"]
    assert result["browsers"] == 1 and result["purged_from_disk"] is True
    # The late event is stored and then removed, or, when the writer has read the erasure's
    # request (written before the job starts) first, left out of its insert (`ingest.erased`):
    # either way it is gone (below); which, depends on the writer's timing.
    assert result["removed"]["frontend_events"] in {len(sent), len(sent) + 1}
    assert set(result["removed"]) == set(tables)
    outside = result["outside_the_store"]
    assert outside["similarity_index"] == 2  # the person's two prompts (one as the browser)
    assert outside["live_state"] >= 3  # their sessions and rate-limit window at least
    assert outside["quarantined_spool_records"] == 1
    assert client.get(f"{LIVE}/sessions/s-p").status_code == 404
    service = client.app.state.service  # type: ignore[attr-defined]
    assert service.prompts.index.remove(PERSON) == 0  # nothing of theirs left to remove

    for table in tables:
        assert _count(store, table, [PERSON, BROWSER]) == 0, table
        assert _count(store, table, [OTHER]) == kept[table], table
    assert not store.query_rows(
        "SELECT 1 FROM analytics.identity_links WHERE anonymous_id = {b:String}", {"b": BROWSER}
    )
    # The active-user sets were rebuilt without the person: one person active today.
    today = datetime.now(UTC).date().isoformat()
    activity = client.get("/api/analytics/reports/user-activity",
                          params={"start_date": today, "end_date": today}).json()  # fmt: skip
    assert activity["periods"][0]["active_users"] == 1
    assert activity["periods"][0]["total_events"] >= len(others)  # counts are kept
    roots = [store._path, data_dir]
    for needle in (PERSON.encode(), BROWSER.encode(), TEXT.encode()):
        assert _files_containing(roots, needle) == [], needle
    assert _files_containing(roots, OTHER.encode())  # the scan does find what is there

    # The audit log names the person only by the keyed hash.
    entries = client.get("/api/analytics/audit", params={"action": "user_deleted"}).json()
    [entry] = entries["entries"]
    assert entry["subject"] == subject_hash(b"test-secret-0123456789", PERSON)
    assert entry["detail"]["removed"] == result["removed"]
    exports = client.get("/api/analytics/audit", params={"action": "user_exported"}).json()
    assert len(exports["entries"]) == 1

    # The same id later is a new person.
    _post_all(client, [event("feature_usage")], user_id=PERSON, session_id="s-new")
    wait_until(lambda: _count(store, "frontend_events", [PERSON]) == 1, 30)


def _post_all(client: TestClient, events: list[dict[str, Any]], **context: str) -> list[Any]:
    reply = _post(client, events, **context)
    assert reply["accepted"] == len(events), reply
    return events


def test_an_unknown_job_is_404_and_a_bad_id_422(client: TestClient) -> None:
    assert client.get(f"/api/analytics/erasures/{'0' * 32}").status_code == 404
    assert client.get("/api/analytics/erasures/nope").status_code == 422
    assert client.delete("/api/analytics/users/%01bad").status_code == 422


def test_another_workers_spool_does_not_store_an_erased_person_afterwards(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    """Two workers on one store: the first still holds the person's events in its spool (its
    writer flushes every 3 s) when the second erases them; the first stores none of them, and
    stores the same id again when it arrives after the erasure (a new person)."""
    holding = make_client(event_batch_size=10_000, event_flush_interval_ms=3000)
    erasing = make_client()
    _post_all(holding, [event("feature_usage"), event("chat_interaction")], user_id=PERSON)
    _post_all(holding, [event("feature_usage")], user_id=OTHER)
    job = erasing.delete(f"/api/analytics/users/{PERSON}").json()
    wait_until(lambda: erasing.get(job["status"]).json()["state"] != "running", 150)
    wait_until(lambda: _count(store, "frontend_events", [OTHER]) == 1, 30)
    time.sleep(1.5)  # a flush of the holding worker after the erasure
    assert _count(store, "frontend_events", [PERSON]) == 0
    assert _count(store, "prompt_analytics", [PERSON]) == 0
    _post_all(holding, [event("feature_usage")], user_id=PERSON)
    wait_until(lambda: _count(store, "frontend_events", [PERSON]) == 1, 30)
