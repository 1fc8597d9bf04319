"""benchmarks/instructions.py without valgrind: what it reads of callgrind's report, and that
its workloads do the work their figures divide by (the counting itself:
tests/integration/test_benchmark_instructions.py)."""

import argparse
import json

import pytest

from benchmarks import instructions
from benchmarks.instructions import (
    BUDGETS,
    DEFAULTS,
    Figure,
    budget_of,
    collected,
    main,
    run_decode,
    run_worker,
    why_no_budgets,
)

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


def _figure(name: str, per_reading: int) -> Figure:
    return Figure(name, readings=1000, setup=0, total=per_reading * 1000)


def _counted(monkeypatch: pytest.MonkeyPatch, measured: list[Figure]) -> None:
    """``main`` as if valgrind had counted ``measured``."""
    monkeypatch.setattr("benchmarks.instructions.shutil.which", lambda _: "/usr/bin/valgrind")
    monkeypatch.setattr(instructions, "figures", lambda _: measured)


def test_a_figure_over_its_budget_fails_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    budget = BUDGETS["worker 50/sensor"]
    _counted(monkeypatch, [_figure("worker 50/sensor", budget + 1), _figure("decode 1/msg", 1)])
    assert main([]) == 1
    out, err = capsys.readouterr()
    assert "OVER" in out and "ok" in out
    assert "over budget: worker 50/sensor" in err


def test_figures_within_their_budgets_pass_and_say_so_in_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _counted(monkeypatch, [_figure(name, budget) for name, budget in BUDGETS.items()])
    assert main(["--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [f["budget"] for f in printed] == list(BUDGETS.values())


def test_another_workload_gets_no_verdict(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _counted(monkeypatch, [_figure("worker 50/sensor", 10 * BUDGETS["worker 50/sensor"])])
    assert main(["--sensors", "20"]) == 0  # a smaller workload: another figure per reading
    out = capsys.readouterr().out
    assert "no verdicts: budgets are for the default workloads (--sensors changed)" in out


def test_another_python_gets_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instructions, "BUDGETED_PYTHON", (3, 99))
    args = argparse.Namespace(**DEFAULTS)
    assert budget_of(_figure("decode 1/msg", 1), args) is None
    assert "budgets are for CPython 3.99" in (why_no_budgets(args) or "")


def test_the_default_workloads_have_every_budget() -> None:
    args = argparse.Namespace(**DEFAULTS)
    assert why_no_budgets(args) is None
    assert {name: budget_of(_figure(name, 1), args) for name in BUDGETS} == BUDGETS
