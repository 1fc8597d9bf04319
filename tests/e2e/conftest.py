"""End-to-end tests run the platform's real processes against the real local services."""

import pytest

from tests.support import require_services


@pytest.fixture(autouse=True, scope="session")
def _services_running() -> None:
    require_services()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.e2e)
