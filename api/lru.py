"""A map bounded by entries and by bytes that forgets the least recently used first (pure).

Every answer cache of the API keeps its values here, so no cache grows with the keys clients
make up, and a full cache makes room one entry at a time instead of forgetting everything: a
flood of new keys costs the oldest entries, not the ones everybody is using.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A value, when it was made (on the owner's clock) and what it weighs in bytes."""

    stamp: float
    value: T
    size: int


@dataclass
class BoundedLru(Generic[T]):
    """At most ``max_entries`` values weighing at most ``max_bytes`` together (0: no byte bound).

    ``weigh`` gives a value's size in bytes (default: 0, only entries count). A value heavier
    than ``max_bytes`` on its own is not kept at all.
    """

    max_entries: int
    max_bytes: int = 0
    weigh: Callable[[T], int] = lambda _: 0
    _entries: OrderedDict[Hashable, Entry[T]] = field(default_factory=OrderedDict)
    _bytes: int = 0

    def __post_init__(self) -> None:
        if self.max_entries < 1 or self.max_bytes < 0:
            raise ValueError("a cache holds at least one entry, and a byte bound is >= 0")

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """What the values kept weigh together."""
        return self._bytes

    def get(self, key: Hashable) -> Entry[T] | None:
        """The entry of ``key``, now the most recently used; None when there is none."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: Hashable, stamp: float, value: T) -> None:
        """Keep ``value`` as the newest entry, forgetting the least recently used ones until
        both bounds hold again."""
        self.discard(key)
        size = self.weigh(value)
        if self.max_bytes and size > self.max_bytes:
            return  # would push out everything else and still not fit
        self._entries[key] = Entry(stamp, value, size)
        self._bytes += size
        while len(self._entries) > self.max_entries or (
            self.max_bytes and self._bytes > self.max_bytes
        ):
            _, oldest = self._entries.popitem(last=False)
            self._bytes -= oldest.size

    def discard(self, key: Hashable) -> None:
        """Forget ``key`` if it is kept."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size
