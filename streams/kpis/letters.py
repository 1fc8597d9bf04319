"""Dead letters counted per sensor, district and tenant for one period (pure).

Letters are attributed by :func:`urbanpulse.letter_subjects.letter_subject`. Letters of
``personal_only`` (a message that held only personal data, dropped at ingest on purpose) are
not failures and are left out. A letter counts for its tenant; for a sensor when it names one
that has indicators; for a district when that sensor, or the channel sensors of the Cayenne
LPP device it names (``{device}:{channel}``), are registered in one. What concerns no known
tenant is counted as ``unattributed`` (logged by the job, never silently dropped).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from streams.kpis.periods import PeriodSpan
from urbanpulse.letter_subjects import PERSONAL_ONLY, LetterSubject
from urbanpulse.registry import SensorInfo

SensorKey = tuple[str, str]  # (tenant, sensor_id)


@dataclass(kw_only=True)
class LetterTally:
    """Dead letters of one period by reason: per named sensor, per tenant, and unattributed."""

    by_sensor: dict[SensorKey, Counter[str]] = field(default_factory=dict)
    by_tenant: dict[str, Counter[str]] = field(default_factory=dict)
    unattributed: Counter[str] = field(default_factory=Counter)

    def of_sensor(self, key: SensorKey) -> Counter[str]:
        """The letters naming this sensor (or device)."""
        return self.by_sensor.get(key, Counter())

    def of_tenant(self, tenant: str) -> Counter[str]:
        """Every letter of the tenant."""
        return self.by_tenant.get(tenant, Counter())


def tally(subjects: Iterable[LetterSubject], span: PeriodSpan) -> LetterTally:
    """Count the letters that fall in the period, by whom they concern."""
    out = LetterTally()
    for letter in subjects:
        if letter.reason == PERSONAL_ONLY or not span.contains(letter.at):
            continue
        if letter.tenant is None:
            out.unattributed[letter.reason] += 1
            continue
        out.by_tenant.setdefault(letter.tenant, Counter())[letter.reason] += 1
        if letter.sensor_id is not None:
            key = (letter.tenant, letter.sensor_id)
            out.by_sensor.setdefault(key, Counter())[letter.reason] += 1
    return out


def device_district(key: SensorKey, registry: Mapping[SensorKey, SensorInfo]) -> str | None:
    """The district of a sensor, or of the channel sensors of the LPP device it names."""
    info = registry.get(key)
    if info is not None:
        return info.district
    tenant, device = key
    prefix = f"{device}:"
    districts = {
        i.district for (t, s), i in registry.items() if t == tenant and s.startswith(prefix)
    }
    return districts.pop() if len(districts) == 1 else None


def is_device_of_channels(key: SensorKey, known: Iterable[SensorKey]) -> bool:
    """Whether ``key`` names an LPP device whose channels (``{device}:{n}``) are known sensors."""
    tenant, device = key
    prefix = f"{device}:"
    return any(t == tenant and s.startswith(prefix) for t, s in known)
