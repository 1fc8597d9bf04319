# shellcheck shell=bash
# Sourced by the install scripts (services.sh, python-env.sh, deploy/tools/install.sh): run one
# long step with its output in a log file, say every ~15 s how far it is, and on failure show
# the log's last lines and what to do. A first install takes minutes; without this a user sees
# one line and then nothing, and learns where the log is only when it failed.
#
#   progress_run TAG WHAT LOG HINT COMMAND...
#       TAG   the script's prefix, e.g. services: lines read "[services] ..."
#       WHAT  what the step does, e.g. "building prometheus v0.316.0 with go install"
#       LOG   the step's log file (truncated first); its path is printed at the start
#       HINT  what to do when the step fails, printed after the log's last lines
#   Returns COMMAND's exit status. COMMAND may be a shell function of the caller.
#
# How far: read off the log as it grows, for the tools we run: pip ("Downloading x.whl (12 MB)"),
# Maven ("Downloaded from central: URL (1.2 MB at ...)"), apt-get ("Get:1 ... [123 kB]"),
# `go install -v` (one compiled package a line) and Go's "go: downloading MODULE VERSION".
# URBANPULSE_PROGRESS_EVERY sets the interval in seconds (default 15).

PROGRESS_EVERY=${URBANPULSE_PROGRESS_EVERY:-15}
PROGRESS_TAIL=20

progress_say() { printf '[%s] %s\n' "$1" "$2" >&2; }

# progress_summary LOG: one phrase of what the log shows so far ("" when it shows nothing).
progress_summary() {
  awk '
    function bytes(s,   n, u) {  # "12.3 MB", "1,234 kB" -> bytes
      n = s; sub(/ .*/, "", n); gsub(/,/, "", n)
      u = s; sub(/^[^ ]* /, "", u)
      return n * (u ~ /^k/ ? 1e3 : u ~ /^M/ ? 1e6 : u ~ /^G/ ? 1e9 : 1)
    }
    function human(b) {
      if (b >= 1e9) return sprintf("%.1f GB", b / 1e9)
      if (b >= 1e6) return sprintf("%.1f MB", b / 1e6)
      if (b >= 1e3) return sprintf("%.0f kB", b / 1e3)
      return sprintf("%d B", b)
    }
    /^ *Downloading .*\.metadata / { next }   # pip: a few kB per package, not the package
    /^ *Downloading / || /^Downloaded from / || /^Get:[0-9]+ / {
      files++
      if (match($0, /[([][0-9.,]+ [kMG]?B( at [^)]*)?[])]$/)) {
        s = substr($0, RSTART + 1, RLENGTH - 2); sub(/ at .*/, "", s); total += bytes(s)
      }
      next
    }
    /^go: downloading / { modules++; next }
    /^[A-Za-z0-9._~\/-]+$/ { packages++ }   # go install -v: a package path a line
    function count(n, what) { return n " " what (n == 1 ? "" : "s") }
    END {
      out = ""
      if (files) out = count(files, "file") " downloaded" (total ? ", " human(total) : "")
      if (modules) out = out (out ? ", " : "") count(modules, "Go module") " downloaded"
      if (packages) out = out (out ? ", " : "") count(packages, "Go package") " compiled"
      print out
    }
  ' "$1" 2>/dev/null
}

progress_run() {
  local tag=$1 what=$2 log=$3 hint=$4; shift 4
  local start=$SECONDS next=$((SECONDS + PROGRESS_EVERY)) pid rc=0 done_so_far
  mkdir -p "$(dirname "$log")"
  : >"$log"
  progress_say "$tag" "$what (log: $log)"
  "$@" >>"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 0.5
    if (( SECONDS >= next )) && kill -0 "$pid" 2>/dev/null; then
      next=$((SECONDS + PROGRESS_EVERY))
      done_so_far=$(progress_summary "$log")
      progress_say "$tag" "  ... $(( SECONDS - start )) s${done_so_far:+: $done_so_far}"
    fi
  done
  wait "$pid" || rc=$?
  done_so_far=$(progress_summary "$log")
  if (( rc == 0 )); then
    progress_say "$tag" "  done in $(( SECONDS - start )) s${done_so_far:+ ($done_so_far)}"
    return 0
  fi
  progress_say "$tag" "FAILED after $(( SECONDS - start )) s (exit status $rc): $what"
  progress_say "$tag" "the last $PROGRESS_TAIL lines of $log:"
  tail -n "$PROGRESS_TAIL" "$log" | sed 's/^/    /' >&2
  progress_say "$tag" "what to do: $hint"
  return "$rc"
}
