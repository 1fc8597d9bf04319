"""Flux literals: a value rendered as Flux text that can only ever be that one value (pure).

InfluxDB 1.8 ignores a query's ``extern`` parameters and narrows a query to the series its
tag filters name only when they compare with literals, so the parts that query InfluxDB (the
API's ``api.flux``, the stream worker's redelivery check) put values into the query text, and
this is the one function that escapes them: everything a Flux string can terminate or
interpolate with.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

ParamValue = str | int | float | bool | datetime | tuple[str, ...]


def literal(value: ParamValue) -> str:
    """Render a value as a Flux literal that can only ever be that one value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("Flux has no literal for NaN or infinity")
        return repr(value) if "." in repr(value) or "e" in repr(value) else f"{value}.0"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("times given to Flux must be timezone-aware")
        # isoformat, not strftime: glibc's %Y does not pad years before 1000 to four digits.
        return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, str):
        # ``$`` as the byte escape ``\x24``: Flux 0.65 (InfluxDB 1.8) fails to parse ``\$``
        # unless a ``{`` follows (measured: "expected RBRACE, got EOF"), and ``${`` would
        # interpolate. ``\x24`` is always one literal dollar.
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\x24")
        return f'"{escaped}"'
    if isinstance(value, tuple):
        if not value:
            raise ValueError("Flux cannot type an empty array literal; pass a flag instead")
        return "[" + ", ".join(literal(item) for item in value) + "]"
    raise TypeError(f"no Flux literal for {type(value).__name__}")
