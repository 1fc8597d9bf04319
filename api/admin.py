"""Sensor-registry administration: the changes (pure) and the locked registry file.

The routes, ``/v1/admin`` behind an API key, are :mod:`api.routes.admin`.

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
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from urbanpulse.model import ID_PATTERN
from urbanpulse.quantities import Privacy
from urbanpulse.registry import (
    RegistryError,
    SensorInfo,
    kind_of,
    parse_registry,
    read_registry,
)

Key = tuple[str, str]
Sensors = dict[Key, SensorInfo]


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

    def update_text(self, apply: Callable[[str], str]) -> str:
        """Rewrite the file's text with ``apply`` under the same lock, atomically, as
        :meth:`update` does (the experiments, :mod:`api.registry_view`); returns the text."""
        path = self._file()
        with self._locked(path):
            text = apply(self._text(path))
            self._parse(path, text)  # never write what the worker cannot read
            self._replace(path, text)
        return text

    @staticmethod
    def _text(path: Path) -> str:
        try:
            return read_registry(path) if path.exists() else ""
        except OSError as err:
            raise NotConfigured(f"cannot read the sensor registry {path}: {err}") from None
        except RegistryError as err:  # not UTF-8: a hand edit in another encoding
            raise Conflict(
                f"the registry file {path.name} is invalid, fix it first: {err}"
            ) from None

    @staticmethod
    def _parse(path: Path, text: str) -> Sensors:
        try:
            return parse_registry(text, kind_of(path))
        except RegistryError as err:
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
