"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# The API's per-address rate limit would throttle test clients that send hundreds of requests
# a second (Schemathesis, paging walks). The limits are tested with explicit settings
# (tests/unit/api/test_ratelimit.py); everywhere else a test client is not limited.
os.environ.setdefault("URBANPULSE_API__RATE_ANONYMOUS_PER_S", "0")
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
