"""``urbanpulse api``: the command that serves the open-data API with uvicorn; ``urbanpulse
report``: the monthly pilot report, from the same store and registry as the API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def api(
    host: Annotated[str | None, typer.Option(help="bind address [default: from settings]")] = None,
    port: Annotated[int | None, typer.Option(help="port [default: from settings]")] = None,
) -> None:
    """Serve the open-data API (OpenAPI docs at /docs)."""
    import uvicorn

    from api.app import create_app
    from urbanpulse.startup import start_component

    settings = start_component("api")
    uvicorn.run(
        create_app(settings),
        host=host or settings.api.host,
        port=port or settings.api.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep the process's logging (urbanpulse.logs: text or JSON)
    )


def report(
    tenant: Annotated[str, typer.Option(help="the tenant (town) the report is about")],
    month: Annotated[str, typer.Option(help="the month, YYYY-MM (e.g. 2026-11)")],
    out: Annotated[
        Path, typer.Option(help="folder to write the files into (made if missing)")
    ] = Path("."),
) -> None:
    """Write the monthly pilot report: one self-contained HTML file and CSV files.

    The scorecard (score per day, its parts, districts), the weakest sensors and the
    experiments with their effect and the data behind them, from the indicators that
    `urbanpulse kpis` stored and the experiments of the registry file (docs/kpis.md). The HTML
    holds its styles and charts inline and names no URL: it opens offline and prints on A4.
    """
    from datetime import UTC, datetime

    from api.admin import Conflict, NotConfigured, RegistryStore
    from api.influx_store import InfluxStore
    from api.registry_view import RegistryView
    from api.report.collect import collect, month_span
    from api.report.render import write
    from urbanpulse.startup import start_component

    settings = start_component("report")
    try:
        month_span(month, settings.kpis.timezone)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--month") from None
    try:
        registry = RegistryView(RegistryStore(settings.streams.registry_path)).snapshot()
    except (Conflict, NotConfigured) as err:
        typer.echo(f"the sensor registry cannot be read: {err}", err=True)
        raise typer.Exit(1) from None
    store = InfluxStore(settings.influx)
    try:
        made = collect(store, registry, settings, tenant=tenant, month=month, now=datetime.now(UTC))
        for path in write(made, out):
            typer.echo(str(path))
    finally:
        store.close()
