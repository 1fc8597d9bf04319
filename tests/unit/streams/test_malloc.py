"""glibc's mmap threshold, set in a child process (it is process-wide)."""

import os
import subprocess
import sys
import textwrap

import pytest


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError, AttributeError):
        return False


pytestmark = pytest.mark.skipif(not _glibc(), reason="glibc's allocator only (mallinfo2)")

# Frees a 1 MB block (glibc then raises its threshold to 1 MB), then counts how many blocks
# are mapped while a 300 kB one is alive: 1 if it got a mapping of its own, 0 from the heap.
CHILD = textwrap.dedent(
    """
    import ctypes, sys
    from streams.malloc import set_mmap_threshold

    class Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Info
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    if sys.argv[1] == "set":
        print(set_mmap_threshold(), end=" ")
    libc.free(libc.malloc(1 << 20))
    before = libc.mallinfo2().hblks
    block = libc.malloc(300 * 1024)
    print(libc.mallinfo2().hblks - before)
    libc.free(block)
    """
)


def child(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return done.stdout.strip()


def test_a_freed_big_block_no_longer_moves_big_blocks_to_the_heap() -> None:
    assert child("default") == "0"  # glibc's own rule: the 300 kB block came from the heap
    assert child("set") == "True 1"  # with the threshold fixed it is mapped, and unmapped


def test_the_environment_wins() -> None:
    assert child("set", env={"MALLOC_MMAP_THRESHOLD_": "1048576"}) == "False 0"
