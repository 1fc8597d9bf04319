"""What a simulated fleet needs the platform to know: registry, MQTT credentials, tenant map.

Pure functions build the file contents; :func:`write_setup` is the thin adapter that writes
them. The registry follows docs/registry.md (``urbanpulse.registry.parse_registry`` reads it
back); the credentials come from ``urbanpulse.credentials``; the tenant map is the JSON the
ingestor reads from ``URBANPULSE_DECODERS__TENANT_BY_APPLICATION``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from simulators.scenario import Device, Scenario
from urbanpulse.credentials import credential_files as ingest_credential_files

# Devices that publish to our broker themselves; the others reach it through a network server.
DIRECT_FORMATS = frozenset({"json", "senml", "lpp", "sensorcommunity"})


def registry_entries(scenario: Scenario, fleet: Iterable[Device]) -> list[dict[str, Any]]:
    """One registry entry per sensor id the platform will see (each LPP channel is one)."""
    entries = []
    for device in fleet:
        for sensor_id in device.platform_sensor_ids():
            entries.append(
                {
                    "tenant": scenario.tenant,
                    "sensor_id": sensor_id,
                    "district": device.district,
                    "sensor_type": device.kind.name,
                    "licence": scenario.licence,
                    "privacy": device.kind.privacy,
                    "lat": device.lat,
                    "lon": device.lon,
                    "interval_s": device.interval_s,
                }
            )
    return entries


def registry_yaml(scenario: Scenario, fleet: Iterable[Device]) -> str:
    """The sensor registry of the fleet as YAML (``{sensors: [...]}``)."""
    header = (
        f"# Sensor registry of the simulated town {scenario.name!r}, written by "
        "`urbanpulse simulate --registry-out`.\n"
    )
    body = yaml.safe_dump(
        {"sensors": registry_entries(scenario, fleet)}, sort_keys=False, allow_unicode=True
    )
    return header + body


def tenant_map(scenario: Scenario, fleet: Iterable[Device]) -> dict[str, str]:
    """Network-server application → tenant, for the formats the fleet actually uses."""
    return scenario.tenant_by_application({d.format for d in fleet})


def unmapped_applications(mapping: Mapping[str, str], configured: Mapping[str, str]) -> list[str]:
    """The applications of ``mapping`` that ``configured`` sends to no or another tenant."""
    return sorted(app for app, tenant in mapping.items() if configured.get(app) != tenant)


def credential_files(
    scenario: Scenario, fleet: Iterable[Device], known_secrets: str = ""
) -> dict[str, str]:
    """Mosquitto password and ACL files and the secrets CSV for the directly connected devices.

    Devices behind The Things Stack or ChirpStack do not log in to our broker: their network
    server's integration does, and needs an account of its own (not generated here).
    """
    devices = [(scenario.tenant, d.device_id) for d in fleet if d.format in DIRECT_FORMATS]
    return ingest_credential_files(devices, known_secrets)


def write_setup(
    scenario: Scenario,
    fleet: list[Device],
    registry_out: Path | None,
    credentials_dir: Path | None,
    tenant_map_out: Path | None,
) -> list[Path]:
    """Write the registry, the credentials and the tenant map where asked; the paths written."""
    written = []
    if registry_out is not None:
        registry_out.parent.mkdir(parents=True, exist_ok=True)
        registry_out.write_text(registry_yaml(scenario, fleet), encoding="utf-8")
        written.append(registry_out)
    if credentials_dir is not None:
        credentials_dir.mkdir(parents=True, exist_ok=True)
        secrets = credentials_dir / "secrets.csv"
        known = secrets.read_text(encoding="utf-8") if secrets.exists() else ""
        for name, text in credential_files(scenario, fleet, known).items():
            path = credentials_dir / name
            path.write_text(text, encoding="utf-8")
            if name in ("secrets.csv", "passwords"):
                path.chmod(0o600)
            written.append(path)
    if tenant_map_out is not None:
        tenant_map_out.parent.mkdir(parents=True, exist_ok=True)
        tenant_map_out.write_text(json.dumps(tenant_map(scenario, fleet)) + "\n", encoding="utf-8")
        written.append(tenant_map_out)
    return written
