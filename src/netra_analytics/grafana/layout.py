"""The layout of the `grafana/` directory and how Grafana reads its files.

The files (written by `netra-analytics grafana generate`):

    dashboards/<uid>.json                      one dashboard per file, named by its uid
    provisioning/datasources/netra.yaml        apiVersion 1, `datasources`
    provisioning/dashboards/netra.yaml         apiVersion 1, `providers` (folder, path)
    provisioning/alerting/netra-alerts.yaml    apiVersion 1, `groups` of alert rules
    provisioning/alerting/contact-points.yaml  apiVersion 1, `contactPoints` (and `policies`)

Grafana interpolates environment variables into provisioning files as it reads them
(pkg/services/provisioning/values/values.go): `$__env{NAME}` and `${NAME}`, `$__file{path}`
(the file's text, trimmed), then `$NAME` as Go's `os.ExpandEnv` does; `$$` is a literal `$`;
an unset variable becomes "". `expand_env` does the same, so `grafana push` sends what file
provisioning would have stored, and records which variables were unset.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

DATASOURCES = "provisioning/datasources/netra.yaml"
DASHBOARD_PROVIDERS = "provisioning/dashboards/netra.yaml"
ALERT_RULES = "provisioning/alerting/netra-alerts.yaml"
CONTACT_POINTS = "provisioning/alerting/contact-points.yaml"
DASHBOARDS_DIR = "dashboards"
# Where the compose file mounts dashboards/ in the Grafana container (the provider's `path`).
DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards/netra"
PROVISIONING_FILES = (DATASOURCES, DASHBOARD_PROVIDERS, ALERT_RULES, CONTACT_POINTS)

# Datasource uids that name no datasource: Grafana's expressions, the built-in annotations
# source, mixed panels; `$...`/`${...}` are dashboard variables, resolved in the browser.
BUILTIN_DATASOURCE_UIDS = frozenset(
    {"__expr__", "-100", "grafana", "-- Grafana --", "-- Mixed --", "-- Dashboard --"}
)
UID_MAX_LENGTH = 40  # Grafana's limit for dashboard and folder uids


class LayoutError(Exception):
    """A file of the layout is missing or does not parse; the message names it."""


@dataclasses.dataclass(frozen=True)
class Folder:
    uid: str
    title: str


def read_yaml(root: Path, relative: str) -> dict[str, Any]:
    """Parse one provisioning file into a mapping, or raise `LayoutError` naming the file."""
    path = root / relative
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LayoutError(f"{relative}: missing") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LayoutError(f"{relative}: does not parse: {_one_line(exc)}") from None
    if not isinstance(doc, dict):
        raise LayoutError(f"{relative}: expected a mapping at the top, found {type(doc).__name__}")
    return doc


def read_dashboards(root: Path) -> dict[str, dict[str, Any]]:
    """Every `dashboards/*.json` by relative path, parsed; `LayoutError` for the first that is
    not a JSON object."""
    folder = root / DASHBOARDS_DIR
    if not folder.is_dir():
        raise LayoutError(f"{DASHBOARDS_DIR}/: missing")
    dashboards: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")):
        relative = f"{DASHBOARDS_DIR}/{path.name}"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LayoutError(f"{relative}: does not parse: {_one_line(exc)}") from None
        if not isinstance(doc, dict):
            raise LayoutError(f"{relative}: expected a JSON object")
        dashboards[relative] = doc
    return dashboards


def dashboards_folder(providers: Mapping[str, Any]) -> Folder:
    """The folder the dashboard provider puts the dashboards in (`folderUid`, else a slug of
    its title, as `grafana push` creates it)."""
    entries = providers.get("providers") or [{}]
    first = entries[0] if isinstance(entries, list) and entries else {}
    title = str(first.get("folder") or "Netra Analytics")
    return Folder(uid=str(first.get("folderUid") or folder_uid(title)), title=title)


def folder_uid(title: str) -> str:
    """A stable uid for a folder known only by its title (alert rule files name folders so)."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return (slug or "folder")[:UID_MAX_LENGTH]


# `${NAME}` and `$__env{NAME}`, `$__file{path}`: Grafana's expander pattern (pkg/setting).
_EXPANDER = re.compile(r"\$(|__\w+)\{([^}]+)\}")
_SHELL_SPECIAL = frozenset("*#$@!?-0123456789")


def expand_env(
    value: str, env: Mapping[str, str], missing: set[str], *, braced_only: bool = False
) -> str:
    """`value` with environment variables expanded as Grafana's provisioning does.

    Unset names are added to `missing` (Grafana substitutes ""). `braced_only`: only `${NAME}`
    (what Grafana applies to alert rule annotations, so `$labels` and `$value` stay)."""
    return "$".join(_expand_part(part, env, missing, braced_only) for part in value.split("$$"))


def _expand_part(text: str, env: Mapping[str, str], missing: set[str], braced_only: bool) -> str:
    def expander(match: re.Match[str]) -> str:
        kind, argument = match.group(1), match.group(2)
        if kind in ("", "__env"):
            return _lookup(argument, env, missing)
        if kind == "__file" and not braced_only:
            try:
                return Path(argument).read_text(encoding="utf-8").strip()
            except OSError:
                missing.add(f"file {argument}")
                return ""
        return match.group(0)

    text = _EXPANDER.sub(expander, text)
    return text if braced_only else _os_expand(text, env, missing)


def _lookup(name: str, env: Mapping[str, str], missing: set[str]) -> str:
    if name not in env:
        missing.add(name)
    return env.get(name, "")


def _os_expand(text: str, env: Mapping[str, str], missing: set[str]) -> str:
    """Go's `os.Expand` (src/os/env.go): `$NAME`, `${NAME}`, `$` + one special character; bad
    syntax (`${`, `${}`) is dropped, a `$` before anything else is kept."""
    out: list[str] = []
    start = 0
    index = 0
    while index < len(text):
        if text[index] == "$" and index + 1 < len(text):
            out.append(text[start:index])
            name, width = _shell_name(text[index + 1 :])
            if name:
                out.append(_lookup(name, env, missing))
            elif width == 0:
                out.append("$")
            index += width
            start = index + 1
        index += 1
    out.append(text[start:])
    return "".join(out)


def _shell_name(rest: str) -> tuple[str, int]:
    if rest[0] == "{":
        if len(rest) > 2 and rest[1] in _SHELL_SPECIAL and rest[2] == "}":
            return rest[1], 3
        closing = rest.find("}", 1)
        if closing == -1:
            return "", 1
        return (rest[1:closing], closing + 1) if closing > 1 else ("", 2)
    if rest[0] in _SHELL_SPECIAL:
        return rest[0], 1
    width = 0
    while width < len(rest) and (
        rest[width] == "_" or (rest[width].isascii() and rest[width].isalnum())
    ):
        width += 1
    return rest[:width], width


def interpolate(value: Any, env: Mapping[str, str], missing: set[str]) -> Any:
    """Every string inside `value` (mappings and lists walked) through `expand_env`."""
    if isinstance(value, str):
        return expand_env(value, env, missing)
    if isinstance(value, dict):
        return {key: interpolate(item, env, missing) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env, missing) for item in value]
    return value


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
