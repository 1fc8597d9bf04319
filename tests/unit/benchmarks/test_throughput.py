"""How often the throughput run looks for its latency probes."""

import pytest

from benchmarks.throughput import poll_wait


def test_probes_are_polled_every_25_ms_up_to_250_ms_of_latency() -> None:
    assert [poll_wait(age) for age in (0.0, 0.1, 0.25)] == [0.025, 0.025, 0.025]


def test_older_probes_are_polled_every_tenth_of_their_age() -> None:
    assert poll_wait(1.0) == pytest.approx(0.1) and poll_wait(3.0) == pytest.approx(0.3)
