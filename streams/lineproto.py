"""InfluxDB line protocol text, escaped per the spec (pure).

``measurement,tag=value,... field=value,... timestamp`` (InfluxDB 1.8 "Line protocol
reference"): in measurements a comma and a space are escaped with a backslash; in tag keys,
tag values and field keys also an equals sign; in string field values a double quote and a
backslash. Tags are sorted by key (the order InfluxDB keeps them in), and a tag whose value is
empty is left out (line protocol has no empty tag value).

The escapes are those of ``influxdb_client``'s ``Point`` (which the worker used before), so a
point written now lands in the same series as before: newline, tab and carriage return in a
name become the two characters ``\\n``, ``\\t``, ``\\r``, and a tag value ending in a
backslash gets a space after it, since line protocol cannot end a tag value with one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Most names and values need no escape: look for the characters first (translate is slow).
_KEY_SPECIAL = re.compile(r"[,= \n\t\r\\]")
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})


def escape_measurement(name: str) -> str:
    """A measurement name as line protocol text."""
    return name.translate(_MEASUREMENT)


def escape_key(name: str) -> str:
    """A tag key or field key as line protocol text."""
    return name.translate(_KEY) if _KEY_SPECIAL.search(name) else name


def escape_tag_value(value: str) -> str:
    """A tag value as line protocol text."""
    if not _KEY_SPECIAL.search(value):
        return value
    escaped = value.translate(_KEY)
    return escaped + " " if escaped.endswith("\\") else escaped


def string_field(value: str) -> str:
    """A string field value, quoted."""
    if '"' in value or "\\" in value:  # two characters: cheaper than a regex (every line)
        value = value.translate(_STRING)
    return f'"{value}"'


def float_field(value: float) -> str:
    """A float field value (a whole number without ``.0``, still typed float by InfluxDB)."""
    text = repr(float(value))
    return text[:-2] if text[-2:] == ".0" else text


def int_field(value: int) -> str:
    """An integer field value."""
    return f"{int(value)}i"


def series_key(measurement: str, tags: Iterable[tuple[str, str | None]]) -> str:
    """``measurement,tag=value,...`` with the tags sorted and empty ones left out."""
    parts = [escape_measurement(measurement)]
    for key, value in sorted((k, v) for k, v in tags if v):
        parts.append(f"{escape_key(key)}={escape_tag_value(value)}")
    return ",".join(parts)


def line(key: str, fields: Iterable[tuple[str, str]], time_ns: int) -> str:
    """One point: its series key, ``fields`` as (key, value text) sorted by key, its time."""
    body = ",".join(f"{escape_key(k)}={v}" for k, v in sorted(fields))
    return f"{key} {body} {time_ns}"
