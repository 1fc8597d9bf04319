"""glibc's allocator set for the worker: big buffers go back to the system once freed.

glibc serves a block of at least its mmap threshold (128 kB at first) with a mapping of its
own, unmapped when freed. But it raises the threshold to the size of each such block freed,
up to 32 MB: once the worker freed a few fetch responses, request bodies and record batches
of a few hundred kB, every later one came from the heap, and the heap keeps what it grew to.
A fixed threshold of :data:`MMAP_THRESHOLD` keeps them mapped: the worker's RSS with 10,000
sensors at saturation was 10-11 MB lower (docs/performance.md, "Payloads let go, big blocks
mapped, two partials per window"). A lower threshold (32 kB) saved a little more but cost
11 % more worker CPU: every record of 50 to 300 kB became a mapping of its own.

Set at start-up, before the worker allocates much; ``MALLOC_MMAP_THRESHOLD_`` in the
environment (glibc's own knob) wins. Elsewhere than glibc (musl, macOS) nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

MMAP_THRESHOLD = 256 * 1024
M_MMAP_THRESHOLD = -3  # mallopt's parameter number (glibc's malloc.h)


def set_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; False when not done (another C
    library, or ``MALLOC_MMAP_THRESHOLD_`` set)."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError):  # no C library found by that name, or no mallopt
        return False
    done = bool(mallopt(M_MMAP_THRESHOLD, threshold))
    log.debug("malloc mmap threshold %d bytes: %s", threshold, "set" if done else "not set")
    return done
