#!/usr/bin/env bash
# The browser of the end-to-end tests (tests/e2e/test_web_*.py): Debian's Chromium and its
# ChromeDriver, from apt (DESIGN.md: no browser download of its own, only package registries).
#
#   deploy/local/browser.sh [--check]
#
#   --check     install nothing; exit 1 when chromium or chromedriver is missing
#
# Idempotent: when /usr/bin/chromium and /usr/bin/chromedriver both answer --version, it says
# so and does nothing (< 1 s). Otherwise it runs `apt-get update` once and
# `apt-get install chromium chromium-driver` (root, or sudo when there is one), printing apt's
# progress; on failure it says what failed, where the log is, and exits non-zero.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LOG_DIR=${URBANPULSE_LOG_DIR:-"$ROOT/.local/logs"}
LOG="$LOG_DIR/browser-install.log"
CHROMIUM=/usr/bin/chromium
DRIVER=/usr/bin/chromedriver

say() { printf '[browser] %s\n' "$*" >&2; }

installed() {  # both binaries there and able to print their version
  [ -x "$CHROMIUM" ] && [ -x "$DRIVER" ] \
    && "$CHROMIUM" --version >/dev/null 2>&1 && "$DRIVER" --version >/dev/null 2>&1
}

case ${1:-} in
  "") ;;
  --check)
    if installed; then say "ok: $("$CHROMIUM" --version), $("$DRIVER" --version | cut -d' ' -f1-2)"; exit 0; fi
    say "MISSING: chromium or chromedriver; run deploy/local/browser.sh to install them"
    exit 1 ;;
  *) say "unknown option: $1 (usage: deploy/local/browser.sh [--check])"; exit 2 ;;
esac

if installed; then
  say "already installed: $("$CHROMIUM" --version), $("$DRIVER" --version | cut -d' ' -f1-2)"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  say "FAILED: installing chromium needs root (or sudo); as root run: apt-get install chromium chromium-driver"
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "FAILED: no apt-get here; install Chromium and ChromeDriver as $CHROMIUM and $DRIVER by hand"
  exit 1
fi

apt() {  # apt ARGS...: the whole output to the log, its progress lines to stderr
  local status
  set +o pipefail
  "${SUDO[@]}" apt-get "$@" 2>&1 | tee -a "$LOG" \
    | { grep --line-buffered -E '^(Get:|Fetched|Setting up|Reading package lists|E:|W:)' || true; } \
    | sed 's/^/[browser] apt: /' >&2
  status=${PIPESTATUS[0]}
  set -o pipefail
  if [ "$status" -ne 0 ]; then
    say "FAILED: apt-get $* exited with $status (last lines below; whole log: $LOG)"
    tail -n 15 "$LOG" | sed 's/^/[browser]   /' >&2
    exit 1
  fi
}

mkdir -p "$LOG_DIR"
: >"$LOG"
export DEBIAN_FRONTEND=noninteractive
say "installing Debian's chromium and chromium-driver (apt-get; log: $LOG)"
apt update
apt install -y --no-install-recommends chromium chromium-driver
if ! installed; then
  say "FAILED: apt-get finished but $CHROMIUM or $DRIVER does not run (see $LOG)"
  exit 1
fi
say "installed: $("$CHROMIUM" --version), $("$DRIVER" --version | cut -d' ' -f1-2)"
