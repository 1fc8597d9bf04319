#!/usr/bin/env bash
# Create the project's virtualenv and install UrbanPulse with its dev tools into it (idempotent).
#   python-env.sh PYTHON VENV
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}

die() { printf '[python-env] ERROR: %s\n' "$*" >&2; exit 1; }
command -v "$python" >/dev/null || die "'$python' not found: UrbanPulse needs Python 3.11 or newer"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$("$python" --version 2>&1) is too old: UrbanPulse needs Python 3.11 or newer (make PYTHON=python3.11 ...)"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" 2>/dev/null \
    || die "could not create a virtualenv with $python; on Debian: apt-get install python3-venv"
fi
printf '[python-env] installing UrbanPulse and its dev tools into %s\n' "$venv" >&2
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip \
  || die "pip could not reach the package index (PyPI)"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev]" \
  || die "pip could not install UrbanPulse's dependencies; see the messages above"
