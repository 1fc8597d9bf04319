"""Fixtures shared by every test layer."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The team's shared folder (``../shared``): schemas and real-world payload vectors.

    CI always has it beside the checkout; a user's clone may not, and then the tests that
    need it are skipped with this reason rather than failing.
    """
    if not (SHARED / "vectors").is_dir():
        pytest.skip(f"needs ../shared (the team's vectors and schemas), not found at {SHARED}")
    return SHARED
