"""Settings: one object, read from environment variables prefixed ``URBANPULSE_``.

Nested sections use a double underscore: ``URBANPULSE_MQTT__HOST``, ``URBANPULSE_KAFKA__BOOTSTRAP``.
Defaults match the local services of ``deploy/local/`` so a laptop needs no configuration.
Settings are built in each command's entry point, never at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from urbanpulse.mqtt_topics import SUPPORTED_TOPIC_FILTERS


def read_secret_file(path: str) -> str:
    """The secret a file holds (a Docker or Kubernetes secret), without a trailing newline."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"cannot read the secret file {path}: {err.strerror or err}") from err
    return text.rstrip("\r\n")


class MqttSettings(BaseModel):
    """The MQTT broker the ingestor subscribes to and the simulator publishes to."""

    host: str = Field("127.0.0.1", description="MQTT broker host")
    port: int = Field(1883, description="MQTT broker port")
    username: str | None = Field(None, description="MQTT user name, if the broker wants one")
    password: SecretStr | None = Field(None, description="MQTT password")
    password_file: str | None = Field(
        None,
        description="file holding the MQTT password (a Docker/Kubernetes secret), read at start; "
        "wins over the password",
    )
    client_id: str = Field(
        "urbanpulse-ingest",
        description="fixed, so the broker keeps the persistent session across restarts",
    )
    topics: list[str] = Field(
        default_factory=lambda: list(SUPPORTED_TOPIC_FILTERS),
        description="topic filters the ingestor subscribes to (JSON list)",
    )
    shared_group: str | None = Field(
        None,
        description="MQTT 5 shared-subscription group: several ingestors split the load; "
        "not kept over a Mosquitto restart (docs/scale-out.md), so leave it empty with one "
        "ingestor",
    )
    max_inflight: int = Field(
        1000, ge=1, le=65535, description="messages received but not yet acked (receive maximum)"
    )
    max_payload_bytes: int = Field(
        256 * 1024,
        ge=1,
        description="larger messages are refused; the shipped Mosquitto configs refuse them too "
        "(max_packet_size, message_size_limit): keep those equal to this",
    )
    keepalive_s: int = Field(30, description="MQTT keep-alive, seconds")
    tls: bool = Field(False, description="connect with TLS (e.g. to a network server's broker)")
    ca_file: str | None = Field(
        None, description="CA bundle to verify the broker; empty: system CAs"
    )
    cert_file: str | None = Field(None, description="client certificate, for brokers that want one")
    key_file: str | None = Field(None, description="the client certificate's private key")

    @model_validator(mode="after")
    def _password_from_file(self) -> Self:
        if self.password_file:
            self.password = SecretStr(read_secret_file(self.password_file))
        return self


class KafkaSettings(BaseModel):
    """The Kafka cluster between ingest and the stream worker."""

    bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    readings_topic: str = Field("readings", description="canonical readings, keyed by sensor")
    deadletter_topic: str = Field("deadletter", description="refused messages with reasons")
    alerts_topic: str = Field("alerts", description="alert episodes (reserved)")
    observations_topic: str = Field(
        "observations",
        description="readings the worker stored (cleaned, flagged), in records of runs "
        "(`urbanpulse/feed.py`), a sensor's always on one partition: the source of the API's "
        "live feed /v1/stream",
    )
    partitions: int = Field(4, ge=1, description="partitions of topics the platform creates")
    replication: int = Field(1, ge=1, description="replicas of topics the platform creates")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="how every Kafka client connects: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT "
        "or SASL_SSL (a managed Kafka: usually SASL_SSL)",
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
    )
    sasl_username: str | None = Field(None, description="SASL_*: the user (API key) name")
    sasl_password: SecretStr | None = Field(None, description="SASL_*: its password (API secret)")
    sasl_password_file: str | None = Field(
        None,
        description="file holding the SASL password (a Docker/Kubernetes secret), read at start; "
        "wins over the password",
    )
    ssl_ca_file: str | None = Field(
        None, description="SSL, SASL_SSL: CA bundle to verify the brokers; empty: system CAs"
    )
    ssl_cert_file: str | None = Field(
        None, description="SSL, SASL_SSL: client certificate (PEM), for brokers that want one"
    )
    ssl_key_file: str | None = Field(
        None, description="SSL, SASL_SSL: the client certificate's private key (PEM)"
    )

    @property
    def uses_sasl(self) -> bool:
        """Whether clients authenticate with SASL (SASL_PLAINTEXT or SASL_SSL)."""
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        """Whether clients connect with TLS (SSL or SASL_SSL)."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @model_validator(mode="after")
    def _security_is_complete(self) -> Self:
        """Refuse a security section that would fail only at the first connection."""
        if self.sasl_password_file:
            self.sasl_password = SecretStr(read_secret_file(self.sasl_password_file))
        prefix = "URBANPULSE_KAFKA__"
        if self.uses_sasl and not (self.sasl_username and self.sasl_password):
            raise ValueError(
                f"{prefix}SECURITY_PROTOCOL={self.security_protocol} needs "
                f"{prefix}SASL_USERNAME and {prefix}SASL_PASSWORD"
            )
        if not self.uses_sasl and (self.sasl_username or self.sasl_password):
            raise ValueError(
                f"{prefix}SASL_USERNAME/PASSWORD are set but {prefix}SECURITY_PROTOCOL is "
                f"{self.security_protocol}: set it to SASL_SSL (or SASL_PLAINTEXT)"
            )
        files = (self.ssl_ca_file, self.ssl_cert_file, self.ssl_key_file)
        if not self.uses_tls and any(files):
            raise ValueError(
                f"{prefix}SSL_* files are set but {prefix}SECURITY_PROTOCOL is "
                f"{self.security_protocol}: set it to SSL or SASL_SSL"
            )
        if bool(self.ssl_cert_file) != bool(self.ssl_key_file):
            raise ValueError(f"{prefix}SSL_CERT_FILE and {prefix}SSL_KEY_FILE go together")
        return self


class InfluxSettings(BaseModel):
    """InfluxDB: 1.8 through its 2.0-compatible API locally, 2.x in production."""

    url: str = Field("http://127.0.0.1:8086", description="InfluxDB base URL")
    token: SecretStr = Field(
        SecretStr(""), description="2.x API token; 1.8: user:password or empty"
    )
    token_file: str | None = Field(
        None,
        description="file holding the token (a Docker/Kubernetes secret), read at start; wins "
        "over the token",
    )
    org: str = Field("-", description="2.x organisation; '-' for InfluxDB 1.8")
    raw_bucket: str = Field("urbanpulse/raw", description="2.x bucket, or 1.8 database/policy")
    aggregate_bucket: str = Field(
        "urbanpulse/agg", description="window aggregates and alerts (long retention)"
    )
    flux_params: Literal["inline", "extern"] = Field(
        "inline",
        description="how query values reach Flux: 'extern' uses the API's params (InfluxDB 2.x "
        "only); 'inline' renders them as escaped literals (works on 1.8, which ignores extern)",
    )
    timeout_ms: int = Field(10_000, description="InfluxDB request timeout, milliseconds")
    raw_retention_days: int = Field(
        30, ge=0, description="2.x: retention of the raw bucket, days (0: kept for good)"
    )
    aggregate_retention_days: int = Field(
        0, ge=0, description="2.x: retention of the aggregate bucket, days (0: kept for good)"
    )

    @model_validator(mode="after")
    def _token_from_file(self) -> Self:
        if self.token_file:
            self.token = SecretStr(read_secret_file(self.token_file))
        return self


class WorkerSettings(BaseModel):
    """The Faust stream worker."""

    app_id: str = Field("urbanpulse-worker", description="Faust app id = Kafka consumer group")
    batch_size: int = Field(
        100,
        ge=1,
        description="most Kafka records (each a batch of readings) per worker batch; "
        "it is processed in runs of at most 1.5 MB of records",
    )
    batch_seconds: float = Field(
        0.1, gt=0, description="longest wait to fill a batch (readings wait at most this long)"
    )
    snapshot_s: float = Field(
        5.0,
        gt=0,
        description="how often the worker writes its sensors' window aggregates and saves the "
        "changed sensor and district states to their changelog (also sooner, without the "
        "aggregates, once the records it holds pass 4 MB); offsets are committed only up to what "
        "a saved state covers",
    )
    datadir: str = Field(".local/worker", description="Faust's local state folder")
    stop_timeout_s: float = Field(
        20,
        gt=0,
        description="longest clean stop after SIGTERM or a crash before the worker exits "
        "anyway (safe: offsets are committed only after InfluxDB took the data)",
    )
    stall_restart_s: float = Field(
        300,
        ge=0,
        description="stop the worker (for its supervisor to restart) when an assigned partition "
        "has lag but its committed offset has not moved for this long, with no batch stuck on "
        "InfluxDB meanwhile; 0: never",
    )
    session_timeout_s: float = Field(
        15,
        ge=6,
        le=300,
        description="Kafka consumer-group session: a worker that died without leaving the group "
        "(SIGKILL, crash, lost host) keeps its partitions this long before the others, or its "
        "restarted self, take them over; Kafka brokers accept 6 s at least",
    )
    send_confirm_timeout_s: float = Field(
        120,
        gt=0,
        description="longest wait for Kafka to confirm what a batch or a state snapshot sent; "
        "past it the worker stops with an error for its supervisor to restart (nothing of "
        "that batch is acknowledged: it is read again). Longer than a short Kafka outage, "
        "which is waited out",
    )


class AlertRuleSettings(BaseModel):
    """A threshold alert rule: ``quantity`` ``op`` ``value`` held for ``min_duration_s``."""

    name: str = Field(description="rule name, the 'rule' tag of alerts")
    quantity: str = Field(description="the quantity the rule watches")
    op: Literal[">", ">=", "<", "<="] = Field(description="comparison of reading and value")
    value: float = Field(description="the threshold, in the quantity's canonical unit")
    min_duration_s: float = Field(
        0, ge=0, description="event time the condition must hold before the alert opens"
    )
    message: str = Field("", description="text for people; empty: generated from the rule")


class StreamsSettings(BaseModel):
    """What the stream worker checks, aggregates and alerts on (see docs/streams.md)."""

    windows: list[str] = Field(
        default_factory=lambda: ["1m", "15m", "1h"],
        description="tumbling window sizes of the aggregates (JSON list of e.g. 30s, 1m, 1h)",
    )
    allowed_lateness_s: float = Field(
        600, ge=0, description="event time a late reading may lag and still update its window"
    )
    max_future_s: float = Field(
        300, ge=0, description="readings observed this far after receipt are flagged 'future'"
    )
    max_age_s: float = Field(
        86_400, gt=0, description="readings received this long after observation: 'too_old'"
    )
    expected_interval_s: float = Field(
        300, gt=0, description="usual time between a sensor's readings, unless the registry says"
    )
    gap_factor: float = Field(
        3, gt=1, description="a reading after more than this x expected interval: 'gap'"
    )
    stuck_count: int = Field(
        10, ge=2, description="this many equal consecutive values of a series: 'stuck'"
    )
    dedupe_horizon_s: float = Field(
        7_200,
        gt=0,
        description="event time a series remembers its readings' times, to drop repeats; also "
        "how far back a redelivered reading's message id is looked up",
    )
    dedupe_max_times: int = Field(
        256,
        ge=1,
        description="most event times remembered per series (the newest); an older reading "
        "cannot be told from a repeat: stored, flagged 'late', not aggregated",
    )
    registry_path: str = Field(
        "", description="sensor registry file (.yaml, .yml or .csv, docs/registry.md); empty: none"
    )
    registry_reload_s: float = Field(
        10, gt=0, description="how often the registry file is checked for changes, seconds"
    )
    unknown_sensors: Literal["accept", "deadletter"] = Field(
        "accept",
        description="readings of sensors not in the registry: 'accept' (flagged "
        "'unregistered') or 'deadletter'",
    )
    alert_rules: list[AlertRuleSettings] | None = Field(
        None,
        description="threshold alert rules (JSON list of {name, quantity, op, value, "
        "min_duration_s, message}); empty: the built-in rules of docs/streams.md",
    )
    stale_factor: float = Field(
        3, gt=1, description="no reading for this x expected interval opens a 'stale' alert"
    )
    stale_check_s: float = Field(30, gt=0, description="how often stale sensors are looked for")
    forget_silent_after_s: float = Field(
        7 * 86_400,
        ge=86_400,
        description="a sensor silent this long is dropped from the worker's state (memory and "
        "changelog): state stays bounded whatever ids arrive; one that reports again starts "
        "afresh",
    )


class ApiSettings(BaseModel):
    """The open-data API."""

    host: str = Field("127.0.0.1", description="API bind address")
    port: int = Field(8000, description="API port")
    default_limit: int = Field(1000, ge=1, description="readings per page when none is asked")
    max_limit: int = Field(10_000, ge=1, description="largest page a client may ask for")
    max_range_days: int = Field(366, ge=1, description="longest from/to span of one query")
    sensors_lookback_days: int = Field(
        30, ge=1, description="how far back /v1/sensors and /v1/latest look"
    )
    max_raw_range_days: int = Field(
        31, ge=1, description="longest from/to span of a raw observations query"
    )
    max_sensors_per_query: int = Field(
        200, ge=1, description="most sensor ids one observations or aggregates query may name"
    )
    kpi_max_sensor_days: int = Field(
        92,
        ge=1,
        description="longest from/to span of daily sensor indicators in one /v1/kpis answer "
        "(other scopes and weeks: max_range_days)",
    )
    cache_max_age_s: int = Field(
        30, ge=0, description="Cache-Control max-age of answers that may still change, seconds"
    )
    cache_closed_max_age_s: int = Field(
        86_400,
        ge=0,
        description="Cache-Control max-age of answers about closed windows (range ended "
        "before now), seconds",
    )
    gzip_min_bytes: int = Field(1000, ge=0, description="answers at least this large are gzipped")
    sensors_cache_s: float = Field(
        5.0, ge=0, description="seconds one answer of /v1/sensors and /v1/latest is reused; 0: off"
    )
    cache_max_entries: int = Field(
        1024,
        ge=1,
        description="answers each answer cache keeps (/v1/latest, /v1/sensors, catalogue, map "
        "page, dead letters); when full, the least recently used is forgotten",
    )
    cache_max_mb: float = Field(
        32,
        gt=0,
        description="megabytes of rendered answers each of the /v1/latest, catalogue and map "
        "page caches keeps at most; the least recently used go first",
    )
    public_base_url: str = Field(
        "",
        description="the API's public URL (e.g. https://data.example.org), used in the "
        "catalogue's and bulk listing's links; empty: the URL of the request",
    )
    catalog_title: str = Field(
        "UrbanPulse open sensor data", description="title of the DCAT-AP catalogue (/v1/catalog)"
    )
    publisher_name: str = Field(
        "UrbanPulse", description="who publishes the data (the catalogue's dct:publisher)"
    )
    publisher_url: str = Field(
        "", description="the publisher's web site (its IRI in the catalogue); empty: none"
    )
    contact_email: str = Field(
        "opendata@example.org", description="contact point of the datasets (vcard:hasEmail)"
    )
    catalog_licence_url: str = Field(
        "https://creativecommons.org/licenses/by/4.0/",
        description="licence of the published data (catalogue, datasets, bulk files)",
    )
    catalog_cache_s: float = Field(
        300, ge=0, description="seconds the catalogue and the bulk listing are reused; 0: off"
    )
    bulk_days: int = Field(
        31, ge=1, description="days of daily bulk files offered (/v1/bulk), today included"
    )
    bulk_cache_dir: str = Field(
        "", description="folder that keeps generated bulk files of past days; empty: no cache"
    )
    stream_enabled: bool = Field(
        True,
        description="serve the live feed /v1/stream (read from Kafka); false: no /v1/stream, "
        "and readiness no longer checks Kafka",
    )
    stream_max_clients: int = Field(
        100, ge=1, description="most /v1/stream connections one API process serves; more: 503"
    )
    stream_max_per_client: int = Field(
        4,
        ge=1,
        description="most /v1/stream connections one client (address or API key) may hold at "
        "once; more: 429",
    )
    stream_heartbeat_s: float = Field(
        15, gt=0, description="seconds between heartbeat comments on an idle /v1/stream"
    )
    stream_buffer: int = Field(
        256,
        ge=1,
        description="readings queued per /v1/stream client; when full, the oldest are dropped "
        "and the client is told how many",
    )
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="API keys (JSON list), each KEY (scope read: the keyed rate limit) or "
        "KEY:admin (also /v1/admin and readiness details); empty: no keys",
    )
    api_keys_file: str = Field(
        "",
        description="file of more API keys, one KEY or KEY:admin per line ('#' comments), "
        "e.g. a secret mount",
    )
    rate_anonymous_per_s: float = Field(
        20, ge=0, description="requests/s each client address may make without a key; 0: no limit"
    )
    rate_anonymous_burst: int = Field(
        60, ge=1, description="requests a client without a key may make at once (bucket size)"
    )
    rate_keyed_per_s: float = Field(
        200, ge=0, description="requests/s each API key may make; 0: no limit"
    )
    rate_keyed_burst: int = Field(
        600, ge=1, description="requests one API key may make at once (bucket size)"
    )
    trusted_proxy_hops: int = Field(
        0,
        ge=0,
        description="proxies in front of the API whose X-Forwarded-For is trusted: the client "
        "is the address this many entries from the right; 0: the TCP peer",
    )
    ready_cache_s: float = Field(
        5,
        ge=0,
        description="seconds one readiness answer (/readyz, /health) is reused: InfluxDB and "
        "Kafka are asked at most once per period",
    )
    sta_default_top: int = Field(
        100, ge=1, description="SensorThings (/sta/v1.1): entities per page when $top is not given"
    )
    sta_max_top: int = Field(
        1000, ge=1, description="SensorThings: the largest $top a client may ask"
    )
    sta_default_range_days: int = Field(
        1,
        ge=1,
        description="SensorThings: a Datastream's Observations span this many days back when "
        "$filter sets no lower phenomenonTime bound (at most max_raw_range_days in all)",
    )
    sta_all_range_hours: int = Field(
        24,
        ge=1,
        description="SensorThings: default and longest phenomenonTime span of /Observations "
        "across all Datastreams",
    )


class WebSettings(BaseModel):
    """The web pages the API serves: the city map, sensor pages, the staff overview (api/web/)."""

    tenant: str = Field(
        "demo", description="tenant the pages show when the URL names none (?tenant=...)"
    )
    tile_url: str = Field(
        "",
        description="map tiles, e.g. https://tile.example.org/{z}/{x}/{y}.png; empty: no tiles "
        "(a plain background with district outlines, and no request leaves the API)",
    )
    tile_attribution: str = Field(
        "", description="attribution the tile provider asks for, shown on the map (HTML)"
    )
    stale_after_s: int = Field(
        3600,
        ge=1,
        description="a reading older than this is marked stale on the map, and a sensor whose "
        "newest reading is older counts as silent in the staff overview",
    )
    overview_hours: int = Field(
        24, ge=1, le=168, description="hours of alerts and dead letters the staff overview counts"
    )
    deadletter_scan_max: int = Field(
        100_000,
        ge=1,
        description="most dead letters /v1/deadletters reads from Kafka per answer; beyond it the "
        "counts say 'truncated'",
    )
    deadletter_cache_s: float = Field(
        60, ge=0, description="seconds one /v1/deadletters answer is reused; 0: off"
    )


class DecoderSettings(BaseModel):
    """How vendor payloads become readings: extra field aliases, network-server tenants."""

    aliases: dict[str, str] = Field(
        default_factory=dict,
        description="vendor field name → canonical quantity ('-' ignores the field); added to "
        "and overriding the built-in alias table of docs/payloads.md",
    )
    tenant_by_application: dict[str, str] = Field(
        default_factory=dict,
        description="network-server application → tenant: The Things Stack 'app@tenant' or "
        "'app', ChirpStack application id; unlisted applications go to default_tenant",
    )


class MetricsSettings(BaseModel):
    """Prometheus endpoints of the long-running processes (the API serves its own /metrics)."""

    host: str = Field("127.0.0.1", description="address the metrics endpoints bind to")
    ingest_port: int = Field(9101, ge=0, description="ingestor's /metrics port; 0 turns it off")
    worker_port: int = Field(
        9102, ge=0, description="stream worker's /metrics and /health port; 0 turns it off"
    )
    supervisor_port: int = Field(
        9103,
        ge=0,
        description="`urbanpulse up`'s /metrics port (restarts, up and crash-looping per "
        "component); 0 turns it off",
    )


class SupervisorSettings(BaseModel):
    """``urbanpulse up``: how it restarts components that stop, and where it reports."""

    run_dir: str = Field(
        ".local/run",
        description="folder of the status file supervisor.json (docs/production.md); the API "
        "reads it for /health and /readyz (shown to admin keys)",
    )
    backoff_initial_s: float = Field(
        1.0, gt=0, description="wait before restarting a component that stopped, seconds"
    )
    backoff_max_s: float = Field(
        60.0, gt=0, description="longest wait before a restart (the wait doubles per exit in a row)"
    )
    stable_after_s: float = Field(
        60.0,
        gt=0,
        description="a component that ran this long is healthy again: its next wait is the "
        "shortest",
    )
    crash_loop_restarts: int = Field(
        5, ge=1, description="this many exits within crash_loop_window_s: crash-looping"
    )
    crash_loop_window_s: float = Field(
        600.0, gt=0, description="the window of crash_loop_restarts, seconds"
    )
    stop_grace_s: float = Field(
        30.0,
        gt=0,
        description="on Ctrl-C or SIGTERM, how long components may take to stop before they "
        "are killed, seconds",
    )
    api_ready_timeout_s: float = Field(
        120.0,
        gt=0,
        description="how long to wait for the API to answer before saying it did not come up",
    )
    services_script: str = Field(
        "deploy/local/services.sh",
        description="`make up`: the script that restarts a local service it watches "
        "(`<script> start <service>`)",
    )


class DashboardSettings(BaseModel):
    """Grafana: where ``urbanpulse dashboards push`` sends the boards, and what they query."""

    grafana_url: str = Field("http://127.0.0.1:3000", description="Grafana base URL for push")
    grafana_token: SecretStr = Field(
        SecretStr(""), description="Grafana service account token (Admin role) for push"
    )
    influx_url: str = Field(
        "",
        description="InfluxDB URL as Grafana's server reaches it; empty: URBANPULSE_INFLUX__URL",
    )
    prometheus_url: str = Field(
        "http://127.0.0.1:9090",
        description="Prometheus URL as Grafana's server reaches it (platform metrics)",
    )
    timeout_s: float = Field(10.0, gt=0, description="Grafana HTTP request timeout, seconds")


class ScoreWeights(BaseModel):
    """How much each indicator counts in the pilot scorecard (docs/kpis.md); only ratios matter."""

    completeness: float = Field(
        0.30, ge=0, description="scorecard weight of completeness (readings received/expected)"
    )
    uptime: float = Field(
        0.20, ge=0, description="scorecard weight of uptime (share of intervals with data)"
    )
    quality: float = Field(
        0.20, ge=0, description="scorecard weight of readings without a scored quality flag"
    )
    latency: float = Field(0.05, ge=0, description="scorecard weight of delivery latency (p95)")
    dead_letters: float = Field(
        0.10, ge=0, description="scorecard weight of messages not refused as dead letters"
    )
    freshness: float = Field(
        0.10, ge=0, description="scorecard weight of reporting at the end of the period"
    )
    battery: float = Field(
        0.05, ge=0, description="scorecard weight of the battery level (where one is reported)"
    )


class KpiSettings(BaseModel):
    """``urbanpulse kpis``: the indicators and pilot scorecard (docs/kpis.md)."""

    enabled: bool = Field(
        True, description="`urbanpulse up` runs the indicator job beside the other components"
    )
    every_s: float = Field(
        600, gt=0, description="how often `urbanpulse up` recomputes today's and yesterday's"
    )
    timezone: str = Field(
        "UTC", description="IANA time zone whose midnights and Mondays start days and weeks"
    )
    scored_flags: list[str] = Field(
        default_factory=lambda: [
            "spike",
            "stuck",
            "gap",
            "future",
            "too_old",
            "late",
            "unit_mismatch",
            "unconverted_unit",
        ],
        description="quality flags that count against the scorecard's quality (JSON list)",
    )
    weights: ScoreWeights = ScoreWeights()
    latency_good_s: float = Field(
        60, ge=0, description="a p95 delivery latency up to this scores full marks, seconds"
    )
    latency_bad_s: float = Field(
        3600, gt=0, description="a p95 delivery latency from this on scores nothing, seconds"
    )
    battery_low_pct: float = Field(
        10, ge=0, le=100, description="a battery at or below this scores nothing, percent"
    )
    battery_ok_pct: float = Field(
        30, ge=0, le=100, description="a battery at or above this scores full marks, percent"
    )
    forget_after_days: int = Field(
        7,
        ge=1,
        description="an unregistered sensor silent this long no longer gets indicators "
        "(registered ones always do, until retired)",
    )
    deadletter_scan_max: int = Field(
        1_000_000, ge=1, description="most dead letters one run reads from Kafka"
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, ZoneInfoNotFoundError):
            raise ValueError(
                f"{value!r} is not an IANA time zone (e.g. Europe/Amsterdam)"
            ) from None
        return value

    @model_validator(mode="after")
    def _bounds(self) -> KpiSettings:
        if self.latency_bad_s <= self.latency_good_s:
            raise ValueError("kpis: latency_bad_s must be above latency_good_s")
        if self.battery_ok_pct <= self.battery_low_pct:
            raise ValueError("kpis: battery_ok_pct must be above battery_low_pct")
        return self


class Settings(BaseSettings):
    """Every setting of every UrbanPulse component."""

    model_config = SettingsConfigDict(
        env_prefix="URBANPULSE_", env_nested_delimiter="__", extra="ignore"
    )

    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: Literal["text", "json"] = Field(
        "text", description="'text' for people, 'json' for log collectors: one object a line"
    )
    default_tenant: str = Field("default", description="tenant of messages whose topic names none")
    mqtt: MqttSettings = MqttSettings()
    kafka: KafkaSettings = KafkaSettings()
    influx: InfluxSettings = InfluxSettings()
    worker: WorkerSettings = WorkerSettings()
    streams: StreamsSettings = StreamsSettings()
    api: ApiSettings = ApiSettings()
    web: WebSettings = WebSettings()
    decoders: DecoderSettings = DecoderSettings()
    metrics: MetricsSettings = MetricsSettings()
    supervisor: SupervisorSettings = SupervisorSettings()
    dashboards: DashboardSettings = DashboardSettings()
    kpis: KpiSettings = KpiSettings()
