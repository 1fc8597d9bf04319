"""The MQTT topics of the platform: where devices publish and what the ingestor reads (pure).

Devices publish to ``urbanpulse/{tenant}/{sensor_id}/{format}``, with ``format`` one of
:data:`DEVICE_FORMATS`; LoRaWAN network servers publish uplinks on their own topics
(The Things Stack v3 and ChirpStack v4). The ingestor's default subscription, the decoder
table, the simulators and the Mosquitto ACL all take their topics from here.
"""

from __future__ import annotations

from collections.abc import Mapping

ROOT = "urbanpulse"

NATIVE_JSON = "json"
SENML = "senml"
CAYENNE_LPP = "lpp"
SENSOR_COMMUNITY = "sensorcommunity"
DEVICE_FORMATS: tuple[str, ...] = (NATIVE_JSON, SENML, CAYENNE_LPP, SENSOR_COMMUNITY)
"""The last level of a device topic: which decoder reads the payload."""

TTS_V3_UPLINKS = "v3/+/devices/+/up"
CHIRPSTACK_V4_UPLINKS = "application/+/device/+/event/up"
NETWORK_SERVER_FILTERS: tuple[str, ...] = (TTS_V3_UPLINKS, CHIRPSTACK_V4_UPLINKS)

SUPPORTED_TOPIC_FILTERS: tuple[str, ...] = (
    *(f"{ROOT}/+/+/{fmt}" for fmt in DEVICE_FORMATS),
    *NETWORK_SERVER_FILTERS,
)
"""Every topic filter a decoder exists for: the ingestor's default subscription."""

INGEST_READS: tuple[str, ...] = (f"{ROOT}/#", *NETWORK_SERVER_FILTERS)
"""What the ingestor's MQTT account may read (the Mosquitto ACL)."""


def device_topic(tenant: str, sensor_id: str, fmt: str) -> str:
    """The topic a device publishes one format on."""
    return f"{ROOT}/{tenant}/{sensor_id}/{fmt}"


def device_topics(tenant: str, sensor_id: str) -> str:
    """The filter of every topic one device may publish on (its ACL entry)."""
    return f"{ROOT}/{tenant}/{sensor_id}/#"


def topic_sender(
    topic: str, tenant_by_application: Mapping[str, str], default_tenant: str
) -> tuple[str, str] | None:
    """The (tenant, sensor id) a supported topic names, as ingest reads it; None for others.

    Network-server topics name an application, which the tenant map turns into a tenant
    (The Things Stack: ``app@tts_tenant`` first, then ``app``; unlisted: the default tenant);
    a ChirpStack DevEUI is lower-cased, as the decoder does. (``ingest.routing.route`` reads
    the same table to decode; this is for those who only need to know whom a topic concerns,
    such as the indicator job counting dead letters.)
    """
    levels = topic.split("/")
    if levels[0] == ROOT and len(levels) == 4 and levels[1] and levels[2]:
        return levels[1], levels[2]
    if len(levels) == 5 and (levels[0], levels[2], levels[4]) == ("v3", "devices", "up"):
        application = levels[1]
        bare = application.split("@", 1)[0]
        tenant = tenant_by_application.get(application) or tenant_by_application.get(bare)
        return (tenant or default_tenant), levels[3]
    if len(levels) == 6 and (levels[0], levels[2], levels[4], levels[5]) == (
        "application",
        "device",
        "event",
        "up",
    ):
        tenant = tenant_by_application.get(levels[1]) or default_tenant
        return tenant, levels[3].lower()
    return None
