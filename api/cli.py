"""``urbanpulse api``: the command that serves the open-data API with uvicorn."""

from __future__ import annotations

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
