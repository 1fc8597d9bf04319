"""benchmarks/instructions.py under valgrind: the same workload counted twice gives the same
figure, which is what makes it worth having on a machine whose speed moves by tens of
percent. Not a service test: it is here because it takes about two minutes.
``make test`` installs valgrind (deploy/tools/install.sh valgrind)."""

import json
import shutil
import subprocess
import sys

import pytest

from tests.support import REPO


def test_the_same_workload_counted_twice_gives_the_same_figure() -> None:
    if shutil.which("valgrind") is None:
        pytest.fail("valgrind is not installed: run `deploy/tools/install.sh valgrind`")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.instructions",
            "--per-sensor",
            "50",
            "50",
            "--per-message",
            "--sensors",
            "20",
            "--batches",
            "2",
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first, second = json.loads(done.stdout)
    assert first["readings"] == second["readings"] == 2 * 500
    assert 10_000 < first["per_reading"] < 10_000_000  # a worker's reading, not a setup's
    assert abs(first["per_reading"] - second["per_reading"]) <= 0.01 * first["per_reading"]
