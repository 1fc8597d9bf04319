"""The bounded least-recently-used map under every answer cache (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.lru import BoundedLru


def test_the_least_recently_used_goes_first() -> None:
    lru: BoundedLru[str] = BoundedLru(2)
    lru.put("a", 0, "A")
    lru.put("b", 0, "B")
    assert lru.get("a") is not None  # "a" used: "b" is now the oldest
    lru.put("c", 0, "C")
    assert lru.get("b") is None
    assert [e.value for e in (lru.get("a"), lru.get("c")) if e] == ["A", "C"]


def test_bytes_are_bounded_and_a_value_too_big_is_not_kept() -> None:
    lru: BoundedLru[bytes] = BoundedLru(100, max_bytes=10, weigh=len)
    lru.put("a", 0, b"12345")
    lru.put("b", 0, b"12345")
    lru.put("c", 0, b"1")  # 11 bytes: "a" makes way
    assert lru.get("a") is None and lru.bytes == 6
    lru.put("huge", 0, b"x" * 11)
    assert lru.get("huge") is None and len(lru) == 2  # nothing else was pushed out for it
    lru.put("b", 1, b"")  # replacing a value re-weighs it
    assert lru.bytes == 1


def test_bounds_must_make_sense() -> None:
    with pytest.raises(ValueError):
        BoundedLru(0)
    with pytest.raises(ValueError):
        BoundedLru(1, max_bytes=-1)


OPS = st.lists(
    st.tuples(st.sampled_from(["put", "get", "discard"]), st.integers(0, 50), st.integers(0, 40)),
    max_size=400,
)


@given(OPS, st.integers(1, 10), st.integers(0, 100))
def test_bounds_always_hold_and_bytes_add_up(
    ops: list[tuple[str, int, int]], n: int, m: int
) -> None:
    lru: BoundedLru[bytes] = BoundedLru(n, max_bytes=m, weigh=len)
    for op, key, size in ops:
        if op == "put":
            lru.put(key, 0, b"x" * size)
            if not m or size <= m:
                assert lru.get(key) is not None  # the newest entry is always kept
        elif op == "get":
            lru.get(key)
        else:
            lru.discard(key)
        assert len(lru) <= n
        assert not m or lru.bytes <= m
    assert lru.bytes == sum(e.size for e in lru._entries.values())
