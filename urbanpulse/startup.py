"""Start-up of one component's process: its settings read once, its log lines set up."""

from __future__ import annotations

from urbanpulse.logs import configure
from urbanpulse.settings import Settings


def start_component(component: str) -> Settings:
    """Read the settings from the environment and send this process's logs as they ask.

    Every command calls this first, so each process logs as ``component`` in the format of
    ``URBANPULSE_LOG_FORMAT`` before anything else can log.
    """
    settings = Settings()
    configure(settings.log_level, component, settings.log_format)
    return settings
