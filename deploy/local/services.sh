#!/usr/bin/env bash
# Local services for development, tests and `make up`: Mosquitto, Kafka (KRaft), InfluxDB 1.8 and
# Prometheus (for the Platform dashboard), installed into a git-ignored cache folder and run on
# loopback only.
#
#   services.sh [--test] install        install whatever is missing (idempotent; fast when done)
#   services.sh [--test] start [--record FILE] [SERVICE...]
#                                       install, start and wait until healthy; with --record,
#                                       append the names of the services this call started
#   services.sh [--test] stop [SERVICE...]
#                                       stop (default: all of the instance)
#   services.sh [--test] status         one line per service
#   services.sh [--test] env            `export` lines of the URBANPULSE_* settings that point
#                                       the platform and the tests at this instance (for eval)
#
# SERVICE is one of: mosquitto kafka influxdb prometheus.
#
# Two instances, sharing the installed programs (.local/bin, .local/kafka/lib):
#   the platform's (default, `make up`): ports 1883 (Mosquitto), 9092 + 9093 (Kafka, its
#       controller), 8086 + 8088 (InfluxDB HTTP, RPC), 9090 (Prometheus); data, logs and pid
#       files under .local/. When a port is taken by a process not started here, that service is
#       reused as it is (e.g. services another checkout runs).
#   the tests' (--test, or URBANPULSE_SERVICES_INSTANCE=test; `make test`): Mosquitto, Kafka and
#       InfluxDB only (tests that need a Prometheus run their own), on six ports from
#       URBANPULSE_TEST_PORT_BASE: BASE Mosquitto, BASE+1 Kafka, BASE+2 its controller, BASE+3
#       InfluxDB, BASE+4 its RPC, BASE+5 (reserved); data, logs and pid files under
#       .local/test-BASE/ (one folder per BASE, so two test instances of a checkout never meet).
#       Default BASE: 20000-23990 in steps of 10, from a checksum of this checkout's path, so
#       checkouts on one machine each get their own ports. A test port held by another process
#       is an error, never reused: tests stop and restart their services.
# Settings from the environment: URBANPULSE_HOME (where programs and state go, default .local),
# URBANPULSE_KAFKA_HEAP (Kafka's JVM heap flags), URBANPULSE_INFLUX_GOGC (InfluxDB's Go GC
# target, default 400), URBANPULSE_TEST_PORT_BASE (above).
# Logs: <state folder>/logs/, e.g. .local/logs/kafka.log, .local/test-22110/logs/kafka.log.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CONF_DIR="$ROOT/deploy/local"
# shellcheck source=deploy/local/progress.sh
. "$CONF_DIR/progress.sh"
INSTALL_DIR=${URBANPULSE_HOME:-"$ROOT/.local"}   # the programs, and the platform instance's state

INSTANCE=${URBANPULSE_SERVICES_INSTANCE:-platform}
if [ "${1:-}" = "--test" ]; then INSTANCE="test"; shift; fi

PROMETHEUS_VERSION=v0.316.0   # the Go module version of Prometheus 3.x's tag v3.16.0
INFLUX_VERSIONS=(v1.8.10 v1.8.3)   # the newest 1.8.x first; the proxy may not serve every tag
INFLUX_DB=urbanpulse
INFLUX_RAW_RP=raw
INFLUX_RAW_DURATION=30d
INFLUX_AGG_RP=agg
KAFKA_HEAP=${URBANPULSE_KAFKA_HEAP:-"-Xms512m -Xmx1g"}
# InfluxDB's Go garbage collector runs when its heap has grown by GOGC % over the live heap.
# At Go's default (100) collecting was a third of InfluxDB's CPU under load; 400 cut InfluxDB's
# CPU a point by about a fifth, for 2.5-3x its resident memory under load
# (docs/performance.md). Set 100 on a machine short of memory.
INFLUX_GOGC=${URBANPULSE_INFLUX_GOGC:-400}
# Not off (or 0): InfluxDB's heap would grow until the machine runs out of memory.
if ! [[ $INFLUX_GOGC =~ ^[1-9][0-9]*$ ]]; then
  printf '[services] ERROR: URBANPULSE_INFLUX_GOGC=%s: want a percentage from 1 (100 is Go'"'"'s default)\n' "$INFLUX_GOGC" >&2
  exit 2
fi
ALL_SERVICES=(mosquitto kafka influxdb prometheus)

default_test_port_base() {  # 20000-23990: below Linux's ephemeral ports (32768+), so a free_port()
  local sum; sum=$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)
  echo $(( 20000 + 10 * (sum % 400) ))
}

case $INSTANCE in
  platform)
    STATE_DIR=$INSTALL_DIR
    MQTT_PORT=1883 KAFKA_PORT=9092 KAFKA_CONTROLLER_PORT=9093
    INFLUX_PORT=8086 INFLUX_RPC_PORT=8088 PROMETHEUS_PORT=9090
    INSTANCE_SERVICES=("${ALL_SERVICES[@]}")
    ;;
  test)
    PORT_BASE=${URBANPULSE_TEST_PORT_BASE:-$(default_test_port_base)}
    if ! [[ $PORT_BASE =~ ^[0-9]+$ ]] || (( PORT_BASE < 1024 || PORT_BASE > 65530 )); then
      printf '[services] ERROR: URBANPULSE_TEST_PORT_BASE=%s: want a number from 1024 to 65530\n' "$PORT_BASE" >&2
      exit 2
    fi
    STATE_DIR="$INSTALL_DIR/test-$PORT_BASE"
    MQTT_PORT=$PORT_BASE KAFKA_PORT=$((PORT_BASE + 1)) KAFKA_CONTROLLER_PORT=$((PORT_BASE + 2))
    INFLUX_PORT=$((PORT_BASE + 3)) INFLUX_RPC_PORT=$((PORT_BASE + 4)) PROMETHEUS_PORT=$((PORT_BASE + 5))
    INSTANCE_SERVICES=(mosquitto kafka influxdb)
    ;;
  *) printf '[services] ERROR: URBANPULSE_SERVICES_INSTANCE=%s: want platform or test\n' "$INSTANCE" >&2; exit 2 ;;
esac
LOG_DIR="$STATE_DIR/logs"
RUN_DIR="$STATE_DIR/run"
INSTALL_LOG_DIR="$INSTALL_DIR/logs"

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
# Each installer returns at once when its program is present. The slow ones say what they do,
# how far they are every ~15 s and where their log is (progress.sh).

kafka_version() { sed -n 's|.*<kafka.version>\(.*\)</kafka.version>.*|\1|p' "$CONF_DIR/kafka/pom.xml"; }

installed_mosquitto() { command -v mosquitto >/dev/null 2>&1 && command -v mosquitto_pub >/dev/null 2>&1; }
installed_kafka() {
  local stamp="$INSTALL_DIR/kafka/lib/.pom.sha"
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(sha1sum "$CONF_DIR/kafka/pom.xml" | cut -d' ' -f1)" ]
}
installed_influxdb() { [ -x "$INSTALL_DIR/bin/influxd" ]; }
installed_prometheus() { [ -x "$INSTALL_DIR/bin/prometheus" ]; }

apt_install_mosquitto() {
  local apt=(apt-get); [ "$(id -u)" = 0 ] || apt=(sudo apt-get)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q mosquitto mosquitto-clients || {
    "${apt[@]}" update -q &&
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q mosquitto mosquitto-clients
  }
}

install_mosquitto() {
  installed_mosquitto && return
  need apt-get "Mosquitto comes from Debian's packages (apt-get install mosquitto mosquitto-clients)"
  progress_run services "installing mosquitto and mosquitto-clients from Debian's packages, about 750 kB" \
    "$INSTALL_LOG_DIR/install-mosquitto.log" \
    "check that apt-get can reach the Debian mirror (apt-get update), or install the packages mosquitto and mosquitto-clients yourself, then run 'make install' again" \
    apt_install_mosquitto || exit 1
}

install_kafka() {
  installed_kafka && return
  local lib="$INSTALL_DIR/kafka/lib"
  need java "Kafka needs Java 17 (apt-get install openjdk-17-jre-headless)"
  need mvn "Kafka's jars are fetched from Maven Central with Maven (apt-get install maven)"
  rm -rf "$lib" && mkdir -p "$lib"
  # Batch mode without -q: Maven logs each download with its size, which progress.sh adds up.
  progress_run services "fetching Kafka $(kafka_version) jars from Maven Central into $lib: 46 jars, about 43 MB the first time" \
    "$INSTALL_LOG_DIR/install-kafka.log" \
    "check that Maven reaches Maven Central (a proxy goes in ~/.m2/settings.xml), then run 'make install' again" \
    mvn -B -f "$CONF_DIR/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$lib" -DincludeScope=runtime || exit 1
  sha1sum "$CONF_DIR/kafka/pom.xml" | cut -d' ' -f1 >"$lib/.pom.sha"
}

go_hint="check that Go >= 1.24 reaches its module proxy (go env GOPROXY), then run 'make install' again"

install_influxdb() {
  installed_influxdb && return
  need go "InfluxDB 1.8 is built from source with Go (https://go.dev/dl or apt-get install golang)"
  mkdir -p "$INSTALL_DIR/bin"
  local v
  for v in "${INFLUX_VERSIONS[@]}"; do
    # -v: one line per compiled package, so the progress lines show the build moving on.
    if CGO_ENABLED=0 GOBIN="$INSTALL_DIR/bin" GOFLAGS=-mod=mod progress_run services \
        "building influxd $v with go install: about 600 Go packages, 2 minutes or more the first time" \
        "$INSTALL_LOG_DIR/install-influxdb.log" "$go_hint" \
        go install -v "github.com/influxdata/influxdb/cmd/influxd@$v"; then
      echo "$v" >"$INSTALL_DIR/bin/influxd.version"
      return
    fi
  done
  die "could not build InfluxDB (tried ${INFLUX_VERSIONS[*]}); see $INSTALL_LOG_DIR/install-influxdb.log"
}

install_prometheus() {
  installed_prometheus && return
  need go "Prometheus is built from source with Go (https://go.dev/dl or apt-get install golang)"
  mkdir -p "$INSTALL_DIR/bin"
  CGO_ENABLED=0 GOBIN="$INSTALL_DIR/bin" progress_run services \
    "building prometheus $PROMETHEUS_VERSION with go install: about 1,500 Go packages, several minutes the first time" \
    "$INSTALL_LOG_DIR/install-prometheus.log" "$go_hint" \
    go install -v "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" || exit 1
}

installed_versions() {
  local mosquitto_v influx_v
  mosquitto_v=$(mosquitto -h 2>/dev/null | sed -n 's/^mosquitto version \([^ ]*\).*/\1/p' | head -n1)
  influx_v=$(cat "$INSTALL_DIR/bin/influxd.version" 2>/dev/null || echo "?")
  echo "mosquitto ${mosquitto_v:-?}, kafka $(kafka_version), influxd $influx_v, prometheus $PROMETHEUS_VERSION"
}

install_all() {  # install_all SERVICE...: the missing ones, numbered "(1/3)" so a user sees how far
  local missing=() s n=0
  for s in "$@"; do "installed_$s" || missing+=("$s"); done
  for s in "${missing[@]}"; do
    n=$((n + 1))
    log "step $n/${#missing[@]}: $s"
    "install_$s"
  done
  if [ ${#missing[@]} -eq 0 ]; then log "installed already: $(installed_versions) (in $INSTALL_DIR)"
  else log "installed: $(installed_versions) (in $INSTALL_DIR)"; fi
}

# ---------------------------------------------------------------- start

start_mosquitto() {
  mkdir -p "$STATE_DIR/mosquitto"
  # Started as root, Mosquitto drops to its own user: it must own its persistence folder, or
  # every autosave fails with "Permission denied" and queued messages do not survive a restart.
  if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    chown mosquitto: "$STATE_DIR/mosquitto"
  fi
  sed "s|@DATA@|$STATE_DIR/mosquitto/|; s|@PORT@|$MQTT_PORT|" \
    "$CONF_DIR/mosquitto.conf" >"$RUN_DIR/mosquitto.conf"
  setsid mosquitto -c "$RUN_DIR/mosquitto.conf" >>"$LOG_DIR/mosquitto.log" 2>&1 &
  echo $! >"$RUN_DIR/mosquitto.pid"
  wait_until 20 "mosquitto on 127.0.0.1:$MQTT_PORT" port_open "$MQTT_PORT"
}

kafka_ready() {
  port_open "$KAFKA_PORT" && grep -q "Kafka Server started" "$LOG_DIR/kafka.log" 2>/dev/null
}

start_kafka() {
  local data="$STATE_DIR/kafka/data" lib="$INSTALL_DIR/kafka/lib"
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
  local data="$STATE_DIR/influxdb"
  mkdir -p "$data"
  sed "s|@DATA@|$data|g; s|@PORT@|$INFLUX_PORT|" \
    "$CONF_DIR/influxdb.conf" >"$RUN_DIR/influxdb.conf"
  # The RPC (backup) port through influxd's environment override of bind-address: the config
  # file keeps 8088, as the systemd units render it too.
  INFLUXDB_BIND_ADDRESS="127.0.0.1:$INFLUX_RPC_PORT" GOGC="$INFLUX_GOGC" \
    setsid "$INSTALL_DIR/bin/influxd" run -config "$RUN_DIR/influxdb.conf" >>"$LOG_DIR/influxdb.log" 2>&1 &
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
  mkdir -p "$STATE_DIR/prometheus"
  setsid "$INSTALL_DIR/bin/prometheus" --config.file="$CONF_DIR/prometheus.yml" \
    --storage.tsdb.path="$STATE_DIR/prometheus" --storage.tsdb.retention.time=7d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" >>"$LOG_DIR/prometheus.log" 2>&1 &
  echo $! >"$RUN_DIR/prometheus.pid"
  wait_until 60 "prometheus on 127.0.0.1:$PROMETHEUS_PORT" prometheus_ready
}

ports_of() {  # every port the service listens on
  case $1 in
    mosquitto) echo "$MQTT_PORT";; kafka) echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT";;
    influxdb) echo "$INFLUX_PORT $INFLUX_RPC_PORT";; prometheus) echo "$PROMETHEUS_PORT";;
  esac
}
port_of() { local ports; read -r -a ports <<<"$(ports_of "$1")"; echo "${ports[0]}"; }

start_one() {  # start_one SERVICE RECORD_FILE
  local svc=$1 record=$2 port
  if [ -n "$(pid_of "$svc")" ]; then log "$svc already running (pid $(pid_of "$svc"))"; return; fi
  for port in $(ports_of "$svc"); do
    port_open "$port" || continue
    if [ "$INSTANCE" = test ]; then
      die "$svc of the test services: port $port is taken by another process (another checkout's test services? see \`ss -ltnp 'sport = :$port'\`). Choose other ports, e.g. URBANPULSE_TEST_PORT_BASE=$((PORT_BASE + 10)) make test"
    fi
    log "$svc: port $port is already in use by another process; reusing it"
    return
  done
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

print_env() {  # the settings that point UrbanPulse at this instance, as `export` lines
  printf 'export %s\n' \
    "URBANPULSE_SERVICES_INSTANCE=$INSTANCE" \
    "URBANPULSE_SERVICES_RUN_DIR=$RUN_DIR" \
    "URBANPULSE_MQTT__HOST=127.0.0.1" \
    "URBANPULSE_MQTT__PORT=$MQTT_PORT" \
    "URBANPULSE_KAFKA__BOOTSTRAP=127.0.0.1:$KAFKA_PORT" \
    "URBANPULSE_INFLUX__URL=http://127.0.0.1:$INFLUX_PORT"
  [ "$INSTANCE" = test ] || return 0
  # Metrics endpoints off, the worker's state and the supervisor's status file in .local/test-*/,
  # so processes the tests start never take a port or a file of a platform running beside them
  # (tests that want metrics choose free ports themselves).
  printf 'export %s\n' \
    "URBANPULSE_TEST_PORT_BASE=$PORT_BASE" \
    "URBANPULSE_METRICS__INGEST_PORT=0" \
    "URBANPULSE_METRICS__WORKER_PORT=0" \
    "URBANPULSE_METRICS__SUPERVISOR_PORT=0" \
    "URBANPULSE_WORKER__DATADIR=$STATE_DIR/worker" \
    "URBANPULSE_SUPERVISOR__RUN_DIR=$STATE_DIR/supervisor"
}

valid() {  # valid SERVICE: one of this instance's
  local s; for s in "${INSTANCE_SERVICES[@]}"; do [ "$s" = "$1" ] && return; done
  die "unknown service '$1' for the $INSTANCE instance (one of: ${INSTANCE_SERVICES[*]})"
}

main() {
  local cmd=${1:-}; shift || true
  local record=""
  if [ "${1:-}" = "--record" ]; then record=$2; shift 2; fi
  local services=("$@") s
  if [ "$cmd" = install ]; then
    [ ${#services[@]} -eq 0 ] && services=("${ALL_SERVICES[@]}")
    mkdir -p "$INSTALL_LOG_DIR"
    install_all "${services[@]}"
    return
  fi
  [ ${#services[@]} -eq 0 ] && services=("${INSTANCE_SERVICES[@]}")
  for s in "${services[@]}"; do valid "$s"; done
  case $cmd in
    start) mkdir -p "$LOG_DIR" "$RUN_DIR" "$INSTALL_LOG_DIR"
           for s in "${services[@]}"; do start_one "$s" "$record"; done ;;
    stop) for s in "${services[@]}"; do stop_one "$s"; done ;;
    env) print_env ;;
    status)
      for s in "${services[@]}"; do
        if [ -n "$(pid_of "$s")" ]; then echo "$s running (pid $(pid_of "$s"), port $(port_of "$s"))"
        elif port_open "$(port_of "$s")"; then echo "$s port $(port_of "$s") open (not started by us)"
        else echo "$s stopped"; fi
      done ;;
    *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; [ -z "$cmd" ] || exit 2 ;;
  esac
}

main "$@"
