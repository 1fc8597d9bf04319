"""The open-data API (FastAPI): sensors, observations, health.

Query building (``flux``) and output formats (``formats``) are pure; ``influx_store`` and
``health`` are the I/O adapters; ``app`` wires the HTTP routes.
"""
