"""``urbanpulse kpis``: compute the indicators and scorecard once, or every so often."""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated

import typer

log = logging.getLogger("urbanpulse.kpis")


def kpis(
    every: Annotated[
        str | None,
        typer.Option(
            help="run again this often (e.g. 10m, 1h) until stopped; without it: run once. "
            "A failed run is logged and tried again at the next turn"
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="backfill: compute every day from this date (YYYY-MM-DD, in "
            "URBANPULSE_KPIS__TIMEZONE) to today, not only yesterday and today. Only as far "
            "back as the raw readings are kept"
        ),
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="only this tenant (default: every tenant found)")
    ] = None,
) -> None:
    """Compute per-sensor, per-district and per-tenant indicators and the pilot scorecard.

    Completeness, uptime, delivery latency, quality-flag shares, dead letters, time since the
    last reading and battery, per day and per week, from the stored readings and the
    dead-letter topic; written to the aggregate bucket as measurement 'kpi' (docs/kpis.md).
    Recomputing a period overwrites its points. `urbanpulse up` runs this with
    --every URBANPULSE_KPIS__EVERY_S unless URBANPULSE_KPIS__ENABLED=false.
    """
    from streams.kpis.run import refuse_old_since, run_loop, run_once
    from urbanpulse.durations import parse_duration
    from urbanpulse.startup import start_component

    settings = start_component("kpis")
    try:
        first = date.fromisoformat(since) if since else None
        period_s = parse_duration(every) if every else None
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    if first is not None:
        problem = refuse_old_since(settings, first)
        if problem:
            raise typer.BadParameter(problem, param_hint="--since")
    if period_s is None:
        raise typer.Exit(run_once(settings, since=first, tenant=tenant))
    raise typer.Exit(run_loop(settings, period_s, since=first, tenant=tenant))
