"""deploy/local/services.sh runs InfluxDB with the garbage-collector target it documents.

InfluxDB's Go collector was a third of its CPU under load at Go's default target (100 %);
services.sh passes ``URBANPULSE_INFLUX_GOGC`` (default 400) as ``GOGC`` (docs/performance.md).
The InfluxDB checked is the one this test run uses: the process listening on its port.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from benchmarks.procfs import ProcFs
from tests.support import INFLUX_PORT, SERVICES


def test_influxdb_runs_with_the_documented_gc_target() -> None:
    pid = ProcFs().listener(INFLUX_PORT)
    assert pid is not None, f"no process of ours listens on InfluxDB's port {INFLUX_PORT}"
    environment = ProcFs().environment(pid)
    assert environment is not None
    # 400 unless whoever runs the tests chose another value, as services.sh lets them
    assert environment.get("GOGC") == os.environ.get("URBANPULSE_INFLUX_GOGC", "400")


@pytest.mark.parametrize("value", ["lots", "off", "0"])
def test_a_gc_target_that_is_not_a_positive_percentage_is_refused_with_its_name(
    value: str,
) -> None:
    run = subprocess.run(
        [str(SERVICES), "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "URBANPULSE_INFLUX_GOGC": value},
    )
    assert run.returncode == 2
    assert f"URBANPULSE_INFLUX_GOGC={value}:" in run.stderr
