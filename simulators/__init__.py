"""Simulators: believable sensors that publish to MQTT, so the platform runs without hardware."""
