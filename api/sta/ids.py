"""SensorThings entity ids: stable strings built from tenant, sensor, quantity and time (pure).

An id joins its parts with ``:``. Tenant and sensor ids may themselves contain ``:``, so each
part escapes ``~`` as ``~~`` and ``:`` as ``~c``; splitting on ``:`` and unescaping each part
gives the parts back, whatever they were. ``~`` is an unreserved URL character: no client,
proxy or server re-encodes or decodes it (a ``%`` escape would be decoded on the way).

In a URL an id is an OData string key: ``Things('demo:air-002')``, a ``'`` inside doubled.
Ids are not numeric; a bare number in the parentheses is read as that string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from api.params import BadQuery

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_KEY = re.compile(r"^'((?:[^']|'')*)'$|^(\d{1,20})$")


_ESCAPED = re.compile(r"~(.?)", re.DOTALL)
_UNESCAPE = {"~": "~", "c": ":"}


def _escape(part: str) -> str:
    return part.replace("~", "~~").replace(":", "~c")


def _unescape(part: str) -> str:
    def one(found: re.Match[str]) -> str:
        if found.group(1) not in _UNESCAPE:
            raise BadQuery(f"an id part has '~' not followed by '~' or 'c': {part!r}")
        return _UNESCAPE[found.group(1)]

    return _ESCAPED.sub(one, part)


def join_id(*parts: str) -> str:
    """The id of the entity named by ``parts`` (each escaped, joined by ``:``)."""
    return ":".join(_escape(p) for p in parts)


def split_id(entity_id: str, count: int, kind: str) -> tuple[str, ...]:
    """The ``count`` parts of an id; BadQuery naming ``kind`` when it has another shape."""
    parts = entity_id.split(":")
    if len(parts) != count or not all(parts):
        raise BadQuery(f"not a {kind} id: {entity_id!r} (expected {count} parts joined by ':')")
    return tuple(_unescape(p) for p in parts)


def epoch_ns(moment: datetime) -> int:
    """Nanoseconds since 1970 of an aware time (exact, no float rounding)."""
    return (moment - _EPOCH) // _ONE_US * 1000


def from_epoch_ns(value: int) -> datetime:
    """The UTC time of ``value`` nanoseconds since 1970, to the microsecond (Python's limit)."""
    return _EPOCH + timedelta(microseconds=value // 1000)


@dataclass(frozen=True)
class ObservationKey:
    """What an Observation id names: one reading of one datastream at one instant."""

    tenant: str
    sensor_id: str
    quantity: str
    time_ns: int

    @property
    def id(self) -> str:
        """The Observation's id."""
        return join_id(self.tenant, self.sensor_id, self.quantity, str(self.time_ns))


def observation_key(entity_id: str) -> ObservationKey:
    """Parse an Observation id ``tenant:sensor:quantity:<epoch ns>``."""
    tenant, sensor_id, quantity, ns = split_id(entity_id, 4, "Observation")
    if not ns.isdigit() or len(ns) > 20:
        raise BadQuery(f"not an Observation id: {entity_id!r} (time must be epoch nanoseconds)")
    return ObservationKey(tenant, sensor_id, quantity, int(ns))


def parse_key(text: str) -> str:
    """The id inside ``Things(...)``: an OData string ``'...'`` (``''`` is one ``'``) or digits."""
    found = _KEY.match(text)
    if found is None:
        raise BadQuery(
            f"an entity id is a quoted string, e.g. Things('demo:air-002'); got {text!r}"
        )
    quoted, digits = found.groups()
    return quoted.replace("''", "'") if quoted is not None else digits


def key_literal(entity_id: str) -> str:
    """The URL form of an id: ``'id'`` with ``'`` doubled, percent-encoded for a path."""
    return "'" + quote(entity_id.replace("'", "''"), safe=":-._~!$&*+,;=@'") + "'"
