"""Settings: one object, read from environment variables prefixed ``URBANPULSE_``.

Nested sections use a double underscore: ``URBANPULSE_MQTT__HOST``, ``URBANPULSE_KAFKA__BOOTSTRAP``.
Defaults match the local services of ``deploy/local/`` so a laptop needs no configuration.
Settings are built in each command's entry point, never at import time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class MqttSettings(BaseModel):
    """The MQTT broker the ingestor subscribes to and the simulator publishes to."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: SecretStr | None = None
    client_id: str = Field(
        "urbanpulse-ingest",
        description="fixed, so the broker keeps the persistent session across restarts",
    )
    topics: list[str] = Field(default_factory=lambda: ["urbanpulse/+/+/json"])
    shared_group: str | None = Field(
        None, description="MQTT 5 shared-subscription group: several ingestors split the load"
    )
    max_inflight: int = Field(
        1000, ge=1, le=65535, description="messages received but not yet acked (receive maximum)"
    )
    max_payload_bytes: int = Field(256 * 1024, ge=1, description="larger messages are refused")
    keepalive_s: int = 30


class KafkaSettings(BaseModel):
    """The Kafka cluster between ingest and the stream worker."""

    bootstrap: str = "127.0.0.1:9092"
    readings_topic: str = "readings"
    deadletter_topic: str = "deadletter"
    alerts_topic: str = "alerts"
    partitions: int = Field(4, ge=1, description="partitions of topics the platform creates")
    replication: int = Field(1, ge=1)


class InfluxSettings(BaseModel):
    """InfluxDB: 1.8 through its 2.0-compatible API locally, 2.x in production."""

    url: str = "http://127.0.0.1:8086"
    token: SecretStr = Field(
        SecretStr(""), description="2.x API token; 1.8: user:password or empty"
    )
    org: str = Field("-", description="2.x organisation; '-' for InfluxDB 1.8")
    raw_bucket: str = Field("urbanpulse/raw", description="2.x bucket, or 1.8 database/policy")
    flux_params: Literal["inline", "extern"] = Field(
        "inline",
        description="how query values reach Flux: 'extern' uses the API's params (InfluxDB 2.x "
        "only); 'inline' renders them as escaped literals (works on 1.8, which ignores extern)",
    )
    timeout_ms: int = 10_000


class WorkerSettings(BaseModel):
    """The Faust stream worker."""

    app_id: str = "urbanpulse-worker"
    batch_size: int = Field(500, ge=1, description="readings written to InfluxDB per request")
    batch_seconds: float = Field(1.0, gt=0, description="longest wait to fill a batch")
    web_port: int = Field(6066, description="Faust's own web server (health, metrics)")
    datadir: str = ".local/worker"


class ApiSettings(BaseModel):
    """The open-data API."""

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = Field("", description="base URL for links; empty: taken from the request")
    default_limit: int = Field(1000, ge=1)
    max_limit: int = Field(10_000, ge=1)
    max_range_days: int = Field(366, ge=1, description="longest from/to span of one query")
    sensors_lookback_days: int = Field(30, ge=1, description="how far back /v1/sensors looks")


class Settings(BaseSettings):
    """Every setting of every UrbanPulse component."""

    model_config = SettingsConfigDict(
        env_prefix="URBANPULSE_", env_nested_delimiter="__", extra="ignore"
    )

    log_level: str = "INFO"
    default_tenant: str = "default"
    mqtt: MqttSettings = MqttSettings()
    kafka: KafkaSettings = KafkaSettings()
    influx: InfluxSettings = InfluxSettings()
    worker: WorkerSettings = WorkerSettings()
    api: ApiSettings = ApiSettings()
