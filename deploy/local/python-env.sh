#!/usr/bin/env bash
# Create the project's virtualenv and install UrbanPulse into it (idempotent).
#   python-env.sh PYTHON VENV [run|dev]
#     run   what running the platform needs (`make up`): UrbanPulse and its dependencies
#     dev   also the development tools (`make test`, `make check`): pytest, mypy, ruff, ...
# pip's output goes to .local/logs/python-env.log; every ~15 s a line says how far it is.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=deploy/local/progress.sh
. "$ROOT/deploy/local/progress.sh"
python=${1:-python3}
venv=${2:-.venv}
extras=${3:-dev}
log="$ROOT/.local/logs/python-env.log"

say() { printf '[python-env] %s\n' "$*" >&2; }
die() { printf '[python-env] ERROR: %s\n' "$*" >&2; exit 1; }
case $extras in
  run) target="." what="UrbanPulse and what running it needs" packages=70 ;;
  dev) target=".[dev]" what="UrbanPulse with its development tools (pytest, mypy, ruff, ...)" packages=110 ;;
  *) die "unknown set '$extras' (run or dev)" ;;
esac

command -v "$python" >/dev/null || die "'$python' not found: UrbanPulse needs Python 3.11 or newer"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$("$python" --version 2>&1) is too old: UrbanPulse needs Python 3.11 or newer (make PYTHON=python3.11 ...)"
if [ ! -x "$venv/bin/python" ]; then
  say "creating the virtualenv $venv with $("$python" --version 2>&1)"
  "$python" -m venv "$venv" 2>/dev/null \
    || die "could not create a virtualenv with $python; on Debian: apt-get install python3-venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
hint="check that pip reaches PyPI (a proxy or mirror goes in pip.conf or PIP_INDEX_URL); then run the make command again"
progress_run python-env "updating pip in $venv" "$log" "$hint" "${pip[@]}" install --upgrade pip || exit 1
# Not -q: pip then logs each download with its size, which the progress lines add up.
progress_run python-env "installing $what into $venv from PyPI, about $packages packages the first time" \
  "$log" "$hint" "${pip[@]}" install -e "$target" || exit 1
