"""Durations as people write them: ``30s``, ``5m``, ``1.5h``, ``2d`` (pure)."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as ``30s``, ``5m``, ``1.5h``, ``2d``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 5m")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (found := _DURATION.match(value)):
        seconds = float(found.group(1)) * _UNIT_S[found.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration (e.g. 30s, 5m, 1h, 2d)")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds
