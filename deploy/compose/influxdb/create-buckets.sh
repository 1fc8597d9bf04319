#!/bin/sh
# Runs once, after InfluxDB's first-start setup (docker-entrypoint-initdb.d): the setup made the
# organisation and the raw bucket (DOCKER_INFLUXDB_INIT_BUCKET, DOCKER_INFLUXDB_INIT_RETENTION);
# this adds the aggregate bucket, kept for good (retention 0 = infinite).
set -eu
influx bucket create \
  --org "${DOCKER_INFLUXDB_INIT_ORG}" \
  --name "${URBANPULSE_AGGREGATE_BUCKET}" \
  --retention "${URBANPULSE_AGGREGATE_RETENTION:-0}"
