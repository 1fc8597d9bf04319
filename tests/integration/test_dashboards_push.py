"""CONTRACT test of ``urbanpulse dashboards push`` against a stand-in of Grafana's HTTP API.

Grafana cannot be installed here, so this is a contract test, not an integration test: a
small local HTTP server implements the endpoints the push calls, the way Grafana 13 answers
them: folders by uid (with their permissions), data sources by uid only (numeric-id and
by-name routes answer 404, as in Grafana 13), ``POST /api/dashboards/db`` and ``GET
/api/search``. The push talks to it over real HTTP through grafana-client. What this cannot
show — that a real Grafana accepts and renders these objects — is listed in docs/dashboards.md.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from typer.testing import CliRunner

from dashboards.boards import BOARDS, FOLDERS
from dashboards.datasources import INFLUX_AGG_UID, INFLUX_UID, PROMETHEUS_UID, DatasourceTargets
from dashboards.push import Desired, GrafanaClientPort, desired, push
from urbanpulse.cli import app

TOKEN = "glsa_contract_test_token"
TARGETS = DatasourceTargets(
    influx_url="http://influxdb:8086",
    influx_org="-",
    raw_bucket="city-raw",
    aggregate_bucket="city-agg",
    prometheus_url="http://prometheus:9090",
)
Json = dict[str, Any]


@dataclass
class GrafanaState:
    """What the stand-in Grafana holds, and every request it saw."""

    folders: dict[str, Json] = field(default_factory=dict)
    permissions: dict[str, list[Json]] = field(default_factory=dict)
    datasources: dict[str, Json] = field(default_factory=dict)
    secrets: dict[str, Json] = field(default_factory=dict)
    dashboards: dict[str, Json] = field(default_factory=dict)  # uid → {"dashboard", "folderUid"}
    requests: list[tuple[str, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    next_id: int = 1

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] in {"POST", "PUT", "DELETE", "PATCH"}]

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class Handler(BaseHTTPRequestHandler):
    """Grafana 13's answers to the endpoints the push calls; anything else is a 404."""

    state: GrafanaState

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def _handle(self, method: str) -> None:
        state = self.state
        url = urlparse(self.path)
        path, query = url.path, parse_qs(url.query)
        state.requests.append((method, path))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._reply(401, {"message": "Unauthorized"})
            return
        body = self._body() if method in {"POST", "PUT"} else None
        routes = [
            ("GET", r"/api/health", self.health),
            ("GET", r"/api/folders/([^/]+)", self.get_folder),
            ("POST", r"/api/folders", self.create_folder),
            ("PUT", r"/api/folders/([^/]+)", self.update_folder),
            ("GET", r"/api/folders/([^/]+)/permissions", self.get_permissions),
            ("POST", r"/api/folders/([^/]+)/permissions", self.set_permissions),
            ("GET", r"/api/datasources/uid/([^/]+)", self.get_datasource),
            ("POST", r"/api/datasources", self.create_datasource),
            ("PUT", r"/api/datasources/uid/([^/]+)", self.update_datasource),
            ("GET", r"/api/search", self.search),
            ("GET", r"/api/dashboards/uid/([^/]+)", self.get_dashboard),
            ("POST", r"/api/dashboards/db", self.save_dashboard),
        ]
        for verb, pattern, route in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                route(*match.groups(), body=body, query=query)
                return
        if re.fullmatch(r"/api/datasources/(\d+|name/.*|id/.*)", path):
            state.violations.append(f"{method} {path}: Grafana 13 addresses data sources by uid")
        else:
            state.violations.append(f"{method} {path}: not an endpoint of the contract")
        self._reply(404, {"message": "Not found"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # ---- endpoints ----

    def health(self, **_: Any) -> None:
        self._reply(200, {"database": "ok", "version": "13.0.0"})

    def get_folder(self, uid: str, **_: Any) -> None:
        folder = self.state.folders.get(uid)
        self._reply(200, folder) if folder else self._reply(404, {"message": "folder not found"})

    def create_folder(self, body: Json, **_: Any) -> None:
        uid, title = body.get("uid"), body.get("title")
        if not uid or not title:
            self._reply(400, {"message": "uid and title are required"})
            return
        if uid in self.state.folders:
            self._reply(409, {"message": "a folder with the same uid already exists"})
            return
        folder = {"id": self.state.new_id(), "uid": uid, "title": title, "version": 1}
        self.state.folders[uid] = folder
        # Grafana's defaults: Viewers view, Editors edit, and the creator administers.
        self.state.permissions[uid] = [
            {"role": "Viewer", "permission": 1, "permissionName": "View"},
            {"role": "Editor", "permission": 2, "permissionName": "Edit"},
            {"userId": 1, "userLogin": "sa-push", "permission": 4, "permissionName": "Admin"},
        ]
        self._reply(200, folder)

    def update_folder(self, uid: str, body: Json, **_: Any) -> None:
        folder = self.state.folders.get(uid)
        if folder is None:
            self._reply(404, {"message": "folder not found"})
            return
        if body.get("version") != folder["version"] and not body.get("overwrite"):
            self._reply(412, {"message": "the folder has been changed by someone else"})
            return
        folder.update(title=body["title"], version=folder["version"] + 1)
        self._reply(200, folder)

    def get_permissions(self, uid: str, **_: Any) -> None:
        if uid not in self.state.folders:
            self._reply(404, {"message": "folder not found"})
            return
        self._reply(200, self.state.permissions[uid])

    def set_permissions(self, uid: str, body: Json, **_: Any) -> None:
        if uid not in self.state.folders:
            self._reply(404, {"message": "folder not found"})
            return
        items = body.get("items")
        if not isinstance(items, list):
            self._reply(400, {"message": "items required"})
            return
        self.state.permissions[uid] = copy.deepcopy(items)
        self._reply(200, {"message": "Folder permissions updated"})

    def _public_datasource(self, uid: str) -> Json:
        stored = self.state.datasources[uid]
        secret = self.state.secrets.get(uid, {})
        return {**stored, "secureJsonFields": {key: True for key, v in secret.items() if v}}

    def get_datasource(self, uid: str, **_: Any) -> None:
        if uid not in self.state.datasources:
            self._reply(404, {"message": "Data source not found"})
            return
        self._reply(200, self._public_datasource(uid))

    def create_datasource(self, body: Json, **_: Any) -> None:
        uid, name = body.get("uid"), body.get("name")
        if not uid or not name or not body.get("type"):
            self._reply(400, {"message": "uid, name and type are required"})
            return
        if uid in self.state.datasources or any(
            d["name"] == name for d in self.state.datasources.values()
        ):
            self._reply(409, {"message": "data source with the same name or uid already exists"})
            return
        secret = body.pop("secureJsonData", None) or {}
        self.state.datasources[uid] = {**body, "id": self.state.new_id(), "version": 1}
        self.state.secrets[uid] = secret
        self._reply(
            200, {"datasource": self._public_datasource(uid), "message": "Datasource added"}
        )

    def update_datasource(self, uid: str, body: Json, **_: Any) -> None:
        current = self.state.datasources.get(uid)
        if current is None:
            self._reply(404, {"message": "Data source not found"})
            return
        secret = body.pop("secureJsonData", None)
        if secret is not None:
            self.state.secrets[uid] = secret
        self.state.datasources[uid] = {
            **body,
            "id": current["id"],
            "uid": uid,
            "version": current["version"] + 1,
        }
        self._reply(
            200, {"datasource": self._public_datasource(uid), "message": "Datasource updated"}
        )

    def search(self, query: dict[str, list[str]], **_: Any) -> None:
        wanted = set(query.get("dashboardUIDs", [])) or set(self.state.dashboards)
        hits = [
            {
                "uid": uid,
                "title": entry["dashboard"]["title"],
                "type": "dash-db",
                "folderUid": entry["folderUid"],
                "url": f"/d/{uid}",
            }
            for uid, entry in sorted(self.state.dashboards.items())
            if uid in wanted and query.get("type", ["dash-db"]) == ["dash-db"]
        ]
        self._reply(200, hits)

    def get_dashboard(self, uid: str, **_: Any) -> None:
        entry = self.state.dashboards.get(uid)
        if entry is None:
            self._reply(404, {"message": "Dashboard not found"})
            return
        self._reply(
            200,
            {
                "dashboard": entry["dashboard"],
                "meta": {"folderUid": entry["folderUid"], "provisioned": False, "slug": uid},
            },
        )

    def save_dashboard(self, body: Json, **_: Any) -> None:
        dashboard = body.get("dashboard") or {}
        uid, folder_uid = dashboard.get("uid"), body.get("folderUid", "")
        if "folderId" in body:
            self.state.violations.append("POST /api/dashboards/db with a numeric folderId")
        if not uid or not dashboard.get("title"):
            self._reply(400, {"message": "Dashboard title and uid are required"})
            return
        if folder_uid and folder_uid not in self.state.folders:
            self._reply(400, {"message": "folder not found"})
            return
        current = self.state.dashboards.get(uid)
        if current and not body.get("overwrite"):
            self._reply(412, {"status": "version-mismatch", "message": "changed by someone else"})
            return
        version = current["dashboard"]["version"] + 1 if current else 1
        stored = {
            **copy.deepcopy(dashboard),
            "id": current["dashboard"]["id"] if current else self.state.new_id(),
            "version": version,
        }
        self.state.dashboards[uid] = {"dashboard": stored, "folderUid": folder_uid}
        self._reply(200, {"status": "success", "uid": uid, "version": version, "url": f"/d/{uid}"})


@pytest.fixture
def grafana() -> Iterator[tuple[str, GrafanaState]]:
    state = GrafanaState()
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def want(token: str = "admin:secret") -> Desired:
    return desired(TARGETS, influx_token=token)


def actions(changes: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for change in changes:
        out[change.action] = out.get(change.action, 0) + 1
    return out


OBJECTS = len(FOLDERS) * 2 + 3 + len(BOARDS)  # folders, their permissions, data sources, boards


def test_contract_first_push_creates_everything(grafana: tuple[str, GrafanaState]) -> None:
    url, state = grafana
    changes = push(want(), GrafanaClientPort(url, TOKEN))
    assert actions(changes) == {"create": OBJECTS}
    assert {uid: f["title"] for uid, f in state.folders.items()} == {
        f.uid: f.title for f in FOLDERS
    }
    assert set(state.datasources) == {INFLUX_UID, INFLUX_AGG_UID, PROMETHEUS_UID}
    for uid, bucket in ((INFLUX_UID, "city-raw"), (INFLUX_AGG_UID, "city-agg")):
        influx = state.datasources[uid]
        assert influx["type"] == "influxdb" and influx["url"] == "http://influxdb:8086"
        assert influx["jsonData"]["version"] == "Flux"
        assert influx["jsonData"]["defaultBucket"] == bucket
        assert state.secrets[uid] == {"token": "admin:secret"}
    assert {uid: e["folderUid"] for uid, e in state.dashboards.items()} == {
        b.uid: b.folder.uid for b in BOARDS
    }
    # anonymous visitors are Viewers: they see the city folder only
    viewers = {
        uid
        for uid, items in state.permissions.items()
        if any(item.get("role") == "Viewer" for item in items)
    }
    assert viewers == {f.uid for f in FOLDERS if f.public}
    assert state.violations == []


def test_contract_second_push_changes_nothing(grafana: tuple[str, GrafanaState]) -> None:
    url, state = grafana
    port = GrafanaClientPort(url, TOKEN)
    push(want(), port)
    before = len(state.requests)
    writes = len(state.writes())
    versions = {uid: e["dashboard"]["version"] for uid, e in state.dashboards.items()}
    changes = push(want(), port)
    assert actions(changes) == {"unchanged": OBJECTS}
    assert len(state.writes()) == writes, state.requests[before:]
    assert {uid: e["dashboard"]["version"] for uid, e in state.dashboards.items()} == versions
    assert state.violations == []


def test_contract_dry_run_writes_nothing(grafana: tuple[str, GrafanaState]) -> None:
    url, state = grafana
    changes = push(want(), GrafanaClientPort(url, TOKEN), dry_run=True)
    assert actions(changes) == {"create": OBJECTS}
    assert state.writes() == [] and state.dashboards == {} and state.folders == {}


def test_contract_push_repairs_drift_and_only_that(grafana: tuple[str, GrafanaState]) -> None:
    url, state = grafana
    port = GrafanaClientPort(url, TOKEN)
    push(want(), port)
    state.folders["urbanpulse-city"]["title"] = "Renamed by hand"
    state.datasources[PROMETHEUS_UID]["url"] = "http://elsewhere:9090"
    state.dashboards["urbanpulse-mobility"]["dashboard"]["title"] = "Edited"
    state.dashboards["urbanpulse-platform"]["folderUid"] = "urbanpulse-city"
    state.permissions["urbanpulse-operations"].append({"role": "Viewer", "permission": 1})

    planned = [c for c in push(want(), port, dry_run=True) if c.action != "unchanged"]
    assert [(c.kind, c.uid, c.action) for c in planned] == [
        ("folder", "urbanpulse-city", "update"),
        ("permissions", "urbanpulse-operations", "update"),
        ("datasource", PROMETHEUS_UID, "update"),
        ("dashboard", "urbanpulse-mobility", "update"),
        ("dashboard", "urbanpulse-platform", "update"),
    ]
    assert "url" in planned[2].detail and "title" in planned[3].detail
    done = [c for c in push(want(), port) if c.action != "unchanged"]
    assert done == planned
    assert state.folders["urbanpulse-city"]["title"] == "UrbanPulse · City"
    assert state.datasources[PROMETHEUS_UID]["url"] == "http://prometheus:9090"
    assert state.dashboards["urbanpulse-mobility"]["dashboard"]["title"] == "Mobility"
    assert state.dashboards["urbanpulse-platform"]["folderUid"] == "urbanpulse-operations"
    assert all(i.get("role") != "Viewer" for i in state.permissions["urbanpulse-operations"])
    assert actions(push(want(), port)) == {"unchanged": OBJECTS}


def test_contract_a_lost_token_is_set_again(grafana: tuple[str, GrafanaState]) -> None:
    url, state = grafana
    port = GrafanaClientPort(url, TOKEN)
    push(want(), port)
    state.secrets[INFLUX_UID] = {}
    changed = [c for c in push(want(), port) if c.action != "unchanged"]
    assert [(c.uid, c.detail) for c in changed] == [(INFLUX_UID, "token")]
    assert state.secrets[INFLUX_UID] == {"token": "admin:secret"}


def test_contract_cli_push_dry_run_then_push_then_nothing(
    grafana: tuple[str, GrafanaState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = grafana
    monkeypatch.setenv("URBANPULSE_DASHBOARDS__PROMETHEUS_URL", "http://prometheus:9090")
    runner = CliRunner()
    args = ["dashboards", "push", "--url", url, "--token", TOKEN]

    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would change {OBJECTS} of {OBJECTS} object(s)" in dry.output
    assert "create    dashboard   urbanpulse-experiment" in dry.output
    assert state.writes() == []

    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert f"changed {OBJECTS} of {OBJECTS} object(s)" in first.output

    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert f"changed 0 of {OBJECTS} object(s)" in second.output
    assert state.violations == []


def test_contract_wrong_token_fails_loudly(grafana: tuple[str, GrafanaState]) -> None:
    url, state = grafana
    result = CliRunner().invoke(app, ["dashboards", "push", "--url", url, "--token", "wrong"])
    assert result.exit_code != 0
    assert state.folders == {} and state.writes() == []
