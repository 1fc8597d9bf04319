"""Stateless, seeded randomness: the same seed and key give the same number on any machine.

Sensor models are pure functions of (seed, sensor, time), so values do not depend on the
order in which they are computed: a backfill, a replay and a live run agree on every reading.
Python's ``hash`` is salted per process, so keys are hashed with BLAKE2b instead.
"""

from __future__ import annotations

import hashlib
import math
import struct

_SCALE = float(1 << 64)


def uniform(seed: int, *key: object) -> float:
    """A number in [0, 1) fixed by the seed and the key parts."""
    text = "\x1f".join(str(part) for part in (seed, *key)).encode()
    digest = hashlib.blake2b(text, digest_size=8).digest()
    return float(struct.unpack(">Q", digest)[0]) / _SCALE


def gauss(seed: int, *key: object) -> float:
    """A standard normal number fixed by the seed and the key parts (Box-Muller)."""
    u1 = max(uniform(seed, *key, "g1"), 1e-12)
    u2 = uniform(seed, *key, "g2")
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def smooth(seed: int, key: str, t: float, period: float) -> float:
    """Smooth value noise in about [-1, 1]: lattice points every ``period`` seconds, eased."""
    cell = math.floor(t / period)
    frac = t / period - cell
    a = uniform(seed, key, cell) * 2.0 - 1.0
    b = uniform(seed, key, cell + 1) * 2.0 - 1.0
    ease = (1.0 - math.cos(math.pi * frac)) / 2.0
    return a + (b - a) * ease


def fractal(seed: int, key: str, t: float, period: float) -> float:
    """Two octaves of :func:`smooth`: slow swings with some faster wobble, about [-1, 1]."""
    return 0.7 * smooth(seed, key, t, period) + 0.3 * smooth(seed, key + "'", t, period / 3.7)
