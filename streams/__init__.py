"""Streams: the Faust worker that turns the Kafka readings topic into stored InfluxDB points.

The logic (``points``) is pure; ``influx_writer`` and ``app`` are the adapters.
"""
