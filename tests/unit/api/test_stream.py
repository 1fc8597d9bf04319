"""The live feed's pure parts: filters, fan-out, drop-oldest, SSE framing; and the route's
refusals, which happen before any Kafka is needed (TestClient, no services)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import anyio
import msgspec
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from api.app import create_app
from api.filters import BBox
from api.formats import OBSERVATION_FIELDS, Observation
from api.params import BadQuery
from api.privacy import NotPublished
from api.stream import (
    ClientFull,
    FeedEvent,
    Hub,
    HubFull,
    KafkaFeed,
    Skipped,
    StreamFilter,
    Subscription,
    heartbeat,
    observation_of,
    opening_message,
    sse_message,
    sse_stream,
    stream_filter,
)
from urbanpulse.feed import feed_records
from urbanpulse.model import Location, Reading
from urbanpulse.settings import ApiSettings, KafkaSettings, Settings
from urbanpulse.wire import encode_batch

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def obs(**changes: object) -> Observation:
    fields: dict[str, object] = {
        "time": T0,
        "tenant": "town",
        "sensor_id": "air-1",
        "quantity": "pm2_5",
        "value": 7.25,
        "unit": "ug/m3",
        "lat": 52.1,
        "lon": 5.1,
        "quality_flags": [],
    }
    fields.update(changes)
    return Observation.model_validate(fields)


def parse_sse(text: str) -> list[dict[str, str]]:
    """Messages of an SSE text, as the WHATWG spec reads them (comments kept as ':')."""
    messages, current = [], {}
    for line in text.split("\n"):
        if not line:
            if current:
                messages.append(current)
            current = {}
            continue
        name, _, value = line.partition(":")
        current[name] = value.removeprefix(" ")
    return messages


# --- filters ---------------------------------------------------------------------------------


def test_no_filter_passes_open_quantities_only() -> None:
    everything = StreamFilter()
    assert everything.matches(obs())
    assert not everything.matches(obs(quantity="battery_level"))  # restricted
    assert not everything.matches(obs(quantity="rssi"))  # radio metadata
    assert not everything.matches(obs(quantity="made_up_quantity"))  # unknown: restricted


BOX = BBox(min_lon=5.0, min_lat=52.0, max_lon=5.2, max_lat=52.2)
EDGE = BBox(min_lon=5.1, min_lat=52.1, max_lon=5.2, max_lat=52.2)
BOX_5_52 = BBox(min_lon=5, min_lat=52, max_lon=5.2, max_lat=52.2)


@pytest.mark.parametrize(
    ("flt", "reading", "expected"),
    [
        (StreamFilter(tenant="town"), obs(), True),
        (StreamFilter(tenant="town"), obs(tenant="other"), False),
        (StreamFilter(sensor_ids=frozenset({"air-1", "air-2"})), obs(sensor_id="air-2"), True),
        (StreamFilter(sensor_ids=frozenset({"air-1", "air-2"})), obs(sensor_id="air-3"), False),
        (StreamFilter(quantity="pm2_5"), obs(), True),
        (StreamFilter(quantity="pm2_5"), obs(quantity="pm10"), False),
        (StreamFilter(bbox=BOX), obs(), True),
        (StreamFilter(bbox=BOX), obs(lon=5.3), False),
        (StreamFilter(bbox=BOX), obs(lat=None, lon=None), False),
        (StreamFilter(bbox=EDGE), obs(), True),  # on the edge
        (StreamFilter(tenant="town", quantity="pm10"), obs(), False),  # all must hold
    ],
)
def test_filter(flt: StreamFilter, reading: Observation, expected: bool) -> None:
    assert flt.matches(reading) is expected


def test_stream_filter_checks_like_the_other_endpoints() -> None:
    flt = stream_filter(
        tenant="town",
        sensor_ids=["b", "a", "a"],
        quantity="pm2_5",
        bbox="5,52,5.2,52.2",
        max_sensors=3,
    )
    assert flt == StreamFilter(
        tenant="town", sensor_ids=frozenset({"a", "b"}), quantity="pm2_5", bbox=BOX_5_52
    )
    with pytest.raises(NotPublished):
        stream_filter(
            tenant=None, sensor_ids=None, quantity="battery_level", bbox=None, max_sensors=3
        )
    with pytest.raises(BadQuery, match="bbox"):
        stream_filter(tenant=None, sensor_ids=None, quantity=None, bbox="10,0,5,1", max_sensors=3)
    with pytest.raises(BadQuery, match="at most 2"):
        stream_filter(
            tenant=None, sensor_ids=["a", "b", "c"], quantity=None, bbox=None, max_sensors=2
        )


def test_observation_of_a_stored_reading_has_the_observations_fields() -> None:
    reading = Reading(
        tenant="town",
        sensor_id="air-1",
        quantity="pm2_5",
        value=600,
        unit="ug/m3",
        observed_at=T0,
        received_at=T0,
        location=Location(lat=52.1, lon=5.1),
        source_format="json",
        message_id="m1",
        quality_flags=("spike",),
    )
    found = observation_of(reading)
    assert tuple(found.model_dump()) == OBSERVATION_FIELDS
    assert found == obs(value=600, quality_flags=["spike"])
    no_place = observation_of(msgspec.structs.replace(reading, location=None))
    assert (no_place.lat, no_place.lon) == (None, None)


class _Published:
    """Stands in for the hub: keeps what the feed publishes."""

    def __init__(self) -> None:
        self.observations: list[Observation] = []

    def publish(self, observation: Observation) -> int:
        self.observations.append(observation)
        return 0


def test_the_feed_publishes_the_same_from_runs_and_from_an_older_workers_readings() -> None:
    readings = [
        Reading(
            tenant="town",
            sensor_id=sensor,
            quantity="pm2_5",
            value=float(k),
            unit="ug/m3",
            observed_at=T0 + timedelta(seconds=k),
            received_at=T0,
            location=Location(lat=52.1, lon=5.1) if sensor == "air-1" else None,
            source_format="json",
            message_id=f"m{k}",
            quality_flags=("spike",) if k == 3 else (),
        )
        for k, sensor in enumerate(["air-1", "air-1", "air-2", "air-2", "air-2"])
    ]
    expected = [observation_of(r) for r in readings]
    for values in (
        feed_records(readings),
        [encode_batch(readings)],
        [r.to_bytes() for r in readings],
    ):
        feed = KafkaFeed(KafkaSettings(), _Published())  # type: ignore[arg-type]
        for value in values:
            feed._publish(value)
        assert feed.hub.observations == expected  # type: ignore[attr-defined]
        assert feed.undecodable == 0
    feed._publish(b"garbage")
    assert feed.undecodable == 1


# --- fan-out and drop-oldest -----------------------------------------------------------------


def drain(sub: Subscription) -> list[FeedEvent | Skipped]:
    async def take() -> list[FeedEvent | Skipped]:
        out = [await sub.next()]
        while sub.pending() or sub.skipped:
            out.append(await sub.next())
        return out

    return asyncio.run(take())


def test_hub_offers_each_reading_to_the_matching_subscriptions_only() -> None:
    hub = Hub(max_subscribers=10, buffer=10)
    town, pm10, other = (
        hub.subscribe(StreamFilter(tenant="town")),
        hub.subscribe(StreamFilter(quantity="pm10")),
        hub.subscribe(StreamFilter(tenant="other")),
    )
    assert hub.publish(obs()) == 1
    assert hub.publish(obs(quantity="pm10", sensor_id="air-2")) == 2
    assert hub.publish(obs(quantity="battery_level")) == 0  # never, to anyone
    got = drain(town)
    assert [e.id for e in got if isinstance(e, FeedEvent)] == [1, 2]
    first = got[0]
    assert isinstance(first, FeedEvent)
    assert json.loads(first.data) == {
        "time": "2026-11-27T10:00:00Z",
        "tenant": "town",
        "sensor_id": "air-1",
        "quantity": "pm2_5",
        "value": 7.25,
        "unit": "ug/m3",
        "lat": 52.1,
        "lon": 5.1,
        "quality_flags": [],
    }
    assert [e.id for e in drain(pm10) if isinstance(e, FeedEvent)] == [2]
    assert other.pending() == 0
    assert hub.last_id == 3  # ids count every reading, so they only ever grow


def test_hub_refuses_subscriptions_beyond_its_limit_until_one_ends() -> None:
    hub = Hub(max_subscribers=2, buffer=1)
    first = hub.subscribe(StreamFilter())
    hub.subscribe(StreamFilter())
    with pytest.raises(HubFull):
        hub.subscribe(StreamFilter())
    hub.unsubscribe(first)
    hub.unsubscribe(first)  # idempotent
    assert len(hub) == 1
    hub.subscribe(StreamFilter())


def test_one_client_holds_at_most_its_share_and_others_keep_theirs() -> None:
    hub = Hub(max_subscribers=4, buffer=1, per_client=2)
    first, _ = hub.subscribe(StreamFilter(), "ip:a"), hub.subscribe(StreamFilter(), "ip:a")
    with pytest.raises(ClientFull):
        hub.subscribe(StreamFilter(), "ip:a")
    hub.subscribe(StreamFilter(), "key:b")
    hub.subscribe(StreamFilter(), "ip:c")
    with pytest.raises(HubFull):
        hub.subscribe(StreamFilter(), "ip:d")  # the total is bounded too
    hub.unsubscribe(first)
    hub.unsubscribe(first)  # idempotent: the count does not go below what is held
    assert hub.held_by("ip:a") == 1
    hub.subscribe(StreamFilter(), "ip:a")
    assert hub.held_by("ip:a") == 2 and len(hub) == 4


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), max_size=200))
def test_slots_stay_bounded_and_counted_whatever_clients_do(steps: list[tuple[bool, int]]) -> None:
    hub = Hub(max_subscribers=6, buffer=1, per_client=2)
    held: list[Subscription] = []
    for join, who in steps:
        if join:
            with contextlib.suppress(HubFull, ClientFull):
                held.append(hub.subscribe(StreamFilter(), f"ip:{who}"))
        elif held:
            hub.unsubscribe(held.pop(who % len(held)))
        assert len(hub) == len(held) <= 6
        for client in {s.client for s in held}:
            assert hub.held_by(client) == sum(s.client == client for s in held) <= 2
    assert sum(hub.held_by(f"ip:{who}") for who in range(6)) == len(held)


def test_a_slow_client_loses_its_oldest_readings_is_told_how_many_and_others_lose_none() -> None:
    hub = Hub(max_subscribers=2, buffer=3)
    slow = hub.subscribe(StreamFilter())
    fast = hub.subscribe(StreamFilter())
    seen_by_fast: list[int] = []
    for i in range(8):
        hub.publish(obs(value=i))
        seen_by_fast += [e.id for e in drain(fast) if isinstance(e, FeedEvent)]
    assert seen_by_fast == [1, 2, 3, 4, 5, 6, 7, 8]
    assert slow.pending() == 3  # bounded: memory does not grow with a stuck client
    got = drain(slow)
    assert got[0] == Skipped(5)
    assert [e.id for e in got[1:] if isinstance(e, FeedEvent)] == [6, 7, 8]
    hub.publish(obs())
    again = drain(slow)  # the count was reported once: no second notice
    assert len(again) == 1
    assert isinstance(again[0], FeedEvent) and again[0].id == 9


# --- SSE framing -----------------------------------------------------------------------------


def test_a_reading_is_an_sse_event_with_id_and_json_data() -> None:
    event = FeedEvent(42, obs(), '{"tenant":"town"}')
    assert sse_message(event).encode() == b'id: 42\nevent: reading\ndata: {"tenant":"town"}\n\n'
    assert parse_sse(sse_message(event).encode().decode()) == [
        {"id": "42", "event": "reading", "data": '{"tenant":"town"}'}
    ]


def test_skipped_heartbeat_and_opening_frames() -> None:
    assert sse_message(Skipped(5)).encode() == b'event: skipped\ndata: {"skipped": 5}\n\n'
    assert heartbeat().encode() == b": heartbeat\n\n"
    opening = opening_message().encode().decode()
    assert opening.startswith(": ") and "\nretry: 3000\n" in opening and opening.endswith("\n\n")


def test_the_stream_of_a_client_ends_its_subscription() -> None:
    hub = Hub(max_subscribers=1, buffer=4)
    sub = hub.subscribe(StreamFilter())
    hub.publish(obs())

    async def read_two_then_leave() -> list[bytes]:
        stream = sse_stream(hub, sub)
        got = [(await anext(stream)).encode(), (await anext(stream)).encode()]
        await stream.aclose()  # what sse-starlette does when the client disconnects
        return got

    opening, reading = asyncio.run(read_two_then_leave())
    assert opening.startswith(b": ")
    assert reading.startswith(b"id: 1\nevent: reading\n")
    assert len(hub) == 0


def test_shutdown_ends_the_stream_cleanly_even_with_a_full_queue() -> None:
    hub = Hub(max_subscribers=1, buffer=2)
    sub = hub.subscribe(StreamFilter())

    async def read_until_shutdown() -> list[bytes]:
        shutdown = anyio.Event()
        stream = sse_stream(hub, sub, shutdown)
        got = [(await anext(stream)).encode()]
        for _ in range(3):
            hub.publish(obs())  # the queue is full and counts one dropped reading
        shutdown.set()  # what sse-starlette does when uvicorn is told to stop
        got += [message.encode() async for message in stream]  # ends by itself
        return got

    got = asyncio.run(read_until_shutdown())
    assert got[0].startswith(b": ")
    assert got[-1].startswith(b"id: 3\n")  # what was queued may still go out; then the end
    assert len(hub) == 0
    assert sub.ended
    hub.publish(obs())  # after the end nothing is queued
    assert sub.pending() == 0


# --- the route, before any streaming (no Kafka needed) ---------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = Settings(
        kafka=KafkaSettings(bootstrap=f"127.0.0.1:{closed_port()}"),
        api=ApiSettings(stream_max_clients=1),
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"bbox": "1,2,3"}, 400),
        ({"quantity": "PM25"}, 400),
        ({"tenant": "a b"}, 400),
        ({"sensor_id": [f"s{i}" for i in range(201)]}, 400),
        ({"quantity": "battery_level"}, 404),
    ],
)
def test_bad_filters_are_problems_before_the_stream_starts(
    client: TestClient, params: dict[str, object], status: int
) -> None:
    response = client.get("/v1/stream", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]
    assert not client.app.state.live_feed.running  # type: ignore[attr-defined]


def test_more_streams_than_allowed_is_503(client: TestClient) -> None:
    hub = client.app.state.live_feed.hub  # type: ignore[attr-defined]
    hub.subscribe(StreamFilter())  # the one allowed stream, taken
    response = client.get("/v1/stream")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"]
    assert "at most 1" in response.json()["detail"]


def test_a_client_over_its_share_is_429_and_a_keyed_client_has_its_own() -> None:
    key = "stream-key-0123456789abcdef"
    settings = Settings(
        kafka=KafkaSettings(bootstrap=f"127.0.0.1:{closed_port()}"),
        api=ApiSettings(stream_max_clients=5, stream_max_per_client=2, api_keys=[key]),
    )
    with TestClient(create_app(settings)) as client:
        hub = client.app.state.live_feed.hub  # type: ignore[attr-defined]
        for _ in range(2):
            hub.subscribe(StreamFilter(), "ip:testclient")  # this client's two streams
        response = client.get("/v1/stream")
        assert response.status_code == 429, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) >= 1
        assert "at most 2 live streams per client" in response.json()["detail"]
        keyed = client.get("/v1/stream", headers={"X-API-Key": key})
        assert keyed.status_code == 503  # not refused as a client: Kafka is not there
        assert "cannot be read" in keyed.json()["detail"]
        assert len(hub) == 2  # its slot was freed again


def test_unreachable_kafka_is_503_and_frees_the_slot(client: TestClient) -> None:
    response = client.get("/v1/stream", params={"tenant": "town"})
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert len(client.app.state.live_feed.hub) == 0  # type: ignore[attr-defined]


def test_the_stream_is_documented_with_an_example_event(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/stream"]["get"]
    content = operation["responses"]["200"]["content"]
    assert list(content) == ["text/event-stream"]
    example = parse_sse(content["text/event-stream"]["example"])
    reading = next(m for m in example if m.get("event") == "reading")
    assert tuple(json.loads(reading["data"])) == OBSERVATION_FIELDS
    assert {p["name"] for p in operation["parameters"]} == {
        "tenant",
        "sensor_id",
        "quantity",
        "bbox",
    }
    assert "503" in operation["responses"]
