"""Which components `urbanpulse up` supervises, and with which arguments."""

from __future__ import annotations

from urbanpulse.settings import KpiSettings, Settings
from urbanpulse.supervisor import ChildRunner, build_units


def commands(settings: Settings) -> dict[str, list[str]]:
    units = build_units(settings, simulate=False, services=[])
    out = {}
    for unit in units:
        assert isinstance(unit.runner, ChildRunner)
        out[unit.name] = unit.runner.command[3:]  # after `python -m urbanpulse.cli`
    return out


def test_the_indicator_job_runs_beside_the_others_every_so_often() -> None:
    found = commands(Settings(kpis=KpiSettings(every_s=900)))
    assert found == {
        "ingest": ["ingest"],
        "worker": ["worker"],
        "api": ["api"],
        "kpis": ["kpis", "--every", "900s"],
    }


def test_a_setting_turns_the_indicator_job_off() -> None:
    assert "kpis" not in commands(Settings(kpis=KpiSettings(enabled=False)))
