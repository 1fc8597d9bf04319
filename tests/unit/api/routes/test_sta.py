"""/sta/v1.1 over a fake store: impossible times in ``$filter`` are a 400 problem, not a 500."""

from __future__ import annotations

import pytest

from tests.unit.api.fakes import FakeStore, client_for


@pytest.mark.parametrize(
    "flt",
    [
        "phenomenonTime ge 2026-02-30T00:00:00Z",
        "phenomenonTime le 9999-12-31T23:59:59.999999Z",
        "phenomenonTime ge 2026-02-01T00:00:00+25:00",
        "phenomenonTime ge 0001-01-01T00:00:00+01:00",
    ],
)
def test_impossible_times_in_a_filter_are_a_400_problem(flt: str) -> None:
    client = client_for(FakeStore())
    one = "/sta/v1.1/Datastreams('demo:air-1:pm2_5')/Observations"
    for path in ("/sta/v1.1/Observations", one):
        answer = client.get(path, params={"$filter": flt})
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert "$filter" in answer.json()["detail"]
