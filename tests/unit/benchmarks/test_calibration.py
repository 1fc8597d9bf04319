import time
from collections.abc import Iterator

import pytest

from benchmarks import calibration


def busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_the_calibration_counts_cpu_time_not_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calibration, "_work", lambda: time.sleep(0.05))
    assert calibration.calibration_ms(3) < 10


def test_the_calibration_is_the_best_of_its_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    durations: Iterator[float] = iter([0.06, 0.02, 0.04])
    monkeypatch.setattr(calibration, "_work", lambda: busy(next(durations)))
    assert 20 <= calibration.calibration_ms(3) < 35


def test_the_workload_takes_milliseconds() -> None:
    assert 1 < calibration.calibration_ms(1) < 1000  # tens of ms here
