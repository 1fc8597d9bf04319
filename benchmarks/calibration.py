"""How fast this machine is right now: the CPU time of a fixed piece of Python work.

This machine's speed changes by as much as 40 % within minutes (docs/performance.md): every
process then spends that much more CPU per reading, ours and the services' alike, and a
benchmark's CPU figures move with it. A fixed single-threaded workload (JSON in and out,
string formatting, dict and float work: what our processes do most) timed just before and
after a run tells a slow phase from a regression: if the calibration took 30 % longer, so did
everything else.
"""

from __future__ import annotations

import json
import time

_ITEMS = [{"sensor": f"s-{i:05d}", "value": i * 0.1, "time": 1_795_744_800 + i} for i in range(500)]


def _work() -> float:
    total = 0.0
    for _ in range(24):
        items = json.loads(json.dumps(_ITEMS))
        lines = [f"{d['sensor']} value={d['value']!r} {d['time'] * 10**9}" for d in items]
        by_sensor = {d["sensor"]: d["value"] for d in items}
        total += sum(by_sensor.values()) + len("\n".join(lines))
    return total


def calibration_ms(repeats: int = 7) -> float:
    """CPU milliseconds of the fixed workload, the best of ``repeats`` (about 20 ms each)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        _work()
        best = min(best, time.process_time() - start)
    return round(best * 1000, 2)
