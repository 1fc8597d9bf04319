"""Quality flags: the names a stored reading may carry, and what each means (pure table).

Ingest sets the first two while decoding; the stream worker sets the others. The API, the
web pages and the docs explain a flag with :data:`MEANINGS`. A flagged reading is stored and
published; a reading that cannot be true is a dead letter instead (docs/streams.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

UNKNOWN_QUANTITY = "unknown_quantity"
UNCONVERTED_UNIT = "unconverted_unit"
FUTURE = "future"
TOO_OLD = "too_old"
SPIKE = "spike"
STUCK = "stuck"
GAP = "gap"
UNIT_MISMATCH = "unit_mismatch"
UNREGISTERED = "unregistered"
LATE = "late"

MEANINGS: Mapping[str, str] = MappingProxyType(
    {
        UNKNOWN_QUANTITY: "a vendor field no alias names yet: kept under its own name, restricted",
        UNCONVERTED_UNIT: "a unit that could not be converted to the quantity's canonical unit",
        FUTURE: "observed more than max_future_s after it was received (sensor clock ahead)",
        TOO_OLD: "received more than max_age_s after it was observed",
        SPIKE: "jumped by more than the quantity's max_step since the previous reading",
        STUCK: "the same value stuck_count or more times in a row",
        GAP: "the previous reading of the series is more than gap_factor x interval older",
        UNIT_MISMATCH: "the unit differs from the quantity's canonical unit: range not checked",
        UNREGISTERED: "the sensor is not in the sensor registry",
        LATE: "too late for (some of) its windows, or older than the times its series "
        "remembers: not counted in those aggregates",
    }
)
"""Every quality flag → what it means, in words (docs/streams.md has the same table)."""
