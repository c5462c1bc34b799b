#!/usr/bin/env bash
# setup.sh -- what the OpenAPI lint needs, installed only when missing
# (idempotent; prints nothing when everything is there):
#   - node and npm                          apt-get install nodejs npm
#   - @redocly/cli, pinned in package-lock.json   npm ci (in this folder)
# Runs as root, or through sudo.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    SUDO=(sudo)
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "openapi/setup.sh: apt-get install nodejs npm" >&2
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q nodejs npm </dev/null >&2
fi

# npm ci when node_modules is missing, older than the lock file, or holds
# another version than the locked one.
want=$(node -e 'console.log(require(process.argv[1]).packages["node_modules/@redocly/cli"].version)' \
    "$HERE/package-lock.json")
have=$(node -e 'try { console.log(require(process.argv[1]).version) } catch { console.log("") }' \
    "$HERE/node_modules/@redocly/cli/package.json")
if [[ "$want" != "$have" || ! -f "$HERE/node_modules/.package-lock.json" ||
      "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]]; then
    echo "openapi/setup.sh: npm ci (@redocly/cli $want)" >&2
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
