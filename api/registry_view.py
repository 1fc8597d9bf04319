"""The registry file as the indicator and experiment routes read it: sensors and experiments,
parsed once per change of the file, and experiments written back atomically.

Reads are on the path of ``/v1/kpis`` (which sensors are not open data) and of every
experiment route, so the parsed file is kept until its modification time or size changes
(a ``stat`` per request; parsing a YAML registry of 500 sensors takes tens of milliseconds).
Writes go through :meth:`api.admin.RegistryStore.update_text`: the same lock file, temporary
file and ``os.replace`` as the sensor administration, so the two never lose each other's
changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from api.admin import Conflict, NotConfigured, RegistryStore
from urbanpulse.experiment_registry import Experiments, parse_experiments, with_experiments
from urbanpulse.registry import Registry, RegistryError, kind_of, parse_registry


@dataclass(frozen=True, kw_only=True)
class RegistrySnapshot:
    """The registry file's sensors and experiments at one moment."""

    sensors: Registry
    experiments: Experiments

    def hidden(self) -> frozenset[tuple[str, str]]:
        """(tenant, sensor) of every sensor the registry classes ``restricted`` or ``personal``:
        the open API never names them."""
        return frozenset(key for key, info in self.sensors.items() if info.privacy != "open")


EMPTY = RegistrySnapshot(sensors={}, experiments={})


class RegistryView:
    """The parsed registry file, re-read when it changed; experiments changed atomically."""

    def __init__(self, store: RegistryStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._snapshot = EMPTY

    @property
    def configured(self) -> bool:
        """Whether a registry file is configured at all."""
        return self._store.path is not None

    def snapshot(self) -> RegistrySnapshot:
        """Sensors and experiments as the file says now (empty without a registry).

        :class:`~api.admin.Conflict` when the file is invalid, :class:`~api.admin.NotConfigured`
        when it cannot be read.
        """
        path = self._store.path
        if path is None:
            return EMPTY
        try:
            status = path.stat()
        except FileNotFoundError:
            return EMPTY
        except OSError as err:
            raise NotConfigured(f"cannot read the sensor registry {path}: {err}") from None
        stamp = (status.st_mtime_ns, status.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._snapshot = _parse(path, _text(path))
                self._stamp = stamp
            return self._snapshot

    def update_experiments(self, apply: Callable[[Experiments], Experiments]) -> Experiments:
        """Apply a change to the file's experiments and write the file; returns them.

        Only a YAML registry holds experiments: a CSV one is a :class:`~api.admin.Conflict`.
        """
        path = self._store.path
        if path is not None and kind_of(path) != "yaml":
            raise Conflict(
                f"experiments live in a YAML registry; {path.name} is CSV (docs/registry.md)"
            )
        changed: dict[str, Experiments] = {}

        def rewrite(text: str) -> str:
            current = _parse(path or Path("registry.yaml"), text).experiments
            changed["result"] = apply(current)
            return with_experiments(text, changed["result"])

        try:
            self._store.update_text(rewrite)
        except RegistryError as err:
            raise Conflict(f"the registry file cannot be rewritten: {err}") from None
        return changed["result"]


def _text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise Conflict(f"the registry file {path.name} is not UTF-8 (byte {err.start})") from None
    except OSError as err:
        raise NotConfigured(f"cannot read the sensor registry {path}: {err}") from None


def _parse(path: Path, text: str) -> RegistrySnapshot:
    kind = kind_of(path)
    try:
        return RegistrySnapshot(
            sensors=parse_registry(text, kind), experiments=parse_experiments(text, kind)
        )
    except (RegistryError, yaml.YAMLError) as err:
        raise Conflict(f"the registry file {path.name} is invalid, fix it first: {err}") from None
