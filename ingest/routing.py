"""From an MQTT message to readings or a dead letter: topic routing and safe decoding (pure).

Topics and their decoders (docs/payloads.md):

====================================================  ===================  =====================
topic                                                 decoder              tenant
====================================================  ===================  =====================
``urbanpulse/{tenant}/{sensor_id}/json``              native_json          from the topic
``urbanpulse/{tenant}/{sensor_id}/senml``             senml                from the topic
``urbanpulse/{tenant}/{sensor_id}/lpp``               cayenne_lpp          from the topic
``urbanpulse/{tenant}/{sensor_id}/sensorcommunity``   sensor_community     from the topic
``v3/{app}[@{tts_tenant}]/devices/{device_id}/up``    tts_v3               application map
``application/{app_id}/device/{dev_eui}/event/up``    chirpstack_v4        application map
====================================================  ===================  =====================

For the network servers the tenant comes from :attr:`RoutingConfig.tenant_by_application`
(for The Things Stack ``app@tts_tenant`` is looked up first, then ``app``), or the default
tenant. Readings of quantities classed personal are dropped here, after decoding.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from ingest.aliases import DEFAULT_TABLE, QuantityTable, drop_personal
from ingest.decoders import (
    DecodeContext,
    DecodeError,
    Decoder,
    cayenne_lpp,
    chirpstack_v4,
    native_json,
    senml,
    sensor_community,
    tts_v3,
)
from urbanpulse.model import ID_PATTERN, DeadLetter, Reading
from urbanpulse.mqtt_topics import ROOT
from urbanpulse.settings import Settings

# Decoders by the last level of ``urbanpulse/{tenant}/{sensor_id}/{format}``.
DECODERS: dict[str, Decoder] = {
    native_json.FORMAT: native_json.decode,
    senml.FORMAT: senml.decode,
    cayenne_lpp.FORMAT: cayenne_lpp.decode,
    sensor_community.FORMAT: sensor_community.decode,
}
TTS_V3 = tts_v3.FORMAT
CHIRPSTACK_V4 = chirpstack_v4.FORMAT
NETWORK_SERVER_DECODERS: dict[str, Decoder] = {
    TTS_V3: tts_v3.decode,
    CHIRPSTACK_V4: chirpstack_v4.decode,
}


DEFAULT_TENANT = "default"
_ID = re.compile(ID_PATTERN)


@dataclass(frozen=True)
class RoutingConfig:
    """What routing needs besides the topic: default tenant, application map, alias table."""

    default_tenant: str = DEFAULT_TENANT
    tenant_by_application: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    quantities: QuantityTable = DEFAULT_TABLE

    def __post_init__(self) -> None:
        for name, tenant in (
            ("default tenant", self.default_tenant),
            *self.tenant_by_application.items(),
        ):
            if not _ID.fullmatch(tenant):
                raise ValueError(f"tenant {tenant!r} of {name!r} is not a valid tenant id")

    @classmethod
    def from_settings(cls, settings: Settings) -> RoutingConfig:
        """Build the routing configuration once, at start-up, from the settings."""
        return cls(
            default_tenant=settings.default_tenant,
            tenant_by_application=MappingProxyType(dict(settings.decoders.tenant_by_application)),
            quantities=QuantityTable.with_overrides(settings.decoders.aliases),
        )

    def tenant_for(self, *applications: str) -> str:
        """The tenant of the first application found in the map, else the default tenant."""
        for application in applications:
            if application in self.tenant_by_application:
                return self.tenant_by_application[application]
        return self.default_tenant


DEFAULT_CONFIG = RoutingConfig()


@dataclass(frozen=True)
class Route:
    """Where a message comes from, read off its topic."""

    tenant: str
    sensor_id: str
    format: str


@dataclass(frozen=True)
class Decoded:
    """The outcome of one message: readings, or one dead letter; never both, never neither.

    ``dropped_personal`` counts readings of personal quantities removed at ingest.
    """

    readings: tuple[Reading, ...] = ()
    dead_letter: DeadLetter | None = None
    dropped_personal: int = 0


def route(topic: str, config: RoutingConfig = DEFAULT_CONFIG) -> Route:
    """Read tenant, sensor and format from a supported topic, or raise DecodeError."""
    levels = topic.split("/")
    if levels[0] == ROOT and len(levels) == 4:
        _, tenant, sensor_id, fmt = levels
        _check_ids(("tenant", tenant), ("sensor id", sensor_id))
        if fmt not in DECODERS:
            raise DecodeError("unknown_format", f"no decoder for format {fmt!r}")
        return Route(tenant, sensor_id, fmt)
    if levels[0] == "v3" and len(levels) == 5 and levels[2] == "devices" and levels[4] == "up":
        application, device_id = levels[1], levels[3]
        _check_ids(("application", application), ("device id", device_id))
        bare = application.split("@", 1)[0]
        return Route(config.tenant_for(application, bare), device_id, TTS_V3)
    if (
        levels[0] == "application"
        and len(levels) == 6
        and (levels[2], levels[4], levels[5]) == ("device", "event", "up")
    ):
        application, dev_eui = levels[1], levels[3]
        _check_ids(("application", application), ("dev_eui", dev_eui))
        return Route(config.tenant_for(application), dev_eui.lower(), CHIRPSTACK_V4)
    raise DecodeError(
        "unknown_topic",
        "not an urbanpulse/<tenant>/<sensor>/<format>, v3/<app>/devices/<device>/up or "
        "application/<app>/device/<dev_eui>/event/up topic",
    )


def _check_ids(*named: tuple[str, str]) -> None:
    for name, value in named:
        if not _ID.fullmatch(value):
            raise DecodeError("invalid_topic", f"{name} {value!r} is empty, too long or has spaces")


def decode_message(
    topic: str,
    payload: bytes,
    received_at: datetime,
    max_payload_bytes: int,
    *,
    config: RoutingConfig | None = None,
    redelivered: bool = False,
) -> Decoded:
    """Turn one MQTT message into readings or a dead letter with the reason. Never raises.

    ``received_at`` is the observation time of readings without one; ``redelivered`` (the
    MQTT DUP flag) marks the readings as repeats of an earlier delivery of the same message.
    """
    try:
        return _decode(
            topic,
            payload,
            received_at,
            max_payload_bytes,
            config or DEFAULT_CONFIG,
            redelivered=redelivered,
        )
    except Exception as err:  # a decoder bug must cost one message, not the ingestor
        detail = f"decoder failed: {type(err).__name__}: {err}"
        return Decoded(
            dead_letter=dead_letter(topic, payload, received_at, "decoder_error", detail)
        )


def _decode(
    topic: str,
    payload: bytes,
    received_at: datetime,
    max_payload_bytes: int,
    config: RoutingConfig,
    *,
    redelivered: bool,
) -> Decoded:
    try:
        if len(payload) > max_payload_bytes:
            raise DecodeError("oversized", f"{len(payload)} bytes > limit {max_payload_bytes}")
        where = route(topic, config)
        ctx = DecodeContext(
            where.tenant,
            where.sensor_id,
            topic,
            received_at,
            config.quantities,
            redelivered=redelivered,
        )
        decoder = DECODERS.get(where.format) or NETWORK_SERVER_DECODERS[where.format]
        readings = decoder(payload, ctx)
        if not readings:
            raise DecodeError("empty", "the message holds no readings")
    except DecodeError as err:
        return Decoded(dead_letter=dead_letter(topic, payload, received_at, err.reason, err.detail))
    kept = drop_personal(readings)
    if not kept.kept:
        # Only personal data: the raw bytes are not kept either, only the fact and the count.
        letter = dead_letter(
            topic,
            b"",
            received_at,
            "personal_only",
            f"{kept.dropped} readings of personal quantities dropped at ingest",
        )
        return Decoded(dead_letter=letter, dropped_personal=kept.dropped)
    return Decoded(readings=kept.kept, dropped_personal=kept.dropped)


# A dead letter must fit in a Kafka record (1 MB by default) with its bytes in base64: a
# larger payload (only an oversized one: max_payload_bytes is below this by default) keeps
# its first EXCERPT_BYTES, and the detail says so. A dead letter Kafka refuses cannot be kept.
EXCERPT_BYTES = 512 * 1024


def dead_letter(
    topic: str, payload: bytes, received_at: datetime, reason: str, detail: str
) -> DeadLetter:
    """Build the dead letter of a refused message, keeping its original bytes (or an excerpt)."""
    if len(payload) > EXCERPT_BYTES:
        detail = f"{detail[:900]} (the first {EXCERPT_BYTES} of {len(payload)} bytes kept)"
        payload = payload[:EXCERPT_BYTES]
    return DeadLetter(
        reason=reason,
        detail=detail[:1000],
        stage="ingest",
        topic=topic,
        payload_b64=base64.b64encode(payload).decode(),
        received_at=received_at,
    )
