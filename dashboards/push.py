"""``urbanpulse dashboards push``: make a running Grafana match the code, idempotently.

The core is pure: :func:`desired` says what Grafana should hold, and ``*_change`` functions
compare one object with what Grafana returned. :class:`GrafanaPort` is the one seam to
Grafana's HTTP API; :class:`GrafanaClientPort` implements it with ``grafana-client`` using
uid-only addressing (folders, data sources and dashboards by uid: Grafana 13 has no numeric
data source ids in its API). A second push with nothing changed makes no write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from dashboards.boards import BOARDS, FOLDERS, Folder
from dashboards.datasources import (
    INFLUX_UIDS,
    DatasourceTargets,
    influx_datasources,
    prometheus_datasource,
)
from dashboards.render import board_json

Json = dict[str, Any]
Action = Literal["create", "update", "unchanged"]
MESSAGE = "urbanpulse dashboards push"

# Folder permissions by role. Public folders keep Grafana's defaults (Viewers, and so
# anonymous visitors, may read); the others are hidden from Viewers and anonymous visitors.
PUBLIC_PERMISSIONS = (("Editor", 2), ("Viewer", 1))
STAFF_PERMISSIONS = {"urbanpulse-operations": (("Editor", 1),), "urbanpulse-lab": (("Editor", 2),)}


@dataclass(frozen=True)
class Change:
    """One object of the push and what it needs."""

    kind: Literal["folder", "permissions", "datasource", "dashboard"]
    uid: str
    action: Action
    detail: str = ""

    def line(self) -> str:
        """A line for people: ``update dashboard urbanpulse-mobility (panels)``."""
        return f"{self.action:9} {self.kind:11} {self.uid}" + (
            f"  ({self.detail})" if self.detail else ""
        )


@dataclass(frozen=True)
class Desired:
    """Everything a push puts in Grafana."""

    folders: tuple[Folder, ...]
    datasources: tuple[Json, ...]
    dashboards: tuple[tuple[str, Json], ...]  # (folder uid, dashboard JSON)
    secrets: dict[str, Json] = field(default_factory=dict)  # datasource uid → secureJsonData


class GrafanaPort(Protocol):
    """The Grafana HTTP endpoints the push uses (all by uid)."""

    def get_folder(self, uid: str) -> Json | None:
        """GET /api/folders/{uid}; None when there is none."""

    def create_folder(self, uid: str, title: str) -> None:
        """POST /api/folders."""

    def update_folder(self, uid: str, title: str, version: int) -> None:
        """PUT /api/folders/{uid}."""

    def get_folder_permissions(self, uid: str) -> list[Json]:
        """GET /api/folders/{uid}/permissions."""

    def set_folder_permissions(self, uid: str, items: list[Json]) -> None:
        """POST /api/folders/{uid}/permissions (replaces the list)."""

    def get_datasource(self, uid: str) -> Json | None:
        """GET /api/datasources/uid/{uid}; None when there is none."""

    def create_datasource(self, body: Json) -> None:
        """POST /api/datasources."""

    def update_datasource(self, uid: str, body: Json) -> None:
        """PUT /api/datasources/uid/{uid}."""

    def find_dashboards(self, uids: list[str]) -> dict[str, str]:
        """GET /api/search?type=dash-db&dashboardUIDs=…: uid → folder uid of those that exist."""

    def get_dashboard(self, uid: str) -> Json | None:
        """GET /api/dashboards/uid/{uid}: ``{"dashboard": …, "meta": …}``."""

    def save_dashboard(self, dashboard: Json, folder_uid: str, message: str) -> None:
        """POST /api/dashboards/db with overwrite."""


def desired(targets: DatasourceTargets, influx_token: str = "") -> Desired:
    """What Grafana should hold for these data source targets (and InfluxDB token)."""
    boards = tuple((board.folder.uid, board_json(board)) for board in BOARDS)
    secrets = {uid: {"token": influx_token} for uid in INFLUX_UIDS} if influx_token else {}
    return Desired(
        folders=FOLDERS,
        datasources=(*influx_datasources(targets), prometheus_datasource(targets)),
        dashboards=boards,
        secrets=secrets,
    )


# ---- pure comparisons -------------------------------------------------------------------


def folder_change(folder: Folder, current: Json | None) -> Change:
    """Whether a folder is missing or has another title."""
    if current is None:
        return Change("folder", folder.uid, "create", folder.title)
    if current.get("title") != folder.title:
        return Change("folder", folder.uid, "update", f"title {current.get('title')!r}")
    return Change("folder", folder.uid, "unchanged")


def permission_items(folder: Folder) -> list[Json]:
    """The role permissions a folder should have (1 = view, 2 = edit)."""
    roles = PUBLIC_PERMISSIONS if folder.public else STAFF_PERMISSIONS.get(folder.uid, ())
    return [{"role": role, "permission": level} for role, level in roles]


MANAGED_ROLES = ("Viewer", "Editor")


def _permission_set(items: Iterable[Json]) -> set[tuple[str, int]]:
    """The Viewer and Editor role grants: the only ones the push manages.

    Admins can always see everything, and Grafana adds the folder's creator as a user with
    admin rights; neither decides what anonymous visitors (Viewers) see, so both are ignored.
    """
    return {
        (str(item["role"]), int(item.get("permission") or 0))
        for item in items
        if item.get("role") in MANAGED_ROLES and not item.get("inherited")
    }


def permissions_change(folder: Folder, current: list[Json] | None) -> Change:
    """Whether a folder's permissions differ from its role permissions."""
    if current is None:
        return Change("permissions", folder.uid, "create", "public" if folder.public else "staff")
    if _permission_set(current) != _permission_set(permission_items(folder)):
        return Change("permissions", folder.uid, "update", "public" if folder.public else "staff")
    return Change("permissions", folder.uid, "unchanged")


def datasource_change(wanted: Json, current: Json | None, has_secret: bool = False) -> Change:
    """Whether a data source is missing, differs in a field the push manages, or lacks its token."""
    uid = str(wanted["uid"])
    if current is None:
        return Change("datasource", uid, "create", str(wanted["name"]))
    differs = [
        key for key, value in wanted.items() if key != "jsonData" and current.get(key) != value
    ]
    current_json = current.get("jsonData") or {}
    differs += [
        f"jsonData.{key}"
        for key, value in wanted.get("jsonData", {}).items()
        if current_json.get(key) != value
    ]
    if has_secret and not (current.get("secureJsonFields") or {}).get("token"):
        differs.append("token")
    if differs:
        return Change("datasource", uid, "update", ", ".join(differs))
    return Change("datasource", uid, "unchanged")


IGNORED_DASHBOARD_KEYS = ("id", "version")


def _comparable(dashboard: Json) -> Json:
    return {k: v for k, v in dashboard.items() if k not in IGNORED_DASHBOARD_KEYS}


def dashboard_change(
    wanted: Json, folder_uid: str, current: Json | None, current_folder: str | None
) -> Change:
    """Whether a dashboard is missing, in another folder, or differs (ignoring id and version)."""
    uid = str(wanted["uid"])
    if current is None:
        return Change("dashboard", uid, "create", str(wanted.get("title", "")))
    reasons = []
    if current_folder != folder_uid:
        reasons.append(f"folder {current_folder!r}")
    stored = _comparable(current.get("dashboard") or {})
    mine = _comparable(wanted)
    changed = sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k))
    if changed:
        reasons.append(", ".join(changed))
    if reasons:
        return Change("dashboard", uid, "update", "; ".join(reasons))
    return Change("dashboard", uid, "unchanged")


# ---- the push -----------------------------------------------------------------------------


def push(want: Desired, grafana: GrafanaPort, dry_run: bool = False) -> list[Change]:
    """Bring Grafana in line with ``want``; with ``dry_run`` only say what would change."""
    changes: list[Change] = []
    for folder in want.folders:
        current = grafana.get_folder(folder.uid)
        change = folder_change(folder, current)
        changes.append(change)
        if not dry_run and change.action == "create":
            grafana.create_folder(folder.uid, folder.title)
        elif not dry_run and change.action == "update" and current is not None:
            grafana.update_folder(folder.uid, folder.title, int(current.get("version") or 0))
        permissions = None if current is None else grafana.get_folder_permissions(folder.uid)
        change = permissions_change(folder, permissions)
        changes.append(change)
        if not dry_run and change.action != "unchanged":
            grafana.set_folder_permissions(folder.uid, permission_items(folder))
    for wanted in want.datasources:
        uid = str(wanted["uid"])
        secret = want.secrets.get(uid)
        current = grafana.get_datasource(uid)
        change = datasource_change(wanted, current, has_secret=secret is not None)
        changes.append(change)
        body = {**wanted, "secureJsonData": secret} if secret else dict(wanted)
        if not dry_run and change.action == "create":
            grafana.create_datasource(body)
        elif not dry_run and change.action == "update":
            grafana.update_datasource(uid, body)
    existing = grafana.find_dashboards([str(d["uid"]) for _, d in want.dashboards])
    for folder_uid, dashboard in want.dashboards:
        uid = str(dashboard["uid"])
        current = grafana.get_dashboard(uid) if uid in existing else None
        change = dashboard_change(dashboard, folder_uid, current, existing.get(uid))
        changes.append(change)
        if not dry_run and change.action != "unchanged":
            grafana.save_dashboard(dashboard, folder_uid, MESSAGE)
    return changes


class GrafanaClientPort:
    """:class:`GrafanaPort` over ``grafana-client`` (token auth, uid-only endpoints)."""

    def __init__(self, url: str, token: str, timeout_s: float = 10.0) -> None:
        from grafana_client import GrafanaApi

        self._api = GrafanaApi.from_url(url, credential=token or None, timeout=timeout_s)

    @staticmethod
    def _missing(error: Exception) -> bool:
        return getattr(error, "status_code", None) == 404

    def _get(self, call: Any, *args: Any) -> Any:
        from grafana_client.client import GrafanaClientError

        try:
            return call(*args)
        except GrafanaClientError as error:
            if self._missing(error):
                return None
            raise

    def get_folder(self, uid: str) -> Json | None:
        """GET /api/folders/{uid}."""
        result: Json | None = self._get(self._api.folder.get_folder, uid)
        return result

    def create_folder(self, uid: str, title: str) -> None:
        """POST /api/folders."""
        self._api.folder.create_folder(title, uid=uid)

    def update_folder(self, uid: str, title: str, version: int) -> None:
        """PUT /api/folders/{uid}."""
        self._api.folder.update_folder(uid, title=title, version=version)

    def get_folder_permissions(self, uid: str) -> list[Json]:
        """GET /api/folders/{uid}/permissions."""
        result: list[Json] = self._api.folder.get_folder_permissions(uid)
        return result

    def set_folder_permissions(self, uid: str, items: list[Json]) -> None:
        """POST /api/folders/{uid}/permissions."""
        self._api.folder.update_folder_permissions(uid, {"items": items})

    def get_datasource(self, uid: str) -> Json | None:
        """GET /api/datasources/uid/{uid}."""
        result: Json | None = self._get(self._api.datasource.get_datasource_by_uid, uid)
        return result

    def create_datasource(self, body: Json) -> None:
        """POST /api/datasources."""
        self._api.datasource.create_datasource(body)

    def update_datasource(self, uid: str, body: Json) -> None:
        """PUT /api/datasources/uid/{uid}."""
        self._api.datasource.update_datasource_by_uid(uid, body)

    def find_dashboards(self, uids: list[str]) -> dict[str, str]:
        """GET /api/search?type=dash-db&dashboardUIDs=…."""
        hits: list[Json] = self._api.search.search_dashboards(
            type_="dash-db", dashboard_uids=uids, limit=5000
        )
        return {str(hit["uid"]): str(hit.get("folderUid") or "") for hit in hits if hit.get("uid")}

    def get_dashboard(self, uid: str) -> Json | None:
        """GET /api/dashboards/uid/{uid}."""
        result: Json | None = self._get(self._api.dashboard.get_dashboard, uid)
        return result

    def save_dashboard(self, dashboard: Json, folder_uid: str, message: str) -> None:
        """POST /api/dashboards/db."""
        self._api.dashboard.update_dashboard(
            {"dashboard": dashboard, "folderUid": folder_uid, "overwrite": True, "message": message}
        )
