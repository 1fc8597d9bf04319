"""The fault matrix's pure parts: scenarios, poison topics, dead letters against expectations."""

import base64
import json
from datetime import UTC, datetime

from benchmarks.faults import (
    FAST,
    SCENARIOS,
    Letter,
    letter_kind,
    parse_args,
    unexpected_acks,
    unexpected_letters,
)
from benchmarks.poison import POISON_BY_KIND, POISONS
from ingest.routing import route
from urbanpulse.model import DeadLetter


def _letter(topic: str, payload: bytes = b"", stage: str = "ingest") -> DeadLetter:
    return DeadLetter(
        reason="r",
        detail="d",
        stage=stage,
        topic=topic,
        payload_b64=base64.b64encode(payload).decode(),
        received_at=datetime.now(UTC),
    )


def test_every_poison_has_a_row_and_the_fast_rows_cover_them_all() -> None:
    assert {f"poison-{p.kind}" for p in POISONS} <= SCENARIOS.keys()
    assert set(FAST) == {"kill-ingest", "kill-worker", "registry-garbage", "poison-all"}
    assert SCENARIOS["poison-all"].poisons == POISONS


def test_poisons_expect_letters_or_a_broker_refusal() -> None:
    for poison in POISONS:
        assert bool(poison.letters) != poison.broker_refuses, poison.kind
        assert all(stage in ("ingest", "streams") for stage, _ in poison.letters)


def test_poison_topics_are_topics_the_ingestor_decodes() -> None:
    for kind in ("value-1e308", "lpp-garbage", "tts-broken", "chirpstack-broken"):
        topic = POISON_BY_KIND[kind].topic("town")
        assert route(topic).format, topic


def test_letters_are_told_apart_by_topic_or_by_the_sensor_of_a_reading() -> None:
    tts = POISON_BY_KIND["tts-broken"]
    poisons = (tts, POISON_BY_KIND["invalid-json"])
    by_topic = _letter(POISON_BY_KIND["invalid-json"].topic("town"))
    reading = json.dumps({"sensor_id": tts.sensor_id(), "value": 1}).encode()
    by_sensor = _letter("town-readings", reading, stage="streams")
    assert letter_kind(by_topic, "town", poisons) == "invalid-json"
    assert letter_kind(by_sensor, "town", poisons) == "tts-broken"
    assert letter_kind(_letter("town-readings", b"\xff"), "town", poisons) == "load"


def test_unexpected_letters_names_what_is_missing_and_what_is_extra() -> None:
    poison = POISON_BY_KIND["invalid-json"]
    right = [Letter(kind="invalid-json", stage="ingest", reason="invalid_json")]
    assert unexpected_letters(right, (poison,)) == []
    wrong = [Letter(kind="load", stage="streams", reason="influx_rejected")]
    assert unexpected_letters(wrong, (poison,)) == [
        "missing invalid-json|ingest|invalid_json x1",
        "unexpected load|streams|influx_rejected x1",
    ]


def test_fast_picks_the_fast_rows_after_those_named() -> None:
    names, options, as_json = parse_args(["--scenario", "kill-kafka", "--fast", "--json"])
    assert names == ["kill-kafka", *FAST]
    assert as_json and options.rate == 500
    assert parse_args([])[0] == list(SCENARIOS)


def test_unexpected_acks_wants_the_oversized_refused_and_the_rest_taken() -> None:
    oversized, json_cut = POISON_BY_KIND["oversized"], POISON_BY_KIND["invalid-json"]
    assert unexpected_acks((oversized, json_cut), {"oversized": False, "invalid-json": True}) == []
    assert unexpected_acks((oversized, json_cut), {"oversized": True}) == [
        "oversized: acknowledged by the broker",
        "invalid-json: not acknowledged by the broker",
    ]
