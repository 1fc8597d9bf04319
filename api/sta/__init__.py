"""OGC SensorThings API 1.1, a read-only subset, under ``/sta/v1.1`` (see docs/api.md)."""
