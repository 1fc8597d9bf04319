"""What ``urbanpulse simulate`` was asked for, and the scenario it makes of a file (pure).

:class:`SimulateOptions` holds the command's options as given; :func:`override_scenario`
applies ``--seed``, ``--tenant``, ``--fault`` and ``--no-faults`` to a loaded scenario, and
:func:`spans_of` turns ``--duration`` and ``--history`` into seconds with each mode's default.
Everything here raises ``ValueError`` on bad input, before anything is written or sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from simulators.engine import MODES, Mode
from simulators.scenario import FAULTS, FaultRates, Scenario
from urbanpulse.durations import parse_duration

# Simulated time a run covers when --duration is not given (realtime: for ever).
DEFAULT_SPAN_S: dict[Mode, float | None] = {
    "realtime": None,
    "accelerated": 86400.0,
    "backfill": 86400.0,
    "load": 60.0,
}


@dataclass(frozen=True, kw_only=True)
class SimulateOptions:
    """The options of ``urbanpulse simulate``, as given (see its ``--help``)."""

    scenario: str | None = None
    mode: Mode = "realtime"
    duration: str | None = None
    speed: float = 1440.0
    history: str | None = "30m"
    seed: int | None = None
    tenant: str | None = None
    fault: Sequence[str] = ()
    faults: bool = True
    rate: float = 500.0
    readings_per_message: int = 10
    max_messages: int | None = None
    ground_truth: Path | None = None
    send_log: Path | None = None
    registry_out: Path | None = None
    credentials_dir: Path | None = None
    tenant_map_out: Path | None = None
    summary_out: Path | None = None
    setup_only: bool = False


@dataclass(frozen=True, kw_only=True)
class Spans:
    """How much simulated time a run covers, and how much history realtime sends at once."""

    duration_s: float | None  # None: for ever
    history_s: float


def mode_of(value: str) -> Mode:
    """The ``--mode`` value as a :data:`~simulators.engine.Mode`; anything else: ``ValueError``."""
    for mode in MODES:
        if value == mode:
            return mode
    raise ValueError(f"one of {', '.join(MODES)}")


def fault_rates(base: FaultRates, *, enabled: bool, overrides: Sequence[str]) -> FaultRates:
    """The scenario's fault rates (all zero unless ``enabled``), with ``NAME=RATE`` overrides."""
    rates = base.model_dump() if enabled else dict.fromkeys(FAULTS, 0.0)
    for item in overrides:
        name, _, value = item.partition("=")
        if name not in FAULTS or not value:
            raise ValueError(f"--fault {item!r}: NAME=RATE with NAME one of {FAULTS}")
        rates[name] = float(value)
    return FaultRates.model_validate(rates)


def override_scenario(town: Scenario, options: SimulateOptions) -> Scenario:
    """The scenario with the seed, tenant and fault rates the options ask for.

    A new tenant drops the file's network-server application names, so that they are derived
    from the new tenant and two tenants' LoRaWAN devices do not share an application.
    """
    update: dict[str, object] = {
        "faults": fault_rates(town.faults, enabled=options.faults, overrides=options.fault)
    }
    if options.seed is not None:
        update["seed"] = options.seed
    if options.tenant is not None:
        update["tenant"] = options.tenant
        update["network_servers"] = town.network_servers.model_copy(
            update={"tts_application": None, "chirpstack_application": None}
        )
    # Validated again as a whole: a bad tenant id or rate is refused here, not at send time.
    return town.model_validate(town.model_dump() | update)


def spans_of(mode: Mode, duration: str | None, history: str | None) -> Spans:
    """Seconds of ``--duration`` (or the mode's default) and of ``--history`` (realtime only)."""
    return Spans(
        duration_s=parse_duration(duration) if duration else DEFAULT_SPAN_S[mode],
        history_s=parse_duration(history) if history and mode == "realtime" else 0.0,
    )
