"""A stand-in for Grafana's HTTP API (the parts `grafana push` uses), on a real local port.

It checks requests as Grafana documents them (docs/sources/developers/http_api: dashboard.md,
folder.md, data_source.md, alerting_provisioning.md) and answers in Grafana's shapes:
`Authorization: Bearer <token>` or 401 `{"message": "Invalid API key", ...}`; JSON bodies;
dashboards need a uid here, a title and an existing folder, and a changed one without
`overwrite` is refused 412 `version-mismatch`, another one of the same title in the folder
412 `name-exists`; a datasource's type must be an installed plugin (`plugins`), else 400;
alert rules need uid, title, folderUID, ruleGroup, condition (one of their queries' refIds),
data (with known datasource uids) and `for`; contact points need type and settings.
Everything it accepted is kept (`folders`, `datasources`, `dashboards`, `rules`, `groups`,
`contact_points`), and every request in `requests`, so tests assert on what Grafana got.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

CORE_DATASOURCES = frozenset({"prometheus", "loki", "graphite", "testdata"})
DEFAULT_PLUGINS = frozenset(
    {"grafana-clickhouse-datasource", "yesoreyeram-infinity-datasource", "volkovlabs-echarts-panel"}
)
CONTACT_POINT_TYPES = frozenset({"email", "webhook", "slack", "pagerduty", "opsgenie", "teams"})
UID_MAX = 40


@dataclasses.dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class Refusal(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body


def _bad(message: str, code: int = 400, **extra: Any) -> Refusal:
    return Refusal(code, {"message": message, **extra})


class GrafanaStandIn:
    """The state of one Grafana organisation and the requests it saw."""

    def __init__(self, token: str, plugins: frozenset[str] = DEFAULT_PLUGINS) -> None:
        self.token = token
        self.plugins = set(plugins)
        self.requests: list[Request] = []
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}  # uid -> {"dashboard", "folderUid"}
        self.rules: dict[str, dict[str, Any]] = {}
        self.groups: dict[tuple[str, str], int] = {}  # (folderUid, group) -> interval seconds
        self.contact_points: dict[str, dict[str, Any]] = {}
        self._ids = 0
        self.lock = threading.Lock()

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    def _id(self) -> int:
        self._ids += 1
        return self._ids

    # -- routing ---------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any]:
        parts = urlsplit(target)
        path = parts.path
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
        with self.lock:
            self.requests.append(Request(method, path, dict(headers), body))
            try:
                if headers.get("authorization") != f"Bearer {self.token}":
                    raise Refusal(
                        401,
                        {
                            "message": "Invalid API key",
                            "messageId": "api-keys.invalid",
                            "statusCode": 401,
                            "traceID": "",
                        },
                    )
                if method in ("POST", "PUT"):
                    if not headers.get("content-type", "").startswith("application/json"):
                        raise _bad("bad request data: expected Content-Type application/json")
                    if not isinstance(body, dict):
                        raise _bad("bad request data: the body is not a JSON object")
                return self._route(method, path, query, headers, body)
            except Refusal as refusal:
                return refusal.status, refusal.body
            except Exception as exc:  # a stand-in bug: answered, not a dropped connection
                return 500, {"message": f"stand-in error: {exc!r}"}

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        routes: list[tuple[str, str, Any]] = [
            ("GET", r"/api/folders/([^/]+)", self.get_folder),
            ("POST", r"/api/folders", self.post_folder),
            ("PUT", r"/api/folders/([^/]+)", self.put_folder),
            ("GET", r"/api/plugins/([^/]+)/settings", self.get_plugin),
            ("GET", r"/api/datasources/uid/([^/]+)", self.get_datasource),
            ("POST", r"/api/datasources", self.post_datasource),
            ("PUT", r"/api/datasources/uid/([^/]+)", self.put_datasource),
            ("GET", r"/api/dashboards/uid/([^/]+)", self.get_dashboard),
            ("POST", r"/api/dashboards/db", self.post_dashboard),
            ("GET", r"/api/v1/provisioning/alert-rules/([^/]+)", self.get_rule),
            ("POST", r"/api/v1/provisioning/alert-rules", self.post_rule),
            ("PUT", r"/api/v1/provisioning/alert-rules/([^/]+)", self.put_rule),
            ("GET", r"/api/v1/provisioning/folder/([^/]+)/rule-groups/([^/]+)", self.get_group),
            ("PUT", r"/api/v1/provisioning/folder/([^/]+)/rule-groups/([^/]+)", self.put_group),
            ("GET", r"/api/v1/provisioning/contact-points", self.get_contact_points),
            ("POST", r"/api/v1/provisioning/contact-points", self.post_contact_point),
            ("PUT", r"/api/v1/provisioning/contact-points/([^/]+)", self.put_contact_point),
        ]
        for verb, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                args = [unquote(group) for group in match.groups()]
                return handler(*args, body=body, query=query, headers=headers)  # type: ignore[no-any-return]
        raise _bad("Not found", 404)

    # -- folders ---------------------------------------------------------------------------

    def get_folder(self, uid: str, **_: Any) -> tuple[int, Any]:
        if uid not in self.folders:
            raise _bad("folder not found", 404)
        return 200, self.folders[uid]

    def post_folder(self, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        uid, title = body.get("uid"), body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _bad("folder title cannot be empty")
        if not isinstance(uid, str) or not uid or len(uid) > UID_MAX:
            raise _bad("uid too long, max 40 characters" if uid else "uid is missing")
        if uid in self.folders:
            raise _bad("a folder with the same uid already exists", 409)
        self.folders[uid] = {"id": self._id(), "uid": uid, "title": title, "version": 1}
        return 200, self.folders[uid]

    def put_folder(self, uid: str, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        folder = self.folders.get(uid)
        if folder is None:
            raise _bad("folder not found", 404)
        if not body.get("overwrite") and body.get("version") != folder["version"]:
            raise _bad(
                "the folder has been changed by someone else", 412, status="version-mismatch"
            )
        folder.update(title=body.get("title", folder["title"]), version=folder["version"] + 1)
        return 200, folder

    def get_plugin(self, plugin_id: str, **_: Any) -> tuple[int, Any]:
        if plugin_id not in self.plugins and plugin_id not in CORE_DATASOURCES:
            raise _bad("Plugin not found, no installed plugin with that id", 404)
        return 200, {"id": plugin_id, "enabled": True}

    # -- datasources -----------------------------------------------------------------------

    def get_datasource(self, uid: str, **_: Any) -> tuple[int, Any]:
        if uid not in self.datasources:
            raise _bad("Data source not found", 404)
        stored = copy.deepcopy(self.datasources[uid])
        secrets = stored.pop("secureJsonData", {}) or {}
        stored["secureJsonFields"] = {key: True for key in secrets}
        return 200, stored

    def _datasource(self, body: dict[str, Any]) -> dict[str, Any]:
        for field in ("name", "type"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise _bad(f"bad request data: {field} is required")
        if body["type"] not in self.plugins and body["type"] not in CORE_DATASOURCES:
            raise _bad(
                f"plugin {body['type']!r} is not installed: cannot add a data source of that type"
            )
        if body.get("access", "proxy") not in ("proxy", "direct"):
            raise _bad("bad request data: access must be proxy or direct")
        return body

    def post_datasource(self, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        body = self._datasource(body)
        uid = body.get("uid") or f"generated-{self._id()}"
        if uid in self.datasources:
            raise _bad("data source with the same uid already exists", 409)
        if any(ds["name"] == body["name"] for ds in self.datasources.values()):
            raise _bad("data source with the same name already exists", 409)
        self.datasources[uid] = {
            **body,
            "uid": uid,
            "id": self._id(),
            "orgId": 1,
            "version": 1,
            "readOnly": False,
        }
        return 200, {
            "id": self.datasources[uid]["id"],
            "message": "Datasource added",
            "name": body["name"],
            "datasource": self.get_datasource(uid)[1],
        }

    def put_datasource(self, uid: str, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        stored = self.datasources.get(uid)
        if stored is None:
            raise _bad("Data source not found", 404)
        if stored["readOnly"]:
            raise _bad("Cannot update read-only data source", 403)
        body = self._datasource(body)
        self.datasources[uid] = {
            **body,
            "uid": uid,
            "id": stored["id"],
            "orgId": 1,
            "version": stored["version"] + 1,
            "readOnly": False,
        }
        return 200, {"id": stored["id"], "message": "Datasource updated", "name": body["name"]}

    # -- dashboards ------------------------------------------------------------------------

    def get_dashboard(self, uid: str, **_: Any) -> tuple[int, Any]:
        if uid not in self.dashboards:
            raise _bad("Dashboard not found", 404)
        entry = self.dashboards[uid]
        return 200, {
            "dashboard": entry["dashboard"],
            "meta": {"folderUid": entry["folderUid"], "url": f"/d/{uid}/"},
        }

    def post_dashboard(self, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        model = body.get("dashboard")
        if not isinstance(model, dict):
            raise _bad("bad request data: dashboard is required")
        uid, title = model.get("uid"), model.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _bad("Dashboard title cannot be empty")
        if not isinstance(uid, str) or not uid:
            raise _bad("the stand-in needs dashboards with a uid (push is idempotent by uid)")
        if len(uid) > UID_MAX:
            raise _bad("uid too long, max 40 characters")
        folder = body.get("folderUid") or ""
        if folder and folder not in self.folders:
            raise _bad("folder not found", 400)
        overwrite = body.get("overwrite") is True
        existing = self.dashboards.get(uid)
        for other_uid, other in self.dashboards.items():
            if (
                other_uid != uid
                and other["folderUid"] == folder
                and other["dashboard"]["title"] == title
                and not overwrite
            ):
                raise _bad(
                    "A dashboard with the same name in the folder already exists",
                    412,
                    status="name-exists",
                )
        if existing and not overwrite and model.get("version") != existing["dashboard"]["version"]:
            raise _bad(
                "The dashboard has been changed by someone else", 412, status="version-mismatch"
            )
        version = existing["dashboard"]["version"] + 1 if existing else 1
        ident = existing["dashboard"]["id"] if existing else self._id()
        stored = {**copy.deepcopy(model), "id": ident, "uid": uid, "version": version}
        self.dashboards[uid] = {"dashboard": stored, "folderUid": folder}
        return 200, {
            "id": ident,
            "uid": uid,
            "url": f"/d/{uid}/",
            "status": "success",
            "version": version,
        }

    # -- alerting --------------------------------------------------------------------------

    def get_rule(self, uid: str, **_: Any) -> tuple[int, Any]:
        if uid not in self.rules:
            raise _bad("not found", 404)
        return 200, self.rules[uid]

    def _rule(self, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        for field in ("uid", "title", "folderUID", "ruleGroup", "condition", "for"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise _bad(f"invalid alert rule: {field} is required")
        data = body.get("data")
        if not isinstance(data, list) or not data:
            raise _bad("invalid alert rule: no queries or expressions are found")
        if body["folderUID"] not in self.folders:
            raise _bad(f"folder {body['folderUID']} does not exist")
        refs = []
        for query in data:
            source = query.get("datasourceUid")
            if source not in ("__expr__", "-100") and source not in self.datasources:
                raise _bad(f"invalid alert rule: data source {source!r} not found")
            if not isinstance(query.get("model"), dict):
                raise _bad("invalid alert rule: query model is required")
            refs.append(query.get("refId"))
        if body["condition"] not in refs:
            raise _bad(f"condition {body['condition']} does not exist, must be one of {refs}")
        provenance = "" if headers.get("x-disable-provenance") else "api"
        return {**copy.deepcopy(body), "orgID": 1, "provenance": provenance}

    def post_rule(self, body: dict[str, Any], headers: dict[str, str], **_: Any) -> tuple[int, Any]:
        rule = self._rule(body, headers)
        if rule["uid"] in self.rules:
            raise _bad("a rule with this UID already exists", 409)
        rule["id"] = self._id()
        self.rules[rule["uid"]] = rule
        self.groups.setdefault((rule["folderUID"], rule["ruleGroup"]), 60)
        return 201, rule

    def put_rule(
        self, uid: str, body: dict[str, Any], headers: dict[str, str], **_: Any
    ) -> tuple[int, Any]:
        if uid not in self.rules:
            raise _bad("rule not found", 404)
        rule = self._rule({**body, "uid": uid}, headers)
        rule["id"] = self.rules[uid]["id"]
        self.rules[uid] = rule
        self.groups.setdefault((rule["folderUID"], rule["ruleGroup"]), 60)
        return 200, rule

    def _group_rules(self, folder: str, group: str) -> list[dict[str, Any]]:
        return [
            r for r in self.rules.values() if (r["folderUID"], r["ruleGroup"]) == (folder, group)
        ]

    def get_group(self, folder: str, group: str, **_: Any) -> tuple[int, Any]:
        if (folder, group) not in self.groups:
            raise _bad("rule group not found", 404)
        return 200, {
            "title": group,
            "folderUid": folder,
            "interval": self.groups[(folder, group)],
            "rules": self._group_rules(folder, group),
        }

    def put_group(
        self, folder: str, group: str, body: dict[str, Any], headers: dict[str, str], **_: Any
    ) -> tuple[int, Any]:
        interval = body.get("interval")
        if not isinstance(interval, int) or interval <= 0 or interval % 10:
            raise _bad("invalid rule group: interval must be a positive multiple of 10 seconds")
        if folder not in self.folders:
            raise _bad(f"folder {folder} does not exist")
        # As Grafana: the group's rules are the ones in the body; the others leave the group.
        kept = set()
        for rule in body.get("rules") or []:
            stored = self._rule({**rule, "folderUID": folder, "ruleGroup": group}, headers)
            stored["id"] = self.rules.get(stored["uid"], {}).get("id", self._id())
            self.rules[stored["uid"]] = stored
            kept.add(stored["uid"])
        for rule in self._group_rules(folder, group):
            if rule["uid"] not in kept:
                del self.rules[rule["uid"]]
        self.groups[(folder, group)] = interval
        return 200, self.get_group(folder, group)[1]

    def get_contact_points(self, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        points = list(self.contact_points.values())
        if "name" in query:
            points = [p for p in points if p["name"] == query["name"]]
        return 200, points

    def _contact_point(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("type") not in CONTACT_POINT_TYPES:
            raise _bad(f"invalid contact point: unknown type {body.get('type')!r}")
        if not isinstance(body.get("settings"), dict):
            raise _bad("invalid contact point: settings are required")
        if body["type"] == "email" and not body["settings"].get("addresses"):
            raise _bad("invalid contact point: could not find addresses in settings")
        return copy.deepcopy(body)

    def post_contact_point(self, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        point = self._contact_point(body)
        uid = point.get("uid") or f"cp-{self._id()}"
        if uid in self.contact_points:
            raise _bad("a contact point with this uid already exists", 409)
        self.contact_points[uid] = {**point, "uid": uid}
        return 202, self.contact_points[uid]

    def put_contact_point(self, uid: str, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        if uid not in self.contact_points:
            raise _bad("contact point not found", 404)
        self.contact_points[uid] = {**self._contact_point(body), "uid": uid}
        return 202, {}


def _handler(grafana: GrafanaStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {key.lower(): value for key, value in self.headers.items()}
            status, body = grafana.handle(self.command, self.path, headers, raw)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running(
    token: str, plugins: frozenset[str] = DEFAULT_PLUGINS
) -> Iterator[tuple[str, GrafanaStandIn]]:
    """A stand-in Grafana serving on a free loopback port: yields its URL and its state."""
    grafana = GrafanaStandIn(token, plugins)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(grafana))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", grafana
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
