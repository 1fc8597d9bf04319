"""Ingest: MQTT messages in, canonical readings (or dead letters) out to Kafka.

The decoding is pure (``decoders``, ``routing``); ``mqtt_ingestor`` and ``kafka_sink`` are the
thin adapters around it.
"""
