#!/usr/bin/env bash
# lint.sh DOCS_BIN -- lints the gateway's OpenAPI document, as
# `DOCS_BIN openapi` (build/tools/cavra-docs) generates it from the method
# registry, with @redocly/cli's recommended rules (redocly.yaml). Any
# error fails; warnings are printed. ctest: docs.openapi_lint.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DOCS_BIN=${1:?usage: lint.sh path/to/cavra-docs}

bash "$HERE/setup.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$DOCS_BIN" openapi >"$tmp/openapi.json"
cd "$HERE"
# No telemetry, no update check: the lint runs offline after npm ci.
rc=0
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
    node_modules/.bin/redocly lint --config "$HERE/redocly.yaml" \
    --format=stylish "$tmp/openapi.json" >"$tmp/lint.out" 2>&1 || rc=$?
# The Node.js deprecation banner is noise here.
grep -v '[║╔╚]' "$tmp/lint.out" || true
if [[ $rc -ne 0 ]]; then
    echo "openapi lint: FAILED (redocly exit status $rc, errors above)"
    exit 1
fi
echo "openapi lint: passed (recommended rules, no error)"
