"""Erasure of one person from the store (GDPR Art. 17): every row that carries their id.

Whom: the person's id and the browsers (anonymous ids) whose signed-out history counts as
theirs (`person_links`: the first person who signed in on a browser). What: every table of
the `analytics` database with a `user_id` column, found in the live schema (so a table added
later is covered without a change here), and `identity_links` by browser too. How:

1. `ALTER TABLE ... DELETE` per table, waiting for it (`mutations_sync = 2`). The condition is
   on `cityHash64(user_id)`, never the id itself: ClickHouse keeps the text of a mutation on
   disk (`mutation_N.txt`, the last 100 per table), so an id in it would outlive the erasure.
2. `activity_rollup` keeps per UTC day and quarter hour the set of active users' 64-bit hashes
   (uniqExact states). A hash cannot be taken out of a set, so for each day the person was
   active (within the events' 90 days) the sets are emptied (`ALTER TABLE ... UPDATE`) and
   built again from the events that remain; the counters stay as they are (counts per day
   hold no identifier). The rebuilt sets are unions: events stored meanwhile add their own
   users to them, so no ingest has to stop. Days older than the events keep their sets until
   their two-year TTL (nothing to rebuild them from); no endpoint can read a set, only count
   it, and the hash is of an id stored nowhere else any more.
3. A deleted row stays on disk in the part it was rewritten from until ClickHouse removes the
   outdated part (`old_parts_lifetime`, 8 minutes by default): the tables touched get
   `old_parts_lifetime = 0` from before their rewrite until the parts they had are gone, then
   the default again. Only then is the erasure done on disk too.

Blocking; run it in a thread. Raises StoreError when the store fails (the caller records the
job as failed; running it again is safe: every step is idempotent).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from netra_analytics.errors import StoreError
from netra_analytics.store.base import Store

log = logging.getLogger(__name__)

# Tables with people in them, from the live schema (views hold nothing of their own).
PEOPLE_TABLES = """
SELECT t.name AS name,
  if(t.engine = 'MaterializedView', concat('.inner_id.', toString(t.uuid)), t.name) AS storage
FROM system.tables AS t
INNER JOIN system.columns AS c ON c.database = t.database AND c.table = t.name
WHERE t.database = 'analytics' AND t.engine NOT IN ('View', 'Distributed')
  AND NOT startsWith(t.name, '.inner')
GROUP BY name, storage
HAVING has(groupArray(c.name), 'user_id') OR name IN ('activity_rollup', 'activity_rollup_local')
ORDER BY name
"""
# The browsers whose signed-out history is the person's (they signed in on them first).
BROWSERS = "SELECT anonymous_id FROM analytics.person_links WHERE person = {user_id:String}"
HASHES = "SELECT arrayMap(x -> cityHash64(x), {ids:Array(String)}) AS h"
COUNT = "SELECT count() AS n FROM analytics.{table:Identifier} WHERE user_id IN {ids:Array(String)}"
COUNT_LINKS = (
    "SELECT count() AS n FROM analytics.identity_links "
    "WHERE user_id IN {ids:Array(String)} OR anonymous_id IN {ids:Array(String)}"
)
PROMPT_HASHES = (
    "SELECT DISTINCT prompt_hash FROM analytics.prompt_analytics "
    "WHERE user_id IN {ids:Array(String)} AND prompt_hash != ''"
)
ACTIVE_DAYS = (
    "SELECT DISTINCT toDate(timestamp) AS day FROM analytics.frontend_events "
    "WHERE user_id IN {ids:Array(String)} ORDER BY day"
)
DELETE = (
    "ALTER TABLE analytics.{table}{cluster} DELETE WHERE {condition} SETTINGS mutations_sync = 2"
)
BY_USER = "cityHash64(user_id) IN {hashes:Array(UInt64)}"
BY_USER_OR_BROWSER = f"{BY_USER} OR cityHash64(anonymous_id) IN {{hashes:Array(UInt64)}}"
EMPTY_USER_SETS = (
    "ALTER TABLE analytics.{table}{cluster} "
    "UPDATE users = arrayReduce('uniqExactState', emptyArrayUInt64()) "
    "WHERE toDate(bucket) IN {{days:Array(Date)}} SETTINGS mutations_sync = 2"
)
# The rollup's own grouping (migration 0005), users only: the counters are left as they are.
REBUILD_USER_SETS = """
INSERT INTO analytics.activity_rollup (resolution, bucket, users)
SETTINGS insert_deduplicate = 0
SELECT resolution, bucket, uniqExactState(cityHash64(user_id)) AS users
FROM analytics.frontend_events
ARRAY JOIN
  ['day', 'quarter_hour'] AS resolution,
  [toStartOfDay(timestamp, 'UTC'), toStartOfFifteenMinutes(timestamp, 'UTC')] AS bucket
WHERE toDate(timestamp) IN {days:Array(Date)}
GROUP BY resolution, bucket
"""
ACTIVE_PARTS = (
    "SELECT table, name FROM system.parts "
    "WHERE database = 'analytics' AND table IN {tables:Array(String)} AND active"
)
# Of the parts active before the erasure (every one is rewritten or renamed by a mutation),
# those still on disk.
PARTS_LEFT = (
    "SELECT count() AS n FROM system.parts "
    "WHERE database = 'analytics' AND concat(table, '/', name) IN {parts:Array(String)}"
)
LIFETIME = (
    "ALTER TABLE analytics.`{storage}`{cluster} MODIFY SETTING old_parts_lifetime = {seconds}"
)
WAKE = ("SYSTEM STOP MERGES analytics.`{storage}`", "SYSTEM START MERGES analytics.`{storage}`")
DEFAULT_OLD_PARTS_LIFETIME = 480  # ClickHouse's default, seconds
_NAME = re.compile(r"^\.?[\w.-]+$")


@dataclass
class ErasureResult:
    removed: dict[str, int] = field(default_factory=dict)  # rows per table
    browsers: int = 0  # anonymous ids erased with the person
    rollup_days: list[str] = field(default_factory=list)  # days whose user sets were rebuilt
    purged_from_disk: bool = False  # the outdated parts holding deleted rows are gone
    ids: list[str] = field(default_factory=list)  # the person's and their browsers' ids
    prompt_hashes: list[str] = field(default_factory=list)  # of the prompts they asked

    def as_dict(self) -> dict[str, Any]:
        return {
            "removed": self.removed,
            "browsers": self.browsers,
            "rollup_days_rebuilt": len(self.rollup_days),
            "purged_from_disk": self.purged_from_disk,
        }


def browsers_of(store: Store, user_id: str) -> list[str]:
    """The anonymous ids that count as `user_id`'s (person_links)."""
    return [row["anonymous_id"] for row in store.query_rows(BROWSERS, {"user_id": user_id})]


def erase(
    store: Store,
    user_id: str,
    *,
    cluster: str | None = None,
    purge_timeout: float = 300.0,
    sleep: Callable[[float], None] = time.sleep,
) -> ErasureResult:
    """Remove `user_id` and their browsers from every table (see the module's text); the
    rows removed per table. `purge_timeout` bounds the wait for outdated parts (seconds);
    `purged_from_disk` says whether they were gone by then."""
    result = ErasureResult()
    browsers = browsers_of(store, user_id)
    ids = [user_id, *browsers]
    result.browsers = len(browsers)
    result.ids = ids
    hashes_asked = store.query_rows(PROMPT_HASHES, {"ids": ids})
    result.prompt_hashes = [str(row["prompt_hash"]) for row in hashes_asked]
    [row] = store.query_rows(HASHES, {"ids": ids})
    hashes = [int(h) for h in row["h"]]
    days = [date.fromisoformat(str(r["day"])) for r in store.query_rows(ACTIVE_DAYS, {"ids": ids})]
    on_cluster = f" ON CLUSTER {cluster}" if cluster else ""
    rollup: dict[str, Any] | None = None
    tables = store.query_rows(PEOPLE_TABLES)
    parts = store.query_rows(ACTIVE_PARTS, {"tables": [str(t["storage"]) for t in tables]})
    deletes: list[tuple[str, str]] = []  # (statement, storage)
    for table in tables:
        name, storage = str(table["name"]), str(table["storage"])
        if not (_NAME.match(name) and _NAME.match(storage)):
            raise StoreError(f"unexpected table name {name!r}")
        # On a cluster the rows live in the `_local` tables on every node; counted through
        # their Distributed twins.
        spec_name = name.removesuffix("_local") if cluster else name
        if spec_name == "activity_rollup":
            rollup = table  # rebuilt from the events once theirs are gone
            continue
        links = spec_name == "identity_links"
        count = COUNT_LINKS if links else COUNT
        [before] = store.query_rows(count, {"table": spec_name, "ids": ids})
        if not int(before["n"]):
            continue
        condition = BY_USER_OR_BROWSER if links else BY_USER
        deletes.append(
            (DELETE.format(table=name, cluster=on_cluster, condition=condition), storage)
        )
        result.removed[spec_name] = int(before["n"])
    touched = [storage for _, storage in deletes]  # storage tables rewritten
    if days and rollup is not None:
        touched.append(str(rollup["storage"]))
    # Lifetime 0 before the rewrites: a rewrite wakes ClickHouse's background work, which then
    # drops the outdated parts at once (set afterwards, an idle table's cleanup can sleep for
    # up to `max_cleanup_delay_period`, 5 minutes).
    _set_lifetime(store, touched, on_cluster, 0)
    try:
        for statement, _ in deletes:
            store.execute(statement, {"hashes": hashes})
        if days and rollup is not None:
            store.execute(EMPTY_USER_SETS.format(table=rollup["name"], cluster=on_cluster),
                          {"days": days})  # fmt: skip
            store.execute(REBUILD_USER_SETS, {"days": days})
            result.rollup_days = [d.isoformat() for d in days]
        counts = {"tables": len(result.removed), "rollup_days": len(result.rollup_days)}
        log.info("erasure: rows deleted", extra=counts)
        old_parts = [f"{p['table']}/{p['name']}" for p in parts if p["table"] in touched]
        result.purged_from_disk = _purge(store, touched, old_parts, purge_timeout, sleep)
        log.info("erasure: outdated parts purged", extra={"purged": result.purged_from_disk})
    finally:
        _set_lifetime(store, touched, on_cluster, DEFAULT_OLD_PARTS_LIFETIME)
    return result


def _set_lifetime(store: Store, storages: list[str], on_cluster: str, seconds: int) -> None:
    for storage in storages:
        store.execute(LIFETIME.format(storage=storage, cluster=on_cluster, seconds=seconds))


def _purge(
    store: Store,
    storages: list[str],
    parts: list[str],
    timeout: float,
    sleep: Callable[[float], None],
) -> bool:
    """Wait until `parts` ("table/part" of the rewritten tables, active before the erasure) are
    removed from disk; True when they are gone within `timeout` seconds. ClickHouse removes
    outdated parts in its background work, which sleeps longer and longer (up to minutes)
    while a table has nothing to do: stopping and starting its merges wakes it (each second).
    """
    deadline = time.monotonic() + timeout
    while parts:
        [row] = store.query_rows(PARTS_LEFT, {"parts": parts})
        if not int(row["n"]):
            return True
        if time.monotonic() >= deadline:
            return False
        for storage in storages:
            for statement in WAKE:
                store.execute(statement.format(storage=storage))
        sleep(1.0)
    return True
