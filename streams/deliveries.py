"""Waiting for Kafka to confirm the worker's sends, within a time limit.

Faust 0.15.3 gives its producer a request timeout of 20 minutes (``producer_request_timeout``),
and aiokafka retries a batch of sends until then: while Kafka is away, or answers no more
(a paused or black-holed broker), a send's delivery neither succeeds nor fails. A batch waiting
for it holds up every partition with no error, and the stall watchdog takes that long batch
for a slow InfluxDB (``streams.watchdog``). :func:`confirmed` bounds the wait
(``URBANPULSE_WORKER__SEND_CONFIRM_TIMEOUT_S``) and raises :class:`SendsUnconfirmed`, which
stops the worker: nothing the waiting batch or snapshot covers was acknowledged, so its
successor reads the records again from the committed offsets and the last saved states, and
writes the same points (docs/streams.md, "State and offsets").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Collection

log = logging.getLogger(__name__)


class SendsUnconfirmed(RuntimeError):
    """Kafka did not confirm sends within the limit: raised to stop the worker."""


async def confirmed(
    deliveries: Collection[Awaitable[object]], timeout_s: float | None, what: str
) -> None:
    """Wait until Kafka confirmed every delivery; raise the first one's error, or
    :class:`SendsUnconfirmed` once ``timeout_s`` (None: no limit) passed with some still
    unconfirmed.

    One timer for the whole collection; the deliveries are never cancelled (a late
    confirmation is harmless, the worker is stopping).
    """
    if not deliveries:
        return
    futures = [asyncio.ensure_future(d) for d in deliveries]
    done, waiting = await asyncio.wait(
        futures, timeout=timeout_s, return_when=asyncio.FIRST_EXCEPTION
    )
    for future in done:
        future.result()  # a send that failed: its error, as before the time limit
    if waiting:
        log.error(
            "Kafka has not confirmed %d of %d %s after %g s "
            "(URBANPULSE_WORKER__SEND_CONFIRM_TIMEOUT_S); stopping the worker for its "
            "supervisor to restart it: nothing they cover was acknowledged, so the restarted "
            "worker reads those records again and none is lost",
            len(waiting),
            len(futures),
            what,
            timeout_s,
        )
        raise SendsUnconfirmed(f"{len(waiting)} {what} unconfirmed after {timeout_s:g} s")
