"""What `urbanpulse simulate` makes of its options: mode, fault rates, overrides, spans."""

from __future__ import annotations

import pytest

from simulators.engine import MODES
from simulators.options import (
    SimulateOptions,
    Spans,
    fault_rates,
    mode_of,
    override_scenario,
    spans_of,
)
from simulators.scenario import FAULTS, FaultRates, load_scenario, scenario_path


def test_mode_of_accepts_the_four_modes_only() -> None:
    assert [mode_of(m) for m in ("realtime", "accelerated", "backfill", "load")] == list(MODES)
    with pytest.raises(ValueError, match="one of realtime, accelerated, backfill, load"):
        mode_of("warp")


def test_fault_rates_keep_the_scenario_unless_turned_off_or_overridden() -> None:
    base = FaultRates(spike=0.1, stuck=0.2)
    assert fault_rates(base, enabled=True, overrides=()) == base
    assert not fault_rates(base, enabled=False, overrides=()).any()
    both = fault_rates(base, enabled=True, overrides=("late=0.5", "spike=0"))
    assert (both.late, both.spike, both.stuck) == (0.5, 0.0, 0.2)
    only = fault_rates(base, enabled=False, overrides=("drift=0.3",))
    assert {n for n in FAULTS if getattr(only, n)} == {"drift"}


@pytest.mark.parametrize("item", ["gremlins=0.1", "spike", "spike=", "=0.1"])
def test_fault_overrides_need_a_known_name_and_a_rate(item: str) -> None:
    with pytest.raises(ValueError, match="NAME=RATE"):
        fault_rates(FaultRates(), enabled=True, overrides=(item,))


def test_a_fault_rate_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="less than or equal to 1"):
        fault_rates(FaultRates(), enabled=True, overrides=("spike=1.5",))


def test_override_without_options_changes_nothing() -> None:
    town = load_scenario(scenario_path("town"))
    assert override_scenario(town, SimulateOptions()) == town


def test_a_new_tenant_derives_its_own_network_server_applications() -> None:
    town = load_scenario(scenario_path("town"))
    assert town.tts_application() == "demo-sensors"  # named in the file
    other = override_scenario(town, SimulateOptions(tenant="t1", seed=9, faults=False))
    assert (other.tenant, other.seed, other.faults.any()) == ("t1", 9, False)
    assert other.tts_application() == "t1-sensors"
    assert other.chirpstack_application() != town.chirpstack_application()
    assert other.network_servers.tts_tenant == town.network_servers.tts_tenant  # kept


def test_a_bad_tenant_id_is_refused_before_anything_runs() -> None:
    town = load_scenario(scenario_path("town"))
    with pytest.raises(ValueError, match="tenant"):
        override_scenario(town, SimulateOptions(tenant="no spaces/please"))


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("realtime", None), ("accelerated", 86400.0), ("backfill", 86400.0), ("load", 60.0)],
)
def test_each_mode_has_its_default_duration(mode: str, expected: float | None) -> None:
    assert spans_of(mode_of(mode), None, None).duration_s == expected


def test_durations_parse_and_history_counts_in_realtime_only() -> None:
    assert spans_of("realtime", "10m", "30m") == Spans(duration_s=600.0, history_s=1800.0)
    assert spans_of("realtime", None, None) == Spans(duration_s=None, history_s=0.0)
    assert spans_of("backfill", "2h", "30m") == Spans(duration_s=7200.0, history_s=0.0)
    with pytest.raises(ValueError, match="not a duration"):
        spans_of("accelerated", "soon", None)
