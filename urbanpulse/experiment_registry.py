"""Experiments a city defines in its registry file: what changed, where, when (pure).

An experiment sits beside the sensors in a YAML registry (docs/registry.md, "Experiments"):
a name, the tenant, one open quantity, the *treated* group (sensors or a district), an
optional *control* group, and either a ``before`` and an ``after`` period or one ``period``
in which treated and control are compared. The design follows from what is given:

==========================  ===============================  ==================================
given                       design                           estimate
==========================  ===============================  ==================================
before, after               ``before_after``                 treated after - treated before
before, after, control      ``difference_in_differences``    (treated after - before) -
                                                             (control after - before)
period, control             ``treated_vs_control``           treated - control
==========================  ===============================  ==================================

Periods start and end on whole hours: the statistics compare hourly means
(``urbanpulse.experiments``), so an hour is the smallest unit a side can hold. The last
period may be open (no ``to``): it runs until now. The stream worker reads only the
``sensors`` key of the same file, so experiments never disturb it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from urbanpulse.experiments import ExperimentDesign as Design
from urbanpulse.experiments import Method, SidePlan
from urbanpulse.model import ID_PATTERN, QUANTITY_PATTERN, UtcDatetime
from urbanpulse.quantities import privacy_of, require
from urbanpulse.registry import Registry, RegistryError

EXPERIMENTS_KEY = "experiments"
_ID = re.compile(ID_PATTERN)


class Group(BaseModel):
    """A group of sensors: named ones, or every sensor the registry places in a district."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sensors: tuple[str, ...] = Field(
        (), description="sensor ids (registry ids of the tenant)", max_length=1000
    )
    district: str | None = Field(None, pattern=ID_PATTERN, description="a registry district")

    @field_validator("sensors")
    @classmethod
    def _ids(cls, sensors: tuple[str, ...]) -> tuple[str, ...]:
        bad = [s for s in sensors if not _ID.match(s)]
        if bad:
            raise ValueError(f"not a sensor id: {bad[0]!r}")
        if len(set(sensors)) != len(sensors):
            raise ValueError("a sensor is listed twice")
        return sensors

    @model_validator(mode="after")
    def _one_kind(self) -> Group:
        if bool(self.sensors) == (self.district is not None):
            raise ValueError("a group is either `sensors: [...]` or `district: ...`, not both")
        return self

    def label(self) -> str:
        """The group in words for a table: the district, or the sensors' ids."""
        return f"district {self.district}" if self.district else ", ".join(self.sensors)


class Span(BaseModel):
    """A period ``[from, to)`` on whole hours; without ``to`` it runs until now."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    start: UtcDatetime = Field(alias="from", description="first hour (RFC 3339, whole hour)")
    end: UtcDatetime | None = Field(
        None, alias="to", description="end, exclusive (whole hour); none: until now"
    )

    @model_validator(mode="after")
    def _whole_hours(self) -> Span:
        for name, moment in (("from", self.start), ("to", self.end)):
            if moment is not None and (moment.minute or moment.second or moment.microsecond):
                raise ValueError(
                    f"`{name}` must be a whole hour (e.g. 2026-11-20T07:00:00Z): "
                    "experiments compare hourly means"
                )
        if self.end is not None and self.end <= self.start:
            raise ValueError("`to` must come after `from`")
        return self

    def until(self, now: datetime) -> datetime:
        """The end, or ``now`` for an open period (never before the start)."""
        end = self.end if self.end is not None else now
        return max(self.start, min(end, now))


class ExperimentDefinition(BaseModel):
    """One experiment as the city defines it (docs/registry.md, "Experiments")."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    id: str = Field(pattern=ID_PATTERN, description="unique in the registry file; in URLs")
    name: str = Field(min_length=1, max_length=200, description="what a council calls it")
    description: str | None = Field(None, max_length=2000)
    tenant: str = Field(pattern=ID_PATTERN)
    quantity: str = Field(pattern=QUANTITY_PATTERN, description="an open quantity, e.g. no2")
    treated: Group
    control: Group | None = None
    before: Span | None = None
    after: Span | None = None
    period: Span | None = Field(None, description="one period: treated vs control")
    method: Method = Field("welch", description="confidence interval: welch or bootstrap")
    confidence: float = Field(0.95, gt=0.5, lt=1)

    @field_validator("quantity")
    @classmethod
    def _open_quantity(cls, quantity: str) -> str:
        require(quantity)
        if privacy_of(quantity) != "open":
            raise ValueError(
                f"{quantity!r} is not open data: experiments are published, so they compare "
                "open quantities only"
            )
        return quantity

    @model_validator(mode="after")
    def _design_is_whole(self) -> ExperimentDefinition:
        periods = (self.before is not None, self.after is not None, self.period is not None)
        if periods == (True, True, False):
            assert self.before is not None and self.after is not None
            if self.before.end is None or self.before.end > self.after.start:
                raise ValueError("`before` must end (`to`) by the time `after` starts")
        elif periods == (False, False, True):
            if self.control is None:
                raise ValueError("one `period` compares treated with `control`: name a control")
        else:
            raise ValueError("give `before` and `after`, or one `period` with a `control`")
        control = self.control
        if control is not None and control.district and control.district == self.treated.district:
            raise ValueError("treated and control are the same district")
        if control is not None and set(control.sensors) & set(self.treated.sensors):
            raise ValueError("a sensor is in both the treated and the control group")
        return self

    @property
    def design(self) -> Design:
        """Which comparison the periods and groups given make (module docstring)."""
        if self.period is not None:
            return "treated_vs_control"
        return "difference_in_differences" if self.control is not None else "before_after"

    def spans(self) -> tuple[Span, ...]:
        """Its periods, in time order."""
        found = (self.before, self.after) if self.period is None else (self.period,)
        return tuple(s for s in found if s is not None)

    def as_document(self) -> dict[str, Any]:
        """The definition as the registry file and the API write it (``from``/``to``)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)


Experiments = dict[str, ExperimentDefinition]


def experiments_of(document: Any) -> Experiments:
    """The experiments of a loaded YAML registry (the ``experiments`` key); RegistryError
    when one is invalid or two share an id. A bare list of sensors has none."""
    rows = document.get(EXPERIMENTS_KEY) if isinstance(document, dict) else None
    if rows is None:
        return {}
    if not isinstance(rows, list):
        raise RegistryError("`experiments:` is a list of experiments")
    found: Experiments = {}
    for number, row in enumerate(rows, start=1):
        try:
            experiment = ExperimentDefinition.model_validate(row)
        except ValidationError as err:
            raise RegistryError(f"experiment {number}: {err}") from None
        if experiment.id in found:
            raise RegistryError(f"experiment {number}: the id {experiment.id!r} is used twice")
        found[experiment.id] = experiment
    return found


def parse_experiments(text: str, kind: Literal["yaml", "csv"]) -> Experiments:
    """The experiments of a registry file's text; a CSV registry holds none."""
    if kind == "csv":
        return {}
    try:
        return experiments_of(yaml.safe_load(text))
    except yaml.YAMLError as err:
        raise RegistryError(f"not a valid YAML registry: {err}") from None


def with_experiments(text: str, experiments: Experiments) -> str:
    """A YAML registry's text with its ``experiments`` replaced (sorted by id; none: the key
    is left out). Sensors and other keys are kept; a bare list of sensors becomes
    ``{sensors: [...], experiments: [...]}``. Comments are not kept (YAML round trip)."""
    loaded = yaml.safe_load(text) if text.strip() else None
    document: dict[str, Any]
    if isinstance(loaded, list):
        document = {"sensors": loaded}
    elif isinstance(loaded, dict):
        document = dict(loaded)
    elif loaded is None:
        document = {"sensors": []}
    else:
        raise RegistryError("a YAML registry is a list of sensors, or {sensors: [...]}")
    document.pop(EXPERIMENTS_KEY, None)
    if experiments:
        document[EXPERIMENTS_KEY] = [experiments[key].as_document() for key in sorted(experiments)]
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


# ---- from a definition to the sides to compare ------------------------------------------------


def group_members(
    group: Group,
    tenant: str,
    registry: Registry,
    reporting: Collection[str] | None = None,
) -> frozenset[str]:
    """The sensors of a group whose data is published (registry privacy ``open``, or not
    registered). A district's: the tenant's registered sensors there, and of those only the
    ones with data of the quantity (``reporting``; None: all), since the registry does not
    say what a sensor measures. Named sensors count whether they sent anything or not."""
    if group.sensors:
        return frozenset(
            s
            for s in group.sensors
            if (info := registry.get((tenant, s))) is None or info.privacy == "open"
        )
    return frozenset(
        sensor
        for (owner, sensor), info in registry.items()
        if owner == tenant
        and info.district == group.district
        and info.privacy == "open"
        and (reporting is None or sensor in reporting)
    )


def candidates(experiment: ExperimentDefinition, registry: Registry) -> frozenset[str]:
    """Every sensor whose hourly means the experiment may need (both groups)."""
    groups = [experiment.treated, *([experiment.control] if experiment.control else [])]
    return frozenset().union(*(group_members(g, experiment.tenant, registry) for g in groups))


def side_plans(
    experiment: ExperimentDefinition,
    treated: frozenset[str],
    control: frozenset[str],
    now: datetime,
) -> tuple[SidePlan, ...]:
    """The sides of the experiment's design, in the order ``urbanpulse.experiments.compare``
    takes them; open periods end at ``now``."""

    def side(name: str, sensors: frozenset[str], span: Span) -> SidePlan:
        return SidePlan(name=name, sensors=sensors, start=span.start, end=span.until(now))

    if experiment.period is not None:
        return (
            side("treated", treated, experiment.period),
            side("control", control, experiment.period),
        )
    assert experiment.before is not None and experiment.after is not None
    before, after = experiment.before, experiment.after
    if experiment.control is None:
        return side("treated after", treated, after), side("treated before", treated, before)
    return (
        side("treated before", treated, before),
        side("treated after", treated, after),
        side("control before", control, before),
        side("control after", control, after),
    )


def intervals_of(
    sensors: Iterable[str], tenant: str, registry: Registry, default_s: float
) -> dict[str, float]:
    """Each sensor's reporting interval, seconds: the registry's, else ``default_s``."""
    found: dict[str, float] = {}
    for sensor in sensors:
        info = registry.get((tenant, sensor))
        found[sensor] = info.interval_s if info is not None and info.interval_s else default_s
    return found
