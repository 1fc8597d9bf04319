"""UrbanPulse shared core: what every part agrees on, and the command line that gathers them."""

__version__ = "0.1.0"
