"""Which quantities the open endpoints may publish (pure).

The privacy class of every quantity is defined once, in the platform's quantity table
:data:`urbanpulse.quantities.QUANTITIES` (``open``, ``restricted`` or ``personal``). The API
publishes only ``open`` quantities: it passes the open list to every query as an allow-list,
so restricted readings (battery, radio metadata), personal ones (should any slip past
ingest) and unknown quantities (classed ``restricted`` until someone names them) never leave
InfluxDB through an open endpoint, and pages stay full because the filter runs in the query.

Sensors have a class as well, in the sensor registry: the stream worker tags each point with
``privacy`` (``streams.points.SensorLabels``) and every query of ``api.flux`` keeps only
``open`` sensors (``_Where.open_sensors``), so a restricted or personal sensor is never
published whatever its quantities.
"""

from __future__ import annotations

from api.params import BadQuery
from urbanpulse.quantities import OPEN_QUANTITIES, privacy_of

__all__ = ["OPEN_QUANTITIES", "NotPublished", "is_open", "require_open"]


class NotPublished(BadQuery):
    """The client asked for a quantity that is not open data (a 404 problem, not a 400)."""


def is_open(quantity: str) -> bool:
    """True when readings of ``quantity`` may be published on the open endpoints."""
    return privacy_of(quantity) == "open"


def require_open(quantity: str | None) -> None:
    """Refuse a quantity that is not published (:class:`NotPublished`); None asks for all."""
    if quantity is not None and not is_open(quantity):
        raise NotPublished(f"quantity {quantity!r} is not published as open data")
