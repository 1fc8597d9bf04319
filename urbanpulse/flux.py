"""Values written into Flux text as literals that can only ever be that one value (pure).

InfluxDB 1.8 ignores the query API's ``extern`` parameters, and pushes a tag filter down to its
storage index only when the filter compares with a literal, so every part that sends Flux
renders its values with :func:`literal` at their place of use: the API (``api/flux.py``), the
indicator job and the benchmarks.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

FluxValue = str | int | float | bool | datetime | tuple[str, ...]


def literal(value: FluxValue) -> str:
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
        # unless a ``{`` follows, and ``${`` would interpolate. ``\x24`` is one literal dollar.
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\x24")
        return f'"{escaped}"'
    if isinstance(value, tuple):
        if not value:
            raise ValueError("Flux cannot type an empty array literal; pass a flag instead")
        return "[" + ", ".join(literal(item) for item in value) + "]"
    raise TypeError(f"no Flux literal for {type(value).__name__}")
