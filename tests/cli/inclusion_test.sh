#!/usr/bin/env bash
# inclusion_test.sh -- `cavra-verify --inclusion PROOF.json --public-key
# FILE` (docs/evidence.md offline verification) and its exit statuses.
#
# Usage: CV_TEST_BUILD_DIR=build-asan bash tests/cli/inclusion_test.sh
# (ctest sets CV_TEST_BUILD_DIR). No database, no services.
#
# tests/cli/inclusion/ holds an inclusion proof of leaf 2 in a 5-leaf log
# with its event, signed by a key generated once and thrown away
# (public-key.txt is its verifier key; other-key.txt one of another key of
# the same name). It was checked independently of our code: the leaf hash
# is SHA-256(0x00 || Python's json.dumps(event, sort_keys=True,
# separators=(',', ':'), ensure_ascii=False)), the audit path verifies by
# RFC 9162 2.1.3.2 in Python and the signature with Python's cryptography
# Ed25519. Each check below copies the proof, changes one thing, and
# expects: 0 valid, 1 invalid (malformed proofs included), 2 usage or an
# unreadable file. Prints "N passed, M failed"; exits non-zero on failure.
set -uo pipefail

INC_PASSED=0
INC_FAILED=0
INC_TMP=
INC_RC=0
INC_DATA=$(cd "$(dirname "${BASH_SOURCE[0]}")/inclusion" && pwd)

# shellcheck disable=SC2317  # called from a trap
inc_cleanup() {
    if [[ -n "$INC_TMP" ]]; then
        rm -rf "$INC_TMP"
    fi
}
trap inc_cleanup EXIT

# inc_run ARGS...: runs cavra-verify; output in $INC_TMP/out, err, INC_RC.
inc_run() {
    INC_RC=0
    "$INC_VERIFY" "$@" >"$INC_TMP/out" 2>"$INC_TMP/err" || INC_RC=$?
}

# inc_expect NAME STATUS [TEXT]: the last run exited STATUS (and its
# stdout or stderr contains TEXT); no sanitizer report.
inc_expect() {
    local name=$1 status=$2 text=${3:-}
    if [[ "$INC_RC" -eq "$status" ]] &&
        ! grep -q 'Sanitizer\|runtime error:' "$INC_TMP/err" &&
        { [[ -z "$text" ]] || grep -qF -- "$text" "$INC_TMP/out" "$INC_TMP/err"; }; then
        INC_PASSED=$((INC_PASSED + 1))
        echo "ok   $name"
    else
        INC_FAILED=$((INC_FAILED + 1))
        echo "FAIL $name (exit $INC_RC, wanted $status${text:+ and \"$text\"})" >&2
        sed 's/^/  stdout: /' "$INC_TMP/out" >&2
        sed 's/^/  stderr: /' "$INC_TMP/err" >&2
    fi
}

# inc_variant NAME SED-EXPRESSION: a copy of the proof edited by sed, which
# must change it.
inc_variant() {
    sed -e "$2" "$INC_DATA/proof.json" >"$INC_TMP/$1.json"
    if cmp -s "$INC_DATA/proof.json" "$INC_TMP/$1.json"; then
        echo "inclusion_test.sh: the edit for $1 changed nothing" >&2
        INC_FAILED=$((INC_FAILED + 1))
    fi
}

if [[ -z "${CV_TEST_BUILD_DIR:-}" ]]; then
    echo "inclusion_test.sh: set CV_TEST_BUILD_DIR" >&2
    exit 1
fi
INC_VERIFY=$CV_TEST_BUILD_DIR/tools/cavra-verify
if [[ ! -x "$INC_VERIFY" ]]; then
    echo "inclusion_test.sh: $INC_VERIFY was not built" >&2
    exit 1
fi
INC_TMP=$(mktemp -d /tmp/cavra-inclusion-test.XXXXXX)
KEY=$INC_DATA/public-key.txt

# 1. The untouched proof verifies, from a file and from stdin.
inc_run --inclusion "$INC_DATA/proof.json" --public-key "$KEY"
inc_expect "untouched proof is valid" 0 '"valid": true'
inc_expect "verdict names the record" 0 '"record_id": "ack_0000000000002017"'
inc_expect "verdict says the event was checked" 0 '"event_checked": true'
INC_RC=0
"$INC_VERIFY" --public-key "$KEY" --inclusion - <"$INC_DATA/proof.json" \
    >"$INC_TMP/out" 2>"$INC_TMP/err" || INC_RC=$?
inc_expect "proof from stdin, options in either order" 0 '"valid": true'

# 2. One change anywhere: invalid (exit 1) with a reason.
inc_variant leaf 's/"leaf_hash": "cde1/"leaf_hash": "cde0/'
inc_run --inclusion "$INC_TMP/leaf.json" --public-key "$KEY"
inc_expect "leaf hash with one bit flipped" 1 'leaf_hash is not the hash of the event'
inc_variant path 's/"5bb578d7/"5bb578d6/'
inc_run --inclusion "$INC_TMP/path.json" --public-key "$KEY"
inc_expect "audit path with one bit flipped" 1 'audit_path does not lead'
inc_variant event 's/"req-42"/"req-43"/'
inc_run --inclusion "$INC_TMP/event.json" --public-key "$KEY"
inc_expect "event rewritten" 1 'leaf_hash is not the hash of the event'
inc_variant index 's/"leaf_index": 2/"leaf_index": 3/'
inc_run --inclusion "$INC_TMP/index.json" --public-key "$KEY"
inc_expect "another leaf index" 1 '"valid": false'
inc_variant size 's/"tree_size": 5/"tree_size": 6/'
inc_run --inclusion "$INC_TMP/size.json" --public-key "$KEY"
inc_expect "another tree size" 1 'does not match the checkpoint'
inc_variant signed 's/evidence\\n5\\n/evidence\\n6\\n/'
inc_run --inclusion "$INC_TMP/signed.json" --public-key "$KEY"
inc_expect "checkpoint body changed after signing" 1 'invalid signature'
inc_run --inclusion "$INC_DATA/proof.json" --public-key "$INC_DATA/other-key.txt"
inc_expect "another key of the same name" 1 'no signature by key'
printf '{"record_id": ' >"$INC_TMP/cut.json"
inc_run --inclusion "$INC_TMP/cut.json" --public-key "$KEY"
inc_expect "a proof that is not JSON" 1 'proof is not JSON'
inc_variant noid 's/"record_id": "ack_0000000000002017",//'
inc_run --inclusion "$INC_TMP/noid.json" --public-key "$KEY"
inc_expect "a proof without record_id" 1 'record_id must be'

# 3. Usage and access: exit 2.
inc_run --inclusion "$INC_TMP/missing.json" --public-key "$KEY"
inc_expect "missing proof file" 2 'cannot read'
inc_run --inclusion "$INC_DATA/proof.json" --public-key "$INC_TMP/missing.txt"
inc_expect "missing key file" 2 'cannot read'
echo 'cavra.test/evidence+00000000+AAAA' >"$INC_TMP/bad-key.txt"
inc_run --inclusion "$INC_DATA/proof.json" --public-key "$INC_TMP/bad-key.txt"
inc_expect "malformed key" 2 'verifier key'
inc_run --inclusion "$INC_DATA/proof.json"
inc_expect "no --public-key" 2 'usage'
inc_run --inclusion "$INC_DATA/proof.json" --public-key "$KEY" --file x
inc_expect "an option of another mode" 2 'usage'
inc_run --public-key "$KEY" --inclusion
inc_expect "--inclusion without a file" 2 'usage'

echo "$INC_PASSED passed, $INC_FAILED failed"
[[ $INC_FAILED -eq 0 ]]
