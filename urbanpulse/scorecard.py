"""The pilot scorecard: one number (0-100) per sensor, district and tenant (pure).

Each sensor's indicators become *components*, each between 0 (bad) and 1 (good):

============  =====================================================================
completeness  min(1, reports / expected)
uptime        share of expected intervals with at least one report
quality       1 - data readings with a scored quality flag / data readings (those of
              what it measures: device health and radio, urbanpulse.quantities
              DEVICE_QUANTITIES, are judged by the battery component, not here;
              ``stuck`` is not held against STEADY_QUANTITIES such as occupancy)
latency       1 at a p95 delivery latency <= latency_good_s, 0 at >= latency_bad_s,
              linear in between
dead_letters  1 - dead letters / (dead letters + reports)
freshness     1 if the latest reading is at most stale_factor x interval old at the
              period's end (or now), else 0
battery       0 at <= battery_low_pct, 1 at >= battery_ok_pct, linear in between
============  =====================================================================

The sensor's score is 100 x the weighted mean of the components it has (a sensor without
readings has no quality or latency, one without a battery no battery component: their weight
drops out). A district's or tenant's score is the plain mean of its sensors' scores, so every
sensor counts the same however often it reports, and tenants of one install are compared by
the same formula. Weights and thresholds: :class:`ScoreRules`, from ``KpiSettings``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean

from urbanpulse.kpi import Indicators
from urbanpulse.settings import KpiSettings, ScoreWeights, Settings

COMPONENTS = (
    "completeness",
    "uptime",
    "quality",
    "latency",
    "dead_letters",
    "freshness",
    "battery",
)


@dataclass(frozen=True, kw_only=True)
class ScoreRules:
    """The scorecard's weights and thresholds (docs/kpis.md)."""

    weights: ScoreWeights = field(default_factory=ScoreWeights)
    latency_good_s: float = 60.0
    latency_bad_s: float = 3600.0
    battery_low_pct: float = 10.0
    battery_ok_pct: float = 30.0
    stale_factor: float = 3.0

    @classmethod
    def of(cls, settings: Settings) -> ScoreRules:
        """The rules the settings give (``kpis`` section; ``streams.stale_factor``)."""
        kpis: KpiSettings = settings.kpis
        return cls(
            weights=kpis.weights,
            latency_good_s=kpis.latency_good_s,
            latency_bad_s=kpis.latency_bad_s,
            battery_low_pct=kpis.battery_low_pct,
            battery_ok_pct=kpis.battery_ok_pct,
            stale_factor=settings.streams.stale_factor,
        )


def _ramp(value: float, bad: float, good: float) -> float:
    """0 at ``bad``, 1 at ``good``, linear in between (either may be the larger)."""
    share = (value - bad) / (good - bad)
    return min(1.0, max(0.0, share))


def components(ind: Indicators, rules: ScoreRules) -> dict[str, float]:
    """A sensor's scorecard components (0-1); those it has no data for are left out."""
    parts: dict[str, float] = {}
    if ind.expected > 0:
        parts["completeness"] = min(1.0, ind.completeness)
        parts["uptime"] = ind.uptime
    if ind.data_readings > 0:
        parts["quality"] = 1.0 - ind.flagged / ind.data_readings
    if ind.latency_p95_s is not None:
        parts["latency"] = _ramp(ind.latency_p95_s, rules.latency_bad_s, rules.latency_good_s)
    if ind.dead_letters + ind.reports > 0:
        parts["dead_letters"] = 1.0 - ind.dead_letters / (ind.dead_letters + ind.reports)
    if ind.interval_s is not None:
        fresh = ind.since_last_s is not None and (
            ind.since_last_s <= rules.stale_factor * ind.interval_s
        )
        parts["freshness"] = 1.0 if fresh else 0.0
    if ind.battery_pct is not None:
        parts["battery"] = _ramp(ind.battery_pct, rules.battery_low_pct, rules.battery_ok_pct)
    return parts


def weighted_score(parts: Mapping[str, float], weights: ScoreWeights) -> float | None:
    """100 x the weighted mean of the components present; None when no weight is left."""
    weight = {name: float(getattr(weights, name)) for name in parts}
    total = sum(weight.values())
    if total <= 0:
        return None
    return 100.0 * sum(weight[name] * value for name, value in parts.items()) / total


def sensor_score(ind: Indicators, rules: ScoreRules) -> tuple[float | None, dict[str, float]]:
    """A sensor's score (0-100) and the components behind it."""
    parts = components(ind, rules)
    return weighted_score(parts, rules.weights), parts


def pooled_score(
    sensors: Sequence[tuple[float | None, Mapping[str, float]]],
) -> tuple[float | None, dict[str, float]]:
    """A district's or tenant's score: the mean of its sensors' scores, and of each component."""
    scores = [score for score, _ in sensors if score is not None]
    means = {
        name: fmean(values)
        for name in COMPONENTS
        if (values := [parts[name] for _, parts in sensors if name in parts])
    }
    return (fmean(scores) if scores else None), means


@dataclass(frozen=True, kw_only=True)
class RankedSensor:
    """A sensor in the ranking: its score, its weakest component, its indicators."""

    rank: int
    sensor_id: str
    score: float
    weakest: str | None
    indicators: Indicators


def rank_sensors(indicators: Iterable[Indicators], limit: int | None = 10) -> list[RankedSensor]:
    """The worst sensors first: lowest score, then lowest completeness, then by id.

    Only sensor-scope indicators with a score take part; ``limit`` None lists them all.
    """
    scored = [i for i in indicators if i.scope == "sensor" and i.score is not None]
    scored.sort(key=lambda i: (i.score, i.completeness, i.subject))
    ranked = []
    for rank, ind in enumerate(scored[:limit] if limit is not None else scored, start=1):
        weakest = min(ind.components, key=lambda n: ind.components[n]) if ind.components else None
        assert ind.score is not None
        ranked.append(
            RankedSensor(
                rank=rank, sensor_id=ind.subject, score=ind.score, weakest=weakest, indicators=ind
            )
        )
    return ranked
