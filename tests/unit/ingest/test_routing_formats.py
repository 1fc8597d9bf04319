"""decode_message for every supported topic: tenants, aliases from settings, privacy, safety."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.routing import DECODERS, RoutingConfig, decode_message, route
from urbanpulse.mqtt_topics import DEVICE_FORMATS, SUPPORTED_TOPIC_FILTERS
from urbanpulse.settings import DecoderSettings, Settings

from ._vectors import raw

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
LIMIT = 256 * 1024
CONFIG = RoutingConfig(
    default_tenant="fallback",
    tenant_by_application={"app1@tenant1": "athens", "starter-kit": "delft", "cs-app": "ghent"},
)


@pytest.mark.parametrize(
    ("topic", "tenant", "sensor", "fmt"),
    [
        ("urbanpulse/town/s-1/json", "town", "s-1", "json"),
        ("urbanpulse/town/s-1/senml", "town", "s-1", "senml"),
        ("urbanpulse/town/s-1/lpp", "town", "s-1", "lpp"),
        ("urbanpulse/town/s-1/sensorcommunity", "town", "s-1", "sensorcommunity"),
        ("v3/app1@tenant1/devices/dev1/up", "athens", "dev1", "tts_v3"),
        ("v3/starter-kit@other/devices/d/up", "delft", "d", "tts_v3"),
        ("v3/starter-kit/devices/d/up", "delft", "d", "tts_v3"),
        ("v3/unknown/devices/d/up", "fallback", "d", "tts_v3"),
        ("application/cs-app/device/AABB/event/up", "ghent", "aabb", "chirpstack_v4"),
        ("application/other/device/aabb/event/up", "fallback", "aabb", "chirpstack_v4"),
    ],
)
def test_routes(topic: str, tenant: str, sensor: str, fmt: str) -> None:
    where = route(topic, CONFIG)
    assert (where.tenant, where.sensor_id, where.format) == (tenant, sensor, fmt)


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("v3/app/devices/d/join", "unknown_topic"),
        ("application/a/device/d/event/status", "unknown_topic"),
        ("urbanpulse/town/s-1/csv", "unknown_format"),
        ("v3/app/devices/d d/up", "invalid_topic"),
    ],
)
def test_unsupported_topics_are_dead_letters(topic: str, reason: str) -> None:
    out = decode_message(topic, b"{}", NOW, LIMIT, config=CONFIG)
    assert out.dead_letter is not None and out.dead_letter.reason == reason


def test_every_device_format_has_a_decoder() -> None:
    assert set(DECODERS) == set(DEVICE_FORMATS)


@pytest.mark.parametrize("topic_filter", SUPPORTED_TOPIC_FILTERS)
def test_every_supported_filter_routes_to_a_decoder(topic_filter: str) -> None:
    topic = topic_filter.replace("+", "x1")
    assert route(topic, CONFIG).sensor_id == "x1"


def test_tts_vector_end_to_end_with_tenant(shared_dir: Path) -> None:
    payload = raw(shared_dir, "tts-v3/uplink-webhook-starter-kit-mclimate-button.json")
    out = decode_message("v3/starter-kit@docs/devices/x/up", payload, NOW, LIMIT, config=CONFIG)
    assert out.dead_letter is None
    assert {(r.tenant, r.sensor_id) for r in out.readings} == {("delft", "eui-70b3d52dd600035a")}


def test_undecodable_uplink_keeps_the_original_bytes(shared_dir: Path) -> None:
    payload = raw(shared_dir, "chirpstack-v4/event-up-docs-example.json")
    out = decode_message("application/cs-app/device/0101010101010101/event/up", payload, NOW, LIMIT)
    assert out.readings == ()
    assert out.dead_letter is not None and out.dead_letter.reason == "no_decoded_payload"
    assert base64.b64decode(out.dead_letter.payload_b64) == payload


def test_callers_without_config_still_work() -> None:
    out = decode_message("urbanpulse/town/s-1/lpp", bytes.fromhex("03670110"), NOW, 1024)
    assert [(r.sensor_id, r.probe, r.quantity, r.value) for r in out.readings] == [
        ("s-1", "3", "temperature", 27.2)
    ]


def test_aliases_and_tenants_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("URBANPULSE_DECODERS__ALIASES", '{"ext_t": "temperature", "battery": "-"}')
    monkeypatch.setenv("URBANPULSE_DECODERS__TENANT_BY_APPLICATION", '{"cs-app": "ghent"}')
    config = RoutingConfig.from_settings(Settings())
    event = {"object": {"extT": 4.5, "battery": 3000}, "rxInfo": [{"rssi": -100}]}
    out = decode_message(
        "application/cs-app/device/ab/event/up",
        json.dumps(event).encode(),
        NOW,
        LIMIT,
        config=config,
    )
    assert [(r.tenant, r.quantity, r.value) for r in out.readings] == [
        ("ghent", "temperature", 4.5),
        ("ghent", "rssi", -100.0),
        ("ghent", "gateway_count", 1.0),
    ]


def test_bad_alias_targets_are_refused_at_start_up() -> None:
    settings = Settings(decoders=DecoderSettings(aliases={"x": "not a quantity"}))
    with pytest.raises(ValueError, match="canonical quantity"):
        RoutingConfig.from_settings(settings)


def test_personal_quantities_are_dropped() -> None:
    event = {"object": {"paxCount": 3, "pax": 12, "temperature": 3.5, "mac": 1234}}
    out = decode_message("application/a/device/ab/event/up", json.dumps(event).encode(), NOW, LIMIT)
    assert [r.quantity for r in out.readings] == ["pax_count", "temperature"]
    assert out.dropped_personal == 2


def test_a_message_of_personal_data_only_keeps_no_bytes() -> None:
    payload = b'[{"n": "people", "u": "count", "v": 12}]'
    out = decode_message("urbanpulse/town/door-1/senml", payload, NOW, LIMIT)
    assert out.readings == ()
    assert out.dead_letter is not None and out.dead_letter.reason == "personal_only"
    assert out.dead_letter.payload_b64 == ""
    assert out.dropped_personal == 1


topics = st.one_of(
    st.sampled_from(
        [
            "urbanpulse/t/s/json",
            "urbanpulse/t/s/senml",
            "urbanpulse/t/s/lpp",
            "urbanpulse/t/s/sensorcommunity",
            "v3/a@b/devices/d/up",
            "application/a/device/d/event/up",
        ]
    ),
    st.text(max_size=40),
)


@given(topics, st.binary(max_size=300))
def test_any_message_gives_readings_or_a_dead_letter(topic: str, payload: bytes) -> None:
    out = decode_message(topic, payload, NOW, 200, config=CONFIG)
    assert (out.dead_letter is None) != (out.readings == ())
    if out.dead_letter is not None:
        assert out.dead_letter.reason != "decoder_error", out.dead_letter.detail
