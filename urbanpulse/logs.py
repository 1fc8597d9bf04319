"""Readable, uniform log lines for every UrbanPulse process."""

from __future__ import annotations

import logging


def configure(level: str, component: str) -> None:
    """Log to stderr as ``time level component: message``."""
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)-7s {component}: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
