"""The sensor registry: what a city knows about each sensor (format: docs/registry.md).

Parsing is pure (:func:`parse_registry`); :class:`RegistryFile` is the thin adapter that
re-reads the file when it changed, so a city edits it without restarting the worker.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from urbanpulse.model import ID_PATTERN, Location
from urbanpulse.quantities import Privacy

log = logging.getLogger(__name__)


class SensorInfo(BaseModel):
    """One registered sensor."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant: str = Field(pattern=ID_PATTERN)
    sensor_id: str = Field(pattern=ID_PATTERN)
    district: str | None = Field(None, pattern=ID_PATTERN)
    sensor_type: str | None = None
    licence: str | None = None
    privacy: Privacy = "open"
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    alt: float | None = None
    interval_s: float | None = Field(None, gt=0)
    # Retired: taken out of service. Kept (not deleted) so its history stays explained and its
    # readings, if any still come, are not treated as an unknown sensor's; no stale alerts.
    status: Literal["active", "retired"] = "active"

    @property
    def location(self) -> Location | None:
        """The registered position, if both coordinates are known."""
        if self.lat is None or self.lon is None:
            return None
        return Location(lat=self.lat, lon=self.lon, alt=self.alt)


Registry = Mapping[tuple[str, str], SensorInfo]


class RegistryError(ValueError):
    """The registry file cannot be used; the message says where and why."""


def decode_registry(data: bytes, name: str) -> str:
    """A registry file's bytes as text; RegistryError when they are not UTF-8 (docs/registry.md)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RegistryError(
            f"{name} is not UTF-8 text (byte {err.start}); save it as UTF-8"
        ) from None


def read_registry(path: Path) -> str:
    """The text of a registry file: OSError when it cannot be read, RegistryError when it is
    not UTF-8."""
    return decode_registry(path.read_bytes(), path.name)


def parse_registry(text: str, kind: Literal["yaml", "csv"]) -> dict[tuple[str, str], SensorInfo]:
    """Parse a registry file's text into ``(tenant, sensor_id) → SensorInfo``.

    Whatever the text, the answer is a registry or a RegistryError that says why not.
    """
    try:
        rows = _rows(text, kind)
    except (csv.Error, yaml.YAMLError, RecursionError) as err:
        raise RegistryError(f"not a valid {kind.upper()} registry: {err}") from None
    registry: dict[tuple[str, str], SensorInfo] = {}
    for number, row in enumerate(rows, start=1):
        try:
            info = SensorInfo.model_validate(row)
        except ValidationError as err:
            raise RegistryError(f"sensor {number}: {err}") from None
        key = (info.tenant, info.sensor_id)
        if key in registry:
            raise RegistryError(f"sensor {number}: {info.tenant}/{info.sensor_id} is listed twice")
        registry[key] = info
    return registry


def _rows(text: str, kind: Literal["yaml", "csv"]) -> list[Any]:
    """The sensor rows of a registry file's text, not yet checked."""
    if kind == "csv":
        return [
            {k.strip(): v.strip() for k, v in row.items() if k and isinstance(v, str) and v.strip()}
            for row in csv.DictReader(io.StringIO(text))
        ]
    loaded = yaml.safe_load(text) or {}
    rows = loaded.get("sensors", []) if isinstance(loaded, dict) else loaded
    if not isinstance(rows, list):
        raise RegistryError("a YAML registry is a list of sensors, or {sensors: [...]}")
    return rows


def kind_of(path: Path) -> Literal["yaml", "csv"]:
    """The registry format a file name says."""
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".csv":
        return "csv"
    raise RegistryError(f"{path}: a registry file ends in .yaml, .yml or .csv")


class RegistryFile:
    """The registry, re-read when its file changes (checked at most every ``check_s``).

    A file that becomes invalid is logged and the last good registry stays in force.
    """

    def __init__(
        self, path: str, check_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._path = Path(path) if path else None
        self._check_s = check_s
        self._clock = clock
        self._checked = -float("inf")
        self._stamp: tuple[int, int] | None = None
        self._registry: Registry = {}
        if self._path is not None:
            kind_of(self._path)
            self.current()
            if self._stamp is None:
                raise RegistryError(f"{self._path}: cannot read the sensor registry")

    @property
    def enabled(self) -> bool:
        """Whether a registry file is configured at all."""
        return self._path is not None

    def current(self) -> Registry:
        """The registry, reloaded first if the file changed."""
        if self._path is None or self._clock() - self._checked < self._check_s:
            return self._registry
        self._checked = self._clock()
        try:
            st = os.stat(self._path)
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self._registry = parse_registry(read_registry(self._path), kind_of(self._path))
                self._stamp = stamp
                log.info("sensor registry %s: %d sensors", self._path, len(self._registry))
        except (OSError, RegistryError) as err:
            log.error(
                "sensor registry %s not (re)loaded, keeping the last one: %s", self._path, err
            )
        return self._registry
