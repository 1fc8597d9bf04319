"""Bulk files' pure parts: days, ETags, cache paths, streamed gzip, and the daily counts."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from api.bulk import (
    DailyCounts,
    DayCount,
    cache_file,
    file_etag,
    file_path,
    gzip_chunks,
    is_final,
    kept_on_disk,
    offered_days,
    parse_day,
)
from api.filters import DayCountFilter
from api.params import BadQuery

GRACE = timedelta(minutes=5)


def test_offered_days_end_today() -> None:
    now = datetime(2026, 11, 27, 0, 3, tzinfo=UTC)
    assert offered_days(now, 3) == [date(2026, 11, 25), date(2026, 11, 26), date(2026, 11, 27)]


def test_a_day_is_final_after_the_grace() -> None:
    day = date(2026, 11, 26)
    assert not is_final(day, datetime(2026, 11, 27, 0, 4, tzinfo=UTC), GRACE)
    assert is_final(day, datetime(2026, 11, 27, 0, 5, tzinfo=UTC), GRACE)


@pytest.mark.parametrize("text", ["2026-13-01", "2026-02-30", "26-11-01", "2026-11-1", "x"])
def test_bad_days(text: str) -> None:
    with pytest.raises(BadQuery):
        parse_day(text)


def test_paths_encode_the_tenant(tmp_path: Path) -> None:
    assert file_path("a/b", "pm2_5", date(2026, 1, 2)) == "/v1/bulk/a%2Fb/pm2_5/2026-01-02.csv.gz"
    kept = cache_file(tmp_path, "..", "pm2_5", date(2026, 1, 2))
    assert kept.resolve().is_relative_to(tmp_path.resolve())
    assert kept.parent.parent.name == "%2E%2E"


def test_etag_changes_with_the_count() -> None:
    one = DayCount("t", "pm2_5", date(2026, 1, 2), 10)
    assert file_etag(one) == file_etag(DayCount("t", "pm2_5", date(2026, 1, 2), 10))
    assert file_etag(one) != file_etag(DayCount("t", "pm2_5", date(2026, 1, 2), 11))


def test_gzip_chunks_make_one_gzip_file() -> None:
    lines = [f"{i},x\n" for i in range(5000)]
    assert gzip.decompress(b"".join(gzip_chunks(lines))).decode() == "".join(lines)


def test_kept_on_disk_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "t" / "f.gz"
    assert b"".join(kept_on_disk(iter([b"a", b"b"]), target)) == b"ab"
    assert target.read_bytes() == b"ab"

    def failing() -> Iterator[bytes]:
        yield b"c"
        raise OSError("the store went away")

    other = tmp_path / "t" / "g.gz"
    with pytest.raises(OSError):
        b"".join(kept_on_disk(failing(), other))
    assert not other.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.gz"]  # no temp left

    abandoned = kept_on_disk(iter([b"d", b"e"]), other)
    next(abandoned)
    abandoned.close()  # the client went away mid-download
    assert not other.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.gz"]


class FakeCounts:
    """Counts one reading per tenant and day; records what was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[datetime, datetime]] = []

    def daily_counts(self, flt: DayCountFilter) -> list[tuple[str, str, datetime, int]]:
        self.asked.append((flt.start, flt.stop))
        days = int((flt.stop - flt.start) / timedelta(days=1) + 0.999)
        return [("t", "pm2_5", flt.start + timedelta(days=i), 1) for i in range(days)]


def test_final_days_are_asked_once() -> None:
    now = [datetime(2026, 11, 27, 12, tzinfo=UTC)]
    source = FakeCounts()
    counts = DailyCounts(source, days=3, ttl_s=0, grace=GRACE, clock=lambda: now[0])
    assert [c.day for c in counts.all()] == [
        date(2026, 11, 25),
        date(2026, 11, 26),
        date(2026, 11, 27),
    ]
    assert source.asked[0] == (
        datetime(2026, 11, 25, tzinfo=UTC),
        datetime(2026, 11, 27, tzinfo=UTC),
    )
    source.asked.clear()
    counts.all()
    assert [start for start, _ in source.asked] == [datetime(2026, 11, 27, tzinfo=UTC)]  # today
    now[0] = datetime(2026, 11, 28, 1, tzinfo=UTC)  # a new day: only the newly final one
    source.asked.clear()
    assert [c.day for c in counts.all()] == [
        date(2026, 11, 26),
        date(2026, 11, 27),
        date(2026, 11, 28),
    ]
    assert source.asked[0] == (
        datetime(2026, 11, 27, tzinfo=UTC),
        datetime(2026, 11, 28, tzinfo=UTC),
    )
    assert counts.one("t", "pm2_5", date(2026, 11, 25)) is None  # no longer offered
    assert counts.one("t", "pm2_5", date(2026, 11, 26)) == DayCount(
        "t", "pm2_5", date(2026, 11, 26), 1
    )
