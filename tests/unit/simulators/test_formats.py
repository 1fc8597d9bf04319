"""Every format's messages decode, through the real ingest routing, to what the simulator meant."""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta

import pytest

from simulators.formats import lpp_quantise
from simulators.scenario import FORMATS
from tests.unit.simulators.helpers import decode, run, town


def _key(sensor: str, quantity: str, unit: str, when: object) -> tuple[str, str, str, str]:
    return sensor, quantity, unit, str(when)


@pytest.mark.parametrize("timestamps", [True, False])
def test_each_format_decodes_to_the_intended_readings(timestamps: bool) -> None:
    scenario = town()
    items = run(scenario, hours=3, timestamps=timestamps)
    seen: Counter[str] = Counter()
    for item in items:
        message = item.message
        assert message is not None
        received = message.observed_at + timedelta(seconds=2)
        out = decode(scenario, message, received)
        if message.dead_letter == "personal_only":
            assert out.dead_letter is not None and out.dead_letter.reason == "personal_only"
            continue
        assert out.dead_letter is None, (message.topic, out.dead_letter)
        got = sorted(
            (_key(r.sensor_id, r.quantity, r.unit, r.observed_at), r.value) for r in out.readings
        )
        meant = sorted(
            (_key(r.sensor_id, r.quantity, r.unit, r.observed_at or received), r.value)
            for r in message.readings
        )
        assert [k for k, _ in got] == [k for k, _ in meant], message.topic
        for (key, value), (_, intended) in zip(got, meant, strict=True):
            assert math.isclose(value, intended, rel_tol=1e-9, abs_tol=1e-9), (key, value, intended)
        assert all(r.tenant == scenario.tenant for r in out.readings), message.topic
        assert out.dropped_personal == len(message.personal)
        seen[message.format] += 1
    assert set(seen) == set(FORMATS), seen


def test_intended_values_are_the_model_values_within_the_format_resolution() -> None:
    scenario = town()
    for item in run(scenario, hours=1):
        assert item.message is not None
        for reading in item.message.readings:
            if item.message.format == "lpp":
                assert reading.value == lpp_quantise(reading.quantity, reading.value)


def test_people_counts_are_personal_and_dropped_at_ingest() -> None:
    scenario = town()
    people = [
        i for i in run(scenario, hours=2) if i.message and i.message.device_id.startswith("people")
    ]
    assert people
    for item in people:
        assert item.message is not None
        assert [r.quantity for r in item.message.personal] == ["people_count"]
        out = decode(scenario, item.message)
        assert out.dropped_personal == 1
        assert all(r.quantity != "people_count" for r in out.readings)
        privacy = [r for r in item.records if r.kind == "privacy"]
        assert [(r.fault, r.quantity) for r in privacy] == [("personal", "people_count")]


def test_every_kind_decodes_in_every_format_that_can_carry_it() -> None:
    base = town()
    every = dict.fromkeys(FORMATS, 1.0)
    groups = {kind: {"count": 6, "formats": every} for kind in base.sensors}
    scenario = base.model_validate(base.model_dump() | {"sensors": groups})
    pairs = set()
    for item in run(scenario, hours=1):
        message = item.message
        assert message is not None
        out = decode(scenario, message)
        if message.dead_letter:
            assert out.dead_letter is not None and out.dead_letter.reason == message.dead_letter
            continue
        got = sorted((r.sensor_id, r.quantity, r.unit, r.value) for r in out.readings)
        meant = sorted((r.sensor_id, r.quantity, r.unit, r.value) for r in message.readings)
        assert [g[:3] for g in got] == [m[:3] for m in meant], message.topic
        for g, m in zip(got, meant, strict=True):
            assert math.isclose(g[3], m[3], rel_tol=1e-9, abs_tol=1e-9), (message.topic, g, m)
        pairs |= {(message.format, r.quantity) for r in message.readings}
    assert ("senml", "pressure") in pairs and ("sensorcommunity", "noise_level") in pairs
    assert ("lpp", "relative_humidity") in pairs and ("tts", "battery_level") in pairs
