#!/usr/bin/env bash
# Re-fetch the web pages' front-end packages from the npm registry, exactly at the versions
# pinned in deploy/tools/web-vendor/package.json, and copy the few files the pages use (with
# each package's licence files) into the repository:
#
#   api/web/static/vendor/<package>/   leaflet, uplot, swagger-ui-dist, redoc (served by the API)
#   tests/e2e/vendor/axe-core/         axe-core (the accessibility check of the browser tests)
#
#   deploy/tools/vendor-web.sh [--check]
#
#   --check   fetch and compare only: exit 1 when a vendored file differs from what this script
#             would copy
#
# Each tarball is fetched with `npm pack NAME@VERSION` and must have the integrity (sha512)
# that package-lock.json records for it, or nothing is copied. No dependency of a package is
# installed: the files copied are self-contained bundles. PATCHES below lists the one change
# made after copying (and why); everything else is byte for byte as published. Writes
# deploy/tools/web-vendor/vendored.json: per package its version, integrity, folder and the
# sha256 of every file copied (tests/unit/web/test_vendored.py checks the tree against it).
#
# To move to a new version: change package.json, run
#   (cd deploy/tools/web-vendor && npm install --package-lock-only --ignore-scripts)
# then this script, then the tests. Needs: node and npm (the npm registry), tar, perl.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/deploy/tools/web-vendor"
STATIC="api/web/static/vendor"
CHECK=0

say() { printf '[vendor-web] %s\n' "$*" >&2; }

case ${1:-} in
  "") ;;
  --check) CHECK=1 ;;
  *) say "unknown option: $1 (usage: deploy/tools/vendor-web.sh [--check])"; exit 2 ;;
esac
for tool in node npm tar; do
  command -v "$tool" >/dev/null || { say "FAILED: $tool is not installed"; exit 1; }
done

# package -> destination folder (repository-relative) and the files taken from its tarball
# (paths inside the tarball's package/ folder, globs allowed; "PATTERN>DIR" copies into the
# subfolder DIR, so relative URLs inside a stylesheet keep working).
dest() {
  case $1 in
    axe-core) echo "tests/e2e/vendor/axe-core" ;;
    *) echo "$STATIC/$1" ;;
  esac
}
files() {
  case $1 in
    leaflet) echo "LICENSE dist/leaflet.js dist/leaflet.css dist/images/*>images" ;;
    uplot) echo "LICENSE dist/uPlot.iife.min.js dist/uPlot.min.css" ;;
    swagger-ui-dist) echo "LICENSE NOTICE swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png" ;;
    redoc) echo "LICENSE bundles/redoc.standalone.js bundles/redoc.standalone.js.LICENSE.txt" ;;
    axe-core) echo "LICENSE LICENSE-3RD-PARTY.txt axe.min.js" ;;
    *) say "FAILED: package.json names $1, which this script has no file list for"; exit 1 ;;
  esac
}

# Changes made to a package's files after copying, each "PACKAGE FILE OLD NEW" (literal text,
# exactly one occurrence, or the script stops). ReDoc 2.5 shows Redocly's logo from its CDN in
# the menu, unconditionally: a page that must make no request beyond the API cannot have it.
# With data:, the image fails at once and ReDoc hides it (its onError handler).
PATCHES=(
  "redoc redoc.standalone.js https://cdn.redoc.ly/redoc/logo-mini.svg data:,"
)

patch_package() {  # patch_package NAME FOLDER
  local entry pkg file old new count
  for entry in "${PATCHES[@]}"; do
    read -r pkg file old new <<<"$entry"
    [ "$pkg" = "$1" ] || continue
    count=$(grep -o -F "$old" "$2/$file" | wc -l)
    if [ "$count" -ne 1 ]; then
      say "FAILED: $1/$file has $count occurrences of $old (expected 1): review the patch"
      exit 1
    fi
    OLD="$old" NEW="$new" perl -0pi -e 's/\Q$ENV{OLD}\E/$ENV{NEW}/' "$2/$file"
    say "$1: patched $file ($old -> $new)"
  done
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# name version integrity, one package a line, from the lock (the pins of package.json).
# shellcheck disable=SC2016  # JavaScript in single quotes: its ${...} are the script's own
node -e '
  const pkg = require(process.argv[1] + "/package.json");
  const lock = require(process.argv[1] + "/package-lock.json");
  for (const [name, pin] of Object.entries(pkg.dependencies)) {
    const entry = lock.packages["node_modules/" + name];
    if (!entry || entry.version !== pin) {
      console.error(`[vendor-web] FAILED: package-lock.json has ${name}@${entry && entry.version}, package.json pins ${pin}; run npm install --package-lock-only`);
      process.exit(1);
    }
    console.log(name, pin, entry.integrity);
  }' "$HERE" >"$WORK/pins"

differs=0
while read -r name version integrity; do
  say "$name@$version: fetching"
  (cd "$WORK" && npm pack "$name@$version" --json --silent >"$name.json")
  got=$(node -e 'console.log(require(process.argv[1])[0].integrity)' "$WORK/$name.json")
  tarball=$(node -e 'console.log(require(process.argv[1])[0].filename)' "$WORK/$name.json")
  if [ "$got" != "$integrity" ]; then
    say "FAILED: $name@$version: the registry's tarball has integrity $got, package-lock.json $integrity"
    exit 1
  fi
  mkdir -p "$WORK/$name" && tar -xzf "$WORK/$tarball" -C "$WORK/$name"
  target=$(dest "$name")
  mkdir -p "$WORK/out/$target"
  echo "$name $version $integrity $target" >>"$WORK/copied"
  for entry in $(files "$name"); do
    pattern=${entry%%>*}
    sub=""
    [ "$pattern" != "$entry" ] && sub=${entry#*>}
    mkdir -p "$WORK/out/$target/$sub"
    # shellcheck disable=SC2086  # the pattern's glob is meant to expand
    for file in "$WORK/$name/package/"$pattern; do
      [ -f "$file" ] || { say "FAILED: $name@$version has no $pattern"; exit 1; }
      cp "$file" "$WORK/out/$target/$sub"
    done
  done
  patch_package "$name" "$WORK/out/$target"
  if ! diff -r "$WORK/out/$target" "$ROOT/$target" >/dev/null 2>&1; then
    differs=1
    [ "$CHECK" -eq 1 ] && say "DIFFERS: $target is not $name@$version as published"
  fi
done <"$WORK/pins"

if [ "$CHECK" -eq 1 ]; then
  [ "$differs" -eq 0 ] && say "ok: every vendored folder is its pinned npm package (plus PATCHES)"
  exit "$differs"
fi

while read -r name _ _ target; do
  rm -rf "${ROOT:?}/$target" && mkdir -p "$(dirname "$ROOT/$target")"
  cp -r "$WORK/out/$target" "$ROOT/$target"
  say "$name: $(find "$ROOT/$target" -type f | wc -l) files in $target"
done <"$WORK/copied"

# The manifest: what was copied, from which version, with each file's sha256 (and patches).
PATCH_LINES=$(printf '%s\n' "${PATCHES[@]}")
export PATCH_LINES
(cd "$ROOT" && node -e '
  const fs = require("fs"), crypto = require("crypto"), path = require("path");
  const [pins, out] = process.argv.slice(1);
  const manifest = {};
  for (const line of fs.readFileSync(pins, "utf8").trim().split("\n")) {
    const [name, version, integrity, folder] = line.split(" ");
    const files = {};
    const walk = (dir) => fs.readdirSync(path.join(folder, dir), { withFileTypes: true })
      .flatMap((e) => e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]);
    for (const file of walk("").sort()) {
      files[file] = crypto.createHash("sha256").update(fs.readFileSync(path.join(folder, file))).digest("hex");
    }
    manifest[name] = { version, integrity, folder, files };
    const patches = (process.env.PATCH_LINES || "").split("\n").filter((p) => p.startsWith(name + " "));
    if (patches.length) manifest[name].patched = patches.map((p) => p.split(" ").slice(1).join(" "));
  }
  fs.writeFileSync(out, JSON.stringify(manifest, null, 2) + "\n");
' "$WORK/copied" "$HERE/vendored.json")
say "wrote deploy/tools/web-vendor/vendored.json"
