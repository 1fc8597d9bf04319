#!/usr/bin/env bash
# Restore a backup made by deploy/tools/backup.sh: the InfluxDB 1.8 database (with its
# retention policies) and the kept files, each put back where it came from.
#
#   deploy/tools/restore.sh [options] SOURCE
#
# Stop ingest, the worker and the API first (`make up`: Ctrl-C), keep InfluxDB running.
# Nothing is changed until every check has passed: the backup is complete and its checksums
# match; InfluxDB answers; the database is absent or empty (`services.sh start` creates an
# empty one) unless --replace; no kept file would overwrite a different one unless --replace.
#
# Options:
#   --replace             drop the database even if it holds data, and overwrite files that
#                         differ from the backup (what is there now is lost)
#   --files-to DIR        put the kept files into DIR instead of where they came from (e.g. on
#                         a new machine; then point the settings at them)
#   --influx-url URL      InfluxDB's HTTP API (default: $URBANPULSE_INFLUX__URL, else
#                         http://127.0.0.1:8086)
#   --influx-rpc H:P      InfluxDB's backup (RPC) address, its bind-address (default 127.0.0.1:8088)
#   --database NAME       the database to restore (default: the one in the backup)
#   --influxd PATH        the influxd binary (default: .local/bin/influxd, else influxd on PATH)
#   -h, --help            this text
#
# Exit status: 0 when everything in the backup was restored; 1 on a failed check or step
# (the message says which, and what to do); 2 for a usage error.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
say() { printf '[restore] %s\n' "$*" >&2; }
die() { printf '[restore] ERROR: %s\n' "$*" >&2; exit 1; }
usage_error() { printf '[restore] %s (see --help)\n' "$*" >&2; exit 2; }

replace=0
files_to=""
url=${URBANPULSE_INFLUX__URL:-http://127.0.0.1:8086}
rpc=127.0.0.1:8088
database=""
influxd=""
source=""

while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --replace) replace=1; shift ;;
    --files-to) [ $# -ge 2 ] || usage_error "--files-to needs a folder"; files_to=$2; shift 2 ;;
    --influx-url) [ $# -ge 2 ] || usage_error "--influx-url needs a URL"; url=$2; shift 2 ;;
    --influx-rpc) [ $# -ge 2 ] || usage_error "--influx-rpc needs HOST:PORT"; rpc=$2; shift 2 ;;
    --database) [ $# -ge 2 ] || usage_error "--database needs a name"; database=$2; shift 2 ;;
    --influxd) [ $# -ge 2 ] || usage_error "--influxd needs a path"; influxd=$2; shift 2 ;;
    -*) usage_error "unknown option $1" ;;
    *) [ -z "$source" ] || usage_error "one SOURCE only (got '$source' and '$1')"; source=$1; shift ;;
  esac
done
[ -n "$source" ] || usage_error "SOURCE is missing"
[ -d "$source" ] || die "$source is not a folder"
source=$(cd "$source" && pwd)
url=${url%/}

# --- checks: nothing is changed before all of them pass -----------------------------------
[ -f "$source/BACKUP" ] || die "$source has no BACKUP file: not a backup, or one that did not finish (backup.sh writes it last)"
(cd "$source" && sha256sum --quiet -c SHA256SUMS >&2) || die "checksums of $source do not match SHA256SUMS: the backup is damaged; use another one"

with_influx=0
if [ -d "$source/influxdb" ]; then
  with_influx=1
  backed_up=$(sed -n 's/^influxdb: database \([^ ]*\) .*/\1/p' "$source/BACKUP")
  [ -n "$backed_up" ] || die "$source/BACKUP names no database"
  database=${database:-$backed_up}
  if [ -z "$influxd" ]; then
    if [ -x "$ROOT/.local/bin/influxd" ]; then influxd=$ROOT/.local/bin/influxd
    else influxd=$(command -v influxd) || die "no influxd: not in $ROOT/.local/bin, not on PATH (--influxd PATH)"
    fi
  fi
  [ -x "$influxd" ] || die "$influxd is not an executable influxd (--influxd PATH)"
  influxql() {  # influxql STATEMENT -> the JSON answer of InfluxDB's 1.x /query
    curl -sS -f --max-time 30 -XPOST "$url/query" --data-urlencode "q=$1"
  }
  curl -sS -f --max-time 10 -o /dev/null "$url/ping" 2>/dev/null \
    || die "InfluxDB does not answer at $url/ping: start it first (deploy/local/services.sh start influxdb), or name it with --influx-url"
  databases=$(influxql "SHOW DATABASES") || die "InfluxDB at $url refused SHOW DATABASES"
  drop=0
  if printf '%s' "$databases" | grep -qF "[\"$database\"]"; then
    measurements=$(influxql "SHOW MEASUREMENTS ON \"$database\" LIMIT 1") || die "InfluxDB refused SHOW MEASUREMENTS ON $database"
    if printf '%s' "$measurements" | grep -q '"series"'; then
      [ "$replace" = 1 ] || die "database '$database' on $url holds data; restoring would mix it with the backup's. Pass --replace to drop it first (its data is lost), or restore into another database with --database NAME"
      say "database '$database' holds data: dropping it (--replace)"
    fi
    drop=1
  fi
fi

# files.tsv: stored name, kind, permissions, original absolute path.
plan=()
while IFS=$'\t' read -r stored kind mode original; do
  [ -n "$stored" ] || continue
  target=$original
  [ -z "$files_to" ] || target=${files_to%/}/$(basename "$original")
  if [ -e "$target" ] && ! cmp -s "$source/files/$stored" "$target"; then
    [ "$replace" = 1 ] || die "$target exists and differs from the backup's $kind file; pass --replace to overwrite it, or --files-to DIR"
  fi
  plan+=("$stored"$'\t'"$kind"$'\t'"$mode"$'\t'"$target")
done <"$source/files.tsv"

# --- restore ----------------------------------------------------------------------------
if [ "$with_influx" = 1 ]; then
  if [ "$drop" = 1 ]; then
    influxql "DROP DATABASE \"$database\"" >/dev/null || die "InfluxDB refused to drop database '$database'"
  fi
  say "InfluxDB database '$database' to $rpc (influxd restore -portable)"
  log=$(mktemp)
  rename=()
  [ "$database" = "$backed_up" ] || rename=(-newdb "$database")
  if ! "$influxd" restore -portable -host "$rpc" -db "$backed_up" "${rename[@]}" "$source/influxdb" >"$log" 2>&1; then
    cat "$log" >&2
    die "influxd restore failed. Is $rpc InfluxDB's bind-address (the backup port)? Nothing else was restored; run this again once it is fixed."
  fi
  rm -f "$log"
fi
for entry in "${plan[@]}"; do
  IFS=$'\t' read -r stored kind mode target <<<"$entry"
  mkdir -p "$(dirname "$target")"
  # Written beside the target and moved over it: a reader sees the old or the new file.
  cp "$source/files/$stored" "$target.restoring"
  chmod "$mode" "$target.restoring"
  mv -f "$target.restoring" "$target"
  say "$kind: $target"
done
say "done from $source. Start the platform again; the worker rebuilds its state from Kafka."
