"""`netra-analytics grafana push` and `grafana check` (wired in `netra_analytics.cli`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from netra_analytics.config import Settings
from netra_analytics.errors import ConfigError

ACTIONS = frozenset({"push", "check"})
TOKEN_ENV = "GRAFANA_API_TOKEN"  # noqa: S105 (a variable's name: the token stays off argv)


def add_parsers(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    push = actions.add_parser(
        "push",
        help="upload the folder, datasources, dashboards, contact points and alert rules to "
        f"GRAFANA_API_URL with {TOKEN_ENV} (idempotent by uid)",
    )
    push.add_argument("--dir", type=Path, default=Path("grafana"), help="default: grafana")
    push.add_argument(
        "--editable",
        action="store_true",
        help="send X-Disable-Provenance so alert rules and contact points stay editable in "
        "Grafana's UI (default: locked there, as provisioned resources are)",
    )
    check = actions.add_parser("check", help="validate the files offline (exit 1 on a problem)")
    check.add_argument("--dir", type=Path, default=Path("grafana"), help="default: grafana")


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 done, 1 a problem (each on one line), 2 missing settings."""
    from netra_analytics.grafana import layout

    if args.action == "check":
        from netra_analytics.grafana.check import check

        problems = check(args.dir)
        for problem in problems:
            print(f"{args.dir}: {problem}", file=sys.stderr)
        if not problems:
            print(f"{args.dir}: the Grafana files are valid and up to date")
        return 1 if problems else 0

    from netra_analytics.grafana.push import push

    try:
        url = Settings.from_env(os.environ).grafana_api_url
    except ConfigError as exc:
        print(f"netra-analytics: configuration error: {exc}", file=sys.stderr)
        return 2
    token = os.environ.get(TOKEN_ENV, "").strip()
    if url is None or not token:
        print(f"netra-analytics grafana push: set GRAFANA_API_URL and {TOKEN_ENV}", file=sys.stderr)
        return 2
    try:
        report = push(args.dir, url, token, os.environ, editable=args.editable)
    except layout.LayoutError as exc:
        print(f"netra-analytics grafana push: {args.dir}/{exc}", file=sys.stderr)
        return 1
    return 1 if report.failed else 0
