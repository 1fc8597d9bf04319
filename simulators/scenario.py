"""Scenario files (YAML, docs/simulators.md) and the fleet of sensors they describe (pure).

A scenario names a town, its centre and districts, how many sensors of each kind it has and
how often they report, which payload formats they speak, the network-server applications of
its LoRaWAN sensors, the fault rates, the incidents, the interventions and the random seed.
:func:`build_fleet` turns it into the list of :class:`Device` the simulator runs; the same
scenario always gives the same fleet.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from simulators.models import KINDS, City, SensorKind, Site, make_site
from simulators.noise import uniform
from urbanpulse.durations import parse_duration
from urbanpulse.model import ID_PATTERN

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
DEFAULT_SCENARIO = SCENARIOS / "town.yaml"

Format = Literal["json", "senml", "lpp", "sensorcommunity", "tts", "chirpstack"]
FORMATS: tuple[Format, ...] = ("json", "senml", "lpp", "sensorcommunity", "tts", "chirpstack")
FAULTS = (
    "dropout",
    "stuck",
    "spike",
    "drift",
    "duplicate",
    "out_of_order",
    "late",
    "clock_skew",
    "malformed",
    "low_battery",
)
_JSON_ONLY: dict[Format, float] = {"json": 1.0}
# A ChirpStack application id is a UUID; ours are derived from the tenant and application name.
_CHIRPSTACK_NAMESPACE = uuid.UUID("6f0c4b9e-3c1e-4a53-9d55-7a0b5b2b1e61")


Seconds = Annotated[float, BeforeValidator(parse_duration)]


class Centre(BaseModel):
    """A WGS 84 position."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class District(BaseModel):
    """A district of the town: sensors are placed around its centre, more where it weighs more."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_km: float = Field(0.5, gt=0)
    weight: float = Field(1.0, gt=0)


class SensorGroup(BaseModel):
    """How many sensors of one kind, how often they report, which formats they speak."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=0)
    interval: Seconds | None = None
    formats: dict[Format, float] | None = None

    @field_validator("formats")
    @classmethod
    def _weights(cls, value: dict[Format, float] | None) -> dict[Format, float] | None:
        if value is not None and (not value or any(w < 0 for w in value.values())):
            raise ValueError("formats: non-negative weights, at least one")
        return value


class NetworkServers(BaseModel):
    """The LoRaWAN network-server applications the town's LoRaWAN sensors belong to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tts_application: str | None = Field(
        None, description="The Things Stack application id; default '{tenant}-sensors'"
    )
    tts_tenant: str | None = Field("ttn", description="TTS tenant: topics v3/{app}@{tenant}/…")
    chirpstack_application: str | None = Field(
        None, description="ChirpStack application name; its id is a UUID derived from it"
    )


class FaultRates(BaseModel):
    """Probability per message that each fault starts (see simulators/faults.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dropout: float = Field(0.0, ge=0, le=1)
    stuck: float = Field(0.0, ge=0, le=1)
    spike: float = Field(0.0, ge=0, le=1)
    drift: float = Field(0.0, ge=0, le=1)
    duplicate: float = Field(0.0, ge=0, le=1)
    out_of_order: float = Field(0.0, ge=0, le=1)
    late: float = Field(0.0, ge=0, le=1)
    clock_skew: float = Field(0.0, ge=0, le=1)
    malformed: float = Field(0.0, ge=0, le=1)
    low_battery: float = Field(0.0, ge=0, le=1)

    def any(self) -> bool:
        """Whether any fault is switched on."""
        return any(getattr(self, name) > 0 for name in FAULTS)


def parse_onset(value: object) -> float | datetime:
    """When something begins: seconds after a reference (``20m``) or a time with its zone."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{value} has no time zone: write e.g. 2026-11-27T10:00:00Z")
        return value.astimezone(UTC)
    if isinstance(value, str) and not _DURATION_LIKE.match(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is neither a duration (e.g. 30m) nor a time (2026-11-27T10:00:00Z)"
            ) from None
        return parse_onset(moment)
    return parse_duration(value)


_DURATION_LIKE = re.compile(r"^\s*[0-9.]+\s*[a-z]*\s*$")
Onset = Annotated[float | datetime, BeforeValidator(parse_onset)]
"""A duration after a reference moment (seconds; ``20m`` in files), or a fixed UTC time."""


def onset_moment(onset: float | datetime, reference: datetime) -> datetime:
    """The moment an onset names, given the moment its durations count from."""
    if isinstance(onset, datetime):
        return onset
    return reference + timedelta(seconds=onset)


class Intermittent(BaseModel):
    """A device that loses a share of its reports, at random, from a moment on."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    rate: float = Field(gt=0, le=1, description="share of reports lost (each drawn on its own)")
    start: Onset | None = Field(
        None, alias="from", description="from when (default: its first report)"
    )


class Incidents(BaseModel):
    """Devices in a lasting bad state, named by device id: alerts that stay open.

    Faults come and go at random; an incident lasts the whole run (from its onset), so a town
    always has something for its open alerts, its sensor-health panels and its scorecard to
    show. An onset is a duration after the device's first report of the run, or a fixed time.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    flat_battery: list[str] = Field(
        default_factory=list,
        description="devices reporting a nearly flat battery (FLAT_BATTERY %), never replaced",
    )
    silent: dict[str, Onset] = Field(
        default_factory=dict, description="device → when it stops reporting, for good"
    )
    intermittent: dict[str, Intermittent] = Field(
        default_factory=dict, description="device → {rate, from}: it loses that share of reports"
    )
    stuck: dict[str, Onset] = Field(
        default_factory=dict,
        description="device → when its values freeze at the last ones it sent, for good",
    )
    garbage: dict[str, Onset] = Field(
        default_factory=dict,
        description="device → when its values go beyond their physical range, for good",
    )

    def devices(self) -> set[str]:
        """Every device id an incident names."""
        named = (self.silent, self.intermittent, self.stuck, self.garbage)
        return set(self.flat_battery).union(*named)


FLAT_BATTERY = 8.0
"""The battery level (%) a flat-battery device reports: below the low-battery alert's 15 %."""


def device_id(kind: SensorKind, index: int) -> str:
    """Our name for the ``index``-th device (from 1) of a kind: ``noise-004``."""
    return f"{kind.prefix}-{index:03d}"


class Intervention(BaseModel):
    """A change the city makes from a moment on: a quantity shifts for a treated group.

    The treated group is a district's devices, or named devices, that report the quantity;
    the control group another district, named devices, or (by default) every other device
    that reports it. The run's ground truth names both (docs/simulators.md).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=ID_PATTERN)
    quantity: str
    change: float = Field(description="added to the quantity's value, in its canonical unit")
    start: Onset = Field(alias="from", description="a time, or a duration after the run's start")
    until: Onset | None = Field(None, description="when it ends (default: it does not)")
    district: str | None = None
    devices: list[str] = Field(default_factory=list)
    control_district: str | None = None
    control: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_treated_group(self) -> Intervention:
        if (self.district is None) == (not self.devices):
            raise ValueError(f"intervention {self.name}: name a district or devices, not both")
        if self.control_district is not None and self.control:
            raise ValueError(f"intervention {self.name}: a control district or devices, not both")
        return self

    def check(self, known: Mapping[str, SensorKind], districts: set[str]) -> None:
        """Refuse devices, districts or a quantity the town does not have."""
        unknown = sorted((set(self.devices) | set(self.control)) - set(known))
        if unknown:
            raise ValueError(f"intervention {self.name}: no such devices {unknown}")
        for district in (self.district, self.control_district):
            if district is not None and district not in districts:
                raise ValueError(f"intervention {self.name}: no district {district!r}")
        if not any(self.quantity in kind_quantities(k) for k in known.values()):
            raise ValueError(f"intervention {self.name}: no device reports {self.quantity!r}")


def kind_quantities(kind: SensorKind) -> set[str]:
    """The quantities a kind reports (battery aside)."""
    return {q.quantity for q in kind.quantities}


class Scenario(BaseModel):
    """A scenario file: the town, its sensors, formats, faults, incidents, interventions, seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    tenant: str = Field(pattern=ID_PATTERN)
    timezone: str = "UTC"
    seed: int = 1
    centre: Centre
    districts: list[District] = Field(min_length=1)
    format_mix: dict[Format, float] = Field(default_factory=lambda: _JSON_ONLY.copy())
    sensors: dict[str, SensorGroup]
    network_servers: NetworkServers = NetworkServers()
    faults: FaultRates = FaultRates()
    incidents: Incidents = Incidents()
    interventions: list[Intervention] = Field(default_factory=list)
    licence: str = "CC-BY-4.0"

    @field_validator("sensors")
    @classmethod
    def _kinds(cls, value: dict[str, SensorGroup]) -> dict[str, SensorGroup]:
        unknown = sorted(set(value) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown sensor kinds {unknown}; known: {sorted(KINDS)}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone
        return value

    @model_validator(mode="after")
    def _incident_devices(self) -> Scenario:
        known = {
            device_id(KINDS[kind], index): KINDS[kind]
            for kind, group in self.sensors.items()
            for index in range(1, group.count + 1)
        }
        unknown = sorted(self.incidents.devices() - set(known))
        if unknown:
            raise ValueError(f"incidents name devices the town does not have: {unknown}")
        no_battery = sorted(d for d in self.incidents.flat_battery if not known[d].battery)
        if no_battery:
            raise ValueError(f"incidents: flat_battery on devices without a battery: {no_battery}")
        both = sorted(set(self.incidents.stuck) & set(self.incidents.garbage))
        if both:
            raise ValueError(f"incidents: {both} cannot be both stuck and sending garbage")
        for intervention in self.interventions:
            intervention.check(known, {d.id for d in self.districts})
        return self

    def city(self) -> City:
        """The shared model context: seed and local time zone."""
        return City(self.seed, ZoneInfo(self.timezone))

    def tts_application(self) -> str:
        """The Things Stack application id of the town's TTS devices."""
        return self.network_servers.tts_application or f"{self.tenant}-sensors"

    def tts_topic_application(self) -> str:
        """The application part of TTS topics: ``app@tts_tenant`` or ``app``."""
        tenant = self.network_servers.tts_tenant
        return f"{self.tts_application()}@{tenant}" if tenant else self.tts_application()

    def chirpstack_application(self) -> str:
        """The ChirpStack application id (a UUID, derived from tenant and application name)."""
        name = self.network_servers.chirpstack_application or f"{self.tenant}-lorawan"
        return str(uuid.uuid5(_CHIRPSTACK_NAMESPACE, f"{self.tenant}/{name}"))

    def tenant_by_application(self, formats: set[str] | None = None) -> dict[str, str]:
        """The map the ingestor needs: ``URBANPULSE_DECODERS__TENANT_BY_APPLICATION``."""
        out = {}
        if formats is None or "tts" in formats:
            out[self.tts_topic_application()] = self.tenant
        if formats is None or "chirpstack" in formats:
            out[self.chirpstack_application()] = self.tenant
        return out


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return Scenario.model_validate(data)


def scenario_path(name: str | None) -> Path:
    """A scenario file: a path, or the name of a bundled one (``town``, ``city``)."""
    if not name:
        return DEFAULT_SCENARIO
    bundled = SCENARIOS / f"{name}.yaml"
    if "/" not in name and not name.endswith((".yaml", ".yml")) and bundled.exists():
        return bundled
    return Path(name)


# ---------------------------------------------------------------------------------------------
# Which formats can carry which quantities (so every reading the simulator means arrives)

_LPP_QUANTITIES = frozenset({"temperature", "relative_humidity", "pressure"})
_SENSOR_COMMUNITY_QUANTITIES = frozenset(
    {"pm2_5", "pm10", "temperature", "relative_humidity", "pressure", "noise_level"}
)


def can_carry(fmt: Format, kind: SensorKind) -> bool:
    """Whether a format can carry every quantity of a kind (battery aside)."""
    names = {q.quantity for q in kind.quantities}
    if fmt == "lpp":
        return names <= _LPP_QUANTITIES
    if fmt == "sensorcommunity":
        return names <= _SENSOR_COMMUNITY_QUANTITIES and not kind.battery
    return True


def apportion(count: int, weights: Mapping[Format, float]) -> list[Format]:
    """``count`` formats in proportion to the weights (largest remainder), in FORMATS order."""
    usable = {f: w for f, w in weights.items() if w > 0}
    if count == 0:
        return []
    if not usable:
        raise ValueError("no payload format has a positive weight")
    total = sum(usable.values())
    exact = {f: count * w / total for f, w in usable.items()}
    shares = {f: math.floor(v) for f, v in exact.items()}
    left = count - sum(shares.values())
    order = sorted(usable, key=lambda f: (-(exact[f] - shares[f]), FORMATS.index(f)))
    for f in order[:left]:
        shares[f] += 1
    return [f for f in FORMATS for _ in range(shares.get(f, 0))]


@dataclass(frozen=True)
class Device:
    """One simulated device: what it is, where, how it reports and in which format."""

    device_id: str  # our name for it (topic level, TTS device id)
    sensor_id: str  # the id the platform sees (ChirpStack: the DevEUI)
    kind: SensorKind
    format: Format
    district: str
    lat: float
    lon: float
    interval_s: float
    site: Site
    dev_eui: str
    flat_battery: bool = False  # incident: reports FLAT_BATTERY % for the whole run
    # incidents: from when (a duration after its first report, or a time) it ...
    silent_from: float | datetime | None = None  # ... stops
    intermittent_rate: float = 0.0  # ... loses this share of its reports
    intermittent_from: float | datetime | None = None
    stuck_from: float | datetime | None = None  # ... repeats its last values
    garbage_from: float | datetime | None = None  # ... sends values beyond their range

    @property
    def carries_battery(self) -> bool:
        """Whether its messages report a battery level."""
        return self.kind.battery and self.format not in ("lpp", "sensorcommunity")

    def platform_sensor_ids(self) -> tuple[str, ...]:
        """The sensor ids its readings get: the device's own (LPP channels are probes)."""
        return (self.sensor_id,)


def lpp_channels(kind: SensorKind) -> tuple[int, ...]:
    """The LPP channel of each of a kind's quantities: 1, 2, 3, … in order."""
    return tuple(range(1, len(kind.quantities) + 1))


def build_fleet(scenario: Scenario) -> list[Device]:
    """Every device of the scenario, placed in its districts, with its format (deterministic)."""
    seed = scenario.seed
    devices: list[Device] = []
    total_weight = sum(d.weight for d in scenario.districts)
    incidents = scenario.incidents
    for kind_name, group in scenario.sensors.items():
        kind = KINDS[kind_name]
        weights = group.formats or scenario.format_mix
        usable = {f: w for f, w in weights.items() if can_carry(f, kind)}
        if not usable:
            usable = {"json": 1.0}
        formats = apportion(group.count, usable)
        for index, fmt in enumerate(formats, start=1):
            name = device_id(kind, index)
            pick = uniform(seed, name, "district") * total_weight
            district = scenario.districts[-1]
            for candidate in scenario.districts:
                pick -= candidate.weight
                if pick < 0:
                    district = candidate
                    break
            angle = 2 * math.pi * uniform(seed, name, "angle")
            distance = district.radius_km * math.sqrt(uniform(seed, name, "dist"))
            lat = district.lat + distance / 111.32 * math.cos(angle)
            lon = district.lon + distance / (111.32 * math.cos(math.radians(district.lat))) * (
                math.sin(angle)
            )
            dev_eui = f"70b3d57ed0{len(devices) + 1:06x}"  # unique within the fleet
            lossy = incidents.intermittent.get(name)
            device = Device(
                device_id=name,
                sensor_id=dev_eui if fmt == "chirpstack" else name,
                kind=kind,
                format=fmt,
                district=district.id,
                lat=round(lat, 6),
                lon=round(lon, 6),
                interval_s=group.interval or kind.interval_s,
                site=make_site(seed, name, kind),
                dev_eui=dev_eui,
                flat_battery=name in incidents.flat_battery,
                silent_from=incidents.silent.get(name),
                intermittent_rate=lossy.rate if lossy else 0.0,
                intermittent_from=lossy.start if lossy else None,
                stuck_from=incidents.stuck.get(name),
                garbage_from=incidents.garbage.get(name),
            )
            if device.flat_battery and not device.carries_battery:
                raise ValueError(f"incidents: {name} speaks {fmt}, which carries no battery level")
            devices.append(device)
    return devices
