"""Running the indicator job: its adapters wired from settings, once or in a loop until SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from streams.kpis.job import KpiJob, RunSummary
from streams.kpis.periods import local_day
from streams.kpis.store import KpiStore
from urbanpulse.deadletter_reader import LetterScan, read_letters
from urbanpulse.registry import RegistryFile
from urbanpulse.settings import Settings

log = logging.getLogger("urbanpulse.kpis")
CONSUMER_GROUP = "urbanpulse-kpis"  # librdkafka wants a group; the job never commits


def refuse_old_since(settings: Settings, since: date) -> str | None:
    """Why ``--since`` cannot go that far back (the raw readings are gone), or None."""
    keep = settings.influx.raw_retention_days
    today = local_day(datetime.now(UTC), ZoneInfo(settings.kpis.timezone))
    if keep and since < today - timedelta(days=keep - 1):
        return (
            f"raw readings are kept {keep} days (URBANPULSE_INFLUX__RAW_RETENTION_DAYS): "
            f"days before {today - timedelta(days=keep - 1)} would be recomputed from nothing "
            "and their stored indicators overwritten"
        )
    return None


def build_job(settings: Settings) -> tuple[KpiJob, KpiStore]:
    """The job with its real adapters (InfluxDB, Kafka, the registry file)."""
    store = KpiStore(settings.influx)
    registry = RegistryFile(settings.streams.registry_path, settings.streams.registry_reload_s)

    def letters(since: datetime) -> LetterScan:
        return read_letters(
            settings.kafka, since, limit=settings.kpis.deadletter_scan_max, group=CONSUMER_GROUP
        )

    return KpiJob(settings, store, letters, registry.current), store


def _log(summary: RunSummary) -> None:
    log.info(
        "indicators of %s to %s and %d week(s) stored: %d points, %d dead letters, %.1f s",
        summary.days[0].isoformat(),
        summary.days[-1].isoformat(),
        len(summary.weeks),
        summary.points,
        summary.letters,
        summary.seconds,
    )


def run_once(settings: Settings, *, since: date | None, tenant: str | None) -> int:
    """One run; the process's exit code."""
    job, store = build_job(settings)
    try:
        _log(job.run(datetime.now(UTC), since=since, tenant=tenant))
    finally:
        store.close()
    return 0


def run_loop(settings: Settings, every_s: float, *, since: date | None, tenant: str | None) -> int:
    """Run every ``every_s`` until SIGINT or SIGTERM; a failed run waits for the next turn.

    ``since`` applies to the first run only; later runs recompute yesterday and today.
    """
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    job, store = build_job(settings)
    first: date | None = since
    try:
        while not stop.is_set():
            try:
                _log(job.run(datetime.now(UTC), since=first, tenant=tenant))
                first = None
            except Exception:  # an outage must not end the job: the next turn tries again
                log.exception("indicator run failed; trying again in %.0f s", every_s)
            stop.wait(every_s)
    finally:
        store.close()
    log.info("stopped")
    return 0
