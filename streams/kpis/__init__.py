"""The indicator job: per-sensor, per-district and per-tenant indicators and the pilot scorecard."""
