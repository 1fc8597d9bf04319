"""``urbanpulse dashboards``: generate the board files, push them to a Grafana."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    help="Grafana dashboards as code: generate the JSON and provisioning files, push to Grafana.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def generate(
    check: Annotated[
        bool, typer.Option(help="write nothing; exit 1 when a generated file is out of date")
    ] = False,
) -> None:
    """Write dashboards/json and dashboards/provisioning from the code in dashboards/."""
    from dashboards import render

    if check:
        stale = render.stale()
        for path in stale:
            typer.echo(f"out of date: dashboards/{path}")
        raise typer.Exit(1 if stale else 0)
    changed = render.write()
    for path in changed:
        typer.echo(f"wrote dashboards/{path}")
    typer.echo(f"{len(changed)} file(s) changed")


@app.command()
def push(
    url: Annotated[
        str | None,
        typer.Option(help="Grafana base URL [default: URBANPULSE_DASHBOARDS__GRAFANA_URL]"),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="Grafana service account token (Admin) [default: "
            "URBANPULSE_DASHBOARDS__GRAFANA_TOKEN]"
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="only show what would change")] = False,
) -> None:
    """Create or update the folders, data sources (by uid) and boards in a running Grafana.

    Idempotent: objects that already match are left alone, so a second push changes nothing.
    The InfluxDB data sources take URL, organisation, buckets and token from the
    URBANPULSE_INFLUX__ settings (URBANPULSE_DASHBOARDS__INFLUX_URL, when set, is the URL
    Grafana's server uses instead).
    """
    from dashboards.datasources import DatasourceTargets
    from dashboards.push import GrafanaClientPort, desired
    from dashboards.push import push as run_push
    from urbanpulse.settings import Settings

    settings = Settings()
    section = settings.dashboards
    targets = DatasourceTargets(
        influx_url=section.influx_url or settings.influx.url,
        influx_org=settings.influx.org,
        raw_bucket=settings.influx.raw_bucket,
        aggregate_bucket=settings.influx.aggregate_bucket,
        prometheus_url=section.prometheus_url,
    )
    want = desired(targets, settings.influx.token.get_secret_value())
    grafana = GrafanaClientPort(
        url or section.grafana_url,
        token if token is not None else section.grafana_token.get_secret_value(),
        timeout_s=section.timeout_s,
    )
    changes = run_push(want, grafana, dry_run=dry_run)
    for change in changes:
        typer.echo(change.line())
    todo = sum(change.action != "unchanged" for change in changes)
    verb = "would change" if dry_run else "changed"
    typer.echo(f"{verb} {todo} of {len(changes)} object(s)")
