#!/usr/bin/env bash
# Local services for development, tests and `make up`: Mosquitto, Kafka (KRaft), InfluxDB 1.8 and
# Prometheus (for the Platform dashboard), installed into a git-ignored cache folder and run on
# loopback only.
#
#   services.sh install                 install whatever is missing (idempotent)
#   services.sh start [--record FILE] [SERVICE...]
#                                       install, start and wait until healthy; with --record,
#                                       append the names of the services this call started
#   services.sh stop [SERVICE...]       stop (default: all)
#   services.sh status                  one line per service
#
# SERVICE is one of: mosquitto kafka influxdb prometheus. Logs go to $URBANPULSE_HOME/logs/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CONF_DIR="$ROOT/deploy/local"
HOME_DIR=${URBANPULSE_HOME:-"$ROOT/.local"}
LOG_DIR="$HOME_DIR/logs"
RUN_DIR="$HOME_DIR/run"
ALL_SERVICES=(mosquitto kafka influxdb prometheus)

MQTT_PORT=1883
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
INFLUX_PORT=8086
PROMETHEUS_PORT=9090
PROMETHEUS_VERSION=v0.316.0   # the Go module version of Prometheus 3.x's tag v3.16.0
INFLUX_VERSIONS=(v1.8.10 v1.8.3)   # the newest 1.8.x first; the proxy may not serve every tag
INFLUX_DB=urbanpulse
INFLUX_RAW_RP=raw
INFLUX_RAW_DURATION=30d
INFLUX_AGG_RP=agg
KAFKA_HEAP=${URBANPULSE_KAFKA_HEAP:-"-Xms512m -Xmx1g"}

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed: $2"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_of() { local f="$RUN_DIR/$1.pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"; }

wait_until() {  # wait_until SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  local start=$SECONDS
  until "$@"; do
    (( SECONDS - start >= limit )) && return 1
    sleep 0.5
  done
  log "$what ready after $(( SECONDS - start )) s"
}

# ---------------------------------------------------------------- install

install_mosquitto() {
  command -v mosquitto >/dev/null 2>&1 && command -v mosquitto_pub >/dev/null 2>&1 && return
  log "installing mosquitto and mosquitto-clients from Debian's packages"
  need apt-get "Mosquitto comes from Debian's packages (apt-get install mosquitto mosquitto-clients)"
  local apt=(apt-get); [ "$(id -u)" = 0 ] || apt=(sudo apt-get)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q mosquitto mosquitto-clients >"$LOG_DIR/install-mosquitto.log" 2>&1 || {
    "${apt[@]}" update -q >>"$LOG_DIR/install-mosquitto.log" 2>&1 &&
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q mosquitto mosquitto-clients >>"$LOG_DIR/install-mosquitto.log" 2>&1
  } || die "could not install mosquitto with apt-get; see $LOG_DIR/install-mosquitto.log"
}

install_kafka() {
  local lib="$HOME_DIR/kafka/lib" stamp="$HOME_DIR/kafka/lib/.pom.sha"
  local want; want=$(sha1sum "$CONF_DIR/kafka/pom.xml" | cut -d' ' -f1)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return
  need java "Kafka needs Java 17 (apt-get install openjdk-17-jre-headless)"
  need mvn "Kafka's jars are fetched from Maven Central with Maven (apt-get install maven)"
  log "fetching Kafka jars from Maven Central into $lib"
  rm -rf "$lib" && mkdir -p "$lib"
  mvn -q -B -f "$CONF_DIR/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$lib" -DincludeScope=runtime >"$LOG_DIR/install-kafka.log" 2>&1 \
    || die "Maven could not fetch Kafka's jars; see $LOG_DIR/install-kafka.log"
  echo "$want" >"$stamp"
}

install_influxdb() {
  [ -x "$HOME_DIR/bin/influxd" ] && return
  need go "InfluxDB 1.8 is built from source with Go (https://go.dev/dl or apt-get install golang)"
  mkdir -p "$HOME_DIR/bin"
  local v
  for v in "${INFLUX_VERSIONS[@]}"; do
    log "building influxd $v with go install (about 2 minutes the first time)"
    if CGO_ENABLED=0 GOBIN="$HOME_DIR/bin" GOFLAGS=-mod=mod \
        go install "github.com/influxdata/influxdb/cmd/influxd@$v" >"$LOG_DIR/install-influxdb.log" 2>&1; then
      echo "$v" >"$HOME_DIR/bin/influxd.version"
      return
    fi
    log "influxd $v did not build; see $LOG_DIR/install-influxdb.log"
  done
  die "could not build InfluxDB (tried ${INFLUX_VERSIONS[*]}); see $LOG_DIR/install-influxdb.log"
}

install_prometheus() {
  [ -x "$HOME_DIR/bin/prometheus" ] && return
  need go "Prometheus is built from source with Go (https://go.dev/dl or apt-get install golang)"
  mkdir -p "$HOME_DIR/bin"
  log "building prometheus $PROMETHEUS_VERSION with go install (a few minutes the first time)"
  CGO_ENABLED=0 GOBIN="$HOME_DIR/bin" \
    go install "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" \
    >"$LOG_DIR/install-prometheus.log" 2>&1 \
    || die "could not build Prometheus $PROMETHEUS_VERSION; see $LOG_DIR/install-prometheus.log"
}

# ---------------------------------------------------------------- start

start_mosquitto() {
  mkdir -p "$HOME_DIR/mosquitto"
  # Started as root, Mosquitto drops to its own user: it must own its persistence folder, or
  # every autosave fails with "Permission denied" and queued messages do not survive a restart.
  if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    chown mosquitto: "$HOME_DIR/mosquitto"
  fi
  sed "s|@DATA@|$HOME_DIR/mosquitto/|; s|@PORT@|$MQTT_PORT|" \
    "$CONF_DIR/mosquitto.conf" >"$RUN_DIR/mosquitto.conf"
  setsid mosquitto -c "$RUN_DIR/mosquitto.conf" >>"$LOG_DIR/mosquitto.log" 2>&1 &
  echo $! >"$RUN_DIR/mosquitto.pid"
  wait_until 20 "mosquitto on 127.0.0.1:$MQTT_PORT" port_open "$MQTT_PORT"
}

kafka_ready() {
  port_open "$KAFKA_PORT" && grep -q "Kafka Server started" "$LOG_DIR/kafka.log" 2>/dev/null
}

start_kafka() {
  local data="$HOME_DIR/kafka/data" lib="$HOME_DIR/kafka/lib"
  mkdir -p "$data"
  sed "s|@DATA@|$data|; s|@PORT@|$KAFKA_PORT|g; s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    "$CONF_DIR/kafka/server.properties" >"$RUN_DIR/kafka.properties"
  if [ ! -f "$data/meta.properties" ]; then
    local cluster_id
    cluster_id=$(java -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
    log "formatting Kafka storage (cluster id $cluster_id)"
    java -cp "$lib/*" -Dlog4j2.configurationFile="$CONF_DIR/kafka/log4j2.properties" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$RUN_DIR/kafka.properties" \
      >>"$LOG_DIR/kafka.log" 2>&1 || die "could not format Kafka storage; see $LOG_DIR/kafka.log"
  fi
  # shellcheck disable=SC2086  # KAFKA_HEAP holds several JVM flags
  setsid java $KAFKA_HEAP -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$CONF_DIR/kafka/log4j2.properties" \
    -cp "$lib/*" kafka.Kafka "$RUN_DIR/kafka.properties" >"$LOG_DIR/kafka.log" 2>&1 &
  echo $! >"$RUN_DIR/kafka.pid"
  wait_until 90 "kafka on 127.0.0.1:$KAFKA_PORT" kafka_ready
}

influx_ready() { curl -sf -o /dev/null "http://127.0.0.1:$INFLUX_PORT/ping"; }

start_influxdb() {
  local data="$HOME_DIR/influxdb"
  mkdir -p "$data"
  sed "s|@DATA@|$data|g; s|@PORT@|$INFLUX_PORT|" \
    "$CONF_DIR/influxdb.conf" >"$RUN_DIR/influxdb.conf"
  setsid "$HOME_DIR/bin/influxd" run -config "$RUN_DIR/influxdb.conf" >>"$LOG_DIR/influxdb.log" 2>&1 &
  echo $! >"$RUN_DIR/influxdb.pid"
  wait_until 60 "influxdb on 127.0.0.1:$INFLUX_PORT" influx_ready
  # CREATE DATABASE is idempotent; the raw retention policy keeps raw readings for a while.
  curl -sf -o /dev/null -XPOST "http://127.0.0.1:$INFLUX_PORT/query" \
    --data-urlencode "q=CREATE DATABASE $INFLUX_DB WITH DURATION $INFLUX_RAW_DURATION NAME $INFLUX_RAW_RP" \
    || die "InfluxDB is up but refused to create database '$INFLUX_DB'"
  # Aggregates and alerts are kept for good; raw readings expire (see INFLUX_RAW_DURATION).
  curl -sf -o /dev/null -XPOST "http://127.0.0.1:$INFLUX_PORT/query" \
    --data-urlencode "q=CREATE RETENTION POLICY $INFLUX_AGG_RP ON $INFLUX_DB DURATION INF REPLICATION 1" \
    || die "InfluxDB refused to create retention policy '$INFLUX_AGG_RP'"
}

prometheus_ready() { curl -sf -o /dev/null "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"; }

start_prometheus() {
  mkdir -p "$HOME_DIR/prometheus"
  setsid "$HOME_DIR/bin/prometheus" --config.file="$CONF_DIR/prometheus.yml" \
    --storage.tsdb.path="$HOME_DIR/prometheus" --storage.tsdb.retention.time=7d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" >>"$LOG_DIR/prometheus.log" 2>&1 &
  echo $! >"$RUN_DIR/prometheus.pid"
  wait_until 60 "prometheus on 127.0.0.1:$PROMETHEUS_PORT" prometheus_ready
}

port_of() {
  case $1 in
    mosquitto) echo $MQTT_PORT;; kafka) echo $KAFKA_PORT;; influxdb) echo $INFLUX_PORT;;
    prometheus) echo $PROMETHEUS_PORT;;
  esac
}

start_one() {  # start_one SERVICE RECORD_FILE
  local svc=$1 record=$2
  if [ -n "$(pid_of "$svc")" ]; then log "$svc already running (pid $(pid_of "$svc"))"; return; fi
  if port_open "$(port_of "$svc")"; then
    log "$svc: port $(port_of "$svc") is already in use by another process; reusing it"
    return
  fi
  "install_$svc"
  log "starting $svc (log: $LOG_DIR/$svc.log)"
  "start_$svc" || { tail -n 20 "$LOG_DIR/$svc.log" >&2; die "$svc did not become healthy; see $LOG_DIR/$svc.log"; }
  [ -n "$record" ] && echo "$svc" >>"$record"
  return 0
}

stop_one() {
  local svc=$1 pid
  pid=$(pid_of "$svc") || { rm -f "$RUN_DIR/$svc.pid"; return; }
  log "stopping $svc (pid $pid)"
  kill "$pid" 2>/dev/null || true
  local start=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS - start > 30 )); then log "$svc did not stop in 30 s; killing it"; kill -9 "$pid"; fi
    sleep 0.3
  done
  rm -f "$RUN_DIR/$svc.pid"
}

valid() { local s; for s in "${ALL_SERVICES[@]}"; do [ "$s" = "$1" ] && return; done; die "unknown service '$1' (one of: ${ALL_SERVICES[*]})"; }

main() {
  mkdir -p "$LOG_DIR" "$RUN_DIR"
  local cmd=${1:-}; shift || true
  local record=""
  if [ "${1:-}" = "--record" ]; then record=$2; shift 2; fi
  local services=("$@"); [ ${#services[@]} -eq 0 ] && services=("${ALL_SERVICES[@]}")
  local s; for s in "${services[@]}"; do valid "$s"; done
  case $cmd in
    install) for s in "${services[@]}"; do "install_$s"; done; log "installed: ${services[*]}" ;;
    start) for s in "${services[@]}"; do start_one "$s" "$record"; done ;;
    stop) for s in "${services[@]}"; do stop_one "$s"; done ;;
    status)
      for s in "${services[@]}"; do
        if [ -n "$(pid_of "$s")" ]; then echo "$s running (pid $(pid_of "$s"), port $(port_of "$s"))"
        elif port_open "$(port_of "$s")"; then echo "$s port $(port_of "$s") open (not started by us)"
        else echo "$s stopped"; fi
      done ;;
    *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || exit 2 ;;
  esac
}

main "$@"
