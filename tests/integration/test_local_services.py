"""deploy/local/services.sh runs InfluxDB with the garbage-collector target it documents.

InfluxDB's Go collector was a third of its CPU under load at Go's default target (100 %);
services.sh passes ``URBANPULSE_INFLUX_GOGC`` (default 400) as ``GOGC`` (docs/performance.md).
The InfluxDB checked is the one this test run uses, found through ``services.sh status``.
"""

from __future__ import annotations

import os
import re
import subprocess

from benchmarks.procfs import ProcFs
from tests.support import INFLUX_PORT, SERVICES


def influxd_pid() -> int:
    """The pid of the InfluxDB that services.sh started for this test run."""
    status = subprocess.run(
        [str(SERVICES), "status"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    found = re.search(rf"^influxdb running \(pid (\d+), port {INFLUX_PORT}\)$", status, re.M)
    assert found, f"services.sh did not start the InfluxDB on port {INFLUX_PORT}:\n{status}"
    return int(found.group(1))


def test_influxdb_runs_with_the_documented_gc_target() -> None:
    environment = ProcFs().environment(influxd_pid())
    assert environment is not None
    # 400 unless whoever runs the tests chose another value, as services.sh lets them
    assert environment.get("GOGC") == os.environ.get("URBANPULSE_INFLUX_GOGC", "400")


def test_a_gc_target_that_is_not_a_percentage_is_refused_with_its_name() -> None:
    run = subprocess.run(
        [str(SERVICES), "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "URBANPULSE_INFLUX_GOGC": "lots"},
    )
    assert run.returncode == 2
    assert "URBANPULSE_INFLUX_GOGC=lots" in run.stderr
