"""One run of the indicator job: read what is stored, compute every period, write the points.

A run computes yesterday and today (or every day since ``since``), oldest first, so each day
finds the day before it already computed (its sensors' first-seen times, last readings,
batteries and inferred intervals carry over); then the weeks those days fall in, from the
stored days. Dead letters are read from Kafka once per run, from the start of the first week.
The maths is in kpis/compute.py and kpis/indicators.py; this module only moves data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from streams.kpis.compute import Inputs, day_results, week_results
from streams.kpis.indicators import Evaluation
from streams.kpis.letters import SensorKey, tally
from streams.kpis.periods import PeriodSpan, day_span, days_to_compute, week_span, weeks_of
from streams.kpis.store import KpiStore
from urbanpulse.deadletter_reader import LetterScan
from urbanpulse.kpi import Indicators
from urbanpulse.letter_subjects import LetterSubject, letter_subject
from urbanpulse.model import DeadLetter
from urbanpulse.registry import Registry, SensorInfo
from urbanpulse.scorecard import ScoreRules
from urbanpulse.settings import Settings

log = logging.getLogger(__name__)

LetterSource = Callable[[datetime], LetterScan]
"""Every dead letter written since a moment (urbanpulse.deadletter_reader.read_letters)."""


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    """What one run did."""

    days: list[date]
    weeks: list[date]
    points: int
    letters: int
    unattributed: int
    truncated: bool
    seconds: float


class KpiJob:
    """Computes and stores the indicators of a span of days and their weeks."""

    def __init__(
        self,
        settings: Settings,
        store: KpiStore,
        letters: LetterSource,
        registry: Callable[[], Registry],
    ) -> None:
        self._settings = settings
        self._store = store
        self._letters = letters
        self._registry = registry
        self._tz = ZoneInfo(settings.kpis.timezone)
        self._rules = ScoreRules.of(settings)
        self._scored = frozenset(settings.kpis.scored_flags)

    def run(
        self, now: datetime, *, since: date | None = None, tenant: str | None = None
    ) -> RunSummary:
        """Compute and store the days from ``since`` (default: yesterday) to today, and weeks."""
        began = time.monotonic()
        days = days_to_compute(now, self._tz, since)
        weeks = weeks_of(days)
        scan = self._letters(week_span(days[0], self._tz).start)
        subjects = [self._subject_of(letter) for letter in scan.letters]
        registry = {k: i for k, i in self._registry().items() if tenant in (None, k[0])}
        points = 0
        for day in days:
            points += self._day(day, now, registry, subjects, tenant)
        for monday in weeks:
            points += self._week(monday, now, registry, subjects, tenant)
        unattributed = sum(1 for s in subjects if s.tenant is None)
        if unattributed:
            log.warning(
                "%d dead letters since %s name no tenant (no topic of a known shape, or not a "
                "letter of ours): counted nowhere but here",
                unattributed,
                week_span(days[0], self._tz).start.isoformat(),
            )
        if scan.truncated:
            log.warning(
                "read only the first %d dead letters (kpis.deadletter_scan_max): the dead-letter "
                "counts are a lower bound",
                len(scan.letters),
            )
        return RunSummary(
            days=days,
            weeks=weeks,
            points=points,
            letters=len(subjects),
            unattributed=unattributed,
            truncated=scan.truncated,
            seconds=time.monotonic() - began,
        )

    def _subject_of(self, letter: DeadLetter) -> LetterSubject:
        return letter_subject(
            letter,
            self._settings.decoders.tenant_by_application,
            self._settings.default_tenant,
        )

    def _evaluation(self, span: PeriodSpan, now: datetime) -> Evaluation:
        return Evaluation(
            span=span,
            now=now,
            default_interval_s=self._settings.streams.expected_interval_s,
            rules=self._rules,
        )

    def _day(
        self,
        day: date,
        now: datetime,
        registry: Mapping[SensorKey, SensorInfo],
        letters: list[LetterSubject],
        tenant: str | None,
    ) -> int:
        span = day_span(day, self._tz)
        before = day_span(day - timedelta(days=1), self._tz)
        stored = self._store.stored(
            before.start, before.end, period="day", scope="sensor", tenant=tenant
        )
        carry: dict[SensorKey, Indicators] = {
            (t, subject): results[-1].indicators for (t, _, subject), results in stored.items()
        }
        inputs = Inputs(
            observations=self._store.observations(span, tenant, self._scored),
            registry=registry,
            carry=carry,
            letters=tally(letters, span),
            tenant=tenant,
            forget_after_days=self._settings.kpis.forget_after_days,
        )
        results = day_results(inputs, self._evaluation(span, now))
        self._store.write(results)
        log.info("indicators of %s: %d subjects", day.isoformat(), len(results))
        return len(results)

    def _week(
        self,
        monday: date,
        now: datetime,
        registry: Mapping[SensorKey, SensorInfo],
        letters: list[LetterSubject],
        tenant: str | None,
    ) -> int:
        span = week_span(monday, self._tz)
        stored = self._store.stored(
            span.start, span.end, period="day", scope="sensor", tenant=tenant
        )
        days = {(t, subject): results for (t, _, subject), results in stored.items()}
        results = week_results(days, registry, tally(letters, span), self._evaluation(span, now))
        self._store.write(results)
        log.info("indicators of the week of %s: %d subjects", monday.isoformat(), len(results))
        return len(results)
