"""Experiment statistics: did a city's change make a difference, and can the data tell? (pure)

Two designs (docs/kpis.md, "Experiments"):

* :func:`difference_in_means` — one group against another: the same sensors after vs before
  a change, or treated vs control sensors over the same period. Estimate: mean(a) - mean(b).
* :func:`difference_in_differences` — treated and control sensors, each before and after:
  (treated after - treated before) - (control after - control before). The control group
  takes out what changed for everyone (season, weather, a holiday), so it is the design to
  prefer when a control group exists.

Each answers the estimate with a confidence interval, by Welch's t (unequal variances,
Welch-Satterthwaite degrees of freedom; the default) or a percentile bootstrap (seeded, so
the same data give the same interval), plus per side the number of values, their mean, the
readings behind them and the side's completeness, so a council sees whether the data can
carry the effect.

Readings of one sensor are autocorrelated (a noisy hour is followed by another), which makes
any interval computed from raw readings too narrow. Feed one value per sensor per window
(e.g. hourly means from the aggregate bucket) and pass the raw readings count as
``readings``.

:func:`compare` does exactly that for an experiment a city defined
(``urbanpulse.experiment_registry``): it splits hourly means (:class:`HourlyMean`) into the
sides of the design (:class:`SidePlan`), counts the readings behind each side against what
the sensors' reporting intervals make expected, and says in one word what a council may
conclude (:data:`Verdict`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import fmean, variance
from typing import Literal

Method = Literal["welch", "bootstrap"]
Design = Literal["difference", "difference_in_differences"]
ExperimentDesign = Literal["before_after", "difference_in_differences", "treated_vs_control"]
"""What a city's experiment compares (``urbanpulse.experiment_registry``): one group after vs
before, treated vs control in one period, or both groups before and after."""


@dataclass(frozen=True, kw_only=True)
class Side:
    """One side of a comparison: its values, and what stands behind them."""

    name: str
    values: Sequence[float]
    readings: int | None = None  # raw readings behind the values (default: len(values))
    expected: int | None = None  # readings the registry expected on this side, if known


@dataclass(frozen=True, kw_only=True)
class SideSummary:
    """What a side contributed: values, mean, readings behind it and their completeness."""

    name: str
    n: int
    mean: float
    sd: float
    readings: int
    completeness: float | None


@dataclass(frozen=True, kw_only=True)
class Effect:
    """An estimated effect with its confidence interval."""

    design: Design
    method: Method
    estimate: float
    low: float
    high: float
    confidence: float
    df: float | None  # Welch's degrees of freedom (None for the bootstrap)
    sides: tuple[SideSummary, ...]

    def covers(self, value: float) -> bool:
        """Whether ``value`` lies within the interval."""
        return self.low <= value <= self.high


def summarise(side: Side) -> SideSummary:
    """The side's count, mean, standard deviation, readings and completeness."""
    n = len(side.values)
    if n < 2:
        raise ValueError(f"side {side.name!r}: at least two values are needed, got {n}")
    readings = n if side.readings is None else side.readings
    completeness = (
        None if not side.expected else round(readings / side.expected, 6)
    )  # None: unknown
    return SideSummary(
        name=side.name,
        n=n,
        mean=fmean(side.values),
        sd=math.sqrt(variance(side.values)),
        readings=readings,
        completeness=completeness,
    )


def difference_in_means(
    a: Side,
    b: Side,
    *,
    confidence: float = 0.95,
    method: Method = "welch",
    resamples: int = 2000,
    seed: int = 0,
) -> Effect:
    """mean(a) - mean(b) with its confidence interval (e.g. a = after, b = before)."""
    return _effect(
        "difference", (a, b), (1.0, -1.0), confidence=confidence, method=method,
        resamples=resamples, seed=seed,
    )  # fmt: skip


def difference_in_differences(
    treated_before: Side,
    treated_after: Side,
    control_before: Side,
    control_after: Side,
    *,
    confidence: float = 0.95,
    method: Method = "welch",
    resamples: int = 2000,
    seed: int = 0,
) -> Effect:
    """(treated after - treated before) - (control after - control before), with its interval."""
    return _effect(
        "difference_in_differences",
        (treated_after, treated_before, control_after, control_before),
        (1.0, -1.0, -1.0, 1.0),
        confidence=confidence,
        method=method,
        resamples=resamples,
        seed=seed,
    )


def _effect(
    design: Design,
    sides: tuple[Side, ...],
    signs: tuple[float, ...],
    *,
    confidence: float,
    method: Method,
    resamples: int,
    seed: int,
) -> Effect:
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie strictly between 0 and 1")
    summaries = tuple(summarise(s) for s in sides)
    estimate = sum(sign * s.mean for sign, s in zip(signs, summaries, strict=True))
    if method == "welch":
        low, high, df = _welch(summaries, signs, estimate, confidence)
    else:
        statistic = _signed_means(signs)
        low, high = bootstrap_interval(
            [list(s.values) for s in sides], statistic, confidence, resamples, seed
        )
        df = None
    return Effect(
        design=design,
        method=method,
        estimate=estimate,
        low=low,
        high=high,
        confidence=confidence,
        df=df,
        sides=summaries,
    )


def _welch(
    sides: Sequence[SideSummary], signs: Sequence[float], estimate: float, confidence: float
) -> tuple[float, float, float]:
    """Welch's interval for a signed sum of independent means (any number of groups)."""
    shares = [s.sd**2 / s.n for s in sides]
    se2 = sum(shares)
    if se2 == 0:
        return estimate, estimate, math.inf
    # Welch-Satterthwaite: (sum s^2/n)^2 / sum (s^2/n)^2 / (n - 1); the signs do not matter.
    df = se2**2 / sum(v**2 / (s.n - 1) for v, s in zip(shares, sides, strict=True))
    half = student_t_quantile(0.5 + confidence / 2, df) * math.sqrt(se2)
    return estimate - half, estimate + half, df


def _signed_means(signs: Sequence[float]) -> Callable[[Sequence[Sequence[float]]], float]:
    def statistic(groups: Sequence[Sequence[float]]) -> float:
        return sum(sign * fmean(g) for sign, g in zip(signs, groups, strict=True))

    return statistic


def bootstrap_interval(
    groups: Sequence[Sequence[float]],
    statistic: Callable[[Sequence[Sequence[float]]], float],
    confidence: float,
    resamples: int,
    seed: int,
) -> tuple[float, float]:
    """Percentile bootstrap: resample each group with replacement, ``resamples`` times."""
    if resamples < 100:
        raise ValueError("a bootstrap needs at least 100 resamples")
    rng = random.Random(seed)
    stats = sorted(statistic([rng.choices(g, k=len(g)) for g in groups]) for _ in range(resamples))
    tail = (1 - confidence) / 2
    low = stats[max(0, math.floor(tail * resamples))]
    high = stats[min(resamples - 1, math.ceil((1 - tail) * resamples) - 1)]
    return low, high


# ---- Student's t distribution (no SciPy for two functions) ------------------------------------


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    if math.isinf(df):
        return 0.5 * math.erfc(-t / math.sqrt(2))
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2, 0.5, x)
    return 1 - tail if t > 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p (bisection on the CDF; exact to about 1e-10)."""
    if not 0 < p < 1:
        raise ValueError("p must lie strictly between 0 and 1")
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    if p < 0.5:
        return -student_t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if student_t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (continued fraction, Lentz)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast only below this point
        return 1 - _betainc(b, a, 1 - x)
    tiny = 1e-300
    f, c, d = 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            numerator = 1.0
        elif i % 2 == 0:
            numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            numerator = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1 + numerator * d
        d = tiny if abs(d) < tiny else d
        d = 1 / d
        c = 1 + numerator / c
        c = tiny if abs(c) < tiny else c
        f *= c * d
        if abs(1 - c * d) < 1e-15:
            break
    return front * (f - 1) / a


# ---- an experiment from hourly means: sides, effect, verdict ----------------------------------

Verdict = Literal["insufficient", "incomplete", "effect", "no_effect"]
MIN_COMPLETENESS = 0.8
"""Below this share of the expected readings on any side, an effect is reported as
``incomplete``: measured, but on data with gaps large enough to bias it."""


@dataclass(frozen=True, kw_only=True)
class HourlyMean:
    """One sensor's mean of one quantity over one hour (``aggregate``, window ``1h``)."""

    sensor_id: str
    start: datetime
    mean: float
    count: int  # readings behind the mean


@dataclass(frozen=True, kw_only=True)
class SidePlan:
    """Which hourly means make one side: those of ``sensors`` whose hour starts in
    ``[start, end)`` (``end`` already cut at now for an open period)."""

    name: str
    sensors: frozenset[str]
    start: datetime
    end: datetime


@dataclass(frozen=True, kw_only=True)
class SideReport:
    """One side as a council reads it: how much data stands behind it, and its mean."""

    name: str
    start: datetime
    end: datetime
    sensors: int
    values: int  # sensor-hours with a mean
    readings: int
    expected: int
    completeness: float | None
    mean: float | None
    sd: float | None


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """An experiment's answer: the sides, the effect (None without enough data), a verdict."""

    sides: tuple[SideReport, ...]
    effect: Effect | None
    verdict: Verdict


def side_of(
    plan: SidePlan, hours: Iterable[HourlyMean], intervals: Mapping[str, float]
) -> tuple[Side, SideReport]:
    """The side's hourly means and what stands behind them.

    ``expected`` readings: per sensor, the period's seconds / its reporting interval
    (``intervals``, seconds); a sensor of the group that sent nothing counts there too.
    """
    start_s, end_s = plan.start.timestamp(), plan.end.timestamp()
    chosen = [
        h for h in hours if h.sensor_id in plan.sensors and start_s <= h.start.timestamp() < end_s
    ]
    values = [h.mean for h in chosen]
    readings = sum(h.count for h in chosen)
    expected = round(sum((end_s - start_s) / intervals[s] for s in plan.sensors))
    side = Side(name=plan.name, values=values, readings=readings, expected=expected or None)
    n = len(values)
    report = SideReport(
        name=plan.name,
        start=plan.start,
        end=plan.end,
        sensors=len(plan.sensors),
        values=n,
        readings=readings,
        expected=expected,
        completeness=round(readings / expected, 6) if expected else None,
        mean=fmean(values) if values else None,
        sd=math.sqrt(variance(values)) if n >= 2 else None,
    )
    return side, report


def compare(
    design: ExperimentDesign,
    plans: Sequence[SidePlan],
    hours: Sequence[HourlyMean],
    intervals: Mapping[str, float],
    *,
    method: Method = "welch",
    confidence: float = 0.95,
) -> Outcome:
    """An experiment over hourly means (pure).

    ``plans`` in the order of the estimate: (after, before) for ``before_after``, (treated,
    control) for ``treated_vs_control``, (treated before, treated after, control before,
    control after) for ``difference_in_differences``. A side with fewer than two hourly means
    gives no effect (verdict ``insufficient``).
    """
    built = [side_of(plan, hours, intervals) for plan in plans]
    sides = [side for side, _ in built]
    reports = tuple(report for _, report in built)
    if any(r.values < 2 for r in reports):
        return Outcome(sides=reports, effect=None, verdict="insufficient")
    if design == "difference_in_differences":
        effect = difference_in_differences(*sides, confidence=confidence, method=method)
    else:
        effect = difference_in_means(*sides, confidence=confidence, method=method)
    return Outcome(sides=reports, effect=effect, verdict=verdict_of(reports, effect))


def verdict_of(sides: Sequence[SideReport], effect: Effect) -> Verdict:
    """``incomplete`` when a side has less than :data:`MIN_COMPLETENESS` of its expected
    readings; else ``effect`` when the interval excludes zero, ``no_effect`` when it holds it."""
    if any(s.completeness is not None and s.completeness < MIN_COMPLETENESS for s in sides):
        return "incomplete"
    return "no_effect" if effect.covers(0.0) else "effect"
