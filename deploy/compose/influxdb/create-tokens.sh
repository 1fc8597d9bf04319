#!/bin/sh
# The InfluxDB tokens of the platform, made with the operator token by the one-shot service
# influxdb-tokens (compose.yaml) at every `docker compose up`, each written to a volume that only
# its users mount (TOKENS_DIR, /tokens):
#   /tokens/read/token   read the raw and aggregate buckets: the open-data API, Grafana
#   /tokens/write/token  read and write those two buckets, read the organisation: the worker
# InfluxDB 2.x makes up token values itself (`influx auth create` cannot be given one), which is
# why the tokens live in volumes and not in .env. A token already written that InfluxDB still
# accepts is kept; one it no longer accepts (deleted in the InfluxDB UI, to rotate it) is
# replaced: then restart its users (docs/production.md, "Secrets").
set -eu

# From compose.yaml: INFLUX_HOST, INFLUX_ORG (the influx CLI reads them), INFLUX_ADMIN_USER
# (a token belongs to a user: InfluxDB's admin), URBANPULSE_RAW_BUCKET, URBANPULSE_AGGREGATE_BUCKET.
OPERATOR_TOKEN_FILE=${OPERATOR_TOKEN_FILE:-/run/secrets/influxdb_operator_token}
TOKENS_DIR=${TOKENS_DIR:-/tokens}
INFLUX_TOKEN=$(cat "$OPERATOR_TOKEN_FILE")
export INFLUX_TOKEN

bucket_id() {
  influx bucket list --name "$1" --hide-headers | awk 'NR == 1 { print $1 }'
}

# still_accepted FILE: FILE holds a token with which InfluxDB still lists the raw bucket.
still_accepted() {
  [ -s "$1" ] &&
    INFLUX_TOKEN=$(cat "$1") influx bucket list --name "$URBANPULSE_RAW_BUCKET" --hide-headers \
      >/dev/null 2>&1
}

# create FILE DESCRIPTION PERMISSION...: a new token with these permissions; only its value
# is written, replacing FILE in one step.
create() {
  file=$1
  description=$2
  shift 2
  # The answer is JSON indented by tabs (influx-cli's PrintJSON), read without jq.
  token=$(
    influx auth create --user "$INFLUX_ADMIN_USER" --description "$description" --json "$@" |
      sed -n 's/^[[:space:]]*"token":[[:space:]]*"\([^"]*\)".*/\1/p'
  )
  if [ -z "$token" ]; then
    echo "influx auth create gave no token for $description" >&2
    exit 1
  fi
  printf '%s' "$token" >"$file.new"
  chmod 0444 "$file.new"
  mv "$file.new" "$file"
  echo "created the InfluxDB token: $description"
}

raw=$(bucket_id "$URBANPULSE_RAW_BUCKET")
aggregate=$(bucket_id "$URBANPULSE_AGGREGATE_BUCKET")
if [ -z "$raw" ] || [ -z "$aggregate" ]; then
  echo "InfluxDB has no bucket $URBANPULSE_RAW_BUCKET or $URBANPULSE_AGGREGATE_BUCKET" >&2
  exit 1
fi

if still_accepted "$TOKENS_DIR/read/token"; then
  echo "keeping the read-only InfluxDB token"
else
  create "$TOKENS_DIR/read/token" "urbanpulse read-only: api, grafana" \
    --read-bucket "$raw" --read-bucket "$aggregate"
fi

if still_accepted "$TOKENS_DIR/write/token"; then
  echo "keeping the worker's InfluxDB token"
else
  # --read-orgs: the worker looks the organisation up by name when it checks the buckets'
  # retention at start (urbanpulse/influx_setup.py); it can change these two buckets only.
  create "$TOKENS_DIR/write/token" "urbanpulse write: worker" --read-orgs \
    --read-bucket "$raw" --read-bucket "$aggregate" \
    --write-bucket "$raw" --write-bucket "$aggregate"
fi
