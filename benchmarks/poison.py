"""The poison messages of the fault matrix: one of each kind that once hurt, or could (pure).

Each is published on a topic of its own (sensor id ``poison-<kind>``, or a network-server
device of that name), so its dead letters and stored points are told apart from the load's.
``letters`` is what the platform is expected to make of it: the (stage, reason) of each dead
letter, one per refused message or reading (none of its readings may become a point);
``broker_refuses``: the broker refuses the message outright (it is never acked, so
nothing reaches the platform, and no dead letter can exist).
"""

from __future__ import annotations

from dataclasses import dataclass

from urbanpulse.mqtt_topics import CAYENNE_LPP, NATIVE_JSON, device_topic

OVERSIZED_BYTES = 800_000
HUGE_ID_CHARS = 60_000
APPLICATION = "fault-app"  # the network-server application the run maps to its tenant


@dataclass(frozen=True, kw_only=True)
class Poison:
    """One poison message and what should become of it."""

    kind: str
    about: str
    topic_kind: str  # json, lpp, tts, chirpstack
    payload: bytes
    letters: tuple[tuple[str, str], ...] = ()
    broker_refuses: bool = False
    sensor: str = ""

    def sensor_id(self) -> str:
        """The sensor (device) id it is published as."""
        return self.sensor or f"poison-{self.kind}"

    def topic(self, tenant: str) -> str:
        """Where it is published, for a run's tenant (network servers: the run's application)."""
        if self.topic_kind == "tts":
            return f"v3/{APPLICATION}/devices/{self.sensor_id()}/up"
        if self.topic_kind == "chirpstack":
            return f"application/{APPLICATION}/device/{self.sensor_id()}/event/up"
        return device_topic(tenant, self.sensor_id(), self.topic_kind)


def _json(text: str) -> bytes:
    return text.encode()


POISONS: tuple[Poison, ...] = (
    Poison(
        kind="value-1e308",
        about="a temperature of 1e308 (finite, but sums of two overflow)",
        topic_kind=NATIVE_JSON,
        payload=_json('{"quantity":"temperature","value":1e308,"unit":"Cel"}'),
        letters=(("ingest", "invalid_reading"),),
    ),
    Poison(
        kind="twice-1.7e308",
        about="two readings of 1.7e308 in one batch, for a quantity nobody knows",
        topic_kind=NATIVE_JSON,
        payload=_json(
            '{"readings":[{"time":1700000000,"quantity":"zz_unknown","value":1.7e308},'
            '{"time":1700000001,"quantity":"zz_unknown","value":1.7e308}]}'
        ),
        letters=(("ingest", "invalid_reading"),),
    ),
    Poison(
        kind="nan-text",
        about='a value "NaN" (as text), and a bare NaN token',
        topic_kind=NATIVE_JSON,
        payload=_json(
            '{"readings":[{"quantity":"temperature","value":"NaN"},'
            '{"quantity":"temperature","value":NaN}]}'
        ),
        letters=(("ingest", "invalid_reading"),),
    ),
    Poison(
        kind="year-3000",
        about="a reading observed in the year 3000",
        topic_kind=NATIVE_JSON,
        payload=_json('{"time":"3000-01-01T00:00:00Z","quantity":"temperature","value":20}'),
        letters=(("ingest", "invalid_reading"),),
    ),
    Poison(
        kind="year-1500",
        about="a reading observed in the year 1500",
        topic_kind=NATIVE_JSON,
        payload=_json('{"time":"1500-01-01T00:00:00Z","quantity":"temperature","value":20}'),
        letters=(("ingest", "invalid_reading"),),
    ),
    Poison(
        kind="oversized",
        about=f"a {OVERSIZED_BYTES // 1000} kB message (above the broker's and ingest's limit)",
        topic_kind=NATIVE_JSON,
        payload=b"A" * OVERSIZED_BYTES,
        broker_refuses=True,
    ),
    Poison(
        kind="invalid-json",
        about="a JSON document cut short",
        topic_kind=NATIVE_JSON,
        payload=_json('{"quantity":"temperature","value":'),
        letters=(("ingest", "invalid_json"),),
    ),
    Poison(
        kind="not-utf8",
        about="bytes that are not UTF-8",
        topic_kind=NATIVE_JSON,
        payload=b"\xff\xfe\xc3\x28{\x80\x81}",
        letters=(("ingest", "invalid_json"),),
    ),
    Poison(
        kind="huge-id",
        about=f"a reading of a sensor whose id has {HUGE_ID_CHARS:,} characters",
        topic_kind=NATIVE_JSON,
        payload=_json('{"quantity":"temperature","value":20,"unit":"Cel"}'),
        letters=(("ingest", "invalid_topic"),),
        sensor="x" * HUGE_ID_CHARS,
    ),
    Poison(
        kind="lpp-garbage",
        about="bytes that are not Cayenne LPP, on an lpp topic",
        topic_kind=CAYENNE_LPP,
        payload=b"\x01\x67\xff\x03\xfe\x99\x99\x99",
        letters=(("ingest", "unknown_lpp_type"),),
    ),
    Poison(
        kind="tts-broken",
        about="a The Things Stack uplink with broken fields (types, times, base64)",
        topic_kind="tts",
        payload=_json(
            '{"end_device_ids":{"device_id":["x"]},"uplink_message":{"decoded_payload":"x",'
            '"normalized_payload":7,"frm_payload":"!!!","received_at":"yesterday",'
            '"rx_metadata":[{"rssi":"loud","time":12}],"locations":{"user":{"latitude":"n"}},'
            '"f_cnt":-1,"last_battery_percentage":{"value":1e400}}}'
        ),
        # What survives of it: two radio readings (gateway count, frame counter) at the
        # gateway's "time" 12, read as epoch seconds: 1970, beyond InfluxDB's retention.
        letters=(("streams", "influx_rejected"), ("streams", "influx_rejected")),
    ),
    Poison(
        kind="chirpstack-broken",
        about="a ChirpStack uplink with broken fields (types, times, base64)",
        topic_kind="chirpstack",
        payload=_json(
            '{"deviceInfo":{"devEui":12},"object":[1,2],"data":"%%%","time":"3000-13-45",'
            '"rxInfo":"none","fCnt":"many"}'
        ),
        letters=(("ingest", "invalid_payload"),),
    ),
)
POISON_BY_KIND = {p.kind: p for p in POISONS}
