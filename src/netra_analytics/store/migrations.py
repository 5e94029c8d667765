"""Numbered, forward-only migrations: plain `.sql` files in `store/migrations/`.

`NNNN_name.sql` holds one or more statements, each ending with `;` at the end of a line. The
runner records applied versions in `analytics.schema_migrations` and skips them next time; every
statement is also written to be safe to run twice (`IF NOT EXISTS`), so a migration interrupted
half-way is simply run again.

For a ClickHouse cluster (`CLICKHOUSE_CLUSTER`), `cluster_statements` rewrites each statement:
tables become `<name>_local` on every node (`ON CLUSTER`, Replicated engines) with a
`Distributed` table of the spec's name in front, so readers and writers use the same names in
both modes; an `ALTER TABLE` changes both.
"""

from __future__ import annotations

import dataclasses
import re
from importlib import resources

from netra_analytics.store.base import DATABASE, Store


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def split_statements(sql: str) -> tuple[str, ...]:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    statements, current = [], []
    for line in lines:
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).strip().rstrip(";").strip())
            current = []
    if "\n".join(current).strip():
        raise ValueError("a statement does not end with ';'")
    return tuple(s for s in statements if s)


def load_migrations() -> list[Migration]:
    folder = resources.files("netra_analytics.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append(
                Migration(int(match.group(1)), match.group(2), split_statements(entry.read_text()))
            )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration numbers must run 1, 2, 3 ... without gaps: {versions}")
    return found


_LEDGER = f"""CREATE TABLE IF NOT EXISTS {DATABASE}.schema_migrations (
  version UInt32,
  name String,
  applied_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree()
ORDER BY version"""


def migrate(store: Store, cluster: str | None = None) -> list[str]:
    """Apply the migrations not applied yet; return the names of those it applied."""
    store.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE}" + on_cluster(cluster))
    store.execute(_LEDGER)
    done = {
        int(row["version"])
        for row in store.query_rows("SELECT version FROM analytics.schema_migrations")
    }
    applied = []
    for migration in load_migrations():
        if migration.version in done:
            continue
        statements = (
            cluster_statements(migration.statements, cluster) if cluster else migration.statements
        )
        for statement in statements:
            store.execute(statement)
        store.execute(
            "INSERT INTO analytics.schema_migrations (version, name) "
            "VALUES ({version:UInt32}, {name:String})",
            {"version": migration.version, "name": migration.name},
        )
        applied.append(f"{migration.version:04d}_{migration.name}")
    if cluster is None:
        tune_cleanup(store)
    return applied


# ClickHouse drops a table's outdated parts (what a merge or a mutation rewrote) in a cleanup
# task that waits 30-40 s between runs and up to 5 minutes while the table is idle. A
# privacy erasure waits for the rewritten parts to leave the disk (privacy/erasure.py), so
# every table runs it every few seconds (cheap when there is nothing to drop); how long an
# outdated part is kept (`old_parts_lifetime`) is left as it is.
CLEANUP_SETTINGS = {
    "cleanup_delay_period": 1,
    "max_cleanup_delay_period": 5,
    "cleanup_delay_period_random_add": 1,
}
_TABLES_TO_TUNE = """
SELECT name, engine_full FROM system.tables
WHERE database = 'analytics' AND engine LIKE '%MergeTree'
"""


def tune_cleanup(store: Store) -> list[str]:
    """Give every MergeTree table of the database (materialized views' inner tables too, which
    no migration can name) CLEANUP_SETTINGS, when it has not got them yet. Single node only: on
    a cluster the inner tables' names differ per node. Returns the tables changed."""
    wanted = ", ".join(f"{name} = {value}" for name, value in CLEANUP_SETTINGS.items())
    changed = []
    for row in store.query_rows(_TABLES_TO_TUNE):
        name = str(row["name"])
        if wanted in str(row["engine_full"]) or not re.fullmatch(r"\.?[\w.-]+", name):
            continue
        store.execute(f"ALTER TABLE {DATABASE}.`{name}` MODIFY SETTING {wanted}")
        changed.append(name)
    return changed


def on_cluster(cluster: str | None) -> str:
    return f" ON CLUSTER {cluster}" if cluster else ""


_CREATE = re.compile(
    r"^CREATE (?P<kind>TABLE|MATERIALIZED VIEW|VIEW|DATABASE) IF NOT EXISTS (?P<name>[\w.]+)",
)
_ALTER = re.compile(rf"^ALTER TABLE {DATABASE}\.(?P<table>\w+)\b")
_ENGINE = re.compile(r"ENGINE = (?P<engine>\w*MergeTree)\((?P<args>[^)]*)\)")
_TABLE_REF = re.compile(rf"\b{DATABASE}\.(?P<table>\w+)\b")


def cluster_statements(statements: tuple[str, ...], cluster: str) -> list[str]:
    """Rewrite single-node DDL for a cluster: replicated locals behind Distributed tables."""
    local_names = _replicated_tables(load_migrations())
    return [out for s in statements for out in _cluster_statement(s, cluster, local_names)]


def _replicated_tables(migrations: list[Migration]) -> set[str]:
    """Every table (and materialized view) any migration creates: each gets a `_local` twin."""
    names = set()
    for migration in migrations:
        for statement in migration.statements:
            match = _CREATE.match(statement)
            if match and match.group("kind") in {"TABLE", "MATERIALIZED VIEW"}:
                names.add(match.group("name").split(".")[-1])
    return names


def _cluster_statement(statement: str, cluster: str, local_names: set[str]) -> list[str]:
    altered = _ALTER.match(statement)
    if altered and altered.group("table") in local_names:  # the local tables, then their twins
        body = statement[altered.end() :]
        table = f"{DATABASE}.{altered.group('table')}"
        return [
            f"ALTER TABLE {table}{suffix}{on_cluster(cluster)}{body}" for suffix in ("_local", "")
        ]
    match = _CREATE.match(statement)
    if not match:
        raise ValueError(
            f"not a CREATE ... IF NOT EXISTS or an ALTER TABLE of a known table, cannot run on a "
            f"cluster: {statement[:60]}"
        )
    kind, table = match.group("kind"), match.group("name").split(".")[-1]
    body = statement[match.end() :]
    if kind == "DATABASE":
        return [statement[: match.end()] + on_cluster(cluster) + body]
    if kind == "VIEW":  # a plain view reads the Distributed tables, like any client
        return [f"CREATE VIEW IF NOT EXISTS {DATABASE}.{table}{on_cluster(cluster)}{body}"]
    local = f"{table}_local"
    if kind == "MATERIALIZED VIEW":  # it sees the inserts into its own node's local table
        body = _TABLE_REF.sub(
            lambda m: (
                f"{DATABASE}.{m.group('table')}_local"
                if m.group("table") in local_names
                else m.group(0)
            ),
            body,
        )
    body = _ENGINE.sub(lambda m: _replicated(m, local), body, count=1)
    # Inserts into a table go through its Distributed twin, sharded by user; a view's rows are
    # written by the view on each node and only read through the twin (some have no user_id),
    # like a table without users.
    by_user = kind == "TABLE" and re.search(r"^\s*user_id String", body, re.MULTILINE)
    sharding = "cityHash64(user_id)" if by_user else "rand()"
    return [
        f"CREATE {kind} IF NOT EXISTS {DATABASE}.{local}{on_cluster(cluster)}{body}",
        f"CREATE TABLE IF NOT EXISTS {DATABASE}.{table}{on_cluster(cluster)} "
        f"AS {DATABASE}.{local} "
        f"ENGINE = Distributed({cluster}, {DATABASE}, {local}, {sharding})",
    ]


def _replicated(match: re.Match[str], local: str) -> str:
    zk = f"'/clickhouse/tables/{{shard}}/{DATABASE}/{local}', '{{replica}}'"
    args = match.group("args").strip()
    return f"ENGINE = Replicated{match.group('engine')}({zk}{', ' + args if args else ''})"
