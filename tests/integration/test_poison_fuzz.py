"""Poison fuzzing end to end: generated payloads for every format through the real broker,
ingestor and worker; afterwards a control reading is stored within 10 s and nothing exited.

The payloads are near misses of each format (the fields a decoder reads, with values of every
JSON type, out-of-range numbers, odd times and nesting) and plain garbage bytes, published at
QoS 1 on the run's topics of native JSON, SenML, Cayenne LPP, The Things Stack and
ChirpStack. The stack is benchmarks/faults.py's: its own ingestor, worker, tenant and topics.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.faults import (
    control_stored,
    every_format_stack,
    publish_control,
    start_components,
)
from benchmarks.influxql import InfluxQL
from benchmarks.poison import APPLICATION
from benchmarks.stack import Stack
from simulators.publisher import connect
from urbanpulse.mqtt_topics import CAYENNE_LPP, NATIVE_JSON, SENML, device_topic

CONTROL_DEADLINE_S = 10.0

# Numbers that break arithmetic or storage, times at and beyond every boundary, odd strings.
NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 1e308, -1.7e308, 1e-320, 2**63, -(2**63) - 1, 10**400]),
    st.integers(),
)
TIMES = st.one_of(
    st.sampled_from(
        [
            "3000-01-01T00:00:00Z",
            "1500-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "2026-01-01T00:00:00+25:00",
            "yesterday",
            "",
        ]
    ),
    NUMBERS,
    st.text(max_size=30),
)
TEXT = st.one_of(st.text(max_size=40), st.sampled_from(["NaN", "Infinity", "-inf", "1e999"]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, TIMES)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _objects(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with any subset of the fields a decoder reads, each of a fitting or wrong type."""
    return st.fixed_dictionaries(
        {}, optional={k: st.one_of(v, ANY_JSON) for k, v in fields.items()}
    )


READING = _objects(
    {
        "time": TIMES,
        "quantity": st.sampled_from(["temperature", "pm25", "zz_unknown", "", "noise"]),
        "value": NUMBERS,
        "unit": st.sampled_from(["Cel", "ug/m3", "K", "", "?"]),
        "id": TEXT,
    }
)
NATIVE = st.one_of(READING, st.fixed_dictionaries({"readings": st.lists(READING, max_size=5)}))
SENML_RECORDS = st.lists(
    _objects(
        {
            "bn": TEXT,
            "bt": NUMBERS,
            "n": st.sampled_from(["temperature", "humidity", "x"]),
            "v": NUMBERS,
            "vs": TEXT,
            "vb": st.booleans(),
            "u": st.sampled_from(["Cel", "%RH", "?"]),
            "t": NUMBERS,
        }
    ),
    max_size=5,
)
TTS = _objects(
    {
        "end_device_ids": _objects({"device_id": TEXT}),
        "received_at": TIMES,
        "uplink_message": _objects(
            {
                "decoded_payload": st.dictionaries(st.text(max_size=20), ANY_JSON, max_size=5),
                "normalized_payload": st.lists(ANY_JSON, max_size=3),
                "frm_payload": st.one_of(TEXT, st.sampled_from(["AWcA6g==", "!!!", ""])),
                "received_at": TIMES,
                "rx_metadata": st.lists(_objects({"rssi": NUMBERS, "time": TIMES}), max_size=3),
                "locations": ANY_JSON,
                "f_cnt": NUMBERS,
                "last_battery_percentage": _objects({"value": NUMBERS}),
            }
        ),
    }
)
CHIRPSTACK = _objects(
    {
        "deviceInfo": _objects({"devEui": TEXT}),
        "object": st.dictionaries(st.text(max_size=20), ANY_JSON, max_size=5),
        "data": st.one_of(TEXT, st.sampled_from(["AWcA6g==", "%%%"])),
        "time": TIMES,
        "rxInfo": st.lists(_objects({"rssi": NUMBERS, "gwTime": TIMES}), max_size=3),
        "fCnt": NUMBERS,
    }
)


def _encoded(value: Any) -> bytes:
    # allow_nan: Python writes NaN and Infinity tokens, which JSON does not have: poison too.
    return json.dumps(value).encode()


LPP_BYTES = st.one_of(
    st.binary(max_size=64),
    st.lists(
        st.tuples(
            st.integers(0, 255), st.sampled_from([0, 1, 2, 3, 101, 103, 104, 113, 136])
        ).flatmap(lambda ct: st.binary(max_size=10).map(lambda rest: bytes(ct) + rest)),
        max_size=4,
    ).map(b"".join),
)
GARBAGE = st.binary(max_size=200)

# (topic kind, payload bytes): each format's near misses, and garbage on every topic.
MESSAGES = st.one_of(
    st.tuples(st.just(NATIVE_JSON), st.one_of(NATIVE.map(_encoded), GARBAGE)),
    st.tuples(st.just(SENML), st.one_of(SENML_RECORDS.map(_encoded), GARBAGE)),
    st.tuples(st.just(CAYENNE_LPP), LPP_BYTES),
    st.tuples(st.just("tts"), st.one_of(TTS.map(_encoded), GARBAGE)),
    st.tuples(st.just("chirpstack"), st.one_of(CHIRPSTACK.map(_encoded), GARBAGE)),
)


def _topic(stack: Stack, kind: str) -> str:
    if kind == "tts":
        return f"v3/{APPLICATION}/devices/fuzz-tts/up"
    if kind == "chirpstack":
        return f"application/{APPLICATION}/device/0011223344556677/event/up"
    return device_topic(stack.tenant, f"fuzz-{kind}", kind)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """One ingestor and one worker reading every format, for the whole module."""
    with tempfile.TemporaryDirectory(prefix="poison-fuzz-") as workdir:
        stack = every_format_stack(Path(workdir), "fz")
        try:
            start_components(stack)
            yield stack
        finally:
            stack.finish(
                keep=False, drop_tenant=InfluxQL.from_settings(stack.settings.influx).drop_tenant
            )


@pytest.mark.timeout(240)
def test_fuzzed_payloads_of_every_format_stop_nothing(stack: Stack) -> None:
    client = connect(stack.settings.mqtt, f"{stack.name}-fuzz")
    published: list[str] = []

    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(message=MESSAGES)
    def publish(message: tuple[str, bytes]) -> None:
        kind, payload = message
        info = client.publish(_topic(stack, kind), payload, qos=1)
        info.wait_for_publish(10)
        assert info.is_published(), f"the broker did not take a {kind} payload: {payload!r}"
        published.append(kind)
        stack.check_alive()

    try:
        publish()
    finally:
        client.disconnect()
        client.loop_stop()
    assert len(published) >= 100, "hypothesis ran fewer examples than meant"
    assert set(published) == {NATIVE_JSON, SENML, CAYENNE_LPP, "tts", "chirpstack"}

    influx = InfluxQL.from_settings(stack.settings.influx)
    t_us = publish_control(stack)
    start = time.monotonic()
    while not control_stored(influx, stack, t_us):
        stack.check_alive()
        assert time.monotonic() - start < CONTROL_DEADLINE_S, (
            f"the control reading was not stored within {CONTROL_DEADLINE_S} s after "
            f"{len(published)} fuzzed messages; logs: {[str(p.log) for p in stack.processes]}"
        )
        time.sleep(0.2)
    stack.check_alive()
