"""`netra-analytics grafana push`: upload `grafana/` to a running Grafana over its HTTP API.

Idempotent by uid: each item is read first and written only when it differs, and each gets
one line: `<kind> <uid>: created | updated | unchanged`, or `<kind> <uid>: failed: <why>`
with Grafana's own message. A refused token (401) stops the push at once with one line; any
failure makes the exit status 1. The token is sent only in the `Authorization` header and
never printed.

Requests (Grafana's HTTP API, docs/sources/developers/http_api/*.md):
- folder: `GET /api/folders/{uid}`, then `POST /api/folders` `{uid, title}` or
  `PUT /api/folders/{uid}` `{title, overwrite: true}`;
- plugins the files need (datasource types, panel types not built in):
  `GET /api/plugins/{id}/settings`, 404 = not installed;
- datasources: `GET /api/datasources/uid/{uid}`, then `PUT /api/datasources/uid/{uid}` or
  `POST /api/datasources`, after the provisioning file's environment interpolation
  (`layout.expand_env`, secureJsonData included; a value with secrets is always re-sent,
  Grafana never returns them);
- dashboards: `GET /api/dashboards/uid/{uid}`, then `POST /api/dashboards/db`
  `{dashboard, folderUid, overwrite: true, message}`;
- contact points: `GET /api/v1/provisioning/contact-points?name=`, then
  `PUT /api/v1/provisioning/contact-points/{uid}` or `POST /api/v1/provisioning/contact-points`;
- alert rules: `GET /api/v1/provisioning/alert-rules/{uid}`, then `PUT .../alert-rules/{uid}`
  or `POST /api/v1/provisioning/alert-rules` (`X-Disable-Provenance: true` with `editable`,
  so the rules stay editable in Grafana's UI), then each rule group's evaluation interval:
  `GET`/`PUT /api/v1/provisioning/folder/{folderUid}/rule-groups/{group}`.
The notification policy tree is not pushed: `PUT /api/v1/provisioning/policies` replaces an
existing Grafana's whole tree, which is the operator's to route.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from netra_analytics.grafana import layout

TIMEOUT_SECONDS = 30.0
MESSAGE = "netra-analytics grafana push"
# Datasource fields of a provisioning file that the HTTP API takes as they are (the others,
# orgId, version, editable, are the file provisioner's own).
DATASOURCE_FIELDS = (
    "uid",
    "name",
    "type",
    "access",
    "url",
    "user",
    "database",
    "basicAuth",
    "basicAuthUser",
    "withCredentials",
    "isDefault",
    "jsonData",
    "secureJsonData",
)
# Panel types built into Grafana: never looked up as plugins.
CORE_PANELS = frozenset(
    {
        "alertlist",
        "annolist",
        "barchart",
        "bargauge",
        "candlestick",
        "canvas",
        "dashlist",
        "datagrid",
        "flamegraph",
        "gauge",
        "geomap",
        "gettingstarted",
        "graph",
        "heatmap",
        "histogram",
        "logs",
        "news",
        "nodeGraph",
        "piechart",
        "row",
        "stat",
        "state-timeline",
        "status-history",
        "table",
        "text",
        "timeseries",
        "traces",
        "trend",
        "welcome",
        "xychart",
    }
)
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
    "y": 31536000,
}


class GrafanaError(Exception):
    """Grafana answered an error: `status` and its own message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Grafana answered {status}: {message}")
        self.status = status
        self.message = message


class Stop(Exception):
    """The push cannot go on (token refused, Grafana unreachable); the message says why."""


@dataclasses.dataclass
class Report:
    """What happened to each item, in order, and whether anything failed."""

    lines: list[str] = dataclasses.field(default_factory=list)
    failed: bool = False
    out: Callable[[str], None] = print

    def item(self, kind: str, uid: str, outcome: str) -> None:
        self.lines.append(f"{kind} {uid}: {outcome}")
        self.out(self.lines[-1])

    def failure(self, kind: str, uid: str, why: str) -> None:
        self.failed = True
        self.item(kind, uid, f"failed: {why}")


class Grafana:
    """A thin client over Grafana's HTTP API; errors become `GrafanaError`, a 401 `Stop`."""

    def __init__(self, url: str, token: str, *, transport: httpx.BaseTransport | None = None):
        self._client = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=TIMEOUT_SECONDS,
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def get(self, path: str, **params: str) -> Any | None:
        """The JSON at `path`, or None when Grafana answers 404."""
        reply = self._send("GET", path, params=params or None)
        if reply.status_code == 404:
            return None
        return self._json(reply)

    def write(
        self, method: str, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> Any:
        return self._json(self._send(method, path, json=body, headers=headers))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            reply = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            # The exception names the URL only; the token is in a header it does not show.
            raise Stop(f"cannot reach Grafana at {self._client.base_url}: {exc}") from None
        if reply.status_code == 401:
            raise Stop(
                f"Grafana refused the token (401 at {method} {path}): {_message(reply)}; "
                "check GRAFANA_API_TOKEN (a service account token of this Grafana)"
            )
        return reply

    @staticmethod
    def _json(reply: httpx.Response) -> Any:
        if reply.status_code >= 400:
            raise GrafanaError(reply.status_code, _message(reply))
        try:
            return reply.json() if reply.content else None
        except ValueError:
            return None


def _message(reply: httpx.Response) -> str:
    """Grafana's error message (`{"message": ..., "status": ...}`), else the text, short."""
    try:
        body = reply.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        status = body.get("status")
        text = str(body["message"])
        return f"{text} ({status})" if isinstance(status, str) and status else text
    text = " ".join(reply.text.split())
    return text[:200] or reply.reason_phrase


def push(
    root: Path,
    url: str,
    token: str,
    env: Mapping[str, str],
    *,
    editable: bool = False,
    out: Callable[[str], None] = print,
    transport: httpx.BaseTransport | None = None,
) -> Report:
    """Push the folder, datasources, dashboards, contact points and alert rules under `root`.

    `env` is what `$VAR` in the provisioning files is read from (the process environment).
    Returns the report; `report.failed` when any item failed or the push stopped. Raises
    `layout.LayoutError` when a file is missing or does not parse (nothing is sent then).
    """
    datasources = layout.read_yaml(root, layout.DATASOURCES).get("datasources") or []
    folder = layout.dashboards_folder(layout.read_yaml(root, layout.DASHBOARD_PROVIDERS))
    dashboards = layout.read_dashboards(root)
    alerting = layout.read_yaml(root, layout.ALERT_RULES)
    contacts = layout.read_yaml(root, layout.CONTACT_POINTS)
    report = Report(out=out)
    grafana = Grafana(url, token, transport=transport)
    try:
        pusher = _Pusher(grafana, report, env, editable)
        pusher.folder(folder)
        for entry in datasources:
            pusher.datasource(entry)
        for doc in dashboards.values():
            pusher.dashboard(doc, folder)
        for entry in contacts.get("contactPoints") or []:
            pusher.contact_point(entry)
        if contacts.get("policies"):
            report.item(
                "notification policy",
                "tree",
                "skipped (replacing a Grafana's whole "
                "policy tree is left to its operator; route to the contact point there)",
            )
        for group in alerting.get("groups") or []:
            pusher.rule_group(group, folder)
    except Stop as exc:
        report.failed = True
        report.lines.append(f"grafana push: {exc}")
        out(report.lines[-1])
    finally:
        grafana.close()
    return report


class _Pusher:
    def __init__(self, grafana: Grafana, report: Report, env: Mapping[str, str], editable: bool):
        self.grafana = grafana
        self.report = report
        self.env = env
        self.provenance = {"X-Disable-Provenance": "true"} if editable else {}
        self.folders: dict[str, str] = {}  # title -> uid, once created or found
        self.plugins: dict[str, bool] = {}

    def _attempt(self, kind: str, uid: str, action: Callable[[], str]) -> bool:
        try:
            outcome = action()
        except GrafanaError as exc:
            self.report.failure(kind, uid, str(exc))
            return False
        self.report.item(kind, uid, outcome)
        return True

    def _upsert(
        self,
        existing: Any,
        create_path: str,
        update_path: str,
        body: dict[str, Any],
        same: Callable[[Any], bool],
        headers: dict[str, str] | None = None,
    ) -> str:
        """POST to create what is absent, PUT what differs, nothing when it is the same."""
        if existing is None:
            self.grafana.write("POST", create_path, body, headers)
            return "created"
        if same(existing):
            return "unchanged"
        self.grafana.write("PUT", update_path, body, headers)
        return "updated"

    def _plugin_missing(self, plugin_id: str) -> bool:
        if plugin_id not in self.plugins:
            found = self.grafana.get(f"/api/plugins/{quote(plugin_id, safe='')}/settings")
            self.plugins[plugin_id] = found is not None
        return not self.plugins[plugin_id]

    def folder(self, folder: layout.Folder) -> bool:
        def action() -> str:
            existing = self.grafana.get(f"/api/folders/{quote(folder.uid, safe='')}")
            if existing is None:
                self.grafana.write(
                    "POST", "/api/folders", {"uid": folder.uid, "title": folder.title}
                )
                return "created"
            if existing.get("title") == folder.title:
                return "unchanged"
            body = {"title": folder.title, "overwrite": True}
            self.grafana.write("PUT", f"/api/folders/{quote(folder.uid, safe='')}", body)
            return "updated"

        done = self._attempt("folder", folder.uid, action)
        if done:
            self.folders[folder.title] = folder.uid
        return done

    def _folder_uid(self, title: str, dashboards_folder: layout.Folder) -> str | None:
        if title not in self.folders:
            uid = (
                dashboards_folder.uid
                if title == dashboards_folder.title
                else layout.folder_uid(title)
            )
            self.folder(layout.Folder(uid=uid, title=title))
        return self.folders.get(title)

    def datasource(self, entry: dict[str, Any]) -> None:
        uid = str(entry.get("uid") or entry.get("name") or "?")
        missing: set[str] = set()
        body = {
            key: layout.interpolate(entry[key], self.env, missing)
            for key in DATASOURCE_FIELDS
            if key in entry
        }
        body.setdefault("access", "proxy")
        if missing:
            self.report.failure("datasource", uid, _unset(missing))
            return
        plugin = str(body.get("type", ""))
        if self._plugin_missing(plugin):
            self.report.failure("datasource", uid, _not_installed(plugin))
            return

        def action() -> str:
            path = f"/api/datasources/uid/{quote(uid, safe='')}"
            public = {key: value for key, value in body.items() if key != "secureJsonData"}
            return self._upsert(
                self.grafana.get(path),
                "/api/datasources",
                path,
                body,
                lambda existing: "secureJsonData" not in body and _contains(existing, public),
            )

        self._attempt("datasource", uid, action)

    def dashboard(self, doc: dict[str, Any], folder: layout.Folder) -> None:
        uid = str(doc.get("uid") or "?")
        if folder.title not in self.folders:
            self.report.failure("dashboard", uid, f"its folder {folder.uid} could not be written")
            return
        for plugin in sorted(_panel_plugins(doc)):
            if self._plugin_missing(plugin):
                self.report.failure("dashboard", uid, _not_installed(plugin))
                return
        model = {key: value for key, value in doc.items() if key not in ("id", "version")}

        def action() -> str:
            existing = self.grafana.get(f"/api/dashboards/uid/{quote(uid, safe='')}")
            if existing is not None:
                stored = existing.get("dashboard") or {}
                same_folder = (existing.get("meta") or {}).get("folderUid") == folder.uid
                if same_folder and _contains(stored, model):
                    return "unchanged"
            body = {
                "dashboard": model,
                "folderUid": folder.uid,
                "overwrite": True,
                "message": MESSAGE,
            }
            self.grafana.write("POST", "/api/dashboards/db", body)
            return "created" if existing is None else "updated"

        self._attempt("dashboard", uid, action)

    def contact_point(self, entry: dict[str, Any]) -> None:
        missing: set[str] = set()
        name = layout.expand_env(str(entry.get("name") or ""), self.env, missing)
        for receiver in entry.get("receivers") or []:
            body = {
                "uid": layout.expand_env(str(receiver.get("uid") or ""), self.env, missing),
                "name": name,
                "type": layout.expand_env(str(receiver.get("type") or ""), self.env, missing),
                "settings": layout.interpolate(receiver.get("settings") or {}, self.env, missing),
                "disableResolveMessage": bool(receiver.get("disableResolveMessage", False)),
            }
            uid = body["uid"] or name
            if missing:
                self.report.failure("contact point", uid, _unset(missing))
                continue

            def action(body: dict[str, Any] = body, uid: str = uid) -> str:
                found = self.grafana.get("/api/v1/provisioning/contact-points", name=name) or []
                return self._upsert(
                    next((cp for cp in found if cp.get("uid") == uid), None),
                    "/api/v1/provisioning/contact-points",
                    f"/api/v1/provisioning/contact-points/{quote(uid, safe='')}",
                    body,
                    lambda existing: _contains(existing, body),
                    self.provenance,
                )

            self._attempt("contact point", uid, action)

    def rule_group(self, group: dict[str, Any], dashboards_folder: layout.Folder) -> None:
        missing: set[str] = set()
        name = layout.expand_env(str(group.get("name") or ""), self.env, missing)
        title = layout.expand_env(str(group.get("folder") or ""), self.env, missing)
        interval = layout.expand_env(str(group.get("interval") or "1m"), self.env, missing)
        if missing:
            self.report.failure("rule group", name, _unset(missing))
            return
        folder_uid = self._folder_uid(title, dashboards_folder)
        if folder_uid is None:
            self.report.failure("rule group", name, f"its folder {title!r} could not be written")
            return
        pushed = [self.alert_rule(rule, folder_uid, name) for rule in group.get("rules") or []]
        if not any(pushed):
            return
        seconds = int(_seconds(interval))
        path = (
            f"/api/v1/provisioning/folder/{quote(folder_uid, safe='')}"
            f"/rule-groups/{quote(name, safe='')}"
        )

        def action() -> str:
            existing = self.grafana.get(path)
            if existing is None:
                raise GrafanaError(404, "the group is missing after its rules were written")
            if existing.get("interval") == seconds:
                return "unchanged"
            self.grafana.write("PUT", path, {**existing, "interval": seconds}, self.provenance)
            return f"updated (every {interval})"

        self._attempt("rule group", name, action)

    def alert_rule(self, rule: dict[str, Any], folder_uid: str, group: str) -> bool:
        missing: set[str] = set()
        body = alert_rule_body(rule, folder_uid, group, self.env, missing)
        uid = str(body.get("uid") or body.get("title") or "?")
        if missing:
            self.report.failure("alert rule", uid, _unset(missing))
            return False

        def action() -> str:
            path = f"/api/v1/provisioning/alert-rules/{quote(uid, safe='')}"
            return self._upsert(
                self.grafana.get(path),
                "/api/v1/provisioning/alert-rules",
                path,
                body,
                lambda existing: _same_rule(existing, body),
                self.provenance,
            )

        return self._attempt("alert rule", uid, action)


def alert_rule_body(
    rule: Mapping[str, Any], folder_uid: str, group: str, env: Mapping[str, str], missing: set[str]
) -> dict[str, Any]:
    """The provisioning API's `ProvisionedAlertRule` for one rule of an alerting file.

    Interpolated as Grafana's file provisioner does (rules_types.go): the rule's own strings
    and labels fully, annotations only `${VAR}`, the queries' `model` not at all (it holds
    the datasource's macros, `$__timeFilter`...). `dashboardUid`/`panelId` become the
    `__dashboardUid__`/`__panelId__` annotations the API links rules to panels with."""

    def text(key: str, default: str = "") -> str:
        return layout.expand_env(str(rule.get(key) or default), env, missing)

    annotations = {
        key: layout.expand_env(str(value), env, missing, braced_only=True)
        for key, value in (rule.get("annotations") or {}).items()
    }
    if rule.get("dashboardUid"):
        annotations["__dashboardUid__"] = text("dashboardUid")
        annotations["__panelId__"] = str(rule.get("panelId") or 0)
    data = []
    for query in rule.get("data") or []:
        entry: dict[str, Any] = {
            key: layout.expand_env(str(query[key]), env, missing)
            for key in ("refId", "queryType", "datasourceUid")
            if key in query
        }
        if "relativeTimeRange" in query:
            entry["relativeTimeRange"] = query["relativeTimeRange"]
        entry["model"] = query.get("model") or {}
        data.append(entry)
    body: dict[str, Any] = {
        "uid": text("uid"),
        "title": text("title"),
        "condition": text("condition"),
        "data": data,
        "noDataState": text("noDataState", "NoData"),
        "execErrState": text("execErrState", "Alerting"),
        "for": text("for", "0s"),
        "annotations": annotations,
        "labels": {
            key: layout.expand_env(str(value), env, missing)
            for key, value in (rule.get("labels") or {}).items()
        },
        "isPaused": bool(rule.get("isPaused", False)),
        "folderUID": folder_uid,
        "ruleGroup": group,
    }
    if rule.get("notification_settings"):
        body["notification_settings"] = layout.interpolate(
            rule["notification_settings"], env, missing
        )
    return body


def referenced_variables(root: Path) -> set[str]:
    """The environment variables the provisioning files under `root` read, where Grafana
    reads them (so the Grafana container, or `grafana push`, must be given each)."""
    names: set[str] = set()
    for entry in layout.read_yaml(root, layout.DATASOURCES).get("datasources") or []:
        layout.interpolate(
            {key: entry[key] for key in DATASOURCE_FIELDS if key in entry}, {}, names
        )
    for point in layout.read_yaml(root, layout.CONTACT_POINTS).get("contactPoints") or []:
        layout.interpolate({key: point.get(key) for key in ("name", "receivers")}, {}, names)
    for group in layout.read_yaml(root, layout.ALERT_RULES).get("groups") or []:
        layout.interpolate(
            {key: group.get(key) for key in ("name", "folder", "interval")}, {}, names
        )
        for rule in group.get("rules") or []:
            alert_rule_body(rule, "", "", {}, names)
    return {name for name in names if not name.startswith("file ")}


def _same_rule(existing: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    """Grafana answers `for` in its own spelling (`300s` comes back `5m`): compared in seconds."""
    if _seconds(str(existing.get("for") or "0s")) != _seconds(str(body["for"])):
        return False
    return _contains(existing, {key: value for key, value in body.items() if key != "for"})


def _contains(stored: Any, wanted: Any) -> bool:
    """Whether `stored` has every field of `wanted` with an equal value (Grafana adds its own
    fields, ids, versions and defaults, to what it keeps)."""
    if isinstance(wanted, dict):
        return isinstance(stored, dict) and all(
            _contains(stored[key], value) if key in stored else _empty(value)
            for key, value in wanted.items()
        )
    if stored is None and _empty(wanted):
        return True
    if isinstance(wanted, list):
        return (
            isinstance(stored, list)
            and len(stored) == len(wanted)
            and all(_contains(s, w) for s, w in zip(stored, wanted, strict=True))
        )
    return bool(stored == wanted)


def _empty(value: Any) -> bool:
    """Zero values Grafana leaves out of what it returns (`omitempty`)."""
    return value is None or value == {} or value == [] or value is False or value == ""


def _seconds(duration: str) -> float:
    """A Prometheus duration (`1m`, `1h30m`, `90s`) in seconds; 0 when it does not parse."""
    return sum(int(n) * _DURATION_SECONDS[unit] for n, unit in _DURATION.findall(duration))


def _panel_plugins(doc: Mapping[str, Any]) -> set[str]:
    """Panel types of a dashboard (rows' nested panels too) that are plugins, not built in."""
    found: set[str] = set()
    for panel in doc.get("panels") or []:
        kind = panel.get("type")
        if isinstance(kind, str) and kind not in CORE_PANELS:
            found.add(kind)
        found |= _panel_plugins(panel)
    return found


def _unset(names: set[str]) -> str:
    listed = ", ".join(sorted(names))
    return (
        f'not pushed: {listed} unset in the environment (file provisioning would use ""; '
        "export it, empty if that is meant)"
    )


def _not_installed(plugin: str) -> str:
    return (
        f"plugin {plugin} is not installed in this Grafana (install it: "
        f"grafana cli plugins install {plugin}, or GF_PLUGINS_PREINSTALL)"
    )
