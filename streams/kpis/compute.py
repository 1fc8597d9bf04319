"""One period's indicators for every sensor, district and tenant: who gets them, and how (pure).

A day's subjects, per tenant: its active registered sensors (retired ones are out of service
and get none), the sensors that delivered readings, those the day before had indicators for
(so a sensor that fell silent stays visible, at completeness 0; an unregistered one only until
it has been silent ``forget_after_days``), and sensors only dead letters name. A district
pools its registered sensors; a tenant all of its sensors. A week is made of the computed
days of its sensors (kpis/indicators.py :func:`~streams.kpis.indicators.week_of_days`), pooled the
same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from streams.kpis.indicators import (
    Evaluation,
    Result,
    SensorObservations,
    pooled_indicators,
    sensor_indicators,
    week_of_days,
)
from streams.kpis.letters import LetterTally, SensorKey, device_district, is_device_of_channels
from urbanpulse.kpi import Indicators
from urbanpulse.registry import SensorInfo


@dataclass(frozen=True, kw_only=True)
class Inputs:
    """Everything one period's computation needs besides the evaluation."""

    observations: Mapping[SensorKey, SensorObservations]
    registry: Mapping[SensorKey, SensorInfo]
    carry: Mapping[SensorKey, Indicators]  # the sensors' indicators of the period before
    letters: LetterTally
    tenant: str | None = None  # only this tenant; None: every tenant found
    forget_after_days: int = 7


def _wanted(tenant: str, only: str | None) -> bool:
    return only is None or tenant == only


def sensor_keys(inputs: Inputs, ev: Evaluation) -> list[SensorKey]:
    """The sensors that get indicators for the period (see the module's docstring)."""
    forget_before = ev.span.start - timedelta(days=inputs.forget_after_days)
    registered = {k for k, i in inputs.registry.items() if i.status == "active"}
    retired = {k for k, i in inputs.registry.items() if i.status == "retired"}
    keys = set(registered) | set(inputs.observations)
    for key, ind in inputs.carry.items():
        recent = ind.last_reading_at is not None and ind.last_reading_at >= forget_before
        if key in registered or recent:
            keys.add(key)
    known = keys | set(inputs.registry)
    for key in inputs.letters.by_sensor:
        if key not in known and not is_device_of_channels(key, known):
            keys.add(key)
    return sorted(k for k in keys - retired if _wanted(k[0], inputs.tenant))


def day_results(inputs: Inputs, ev: Evaluation) -> list[Result]:
    """Indicators of every sensor, district and tenant for one day (sensors first)."""
    sensors = {
        key: sensor_indicators(
            tenant=key[0],
            sensor_id=key[1],
            observed=inputs.observations.get(key),
            info=inputs.registry.get(key),
            carry=inputs.carry.get(key),
            letters=inputs.letters.of_sensor(key),
            ev=ev,
        )
        for key in sensor_keys(inputs, ev)
    }
    return [*sensors.values(), *pooled(sensors, inputs.registry, inputs.letters, ev)]


def week_results(
    days: Mapping[SensorKey, Sequence[Result]],
    registry: Mapping[SensorKey, SensorInfo],
    letters: LetterTally,
    ev: Evaluation,
) -> list[Result]:
    """Indicators of every sensor, district and tenant for one week, from the sensors' days."""
    sensors = {
        key: week_of_days(
            sorted(results, key=lambda r: r.indicators.start),
            letters=letters.of_sensor(key),
            ev=ev,
            info=registry.get(key),
        )
        for key, results in sorted(days.items())
        if results
    }
    return [*sensors.values(), *pooled(sensors, registry, letters, ev)]


def pooled(
    sensors: Mapping[SensorKey, Result],
    registry: Mapping[SensorKey, SensorInfo],
    letters: LetterTally,
    ev: Evaluation,
) -> list[Result]:
    """The districts and tenants of these sensors, pooled."""
    tenants: dict[str, list[Result]] = {}
    districts: dict[tuple[str, str], list[Result]] = {}
    for (tenant, _), result in sensors.items():
        tenants.setdefault(tenant, []).append(result)
        district = result.indicators.district
        if district is not None:
            districts.setdefault((tenant, district), []).append(result)
    district_letters = _district_letters(letters, registry, set(tenants))
    out = [
        pooled_indicators(
            tenant=tenant,
            scope="district",
            subject=district,
            members=members,
            letters=district_letters.get((tenant, district), Counter()),
            ev=ev,
        )
        for (tenant, district), members in sorted(districts.items())
    ]
    out += [
        pooled_indicators(
            tenant=tenant,
            scope="tenant",
            subject=tenant,
            members=members,
            letters=letters.of_tenant(tenant),
            ev=ev,
        )
        for tenant, members in sorted(tenants.items())
    ]
    return out


def _district_letters(
    letters: LetterTally, registry: Mapping[SensorKey, SensorInfo], tenants: Iterable[str]
) -> dict[tuple[str, str], Counter[str]]:
    wanted = set(tenants)
    out: dict[tuple[str, str], Counter[str]] = {}
    for key, reasons in letters.by_sensor.items():
        if key[0] not in wanted:
            continue
        district = device_district(key, registry)
        if district is not None:
            out.setdefault((key[0], district), Counter()).update(reasons)
    return out
