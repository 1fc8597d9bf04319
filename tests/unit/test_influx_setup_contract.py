"""Contract test of the InfluxDB 2.x bucket set-up, against a small stand-in of InfluxDB's API.

InfluxDB 2.x cannot be installed on our machines (DESIGN.md; the local 1.8 has no
``/api/v2/buckets``), so a stdlib HTTP server on loopback plays the part of the endpoints
influxdb-client's ``OrganizationsApi`` and ``BucketsApi`` call, with the request and answer
shapes of InfluxDB 2.7's OpenAPI (``GET /api/v2/orgs?org=``, ``GET /api/v2/buckets?orgID=&name=``,
``POST /api/v2/buckets``, ``PATCH /api/v2/buckets/{id}``; token auth; 4xx bodies
``{"code", "message"}``). Everything else answers 405, so an unexpected call (a DELETE) fails.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from pydantic import SecretStr

from urbanpulse.influx_setup import (
    Action,
    BucketSpec,
    Existing,
    ensure_buckets,
    plan,
    retention_of,
)
from urbanpulse.settings import InfluxSettings

TOKEN = "contract-token"
ORG = "city"
DAY = 86_400


def _shard_group_s(retention_s: int) -> int:
    """InfluxDB 2.x's default shard group duration for a retention (as in its docs)."""
    if retention_s == 0 or retention_s > 180 * DAY:
        return 7 * DAY
    return DAY if retention_s > 2 * DAY else 3600


@dataclass
class FakeInflux:
    """State of the stand-in: organisations, buckets, and every request it saw."""

    orgs: dict[str, str] = field(default_factory=lambda: {ORG: "0123456789abcdef"})
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    # buckets a concurrent client creates between our GET and our POST: hidden from GET
    hidden: set[str] = field(default_factory=set)

    def add_bucket(self, name: str, retention_s: int, org: str = ORG) -> dict[str, Any]:
        bucket_id = uuid.uuid4().hex[:16]
        bucket = {
            "id": bucket_id,
            "orgID": self.orgs[org],
            "type": "user",
            "name": name,
            "description": "",
            "retentionRules": [
                {
                    "type": "expire",
                    "everySeconds": retention_s,
                    "shardGroupDurationSeconds": _shard_group_s(retention_s),
                }
            ],
            "createdAt": "2026-11-27T09:00:00Z",
            "updatedAt": "2026-11-27T09:00:00Z",
            "links": {
                "self": f"/api/v2/buckets/{bucket_id}",
                "org": f"/api/v2/orgs/{self.orgs[org]}",
                "write": f"/api/v2/write?org={self.orgs[org]}&bucket={bucket_id}",
            },
            "labels": [],
        }
        self.buckets[bucket_id] = bucket
        return bucket

    def changes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]


def _handler(state: FakeInflux) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") == f"Token {TOKEN}":
                return True
            self._answer(401, {"code": "unauthorized", "message": "unauthorized access"})
            return False

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            loaded: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
            return loaded

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            state.requests.append((method, url.path))
            if not self._authorised():
                return
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            handler = {
                ("GET", "/api/v2/orgs"): self._get_orgs,
                ("GET", "/api/v2/buckets"): self._get_buckets,
                ("POST", "/api/v2/buckets"): self._post_bucket,
            }.get((method, url.path))
            if handler is not None:
                handler(query)
            elif method == "PATCH" and url.path.startswith("/api/v2/buckets/"):
                self._patch_bucket(url.path.rsplit("/", 1)[1])
            else:
                self._answer(405, {"code": "method not allowed", "message": "not in stand-in"})

        def _get_orgs(self, query: dict[str, str]) -> None:
            orgs = [
                {"id": i, "name": n, "description": "", "links": {"self": f"/api/v2/orgs/{i}"}}
                for n, i in state.orgs.items()
                if query.get("org") in (None, n)
            ]
            if "org" in query and not orgs:  # 2.7 answers 404 for an unknown name
                self._answer(404, {"code": "not found", "message": "organization name not found"})
                return
            self._answer(200, {"links": {"self": "/api/v2/orgs"}, "orgs": orgs})

        def _get_buckets(self, query: dict[str, str]) -> None:
            found = [
                b
                for b in state.buckets.values()
                if query.get("orgID") in (None, b["orgID"])
                and query.get("name") in (None, b["name"])
                and b["name"] not in state.hidden
            ]
            page = {"self": "/api/v2/buckets?descending=false&limit=20&offset=0"}
            self._answer(200, {"links": page, "buckets": found})

        def _post_bucket(self, _query: dict[str, str]) -> None:
            body = self._body()
            org = next((n for n, i in state.orgs.items() if i == body.get("orgID")), None)
            rules = body.get("retentionRules") or [{"everySeconds": 0}]
            if org is None or not body.get("name") or rules[0].get("everySeconds", 0) < 0:
                self._answer(400, {"code": "invalid", "message": "bad bucket"})
                return
            if any(b["name"] == body["name"] for b in state.buckets.values()):
                self._answer(422, {"code": "conflict", "message": "bucket name already exists"})
                return
            self._answer(201, state.add_bucket(body["name"], rules[0]["everySeconds"], org))

        def _patch_bucket(self, bucket_id: str) -> None:
            body = self._body()
            bucket = state.buckets.get(bucket_id)
            if bucket is None:
                self._answer(404, {"code": "not found", "message": "bucket not found"})
                return
            if body.get("name"):
                bucket["name"] = body["name"]
            for rule in body.get("retentionRules") or []:  # no rules: no change (2.7)
                seconds = rule["everySeconds"]
                bucket["retentionRules"] = [
                    {
                        "type": "expire",
                        "everySeconds": seconds,
                        "shardGroupDurationSeconds": rule.get("shardGroupDurationSeconds")
                        or _shard_group_s(seconds),
                    }
                ]
            self._answer(200, bucket)

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


@pytest.fixture
def influx() -> Iterator[tuple[FakeInflux, str]]:
    state = FakeInflux()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    # shutdown() waits for serve_forever's next poll: 0.5 s by default, at every teardown
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def settings_for(url: str, **update: Any) -> InfluxSettings:
    base = InfluxSettings(
        url=url,
        token=SecretStr(TOKEN),
        org=ORG,
        raw_bucket="urbanpulse-raw",
        aggregate_bucket="urbanpulse-agg",
    )
    return base.model_copy(update=update)


def retentions(state: FakeInflux) -> dict[str, int]:
    return {b["name"]: b["retentionRules"][0]["everySeconds"] for b in state.buckets.values()}


def test_the_first_run_creates_both_buckets_with_their_retention(
    influx: tuple[FakeInflux, str],
) -> None:
    state, url = influx
    actions = ensure_buckets(settings_for(url), wait_s=5)
    assert [(a.kind, a.spec.name) for a in actions] == [
        ("create", "urbanpulse-raw"),
        ("create", "urbanpulse-agg"),
    ]
    assert retentions(state) == {"urbanpulse-raw": 30 * DAY, "urbanpulse-agg": 0}
    assert [m for m, _ in state.changes()] == ["POST", "POST"]


def test_a_second_run_changes_nothing(influx: tuple[FakeInflux, str]) -> None:
    state, url = influx
    ensure_buckets(settings_for(url), wait_s=5)
    before = json.dumps(state.buckets, sort_keys=True)
    state.requests.clear()
    assert ensure_buckets(settings_for(url), wait_s=5) == []
    assert state.changes() == []
    assert json.dumps(state.buckets, sort_keys=True) == before


def test_a_wrong_retention_is_patched_and_nothing_else_touched(
    influx: tuple[FakeInflux, str],
) -> None:
    state, url = influx
    raw = state.add_bucket("urbanpulse-raw", 7 * DAY)
    agg = state.add_bucket("urbanpulse-agg", 0)
    other = state.add_bucket("someone-elses", 3600)
    actions = ensure_buckets(settings_for(url, raw_retention_days=90), wait_s=5)
    assert [(a.kind, a.spec.name) for a in actions] == [("update", "urbanpulse-raw")]
    assert state.changes() == [("PATCH", f"/api/v2/buckets/{raw['id']}")]
    assert retentions(state) == {
        "urbanpulse-raw": 90 * DAY,
        "urbanpulse-agg": 0,
        "someone-elses": 3600,
    }
    assert {raw["id"], agg["id"], other["id"]} == set(state.buckets)  # same buckets, same ids


def test_a_finite_aggregate_retention_can_go_back_to_infinite(
    influx: tuple[FakeInflux, str],
) -> None:
    state, url = influx
    state.add_bucket("urbanpulse-raw", 30 * DAY)
    state.add_bucket("urbanpulse-agg", 365 * DAY)
    ensure_buckets(settings_for(url), wait_s=5)
    assert retentions(state) == {"urbanpulse-raw": 30 * DAY, "urbanpulse-agg": 0}


def test_a_bucket_created_meanwhile_by_another_worker_is_fine(
    influx: tuple[FakeInflux, str],
) -> None:
    state, url = influx
    state.add_bucket("urbanpulse-raw", 30 * DAY)
    state.hidden.add("urbanpulse-raw")  # our GET misses it, our POST conflicts (422)
    actions = ensure_buckets(settings_for(url), wait_s=5)
    assert [(a.kind, a.spec.name) for a in actions] == [
        ("create", "urbanpulse-raw"),
        ("create", "urbanpulse-agg"),
    ]
    assert sorted(retentions(state).items()) == [
        ("urbanpulse-agg", 0),
        ("urbanpulse-raw", 30 * DAY),
    ]


def test_influxdb_1_8_gets_no_request_at_all(influx: tuple[FakeInflux, str]) -> None:
    state, url = influx
    assert ensure_buckets(settings_for(url, org="-"), wait_s=5) == []
    assert state.requests == []


def test_an_unknown_organisation_fails_at_once_and_creates_nothing(
    influx: tuple[FakeInflux, str],
) -> None:
    state, url = influx
    with pytest.raises(RuntimeError, match="404"):
        ensure_buckets(settings_for(url, org="nowhere"), wait_s=30)
    assert state.changes() == []
    assert len(state.requests) == 1  # a 4xx is final: not retried


def test_a_wrong_token_fails_at_once(influx: tuple[FakeInflux, str]) -> None:
    state, url = influx
    with pytest.raises(RuntimeError, match="401"):
        ensure_buckets(settings_for(url, token=SecretStr("wrong")), wait_s=30)
    assert len(state.requests) == 1


def test_an_unreachable_influxdb_is_retried_until_the_wait_runs_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for("http://127.0.0.1:9", timeout_ms=200)  # discard port: refused
    with pytest.raises(Exception, match=r"(?i)connect|refused"):
        ensure_buckets(settings, wait_s=0.2)  # one retry (the first back-off is 0.5 s)
    assert any("Retrying" in r.getMessage() for r in caplog.records)


def test_plan_creates_missing_updates_different_and_never_deletes() -> None:
    specs = [BucketSpec("raw", 30 * DAY), BucketSpec("agg", 0)]
    existing = {
        "raw": Existing("1", "raw", 30 * DAY),
        "agg": Existing("2", "agg", DAY),
        "old": Existing("3", "old", DAY),
    }
    assert plan(specs, existing) == [Action("update", specs[1], existing["agg"])]
    assert plan(specs, {}) == [Action("create", specs[0]), Action("create", specs[1])]
    assert plan(specs, {"raw": existing["raw"], "agg": Existing("2", "agg", 0)}) == []


def test_no_rule_and_a_zero_rule_both_mean_infinite() -> None:
    @dataclass
    class Rule:
        every_seconds: int | None
        type: str = "expire"

    assert retention_of(None) == 0
    assert retention_of([]) == 0
    assert retention_of([Rule(0)]) == 0
    assert retention_of([Rule(3600)]) == 3600
