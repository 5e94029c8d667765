"""`netra-analytics grafana check`: the files under `grafana/` validated offline.

One line per problem (empty = all good): every file parses; the layout is complete (see
`layout`); the dashboard provider reads the path the compose file mounts the dashboards at;
each dashboard is valid (`schema.validate_dashboard`), named `<uid>.json`; uids are unique
per kind (dashboards, datasources, alert rules, contact points); every datasource uid a
panel, a target, a variable or an alert rule names is one of the datasources file (or a
built-in one, or a dashboard variable); and the files are what `generate.build()` writes
today (so they cannot drift from the panel catalog).
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from netra_analytics.grafana import layout


def check(root: Path) -> list[str]:
    """Problems found in the `grafana/` directory at `root`, one message each."""
    problems: list[str] = []
    docs: dict[str, dict[str, Any]] = {}
    for relative in layout.PROVISIONING_FILES:
        try:
            docs[relative] = layout.read_yaml(root, relative)
        except layout.LayoutError as exc:
            problems.append(str(exc))
    try:
        dashboards = layout.read_dashboards(root)
    except layout.LayoutError as exc:
        problems.append(str(exc))
        dashboards = {}
    for relative, doc in docs.items():
        if doc.get("apiVersion") != 1:
            problems.append(f"{relative}: apiVersion is {doc.get('apiVersion')!r}, expected 1")

    providers = docs.get(layout.DASHBOARD_PROVIDERS)
    if providers is not None:
        problems += _providers(providers)
    problems += _dashboards(dashboards)

    datasources = (docs.get(layout.DATASOURCES) or {}).get("datasources") or []
    known = {str(entry.get("uid")) for entry in datasources if isinstance(entry, dict)}
    problems += _duplicates(
        "datasource",
        [entry.get("uid") for entry in datasources if isinstance(entry, dict)],
        layout.DATASOURCES,
    )
    for entry in datasources:
        if not isinstance(entry, dict) or not entry.get("uid") or not entry.get("type"):
            problems.append(f"{layout.DATASOURCES}: a datasource without uid or type: {entry!r}")
    for relative, doc in dashboards.items():
        for uid in sorted(set(_datasource_uids(doc)) - known):
            problems.append(f"{relative}: datasource uid {uid!r} is not in {layout.DATASOURCES}")

    rules = list(_rules(docs.get(layout.ALERT_RULES) or {}, problems))
    problems += _duplicates("alert rule", [rule.get("uid") for rule in rules], layout.ALERT_RULES)
    for rule in rules:
        for field in ("uid", "title", "condition", "data"):
            if not rule.get(field):
                problems.append(
                    f"{layout.ALERT_RULES}: rule {rule.get('uid') or rule.get('title')!r}"
                    f" has no {field}"
                )
        for query in rule.get("data") or []:
            uid = str(query.get("datasourceUid"))
            if uid not in known and uid not in layout.BUILTIN_DATASOURCE_UIDS:
                problems.append(
                    f"{layout.ALERT_RULES}: rule {rule.get('uid')!r} queries datasource "
                    f"uid {uid!r}, not in {layout.DATASOURCES}"
                )
    contacts = docs.get(layout.CONTACT_POINTS) or {}
    receivers = [
        receiver
        for point in contacts.get("contactPoints") or []
        for receiver in point.get("receivers") or []
    ]
    problems += _duplicates(
        "contact point", [r.get("uid") for r in receivers], layout.CONTACT_POINTS
    )
    if not receivers and layout.CONTACT_POINTS in docs:
        problems.append(f"{layout.CONTACT_POINTS}: no contact point")
    return problems + _drift(root)


def _providers(doc: dict[str, Any]) -> list[str]:
    providers = doc.get("providers")
    if not isinstance(providers, list) or not providers:
        return [f"{layout.DASHBOARD_PROVIDERS}: no providers"]
    path = (providers[0].get("options") or {}).get("path")
    if path != layout.DASHBOARDS_MOUNT:
        return [
            f"{layout.DASHBOARD_PROVIDERS}: options.path is {path!r}, but the dashboards are "
            f"mounted at {layout.DASHBOARDS_MOUNT}"
        ]
    return []


def _dashboards(dashboards: dict[str, dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    if not dashboards:
        problems.append(f"{layout.DASHBOARDS_DIR}/: no dashboard")
    schema = _generator_module("schema", problems)
    for relative, doc in dashboards.items():
        uid = doc.get("uid")
        if not isinstance(uid, str) or not uid:
            problems.append(f"{relative}: no uid")
        elif relative != f"{layout.DASHBOARDS_DIR}/{uid}.json":
            problems.append(f"{relative}: holds dashboard uid {uid!r}; name the file {uid}.json")
        elif len(uid) > layout.UID_MAX_LENGTH:
            problems.append(f"{relative}: uid longer than {layout.UID_MAX_LENGTH} characters")
        if schema is not None:
            problems += [f"{relative}: {message}" for message in schema.validate_dashboard(doc)]
    return problems


def _duplicates(kind: str, uids: list[Any], where: str) -> list[str]:
    return [
        f"{where}: {kind} uid {uid!r} appears {n} times"
        for uid, n in sorted(Counter(map(str, uids)).items())
        if n > 1
    ]


def _rules(doc: dict[str, Any], problems: list[str]) -> Iterator[dict[str, Any]]:
    for group in doc.get("groups") or []:
        if not group.get("name") or not group.get("folder"):
            problems.append(f"{layout.ALERT_RULES}: a group without name or folder")
        yield from group.get("rules") or []


def _datasource_uids(node: Any) -> Iterator[str]:
    """Every datasource uid a dashboard names (panels, targets, variables, annotations),
    leaving out built-in sources and `$variables`."""
    if isinstance(node, dict):
        source = node.get("datasource")
        uid = source.get("uid") if isinstance(source, dict) else None
        if (
            isinstance(uid, str)
            and not uid.startswith("$")
            and uid not in layout.BUILTIN_DATASOURCE_UIDS
        ):
            yield uid
        for value in node.values():
            yield from _datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            yield from _datasource_uids(value)


def _drift(root: Path) -> list[str]:
    """Differences between the files on disk and what the generator writes now."""
    problems: list[str] = []
    generate = _generator_module("generate", problems)
    if generate is None:
        return problems
    expected: dict[str, str] = generate.build()
    for relative, text in sorted(expected.items()):
        path = root / relative
        if not path.is_file():
            problems.append(f"{relative}: missing; run `netra-analytics grafana generate`")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(
                f"{relative}: differs from what the generator writes; run "
                "`netra-analytics grafana generate`"
            )
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if relative not in expected:
            problems.append(f"{relative}: not written by the generator (stale?)")
    return problems


def _generator_module(name: str, problems: list[str]) -> Any:
    """`netra_analytics.grafana.<name>` (the generator's side), imported when needed."""
    try:
        return importlib.import_module(f"netra_analytics.grafana.{name}")
    except ModuleNotFoundError as exc:
        problems.append(f"cannot check against the generator: {exc}")
        return None
