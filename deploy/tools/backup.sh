#!/usr/bin/env bash
# Back up what UrbanPulse cannot rebuild, on a machine that runs InfluxDB 1.8 (the local
# services of `make up`, or a single machine run the same way): the InfluxDB database with
# both retention policies (raw readings, aggregates and alerts), the sensor registry file, and
# any settings or credential files named with --file. Restore with deploy/tools/restore.sh.
#
#   deploy/tools/backup.sh [options] DEST
#
# DEST is a new (or empty) folder; it is made readable by its owner only, because settings
# files hold secrets. Kafka topics are not backed up: docs/production.md ("Backup and
# restore") says why, what to do before a backup, and the InfluxDB 2.x commands.
#
# Options:
#   --registry FILE       the sensor registry (default: $URBANPULSE_STREAMS__REGISTRY_PATH, if set)
#   --file FILE           another file to keep, e.g. .env, Mosquitto passwd/acl, secrets.csv
#                         (repeatable)
#   --influx-rpc H:P      InfluxDB's backup (RPC) address, its bind-address (default 127.0.0.1:8088)
#   --database NAME       the database (default: the part of $URBANPULSE_INFLUX__RAW_BUCKET
#                         before '/', else urbanpulse)
#   --influxd PATH        the influxd binary (default: .local/bin/influxd, else influxd on PATH)
#   --no-influx           files only (e.g. when InfluxDB 2.x is backed up with `influx backup`)
#   -h, --help            this text
#
# Exit status: 0 when everything named was backed up; 1 on any failure (DEST is then
# incomplete: its BACKUP file is missing); 2 for a usage error.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
say() { printf '[backup] %s\n' "$*" >&2; }
die() { printf '[backup] ERROR: %s\n' "$*" >&2; exit 1; }
usage_error() { printf '[backup] %s (see --help)\n' "$*" >&2; exit 2; }

registry=${URBANPULSE_STREAMS__REGISTRY_PATH:-}
files=()
rpc=127.0.0.1:8088
raw_bucket=${URBANPULSE_INFLUX__RAW_BUCKET:-urbanpulse/raw}
database=${raw_bucket%%/*}
influxd=""
with_influx=1
dest=""

while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --registry) [ $# -ge 2 ] || usage_error "--registry needs a file"; registry=$2; shift 2 ;;
    --file) [ $# -ge 2 ] || usage_error "--file needs a file"; files+=("$2"); shift 2 ;;
    --influx-rpc) [ $# -ge 2 ] || usage_error "--influx-rpc needs HOST:PORT"; rpc=$2; shift 2 ;;
    --database) [ $# -ge 2 ] || usage_error "--database needs a name"; database=$2; shift 2 ;;
    --influxd) [ $# -ge 2 ] || usage_error "--influxd needs a path"; influxd=$2; shift 2 ;;
    --no-influx) with_influx=0; shift ;;
    -*) usage_error "unknown option $1" ;;
    *) [ -z "$dest" ] || usage_error "one DEST only (got '$dest' and '$1')"; dest=$1; shift ;;
  esac
done
[ -n "$dest" ] || usage_error "DEST is missing"
[ -n "$database" ] || usage_error "--database is empty"

# Check everything before writing anything, so a mistake leaves nothing half made.
if [ -e "$dest" ] && [ -n "$(ls -A "$dest" 2>/dev/null)" ]; then
  die "$dest exists and is not empty: choose a new folder (a backup is never written over another)"
fi
[ -z "$registry" ] || [ -f "$registry" ] || die "registry file $registry does not exist (--registry or URBANPULSE_STREAMS__REGISTRY_PATH)"
for f in "${files[@]}"; do
  [ -f "$f" ] || die "--file $f does not exist or is not a regular file"
done
if [ "$with_influx" = 1 ]; then
  org=${URBANPULSE_INFLUX__ORG:--}
  [ "$org" = "-" ] || die "URBANPULSE_INFLUX__ORG is '$org': that is InfluxDB 2.x, which this script does not back up; use \`influx backup\` (docs/production.md, \"Backup and restore\") and --no-influx here"
  if [ -z "$influxd" ]; then
    if [ -x "$ROOT/.local/bin/influxd" ]; then influxd=$ROOT/.local/bin/influxd
    else influxd=$(command -v influxd) || die "no influxd: not in $ROOT/.local/bin, not on PATH (--influxd PATH)"
    fi
  fi
  [ -x "$influxd" ] || die "$influxd is not an executable influxd (--influxd PATH)"
fi

umask 077
mkdir -p "$dest"
chmod 700 "$dest"
dest=$(cd "$dest" && pwd)
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)

if [ "$with_influx" = 1 ]; then
  say "InfluxDB database '$database' from $rpc (influxd backup -portable)"
  if ! "$influxd" backup -portable -host "$rpc" -db "$database" "$dest/influxdb" >"$dest/influxd-backup.log" 2>&1; then
    tail -n 5 "$dest/influxd-backup.log" >&2
    die "influxd backup failed (log: $dest/influxd-backup.log). Is InfluxDB running, with its bind-address (the backup port) at $rpc, and does database '$database' exist?"
  fi
fi

# files.tsv: stored name, permissions, the absolute path it came from (restore puts it back).
mkdir -p "$dest/files"
: >"$dest/files.tsv"
n=0
keep() {  # keep KIND FILE
  local source stored
  source=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
  n=$((n + 1))
  stored=$(printf '%02d-%s' "$n" "$(basename "$2")")
  # The registry API replaces the file atomically (os.replace): a copy is one whole version.
  cp -p "$source" "$dest/files/$stored"
  printf '%s\t%s\t%s\t%s\n' "$stored" "$1" "$(stat -c %a "$source")" "$source" >>"$dest/files.tsv"
  say "$1: $source"
}
[ -z "$registry" ] || keep registry "$registry"
for f in "${files[@]}"; do keep file "$f"; done

# Checksums of everything, checked by restore.sh before it changes anything.
sums=$(cd "$dest" && find . -type f ! -name influxd-backup.log -printf '%P\n' \
  | LC_ALL=C sort | xargs -r -d '\n' sha256sum)
printf '%s\n' "$sums" >"$dest/SHA256SUMS"

version=$( { "$ROOT/.venv/bin/urbanpulse" --version || urbanpulse --version; } 2>/dev/null ) || version="urbanpulse (version unknown)"
{
  echo "created: $started"
  echo "host: $(hostname)"
  echo "platform: $version"
  if [ "$with_influx" = 1 ]; then
    echo "influxdb: database $database from $rpc, influxd $(cat "$(dirname "$influxd")/influxd.version" 2>/dev/null || echo '1.8')"
  else
    echo "influxdb: not in this backup (--no-influx)"
  fi
  echo "files: $n"
  echo "not included: Kafka topics (docs/production.md, \"Backup and restore\")"
} >"$dest/BACKUP"
say "done: $dest ($(du -sh "$dest" | cut -f1)); restore with deploy/tools/restore.sh $dest"
