"""Bulk downloads: one gzip CSV of raw readings per tenant, open quantity and UTC day.

``GET /v1/bulk`` lists the files of the last ``api.bulk_days`` days that have readings (with
their row counts, links and licence); ``GET /v1/bulk/{tenant}/{quantity}/{date}.csv.gz`` streams
one of them, generated on demand from InfluxDB (the same columns as the observations CSV).

A day is *final* once it ended more than the late-reading grace ago: its file can no longer
change, so it carries a strong ``ETag`` and a long ``Cache-Control``, its count is remembered
for the life of the process (the listing then only asks InfluxDB about the open days), and with
``api.bulk_cache_dir`` its file is kept on disk (written to a temporary file, then renamed, so a
reader never sees half a file). Today's file is still growing: short ``Cache-Control``, no ETag.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import quote

from fastapi import Request

from api.cache import TtlCache
from api.filters import DayCountFilter, ObservationFilter
from api.formats import Observation
from api.params import BadQuery
from api.privacy import OPEN_QUANTITIES
from api.store import CountSource, RowSource
from urbanpulse.settings import ApiSettings

GZIP_MEDIA_TYPE = "application/gzip"
FORMAT_VERSION = "1"  # part of every ETag: bump it when the file's columns change
MAX_ROWS = 100_000_000  # a bound on one day's query; far above any town's day
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, order=True)
class DayCount:
    """How many readings of one tenant's quantity one UTC day holds."""

    tenant: str
    quantity: str
    day: date
    readings: int


def offered_days(now: datetime, days: int) -> list[date]:
    """The UTC days whose files are offered, oldest first, today last."""
    today = now.astimezone(UTC).date()
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime.combine(day, time(), tzinfo=UTC)


def is_final(day: date, now: datetime, grace: timedelta) -> bool:
    """True when ``day`` ended more than ``grace`` (late readings) before ``now``."""
    return day_start(day) + timedelta(days=1) + grace <= now


def parse_day(text: str) -> date:
    """A ``YYYY-MM-DD`` calendar date; BadQuery otherwise."""
    if not _DAY.match(text):
        raise BadQuery("the date is YYYY-MM-DD, e.g. 2026-11-26")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadQuery(f"{text!r} is not a calendar date") from None


def file_path(tenant: str, quantity: str, day: date) -> str:
    """The URL path of one bulk file (the tenant percent-encoded)."""
    return f"/v1/bulk/{quote(tenant, safe='')}/{quantity}/{day.isoformat()}.csv.gz"


def file_etag(count: DayCount) -> str:
    """A strong ETag of a final day's file: the rows are in a total order, so the same
    tenant, quantity, day and count always give the same bytes (before gzip)."""
    key = f"{FORMAT_VERSION}\x1f{count.tenant}\x1f{count.quantity}\x1f{count.day}\x1f"
    return '"' + hashlib.sha256(f"{key}{count.readings}".encode()).hexdigest()[:32] + '"'


def cache_file(folder: Path, tenant: str, quantity: str, day: date) -> Path:
    """Where a final day's file is kept; the tenant encoded so it can never leave ``folder``
    (no ``/``, and dots escaped so ``..`` is not a parent)."""
    safe = quote(tenant, safe="").replace(".", "%2E")
    return folder / safe / quantity / f"{day.isoformat()}.csv.gz"


def gzip_chunks(lines: Iterable[str], level: int = 6) -> Iterator[bytes]:
    """Gzip-compress text as it comes (one gzip member, so ``gzip.decompress`` reads it)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip header and trailer
    for line in lines:
        chunk = compressor.compress(line.encode())
        if chunk:
            yield chunk
    yield compressor.flush()


def kept_on_disk(chunks: Iterable[bytes], target: Path) -> Iterator[bytes]:
    """Pass ``chunks`` through and keep them as ``target`` once all were produced.

    They go to a temporary file in the same folder, renamed over ``target`` only at the end:
    an interrupted download or a failed query leaves no partial file behind.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=".part-", suffix=".gz")
    done = False
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                yield chunk
        os.replace(temp, target)
        done = True
    finally:
        if not done:
            Path(temp).unlink(missing_ok=True)


class DailyCounts:
    """Readings per tenant, open quantity and UTC day over the offered days.

    Final days are asked once and remembered; only the days still open are asked again, at
    most every ``ttl_s`` seconds.
    """

    def __init__(
        self,
        source: CountSource,
        *,
        days: int,
        ttl_s: float,
        grace: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._source = source
        self._days = days
        self._grace = grace
        self._clock = clock
        self._final: dict[date, list[DayCount]] = {}
        self._open: TtlCache[list[DayCount]] = TtlCache(ttl_s)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The clock this listing runs on."""
        return self._clock()

    def all(self) -> list[DayCount]:
        """Every (tenant, quantity, day) with readings, sorted."""
        now = self._clock()
        days = offered_days(now, self._days)
        final = [d for d in days if is_final(d, now, self._grace)]
        open_days = [d for d in days if d not in final]
        found = [c for d in final for c in self._final_day(d, final)]
        if open_days:
            start = day_start(open_days[0])
            found += self._open.get(start, lambda: self._ask(start, now + timedelta(seconds=1)))
        return sorted(found)

    def one(self, tenant: str, quantity: str, day: date) -> DayCount | None:
        """The count of one file, or None when it has no readings or is not offered."""
        for count in self.all():
            if (count.tenant, count.quantity, count.day) == (tenant, quantity, day):
                return count
        return None

    def is_final(self, day: date) -> bool:
        """True when ``day``'s file can no longer change."""
        return is_final(day, self._clock(), self._grace)

    def _final_day(self, day: date, final: list[date]) -> list[DayCount]:
        with self._lock:
            if day not in self._final:
                missing = [d for d in final if d not in self._final]
                start, stop = day_start(missing[0]), day_start(missing[-1] + timedelta(days=1))
                counts = self._ask(start, stop)
                for d in missing:
                    self._final[d] = [c for c in counts if c.day == d]
                for old in [d for d in self._final if d < final[0]]:
                    del self._final[old]  # fell out of the offered days
            return self._final[day]

    def _ask(self, start: datetime, stop: datetime) -> list[DayCount]:
        rows = self._source.daily_counts(
            DayCountFilter(start=start, stop=stop, allowed=OPEN_QUANTITIES)
        )
        return [
            DayCount(tenant, quantity, moment.astimezone(UTC).date(), readings)
            for tenant, quantity, moment, readings in rows
        ]


def day_rows(store: RowSource, count: DayCount) -> Iterator[Observation]:
    """The readings of one file's day, oldest first.

    InfluxDB 1.8's ``range`` also returns points lying exactly on ``stop`` (measured: a reading
    at the next midnight came back), so the half-open day is enforced here too.
    """
    start = day_start(count.day)
    stop = start + timedelta(days=1)
    flt = ObservationFilter(
        start=start,
        stop=stop,
        limit=MAX_ROWS,
        tenant=count.tenant,
        quantity=count.quantity,
        allowed=OPEN_QUANTITIES,
    )
    return (row for row in store.observation_stream(flt) if row.time < stop)


def base_url(api: ApiSettings, request: Request) -> str:
    """The public URL links start with: the setting, else the request's own."""
    return (api.public_base_url or str(request.base_url)).rstrip("/")
