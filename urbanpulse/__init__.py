"""UrbanPulse shared core: the canonical reading model, settings and the command line."""

__version__ = "0.1.0"
