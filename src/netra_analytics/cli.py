"""`netra-analytics`: serve, migrate, query."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from netra_analytics.config import Settings
from netra_analytics.errors import ConfigError, StoreError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netra-analytics", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--port", type=int, help="default: ANALYTICS_SERVICE_PORT or 8090")
    serve.add_argument("--host", help="default: ANALYTICS_SERVICE_HOST or 0.0.0.0")
    serve.add_argument("--data-dir", type=Path, help="default: ANALYTICS_DATA_DIR or ./data")
    migrate = commands.add_parser("migrate", help="create or update the ClickHouse schema")
    migrate.add_argument("--data-dir", type=Path)
    query = commands.add_parser("query", help="run SQL on the configured store and print rows")
    query.add_argument("sql")
    query.add_argument("--format", choices=["tsv", "json"], default="tsv")
    query.add_argument("--data-dir", type=Path)
    _add_keys_parser(commands)
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"netra-analytics: configuration error: {exc}", file=sys.stderr)
        return 2
    overrides = {
        name: value
        for name, value in (
            ("port", getattr(args, "port", None)),
            ("host", getattr(args, "host", None)),
            ("data_dir", getattr(args, "data_dir", None)),
        )
        if value is not None
    }
    settings = dataclasses.replace(settings, **overrides)

    try:
        if args.command == "serve":
            return _serve(settings)
        if args.command == "migrate":
            return _migrate(settings)
        if args.command == "keys":
            return _keys(settings, args)
        return _query(settings, args.sql, args.format)
    except StoreError as exc:
        print(f"netra-analytics: {exc}", file=sys.stderr)
        return 1


def _serve(settings: Settings) -> int:
    import uvicorn

    from netra_analytics import logs
    from netra_analytics.app import create_app

    logs.configure(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=30,
    )
    return 0


def _migrate(settings: Settings) -> int:
    from netra_analytics.store import open_store
    from netra_analytics.store.migrations import migrate

    store = open_store(settings)
    try:
        applied = migrate(store, settings.clickhouse_cluster)
    finally:
        store.close()
    print("\n".join(applied) if applied else "schema is up to date")
    return 0


def _query(settings: Settings, sql: str, output: str) -> int:
    from netra_analytics.store import open_store

    store = open_store(settings)
    try:
        data = store.query_raw(sql, fmt="JSONEachRow" if output == "json" else "TSV")
    finally:
        store.close()
    sys.stdout.buffer.write(data)
    return 0


def _add_keys_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key and print it (the last word)")
    create.add_argument("--role", required=True, choices=["admin", "analyst", "ingest"])
    create.add_argument("--name", required=True, help="1-64 letters, digits, '_', '.', '-'")
    create.add_argument("--data-dir", type=Path)
    listing = actions.add_parser("list", help="list keys: name, role, created, revoked")
    listing.add_argument("--data-dir", type=Path)
    revoke = actions.add_parser("revoke", help="revoke a key by name (within seconds)")
    revoke.add_argument("name")
    revoke.add_argument("--data-dir", type=Path)


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    """Keys live in the store, so this works against a running service's ClickHouse; with
    embedded chDB, against a data directory no running service holds open."""
    from netra_analytics.auth import keys
    from netra_analytics.store import open_store
    from netra_analytics.store.migrations import migrate

    store = open_store(settings)
    try:
        migrate(store, settings.clickhouse_cluster)
        if args.action == "create":
            key = keys.create_key(store, args.name, args.role)
            print(f"created {args.role} key {args.name!r}; it is shown only now: {key}")
        elif args.action == "revoke":
            gone = keys.revoke_key(store, args.name)
            print(f"revoked {gone.role} key {gone.name!r}")
        else:
            for entry in keys.list_keys(store):
                created = entry.created_at.isoformat(timespec="seconds")
                ended = entry.revoked_at.isoformat(timespec="seconds") if entry.revoked_at else "-"
                print(f"{entry.name}\t{entry.role}\t{created}\trevoked: {ended}")
    except keys.KeyProblem as exc:
        print(f"netra-analytics: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0
