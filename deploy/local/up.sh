#!/usr/bin/env bash
# `make up`: start the local services, then the whole platform with a simulator; on Ctrl-C or
# SIGTERM stop the platform and the services this script started (not ones that already ran).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
started=$(mktemp)
platform=""

# The clean-up ignores INT and TERM: `make` passes a SIGTERM on to this script although the
# whole process group got one already, and a second signal would end the clean-up halfway
# (this left services running after .ci/run).
cleanup() {
  trap - EXIT
  trap '' INT TERM
  if [ -n "$platform" ] && kill -0 "$platform" 2>/dev/null; then
    kill -TERM "$platform" 2>/dev/null || true
    wait "$platform" 2>/dev/null || true
  fi
  local names=()
  mapfile -t names <"$started"
  if [ ${#names[@]} -gt 0 ]; then deploy/local/services.sh stop "${names[@]}"; fi
  rm -f "$started"
}
trap cleanup EXIT
on_signal() { trap '' INT TERM; exit "$1"; }
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

deploy/local/services.sh start --record "$started"
# The supervisor watches and restarts the services this script started (not ones that already
# ran: they are someone else's).
watch=()
while read -r svc; do watch+=(--watch-service "$svc"); done <"$started"
# In the background, so this shell can react to SIGTERM at once (bash defers traps while
# it waits for a foreground child).
.venv/bin/urbanpulse up "${watch[@]}" &
platform=$!
wait "$platform"
