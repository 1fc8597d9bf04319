"""How store errors become problems: an outage is a 503 to retry, a refused query a 500."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from influxdb_client.rest import ApiException
from urllib3.exceptions import ReadTimeoutError

from api.filters import ObservationFilter
from api.formats import Observation
from api.problems import STORE_DOWN
from tests.unit.api.fakes import FakeStore, client_for


@dataclass
class FailingStore(FakeStore):
    error: Exception | None = None

    def observations(self, flt: ObservationFilter) -> list[Observation]:
        assert self.error is not None
        raise self.error


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ApiException(status=400, reason="Bad Request"), 500),  # a query we built badly
        (ApiException(status=422, reason="Unprocessable"), 500),
        (ApiException(status=401, reason="Unauthorized"), 503),  # rotated token: an outage
        (ApiException(status=404, reason="Not Found"), 503),  # missing bucket
        (ApiException(status=500, reason="Internal"), 503),
        (ReadTimeoutError(None, "/api/v2/query", "read timed out"), 503),  # type: ignore[arg-type]
    ],
)
def test_store_errors_are_problems(error: Exception, status: int) -> None:
    answer = client_for(FailingStore(error=error)).get("/v1/observations")
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    if status == 503:
        assert answer.json()["detail"] == STORE_DOWN
    else:
        assert "bug" in answer.json()["detail"]
