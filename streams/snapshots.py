"""States in memory, saved as periodic snapshots that release the acks they cover.

The worker keeps each sensor's (and district window's) state as a live object, changed in
place by every batch (:class:`LiveStates`). A batch marks what it touched *dirty* and hands
over the acks of its Kafka records: they are *held*. :meth:`LiveStates.snapshot` (every
``URBANPULSE_WORKER__SNAPSHOT_S``, and at once while a rebalance runs) encodes the dirty
states, sends them to the table's changelog, waits until Kafka confirmed every one, and only
then acks the records processed before it, in order. Kafka offsets therefore never move past
a record whose effect on the state is not saved: after a crash the states restored from the
changelog cover at least everything before the committed offsets (docs/streams.md, "State
and offsets").

A batch never overlaps a snapshot's two short steps (:attr:`LiveStates.lock`): the cut, and
the save that encodes the states and takes the held acks. A batch of the sensors' agent
completes after it releases the lock (its writes and sends, then its acks held), so both
steps first wait for the batch completing (:meth:`LiveStates.settled`). So a snapshot holds
only states whose batches finished, that is whose points InfluxDB took and whose sends
Kafka confirmed.
Between the two steps the snapshot writes what the states of the cut left to write (the
window aggregates, :class:`Flush`), and after the save it waits for Kafka: batches run
meanwhile (with 10,000 sensors at 1,000 readings/s, a snapshot held the lock 0.5 s).

The changelog is also where a worker finds its states at start-up and after a rebalance:
Faust's table recovery reads it into the table, and :meth:`LiveStates.load` decodes the rows of
the partitions newly assigned (then drops the bytes: the live object is the copy kept).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import chain
from typing import Any, Generic, Protocol, TypeVar

from streams.changelog import Row
from streams.deliveries import confirmed

log = logging.getLogger(__name__)

S = TypeVar("S")
Ack = Callable[[], Awaitable[object]]


class StateTable(Protocol):
    """Where snapshots go: a Faust table and its changelog (``streams.app.TableState``)."""

    def pack_rows(self, rows: Iterable[Row]) -> Any:
        """Take states (a value of None deletes the key), one at a time, ready to send to
        their changelog partitions (record batches): each encoded state is held only there."""

    async def put_rows(self, packed: Any) -> list[Awaitable[object]]:
        """Send what :meth:`pack_rows` made; the deliveries to wait for."""

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        """The rows the table holds (recovered from the changelog)."""

    def forget(self, key: bytes) -> None:
        """Drop a row from the table's memory (not from the changelog)."""


@dataclass(frozen=True)
class Flush(Generic[S]):
    """What a snapshot writes before it saves the states: the sensors' window aggregates."""

    # Write what the given states left to write; takes ``LiveStates.lock`` for what it reads.
    write: Callable[[list[tuple[bytes, S]]], Awaitable[None]]
    # Mark a state's writes done (called under the lock, for states no batch changed since).
    written: Callable[[S], None]


@dataclass(frozen=True)
class Codec(Generic[S]):
    """How a kind of state is encoded, decoded, and which partition it belongs to."""

    encode: Callable[[S], bytes]
    decode: Callable[[bytes], S]
    partition: Callable[[S], int]


class LiveStates(Generic[S]):
    """The live states of one table, what changed since the last snapshot, the held acks."""

    def __init__(self, codec: Codec[S], name: str, confirm_timeout_s: float | None = None) -> None:
        self.codec = codec
        self.name = name
        self.confirm_timeout_s = confirm_timeout_s  # for Kafka to confirm a snapshot (None: none)
        self.states: dict[bytes, S] = {}
        self._dirty: dict[bytes, None] = {}  # an ordered set
        # Saved, with the flush's writes still to do (an early snapshot): the next snapshot
        # that writes takes them in its cut.
        self._unwritten: dict[bytes, None] = {}
        self._forgotten: dict[bytes, int] = {}  # key → partition: deletions not yet saved
        self._held: list[Ack] = []
        self.held_bytes = 0  # the size of the held records (they stay in memory until acked)
        self._loaded: set[int] = set()  # partitions whose rows were decoded
        self._loaded_all = False
        self._lock: asyncio.Lock | None = None
        # Waits until the batch completing in the background (if any) is complete: it
        # changed states whose acks it has not handed over yet (``StreamWorker.settle``).
        self.settle: Callable[[], Awaitable[object]] | None = None
        self._saving_lock: asyncio.Lock | None = None
        self.snapshots = 0
        self.last_snapshot_s = 0.0  # how long the last snapshot took
        self.discarded = False

    @property
    def lock(self) -> asyncio.Lock:
        """Held by a batch, a stale check and a snapshot's short steps: they never interleave."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    @asynccontextmanager
    async def settled(self) -> AsyncIterator[None]:
        """The lock, once no batch is still completing: what holds it then sees only states
        of complete batches, their acks held."""
        async with self.lock:
            if self.settle is not None:
                await self.settle()
            yield

    @property
    def _saving(self) -> asyncio.Lock:
        """Held by a snapshot from its cut to its acks: one snapshot at a time."""
        if self._saving_lock is None:
            self._saving_lock = asyncio.Lock()
        return self._saving_lock

    def get(self, key: bytes) -> S | None:
        """The live state of ``key``, or None."""
        return self.states.get(key)

    def put(self, key: bytes, state: S) -> None:
        """Keep a (new) state and mark it changed."""
        self.states[key] = state
        self._dirty[key] = None
        self._forgotten.pop(key, None)  # forgotten, then heard from again: no deletion

    def forget(self, key: bytes) -> None:
        """Drop a live state; the next snapshot deletes it from the changelog too."""
        state = self.states.pop(key)
        self._dirty.pop(key, None)
        self._unwritten.pop(key, None)
        self._forgotten[key] = self.codec.partition(state)

    def touch(self, key: bytes) -> None:
        """Mark a live state changed (it was changed in place)."""
        self._dirty[key] = None

    def hold(self, acks: Iterable[Ack], size: int = 0) -> None:
        """Keep the acks of records just processed (``size`` bytes) until a snapshot covers
        them."""
        self._held.extend(acks)
        self.held_bytes += size

    @property
    def pending(self) -> tuple[int, int]:
        """(states changed or with writes to do, acks held) since the last snapshot."""
        return len(self._dirty | self._unwritten), len(self._held)

    def items(self, partitions: set[int] | None = None) -> Iterator[tuple[bytes, S]]:
        """The live states, of the given partitions only if given."""
        part = self.codec.partition
        for key, state in list(self.states.items()):
            if partitions is None or part(state) in partitions:
                yield key, state

    def load(self, table: StateTable, partitions: set[int] | None) -> int:
        """Decode the table rows of ``partitions`` (None: all) not loaded yet; how many.

        A state loaded counts as changed: it may have been saved with writes still to do (a
        snapshot that saved no aggregates, or a state a batch changed during one), and the
        next snapshot does them (``Flush``), even if no reading of it comes again.
        """
        if partitions is None:
            if self._loaded_all:
                return 0
            self._loaded_all = True
        elif partitions <= self._loaded:
            return 0
        wanted = None if partitions is None else partitions - self._loaded
        loaded = 0
        for key, raw in list(table.items()):
            if key in self.states:  # our own snapshot, read back by recovery: older
                table.forget(key)
                continue
            try:
                state = self.codec.decode(raw)
            except Exception as err:  # a row no version of the worker wrote: keep it, say so
                log.error(
                    "%s state %r not decoded (%s); that key starts afresh", self.name, key, err
                )
                continue
            if wanted is None or self.codec.partition(state) in wanted:
                self.states[key] = state
                self._dirty[key] = None
                table.forget(key)
                loaded += 1
        if wanted is not None:
            self._loaded |= wanted
        if loaded:
            log.info("%s: %d states loaded from the changelog", self.name, loaded)
        return loaded

    def keep_only(self, partitions: set[int]) -> None:
        """After a rebalance: forget the states of partitions no longer assigned.

        Their acks were released by the snapshot taken while the rebalance revoked them
        (nothing is held or changed then); the next owner restores them from the changelog.
        """
        part = self.codec.partition
        gone = [key for key, state in self.states.items() if part(state) not in partitions]
        unsaved = [key for key in gone if key in self._dirty]
        if unsaved:
            log.warning(
                "%s: %d changed states of revoked partitions dropped unsaved; their records "
                "were not acknowledged and are read again by the next owner",
                self.name,
                len(unsaved),
            )
        for key in gone:
            del self.states[key]
            self._dirty.pop(key, None)
            self._unwritten.pop(key, None)  # saved so: the next owner writes them
        if gone:
            log.info(
                "%s: %d states of partitions no longer assigned forgotten", self.name, len(gone)
            )
        # Rows the recovery read again for partitions kept (our own snapshots) are dropped
        # by the next load.
        self._loaded = set()
        self._loaded_all = False

    def discard(self) -> None:
        """Never save these states again: a batch failed half-way through changing them.

        The worker then stops (``streams.app``): its successor restores the last snapshot and
        reads again every record not acked, the failed batch's among them.
        """
        self.discarded = True
        self._dirty.clear()
        self._held.clear()
        self.held_bytes = 0

    async def snapshot(
        self, table: StateTable, flush: Flush[S] | None = None, *, write: bool = True
    ) -> int:
        """Save the changed states, wait for Kafka, then ack what they cover; how many saved.

        One snapshot at a time. Batches run meanwhile, except during its two short steps
        under :attr:`lock`: the cut (which states changed) and the save (encode the states,
        take the held acks). Between them ``flush`` writes what the states of the cut left to
        write before their records may be acked (the window aggregates), taking the lock for
        each part it reads; once written, a state that no batch changed since is marked so
        (``flush.written``). A state that changed since keeps its marks, and its writes are
        repeated by the next snapshot. If the flush or the changelog fails, nothing is acked
        and everything stays pending for the next snapshot (the error is raised).

        ``write=False`` saves the states without the flush's writes (an early snapshot, to
        release acks): they are saved with those writes marked still to do, and the next
        snapshot that writes takes them in its cut.
        """
        deferred = flush is not None and not write  # writes left for a later snapshot
        if deferred:
            flush = None
        async with self._saving:
            async with self.settled():
                cut = self._cut(writes=flush is not None)
                if cut is None:
                    return 0
                started = time.perf_counter()
            try:
                if flush is not None:
                    await flush.write(self._of(list(cut)))
                async with self.settled():
                    if self.discarded:  # a batch failed meanwhile: its states are not saved
                        return 0
                    if flush is not None:
                        self._mark_written(flush, cut)
                    keys, acks, size, forgotten, packed = self._take(table, cut)
            except BaseException:
                self._dirty = cut | self._dirty
                raise
            await self._send(table, packed, keys, acks, size, forgotten)
            if deferred:
                self._unwritten |= dict.fromkeys(keys)
            self.snapshots += 1
            self.last_snapshot_s = time.perf_counter() - started
            return len(keys)

    def _cut(self, writes: bool) -> dict[bytes, None] | None:
        """The states the snapshot saves first (and writes for, if ``writes``), no longer
        marked; None when there is nothing to do (under the lock)."""
        to_write = self._unwritten if writes else {}
        if self.discarded or not (self._dirty or self._held or self._forgotten or to_write):
            return None
        cut, self._dirty = self._dirty | to_write, {}
        if to_write:
            self._unwritten = {}
        return cut

    def _mark_written(self, flush: Flush[S], cut: dict[bytes, None]) -> None:
        """Mark the flush's writes done for the states of the cut no batch changed since."""
        for key, state in self._of(list(cut)):
            if key not in self._dirty:
                flush.written(state)

    def _take(
        self, table: StateTable, cut: dict[bytes, None]
    ) -> tuple[list[bytes], list[Ack], int, dict[bytes, int], Any]:
        """Encode the states of ``cut`` and those changed after it, packed for the table, and
        take the held acks and deletions: what the snapshot saves (under the lock).

        The states changed after the cut stay marked changed: their aggregates were written
        before those changes, so the next snapshot writes them again (and saves them again).
        """
        keys = [key for key in cut | self._dirty if key in self.states]
        acks, size, forgotten = self._held, self.held_bytes, self._forgotten
        self._held, self.held_bytes, self._forgotten = [], 0, {}
        encode, part = self.codec.encode, self.codec.partition
        rows = chain(
            ((part(s), k, encode(s)) for k, s in self._of(keys)),
            ((partition, key, None) for key, partition in forgotten.items()),
        )
        try:
            packed = table.pack_rows(rows)
        except BaseException:
            self._pending_again(keys, acks, size, forgotten)
            raise
        return keys, acks, size, forgotten, packed

    async def _send(
        self,
        table: StateTable,
        packed: Any,
        keys: list[bytes],
        acks: list[Ack],
        size: int,
        forgotten: dict[bytes, int],
    ) -> None:
        """Send the rows, wait for Kafka (one time limit for queueing them too: while Kafka
        is away, aiokafka can make the producer wait before it takes a batch), then ack."""
        try:
            saved = _saved(table, packed)
            await confirmed([saved], self.confirm_timeout_s, f"{self.name} snapshots")
        except BaseException:
            self._pending_again(keys, acks, size, forgotten)
            raise
        for ack in acks:  # only now: the states that cover these records are in Kafka
            await ack()

    def _pending_again(
        self, keys: list[bytes], acks: list[Ack], size: int, forgotten: dict[bytes, int]
    ) -> None:
        """A snapshot failed: what it took is pending again, before what came since."""
        self._dirty = dict.fromkeys(keys) | self._dirty
        self._forgotten = forgotten | self._forgotten
        self._held = acks + self._held
        self.held_bytes += size

    def _of(self, keys: list[bytes]) -> list[tuple[bytes, S]]:
        """The live states of ``keys`` (those forgotten or revoked since are left out)."""
        return [(key, state) for key in keys if (state := self.states.get(key)) is not None]


async def _saved(table: StateTable, packed: Any) -> None:
    """Send the packed rows to the changelog and wait until Kafka confirmed every one (or one
    failed: its error). Stopped waiting, it leaves the deliveries be, as ``confirmed`` does."""
    deliveries = [asyncio.ensure_future(d) for d in await table.put_rows(packed)]
    if deliveries:
        await asyncio.wait(deliveries, return_when=asyncio.FIRST_EXCEPTION)
    for delivery in deliveries:
        if delivery.done():
            delivery.result()
