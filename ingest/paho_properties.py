"""paho-mqtt's MQTT 5 ``Properties``, with its tables built once instead of per packet.

paho 2.x decodes every PUBLISH it receives into a new ``Properties`` object. Its ``__init__``
builds three tables (the names, types and packet types of all 27 MQTT 5 properties) and its
``unpack`` first "clears" the new object by testing each of the 27 names: 8 µs a packet, for
packets that mostly carry no property at all. At one reading per message it was a tenth of the
ingest's py-spy samples, and sharing the tables cut the ingest's CPU per message by a quarter
(docs/performance.md).

:class:`SharedTables` is the same class with those tables shared by every object (paho only
reads them) and a ``clear`` that removes the properties actually set. :func:`install` makes it
the class paho's packet decoder builds, for the paho versions it was checked against; with
another it leaves paho as it is, and the ingest works as before, only slower.
"""

from __future__ import annotations

import logging

import paho.mqtt
from paho.mqtt import _packet
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)

CHECKED = ("2.1.", "2.2.")  # paho versions whose Properties this mirrors (tests/unit/ingest)

_TEMPLATE = Properties(PacketTypes.PUBLISH)


class SharedTables(Properties):  # type: ignore[misc]  # paho is untyped
    """``paho.mqtt.properties.Properties``, its tables shared rather than built per object."""

    TABLES = ("types", "names", "properties")  # built by Properties.__init__, only read after
    OWN = frozenset(("packetType", *TABLES))  # every other attribute is a property's value

    def __init__(self, packetType: int) -> None:  # paho's name for it
        # object.__setattr__: Properties.__setattr__ takes any other name for a property's.
        object.__setattr__(self, "packetType", packetType)
        for name in self.TABLES:
            object.__setattr__(self, name, getattr(_TEMPLATE, name))

    def clear(self) -> None:
        """Remove every property set (paho's tests each of the 27 names)."""
        for name in [n for n in vars(self) if n not in self.OWN]:
            delattr(self, name)


def install() -> bool:
    """Make paho's packet decoder build :class:`SharedTables`; False (paho untouched) for a
    paho version not checked. Idempotent."""
    if _packet.Properties is SharedTables:
        return True
    if not paho.mqtt.__version__.startswith(CHECKED) or _packet.Properties is not Properties:
        log.info(
            "paho-mqtt %s: its MQTT 5 properties are decoded as paho does it (slower); "
            "ingest/paho_properties.py was checked against %s",
            paho.mqtt.__version__,
            ", ".join(f"{v}x" for v in CHECKED),
        )
        return False
    _packet.Properties = SharedTables
    return True
