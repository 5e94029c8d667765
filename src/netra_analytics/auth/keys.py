"""API keys: created, listed and revoked in `analytics.api_keys`, looked up through a short cache.

A key is `na_` and 43 characters of `secrets.token_urlsafe(32)` (256 random bits), shown once
and stored only as its SHA-256 (hex). A fast hash is enough here, unlike for passwords: a slow
KDF (bcrypt, scrypt, Argon2) makes guessing a low-entropy secret from a stolen hash expensive,
but no one can enumerate 2^256 keys at any hash speed; and it keeps the lookup to one dict
access per request. A lookup by hash also gives no timing oracle on the key: the attacker does
not control the hash's bytes.

The table lives in ClickHouse, so every worker and every node sees the same keys. Each process
reads the whole table (a handful of rows) at most every `KeyTable.ttl` seconds (2 s): a key
created or revoked anywhere is honoured everywhere within that time. Under steady use the
read starts in the background after half of it (`REFRESH_EARLY`), so requests do not wait.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime

from netra_analytics.store.base import Store

log = logging.getLogger(__name__)

ADMIN, ANALYST, INGEST = "admin", "analyst", "ingest"
ROLES = (ADMIN, ANALYST, INGEST)
KEY_PREFIX = "na_"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
CACHE_SECONDS = 2.0  # a revoked key is refused everywhere within this
MISS_SECONDS = 0.5  # an unknown key reads the table again at most this often
# Past this share of the ttl, a lookup starts the next read in the background and answers from
# the table in hand: under steady use no request waits for the read, which took 35-376 ms
# (a query of the embedded store during its inserts, at 10,000 events/s) and was the whole
# of the accepted-to-visible p99 (bench/README, "Third pass").
REFRESH_EARLY = 0.5

# The newest row of each name: argMax rather than FINAL so that it is right on a cluster too,
# and of one tuple because argMax of a Nullable column alone skips the NULLs (not revoked).
KEYS_IN_FORCE = """
SELECT name, newest.1 AS key_hash, newest.2 AS role, newest.3 AS created_at,
       newest.4 AS revoked_at
FROM (
  SELECT name, argMax((key_hash, role, created_at, revoked_at), version) AS newest
  FROM analytics.api_keys
  GROUP BY name
)
ORDER BY name
"""
INSERT_KEY = """
INSERT INTO analytics.api_keys (name, key_hash, role, created_at, version)
VALUES ({name:String}, {key_hash:String}, {role:String}, {created_at:DateTime64(3)},
        {version:UInt64})
"""
REVOKE_KEY = """
INSERT INTO analytics.api_keys (name, key_hash, role, created_at, revoked_at, version)
VALUES ({name:String}, {key_hash:String}, {role:String}, {created_at:DateTime64(3)},
        {revoked_at:DateTime64(3)}, {version:UInt64})
"""


class KeyProblem(ValueError):
    """A key operation that cannot be done (a name in use, an unknown name): the message says
    why, for the command line."""


@dataclasses.dataclass(frozen=True)
class ApiKey:
    """One key as stored: never the key itself."""

    name: str
    key_hash: str  # SHA-256 of the key, hex
    role: str
    created_at: datetime  # UTC
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def new_key() -> str:
    """A fresh key: `na_` + 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key: SHA-256 of its UTF-8 text, hex (64 characters)."""
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(credential: str) -> bool:
    return credential.startswith(KEY_PREFIX)


def list_keys(store: Store) -> list[ApiKey]:
    """Every key ever created, revoked ones included, by name."""
    return [
        ApiKey(
            name=str(row["name"]),
            key_hash=str(row["key_hash"]),
            role=str(row["role"]),
            created_at=_utc(row["created_at"]),
            revoked_at=None if row["revoked_at"] is None else _utc(row["revoked_at"]),
        )
        for row in store.query_rows(KEYS_IN_FORCE)
    ]


def create_key(store: Store, name: str, role: str, now: float | None = None) -> str:
    """Create a key named `name` with `role` and return it (the only time it is seen).

    Raises KeyProblem for a malformed name, an unknown role, or a name whose key is in force
    (a revoked name may be reused: the new row replaces the revoked one)."""
    if not NAME_PATTERN.fullmatch(name):
        raise KeyProblem(f"{name!r} is not a key name: 1-64 letters, digits, '_', '.', '-'")
    if role not in ROLES:
        raise KeyProblem(f"{role!r} is not a role: one of {', '.join(ROLES)}")
    if any(k.name == name and k.active for k in list_keys(store)):
        raise KeyProblem(f"a key named {name!r} exists; revoke it first or choose another name")
    key = new_key()
    moment = time.time() if now is None else now
    _write(store, name, hash_key(key), role, moment, None)
    return key


def revoke_key(store: Store, name: str, now: float | None = None) -> ApiKey:
    """Revoke the key named `name`; raises KeyProblem when there is none in force."""
    found = next((k for k in list_keys(store) if k.name == name and k.active), None)
    if found is None:
        raise KeyProblem(f"no key named {name!r} is in force")
    moment = time.time() if now is None else now
    _write(store, name, found.key_hash, found.role, found.created_at.timestamp(), moment)
    return dataclasses.replace(found, revoked_at=datetime.fromtimestamp(moment, UTC))


def _write(
    store: Store, name: str, key_hash: str, role: str, created: float, revoked: float | None
) -> None:
    # The version orders a name's rows: microseconds, later than any row written before.
    version = max(int(time.time() * 1_000_000), int((revoked or created) * 1_000_000))
    params = {
        "name": name,
        "key_hash": key_hash,
        "role": role,
        "created_at": datetime.fromtimestamp(created, UTC),
        "version": version,
    }
    if revoked is None:
        store.execute(INSERT_KEY, params)
    else:
        store.execute(REVOKE_KEY, {**params, "revoked_at": datetime.fromtimestamp(revoked, UTC)})


def _utc(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class KeyTable:
    """The keys in force, by hash, read from the store at most every `ttl` seconds.

    `store`: a callable giving the store (None until the service has one). When a refresh
    fails the last table read is kept (a key revoked during a store outage is honoured when
    it answers again), and with none read yet every key is unknown."""

    def __init__(
        self,
        store: Callable[[], Store | None],
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store, self.ttl, self._clock = store, ttl, clock
        self._by_hash: dict[str, ApiKey] = {}
        self._read_at: float | None = None
        self._lock = asyncio.Lock()
        self._early: asyncio.Task[None] | None = None

    async def lookup(self, key: str) -> ApiKey | None:
        """The key in force whose text is `key`, or None."""
        return await self.by_hash(hash_key(key))

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key in force with this hash (a session made with a key), or None. A miss reads
        the table again if the last read is over MISS_SECONDS old: a key just created works
        at once, while unknown keys cost at most a read of a few rows every MISS_SECONDS."""
        self._refresh_early()
        await self._refresh(self.ttl)
        found = self._by_hash.get(key_hash)
        if found is None:
            await self._refresh(MISS_SECONDS)
            found = self._by_hash.get(key_hash)
        return found

    def _refresh_early(self) -> None:
        """Start a read in the background once the table is REFRESH_EARLY of the ttl old."""
        early = self.ttl * REFRESH_EARLY
        if self._read_at is None or self._clock() - self._read_at < early:
            return
        if self._early is None or self._early.done():
            self._early = asyncio.create_task(self._refresh(early))

    async def _refresh(self, max_age: float) -> None:
        if self._read_at is not None and self._clock() - self._read_at < max_age:
            return
        async with self._lock:
            if self._read_at is not None and self._clock() - self._read_at < max_age:
                return  # another request refreshed it while this one waited
            store = self._store()
            if store is None:
                return
            try:
                keys = await asyncio.to_thread(list_keys, store)
            except Exception as exc:
                # The store is down or not migrated yet: keep what was read, try again later.
                log.warning(
                    "API keys not read; keeping the last read", extra={"error": repr(exc)[:200]}
                )
                self._read_at = self._clock()
                return
            self._by_hash = {k.key_hash: k for k in keys if k.active}
            self._read_at = self._clock()
