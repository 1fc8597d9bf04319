"""The data sources the boards use, addressed by fixed uids (never by numeric id).

Two InfluxDB data sources in Flux mode point at the same server: one whose default bucket is
the raw bucket, one whose default bucket is the aggregate bucket (aggregates and alerts).
The queries read ``from(bucket: v.defaultBucket)``, so the bucket names live in the data
sources (provisioned from environment variables, or set by ``push`` from the settings) and
the same dashboard JSON works with ``urbanpulse/raw`` on InfluxDB 1.8 and ``urbanpulse-raw``
on 2.x. The same definitions feed the provisioning file and ``urbanpulse dashboards push``.
"""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.models.common import DataSourceRef

INFLUX_UID = "urbanpulse-influxdb"
INFLUX_NAME = "UrbanPulse InfluxDB raw (Flux)"
INFLUX_AGG_UID = "urbanpulse-influxdb-agg"
INFLUX_AGG_NAME = "UrbanPulse InfluxDB aggregates (Flux)"
PROMETHEUS_UID = "urbanpulse-prometheus"
PROMETHEUS_NAME = "UrbanPulse Prometheus"
INFLUX_UIDS = (INFLUX_UID, INFLUX_AGG_UID)

INFLUX = DataSourceRef(type_val="influxdb", uid=INFLUX_UID)
INFLUX_AGG = DataSourceRef(type_val="influxdb", uid=INFLUX_AGG_UID)
PROMETHEUS = DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)


@dataclass(frozen=True)
class DatasourceTargets:
    """Where Grafana reaches the data: the values that differ between installations."""

    influx_url: str
    influx_org: str
    raw_bucket: str
    aggregate_bucket: str
    prometheus_url: str


def _influx(
    uid: str, name: str, url: str, org: str, bucket: str, default: bool
) -> dict[str, object]:
    return {
        "uid": uid,
        "name": name,
        "type": "influxdb",
        "access": "proxy",
        "url": url,
        "isDefault": default,
        "jsonData": {
            "version": "Flux",
            "organization": org,
            "defaultBucket": bucket,
            "httpMode": "POST",
            "timeInterval": "1m",
        },
    }


def influx_datasources(targets: DatasourceTargets) -> tuple[dict[str, object], ...]:
    """The raw and aggregate InfluxDB data sources, as Grafana's HTTP API takes them."""
    return (
        _influx(
            INFLUX_UID,
            INFLUX_NAME,
            targets.influx_url,
            targets.influx_org,
            targets.raw_bucket,
            default=True,
        ),
        _influx(
            INFLUX_AGG_UID,
            INFLUX_AGG_NAME,
            targets.influx_url,
            targets.influx_org,
            targets.aggregate_bucket,
            default=False,
        ),
    )


def prometheus_datasource(targets: DatasourceTargets) -> dict[str, object]:
    """The Prometheus data source of the platform metrics (urbanpulse_ingest_* and others)."""
    return {
        "uid": PROMETHEUS_UID,
        "name": PROMETHEUS_NAME,
        "type": "prometheus",
        "access": "proxy",
        "url": targets.prometheus_url,
        "isDefault": False,
        "jsonData": {"httpMethod": "POST", "timeInterval": "15s"},
    }
