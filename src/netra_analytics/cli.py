"""`netra-analytics`: serve, migrate, query, demo, loadtest."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import orjson

from netra_analytics.config import Settings
from netra_analytics.errors import ConfigError, StoreError

API_KEY_ENV = "NETRA_API_KEY"  # the demo's credential, kept out of the process list


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netra-analytics", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--port", type=int, help="default: ANALYTICS_SERVICE_PORT or 8090")
    serve.add_argument("--host", help="default: ANALYTICS_SERVICE_HOST or 0.0.0.0")
    serve.add_argument("--data-dir", type=Path, help="default: ANALYTICS_DATA_DIR or ./data")
    serve.add_argument(
        "--workers", type=_workers, help="HTTP worker processes (default: ANALYTICS_WORKERS or 1)"
    )
    migrate = commands.add_parser("migrate", help="create or update the ClickHouse schema")
    migrate.add_argument("--data-dir", type=Path)
    query = commands.add_parser("query", help="run SQL on the configured store and print rows")
    query.add_argument("sql")
    query.add_argument("--format", choices=["tsv", "json"], default="tsv")
    query.add_argument("--data-dir", type=Path)
    demo = commands.add_parser(
        "demo", help="send realistic synthetic traffic to a running service (historical import)"
    )
    demo.add_argument("--url", required=True, help="the service, e.g. http://localhost:8090")
    demo.add_argument("--users", type=_positive, default=500, help="people (default 500)")
    demo.add_argument("--days", type=_days, default=30, help="UTC days up to today (default 30)")
    demo.add_argument("--seed", type=int, default=1, help="same seed, same traffic (default 1)")
    demo.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    demo.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV) or None,
        help=f"an admin key: the import is admin-only (default: {API_KEY_ENV})",
    )
    _add_loadtest_parser(commands)
    _add_keys_parser(commands)
    _add_grafana_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "grafana":
        return _grafana(args)
    if args.command == "demo":
        return _demo(args.url, args.users, args.days, args.seed, args.timeout, args.api_key)
    if args.command == "loadtest":
        return _loadtest(args)

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
            ("workers", getattr(args, "workers", None)),
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
    if settings.workers > 1 and not settings.worker_process:
        from netra_analytics import workers

        return workers.serve(settings)
    import uvicorn

    from netra_analytics import logs
    from netra_analytics.app import create_app
    from netra_analytics.http_limits import head_timeout_protocol
    from netra_analytics.service import UVICORN_SHARE

    logs.configure(settings.log_level)
    uvicorn.run(
        create_app(settings, serving=True),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=head_timeout_protocol(settings.request_timeout_seconds),
        access_log=False,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # For open requests to finish; the service's own stop takes the rest (service.py).
        timeout_graceful_shutdown=max(1, round(settings.shutdown_seconds * UVICORN_SHARE)),
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


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def _workers(raw: str) -> int:
    value = _positive(raw)
    if value > 64:
        raise argparse.ArgumentTypeError(f"{value} workers: at most 64")
    return value


def _days(raw: str) -> int:
    from netra_analytics.ingest.process import EVENT_RETENTION

    value = _positive(raw)
    if value > EVENT_RETENTION.days:
        limit = EVENT_RETENTION.days
        raise argparse.ArgumentTypeError(f"{value} is beyond the events' retention, {limit} days")
    return value


def _demo(url: str, users: int, days: int, seed: int, timeout: float, api_key: str | None) -> int:
    from netra_analytics import demo

    try:
        summary = demo.run(url, users=users, days=days, seed=seed, timeout=timeout, api_key=api_key)
    except demo.DemoError as exc:
        print(f"netra-analytics demo: {exc}", file=sys.stderr)
        return 1
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.rejections.items()))
    print(
        f"sent {summary.events:,} events of {users:,} people over {days} days in "
        f"{summary.seconds:.1f} s ({summary.requests} requests, {summary.retries} retries): "
        f"{summary.accepted:,} accepted, {summary.rejected:,} rejected"
        + (f" ({reasons})" if reasons else "")
    )
    stored = demo.wait_stored(url, max(timeout - summary.seconds, 10.0))
    if stored is None:
        print("netra-analytics demo: the service has not stored every event yet", file=sys.stderr)
        return 1
    print(f"stored in ClickHouse {stored:.1f} s later; open {url.rstrip('/')}/ and sign in")
    return 0 if summary.rejected == 0 else 1


def _add_grafana_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """`grafana <action>`; the actions' parsers, for more to be added beside `generate`."""
    from netra_analytics.grafana import commands as grafana_commands

    grafana = commands.add_parser("grafana", help="Grafana provisioning from the panel catalog")
    actions = grafana.add_subparsers(dest="action", required=True)
    generate = actions.add_parser(
        "generate", help="write dashboards, datasources, alert rules under a directory"
    )
    generate.add_argument("--out", type=Path, default=Path("grafana"), help="default: grafana")
    generate.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an alert rule's threshold (grafana/alerts.py Thresholds), e.g. error_rate_percent=2",
    )
    generate.add_argument(
        "--embedded",
        action="store_true",
        help="for a service on its embedded store: every panel read through the service",
    )
    grafana_commands.add_parsers(actions)  # push, check
    return actions


def _grafana(args: argparse.Namespace) -> int:
    from netra_analytics.grafana import commands as grafana_commands
    from netra_analytics.grafana import generate
    from netra_analytics.grafana.alerts import Thresholds

    if args.action in grafana_commands.ACTIONS:
        return grafana_commands.run(args)
    if args.action == "generate":
        try:
            assignments = {}
            for item in args.threshold:
                name, _, value = item.partition("=")
                assignments[name.strip()] = float(value)
            thresholds = Thresholds().replace(assignments)
        except ValueError as exc:
            print(f"netra-analytics grafana generate: bad --threshold: {exc}", file=sys.stderr)
            return 2
        written = generate.write(args.out, thresholds, args.embedded)
        print(f"wrote {len(written)} files under {args.out}")
        return 0
    return 2


def _add_loadtest_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    loadtest = commands.add_parser(
        "loadtest",
        help="realistic open-loop traffic against a running service, and what it stored",
        description="Sends --rate events/s for --duration s in requests of exactly --batch "
        "events, each from one of --users browsers, then reads back how many the store holds "
        "(admin key needed) and reports rate, latency, refusals and loss. Exit status 1 when "
        "events were lost or duplicated.",
    )
    loadtest.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8090")
    loadtest.add_argument(
        "--rate", type=_positive_float, default=10_000.0, help="events per second (default 10000)"
    )
    loadtest.add_argument(
        "--duration", type=_positive_float, default=60.0, help="seconds of sending (default 60)"
    )
    loadtest.add_argument(
        "--batch",
        type=_batch,
        default=20,
        help="events in every request, exactly (default 20, the tag's batch)",
    )
    loadtest.add_argument(
        "--users",
        type=_positive,
        default=100_000,
        help="browsers the requests come from (default 100000)",
    )
    loadtest.add_argument(
        "--connections",
        type=_positive,
        default=128,
        help="keep-alive connections, one request in flight each (default 128)",
    )
    loadtest.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV) or None,
        help=f"an admin key, for the read-back of stored events (default: {API_KEY_ENV})",
    )
    loadtest.add_argument(
        "--no-readback",
        action="store_true",
        help="do not read back what was stored (no loss figure, no key)",
    )
    loadtest.add_argument(
        "--drain-timeout",
        type=_positive_float,
        default=60.0,
        help="seconds to wait for the service to store the run (default 60)",
    )
    loadtest.add_argument(
        "--allow-remote", action="store_true", help="allow a URL that is not a loopback address"
    )
    loadtest.add_argument("--json", action="store_true", help="print the result as JSON")


def _loadtest(args: argparse.Namespace) -> int:
    from netra_analytics import loadtest

    try:
        result = loadtest.run(
            args.url,
            rate=args.rate,
            duration=args.duration,
            batch=args.batch,
            users=args.users,
            connections=args.connections,
            api_key=args.api_key,
            readback=not args.no_readback,
            drain_timeout=args.drain_timeout,
            allow_remote=args.allow_remote,
        )
    except loadtest.LoadTestError as exc:
        print(f"netra-analytics loadtest: {exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(loadtest.table(result))
    return 1 if (result.loss or result.duplicates) else 0


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{raw} is not a positive number")
    return value


def _batch(raw: str) -> int:
    from netra_analytics.taxonomy import MAX_EVENTS

    value = _positive(raw)
    if value > MAX_EVENTS:
        raise argparse.ArgumentTypeError(f"{value} is over the {MAX_EVENTS} events of a request")
    return value


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
