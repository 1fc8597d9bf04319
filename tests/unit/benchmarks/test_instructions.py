"""benchmarks/instructions.py without valgrind: what it reads of callgrind's report, and that
its workloads do the work their figures divide by (the counting itself:
tests/integration/test_benchmark_instructions.py)."""

import pytest

from benchmarks.instructions import Figure, collected, main, run_decode, run_worker

REPORT = """==4711== Callgrind, a call-graph generating cache profiler
==4711==
==4711== Events    : Ir
==4711== Collected : 3442159218
==4711==
==4711== I   refs:      3,442,159,218
"""


def test_the_count_is_callgrinds_collected_line() -> None:
    assert collected(REPORT) == 3_442_159_218


def test_a_report_without_a_count_is_an_error_not_a_zero() -> None:
    with pytest.raises(RuntimeError, match="no instruction count"):
        collected("==4711== Callgrind, a call-graph generating cache profiler\n")


def test_a_figure_is_the_works_instructions_per_reading() -> None:
    figure = Figure("worker 50/sensor", readings=1000, setup=3_000_000, total=103_000_000)
    assert figure.per_reading == 100_000


def test_the_worker_workload_stores_the_readings_of_the_batches_asked_for() -> None:
    assert run_worker(per_sensor=50, sensors=4, batches=3, units=0) == 0
    assert run_worker(per_sensor=50, sensors=4, batches=3, units=2) == 2 * 500


def test_the_decode_workload_decodes_the_messages_asked_for() -> None:
    assert run_decode(per_message=50, messages=5, units=0) == 0
    assert run_decode(per_message=50, messages=5, units=3) == 3 * 50


@pytest.mark.parametrize("args", [["--batches", "0"], ["--per-sensor", "0"], ["--sensors", "-1"]])
def test_sizes_below_one_are_refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert "must be >= 1" in capsys.readouterr().err
