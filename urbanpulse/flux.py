"""Flux literals: the one escape of values written into Flux text, for every part (pure).

:func:`literal` renders a value so that it can only ever be that one value, whatever it
contains; the API's queries (``api/flux.py``) and ``urbanpulse status`` use it. Moved here from
the API so that the shared core can build queries without importing a part.
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
