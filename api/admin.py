"""Sensor-registry administration under ``/v1/admin``, behind an API key.

The registry file (``streams.registry_path``, YAML or CSV, docs/registry.md) stays the one
source of truth: every change is a read-modify-write of that file under an exclusive lock
(``flock`` on a ``.lock`` file beside it, so concurrent requests, API processes and scripts
serialise), written to a temporary file in the same folder and moved over the original with
``os.replace`` (readers see the old or the new file, never half of one). The result is parsed
again before it replaces anything. The stream worker notices the new file at its next reload
(``streams.registry_reload_s``); nothing else needs telling.

Formats are kept: a YAML file keeps its shape (``sensors:`` mapping or bare list, other
top-level keys) but not its comments; a CSV file keeps its column order, and gains a column
only when a sensor needs one it lacks. Fields at their default are not written.

Retiring a sensor sets ``status: retired``; it is never deleted, so its history stays
explained (docs/registry.md says what the worker does with retired sensors).
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter, Body, Depends, HTTPException, Response, Security
from fastapi import Path as PathParam
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.http import PROBLEM_MEDIA_TYPE
from api.ratelimit import API_KEY_HEADER, ApiKeys
from urbanpulse.model import ID_PATTERN
from urbanpulse.quantities import Privacy
from urbanpulse.registry import RegistryError, SensorInfo, kind_of, parse_registry

Key = tuple[str, str]
Sensors = dict[Key, SensorInfo]

API_KEY = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="ApiKey",
    description="an API key of `api.api_keys` / `api.api_keys_file` (docs/api.md)",
    auto_error=False,
)
PROBLEM = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no API key, or not a valid one", "content": PROBLEM},
    503: {
        "description": "no registry file is configured (`streams.registry_path`), or it "
        "cannot be read or written",
        "content": PROBLEM,
    },
}
EXAMPLE_SENSOR = {
    "tenant": "utrecht",
    "sensor_id": "air-001",
    "district": "centrum",
    "sensor_type": "SDS011",
    "licence": "CC-BY-4.0",
    "privacy": "open",
    "lat": 52.0907,
    "lon": 5.1214,
    "interval_s": 60,
}
TenantPath = Annotated[str, PathParam(pattern=ID_PATTERN, examples=["utrecht"])]
SensorPath = Annotated[str, PathParam(pattern=ID_PATTERN, examples=["air-001"])]


class RegistryList(BaseModel):
    """Every sensor of the registry, retired ones included, by tenant and sensor id."""

    data: list[SensorInfo]


class SensorChange(BaseModel):
    """Fields to change (a JSON merge patch): absent fields stay, ``null`` clears one."""

    model_config = ConfigDict(extra="forbid")

    district: str | None = Field(None, pattern=ID_PATTERN)
    sensor_type: str | None = None
    licence: str | None = None
    privacy: Privacy | None = None
    lat: float | None = None
    lon: float | None = None
    alt: float | None = None
    interval_s: float | None = None
    status: Literal["active", "retired"] | None = None


class NotConfigured(Exception):
    """No registry file is configured, or it cannot be used."""


class Conflict(Exception):
    """The change clashes with the registry as it is (duplicate, or the file is invalid)."""


class Unknown(Exception):
    """No such sensor in the registry."""


# ---------------------------------------------------------------- pure: the changes


def add(sensors: Sensors, info: SensorInfo) -> Sensors:
    """The registry with ``info`` added; Conflict if it is there already."""
    key = (info.tenant, info.sensor_id)
    if key in sensors:
        raise Conflict(f"{info.tenant}/{info.sensor_id} is in the registry already")
    return sensors | {key: info}


def change(sensors: Sensors, key: Key, patch: dict[str, Any]) -> Sensors:
    """The registry with ``patch`` merged into one sensor (ValidationError if invalid)."""
    if key not in sensors:
        raise Unknown(f"{key[0]}/{key[1]} is not in the registry")
    merged = sensors[key].model_dump() | patch
    return sensors | {key: SensorInfo.model_validate(merged)}


def render(sensors: Sensors, kind: Literal["yaml", "csv"], original: str) -> str:
    """The registry as file text of ``kind``, shaped like ``original`` (pure)."""
    rows = [
        info.model_dump(mode="json", exclude_defaults=True) for _, info in sorted(sensors.items())
    ]
    return _render_csv(rows, original) if kind == "csv" else _render_yaml(rows, original)


def _render_yaml(rows: list[dict[str, Any]], original: str) -> str:
    loaded = yaml.safe_load(original) if original.strip() else None
    document: Any = rows if isinstance(loaded, list) else {**(loaded or {}), "sensors": rows}
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _render_csv(rows: list[dict[str, Any]], original: str) -> str:
    header = next(csv.reader(io.StringIO(original)), None) if original.strip() else None
    columns = [c.strip() for c in header] if header else ["tenant", "sensor_id"]
    for name in SensorInfo.model_fields:
        if name not in columns and any(name in row for row in rows):
            columns.append(name)
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n", extrasaction="raise")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 60, not 60.0, as a person writes it
    return "" if value is None else str(value)


# ---------------------------------------------------------------- I/O: the file


class RegistryStore:
    """The registry file: read it, or change it atomically under a lock."""

    def __init__(self, path: str) -> None:
        self.path = Path(path) if path else None

    def _file(self) -> Path:
        if self.path is None:
            raise NotConfigured(
                "no sensor registry is configured: set URBANPULSE_STREAMS__REGISTRY_PATH "
                "to a .yaml or .csv file (docs/registry.md)"
            )
        return self.path

    def read(self) -> Sensors:
        """The registry as the file says now."""
        path = self._file()
        return self._parse(path, self._text(path))

    def update(self, apply: Callable[[Sensors], Sensors]) -> Sensors:
        """Apply a change to the file's registry and write the result; returns it."""
        path = self._file()
        with self._locked(path):
            original = self._text(path)
            result = apply(self._parse(path, original))
            text = render(result, kind_of(path), original)
            parse_registry(text, kind_of(path))  # never write what the worker cannot read
            self._replace(path, text)
        return result

    @staticmethod
    def _text(path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8") if path.exists() else ""
        except OSError as err:
            raise NotConfigured(f"cannot read the sensor registry {path}: {err}") from None

    @staticmethod
    def _parse(path: Path, text: str) -> Sensors:
        try:
            return parse_registry(text, kind_of(path))
        except (RegistryError, yaml.YAMLError) as err:
            raise Conflict(
                f"the registry file {path.name} is invalid, fix it first: {err}"
            ) from None

    @staticmethod
    @contextmanager
    def _locked(path: Path) -> Iterator[None]:
        # A lock file beside the registry, not the registry itself: os.replace swaps the
        # registry's inode, and a lock on the old inode would not exclude the next writer.
        try:
            handle = open(path.with_name(f".{path.name}.lock"), "a")  # noqa: SIM115
        except OSError as err:
            raise NotConfigured(f"cannot lock the sensor registry {path}: {err}") from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _replace(path: Path, text: str) -> None:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        try:
            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as err:
            raise NotConfigured(f"cannot write beside the sensor registry {path}: {err}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, mode)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


# ---------------------------------------------------------------- HTTP: the routes


def admin_router(registry_path: str, keys: ApiKeys) -> APIRouter:
    """The ``/v1/admin`` routes over the registry file at ``registry_path``."""
    store = RegistryStore(registry_path)

    def client(key: Annotated[str | None, Security(API_KEY)] = None) -> str:
        found = keys.identify(key) if key else None
        if found is None:
            raise HTTPException(
                401,
                f"administration needs a valid API key in the {API_KEY_HEADER} header",
                headers={"WWW-Authenticate": f'APIKey header="{API_KEY_HEADER}"'},
            )
        return found

    router = APIRouter(
        prefix="/v1/admin", tags=["admin"], dependencies=[Depends(client)], responses=RESPONSES
    )

    @router.get("/sensors", response_model=RegistryList)
    def list_sensors() -> RegistryList:
        """Every sensor of the registry file, retired ones included."""
        sensors = _run(store.read)
        return RegistryList(data=[info for _, info in sorted(sensors.items())])

    @router.get(
        "/sensors/{tenant}/{sensor_id}",
        response_model=SensorInfo,
        responses={404: {"description": "not in the registry", "content": PROBLEM}},
    )
    def get_sensor(tenant: TenantPath, sensor_id: SensorPath) -> SensorInfo:
        """One sensor of the registry."""
        sensors = _run(store.read)
        if (tenant, sensor_id) not in sensors:
            raise HTTPException(404, f"{tenant}/{sensor_id} is not in the registry")
        return sensors[(tenant, sensor_id)]

    @router.post(
        "/sensors",
        status_code=201,
        response_model=SensorInfo,
        responses={
            409: {"description": "already registered, or the file is invalid", "content": PROBLEM},
            422: {"description": "the body is not a valid sensor", "content": PROBLEM},
        },
    )
    def add_sensor(
        response: Response,
        info: Annotated[
            SensorInfo,
            Body(openapi_examples={"air quality sensor": {"value": EXAMPLE_SENSOR}}),
        ],
    ) -> SensorInfo:
        """Register a sensor; the worker picks it up at its next registry reload."""
        _run(lambda: store.update(lambda sensors: add(sensors, info)))
        response.headers["Location"] = f"/v1/admin/sensors/{info.tenant}/{info.sensor_id}"
        return info

    @router.patch(
        "/sensors/{tenant}/{sensor_id}",
        response_model=SensorInfo,
        responses={
            404: {"description": "not in the registry", "content": PROBLEM},
            409: {"description": "the registry file is invalid", "content": PROBLEM},
            422: {"description": "the change makes the sensor invalid", "content": PROBLEM},
        },
    )
    def change_sensor(
        tenant: TenantPath,
        sensor_id: SensorPath,
        patch: Annotated[
            SensorChange,
            Body(
                openapi_examples={
                    "move to a district": {"value": {"district": "oost"}},
                    "clear the position": {"value": {"lat": None, "lon": None}},
                }
            ),
        ],
    ) -> SensorInfo:
        """Change some fields of a sensor (JSON merge patch: `null` clears a field)."""
        key = (tenant, sensor_id)
        fields = patch.model_dump(exclude_unset=True)
        return _run(lambda: store.update(lambda sensors: change(sensors, key, fields)))[key]

    @router.post(
        "/sensors/{tenant}/{sensor_id}/retire",
        response_model=SensorInfo,
        responses={
            404: {"description": "not in the registry", "content": PROBLEM},
            409: {"description": "the registry file is invalid", "content": PROBLEM},
        },
    )
    def retire_sensor(tenant: TenantPath, sensor_id: SensorPath) -> SensorInfo:
        """Retire a sensor: it stays in the registry with `status: retired`; its data stays.

        Idempotent. Undo with a PATCH of `{"status": "active"}`.
        """
        key = (tenant, sensor_id)
        retired = {"status": "retired"}
        return _run(lambda: store.update(lambda sensors: change(sensors, key, retired)))[key]

    return router


def _run(action: Callable[[], Sensors]) -> Sensors:
    """Run a store action; its exceptions become problems with the right status."""
    try:
        return action()
    except NotConfigured as err:
        raise HTTPException(503, str(err)) from None
    except Conflict as err:
        raise HTTPException(409, str(err)) from None
    except Unknown as err:
        raise HTTPException(404, str(err)) from None
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise HTTPException(422, problems) from None
