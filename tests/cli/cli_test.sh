#!/usr/bin/env bash
# cli_test.sh -- cavra-rpc (tools/cavra_rpc.c) against a real cavra-ack.
#
# Usage: CV_TEST_BUILD_DIR=build-asan CAVRA_DATABASE_URL=postgresql://... \
#            bash tests/cli/cli_test.sh
# (ctest sets CV_TEST_BUILD_DIR; scripts/test.sh exports a migrated
# CAVRA_DATABASE_URL.)
#
# Starts cavra-ack on an ipc:// URL in a mktemp folder, then checks through
# the command-line client: ack.Health, ack.RecordPlan read back with
# ack.GetPlan, --actor overriding acknowledged_by, an idempotent replay,
# errors (exit 1 with {"code": ...} on stderr), usage errors (exit 2),
# --list, and UNAVAILABLE once the service is stopped (TERM, then wait).
# Prints "N passed, M failed" last; exits non-zero when anything failed.
set -uo pipefail

CLI_PASSED=0
CLI_FAILED=0
CLI_TMP=
CLI_ACK_PID=

cli_pass() {
    CLI_PASSED=$((CLI_PASSED + 1))
    echo "ok   $1"
}

cli_fail() {
    CLI_FAILED=$((CLI_FAILED + 1))
    echo "FAIL $1" >&2
    if [[ -n "$CLI_TMP" ]]; then
        echo "  exit status: $CLI_RC" >&2
        sed 's/^/  stdout: /' "$CLI_TMP/out" >&2 2>/dev/null || true
        sed 's/^/  stderr: /' "$CLI_TMP/err" >&2 2>/dev/null || true
    fi
}

# cli_check NAME CONDITION...: passes when the command CONDITION succeeds.
cli_check() {
    local name=$1
    shift
    if "$@"; then
        cli_pass "$name"
    else
        cli_fail "$name"
    fi
}

cli_summary() {
    echo "$CLI_PASSED passed, $CLI_FAILED failed"
}

# Stops cavra-ack when it still runs; removes the folder.
# shellcheck disable=SC2317  # called from a trap
cli_cleanup() {
    if [[ -n "$CLI_ACK_PID" ]] && kill -0 "$CLI_ACK_PID" 2>/dev/null; then
        kill -TERM "$CLI_ACK_PID" 2>/dev/null || true
        wait "$CLI_ACK_PID" 2>/dev/null || true
    fi
    if [[ -n "$CLI_TMP" ]]; then
        rm -rf "$CLI_TMP"
    fi
}
trap cli_cleanup EXIT

# cli_rpc ARGS...: runs cavra-rpc; stdout, stderr and the exit status land
# in $CLI_TMP/out, $CLI_TMP/err and CLI_RC. A sanitizer report is a failure
# of its own.
cli_rpc() {
    CLI_RC=0
    "$CLI_RPC" "$@" >"$CLI_TMP/out" 2>"$CLI_TMP/err" </dev/null || CLI_RC=$?
    if grep -q 'Sanitizer\|runtime error:' "$CLI_TMP/err"; then
        cli_fail "no sanitizer report from: cavra-rpc $*"
    fi
}

# The first "plan_id" in the last output (the plan's own, in both replies).
cli_plan_id() {
    grep -m1 -o '"plan_id": "[^"]*"' "$CLI_TMP/out" | cut -d'"' -f4
}

cli_out_has() {
    grep -qF -- "$1" "$CLI_TMP/out"
}

cli_err_has() {
    grep -qF -- "$1" "$CLI_TMP/err"
}

cli_rc_is() {
    [[ "$CLI_RC" -eq "$1" ]]
}

# cli_exits_with STATUS CODE: the last call exited STATUS naming CODE.
cli_exits_with() {
    cli_rc_is "$1" && cli_err_has "\"code\": \"$2\""
}

cli_is_plan_id() {
    [[ "$1" =~ ^gordackrecoveryesc-[0-9a-f]{16}$ ]]
}

cli_same() {
    [[ "$1" == "$2" ]]
}

if [[ -z "${CV_TEST_BUILD_DIR:-}" || -z "${CAVRA_DATABASE_URL:-}" ]]; then
    echo "cli_test.sh: set CV_TEST_BUILD_DIR and CAVRA_DATABASE_URL (a migrated database)" >&2
    CLI_FAILED=1
    cli_summary
    exit 1
fi
CLI_RPC=$CV_TEST_BUILD_DIR/tools/cavra-rpc
CLI_ACK=$CV_TEST_BUILD_DIR/services/ack/cavra-ack
for bin in "$CLI_RPC" "$CLI_ACK"; do
    if [[ ! -x "$bin" ]]; then
        echo "cli_test.sh: $bin was not built" >&2
        CLI_FAILED=1
        cli_summary
        exit 1
    fi
done

CLI_TMP=$(mktemp -d /tmp/cavra-cli-test.XXXXXX)
CLI_URL=ipc://$CLI_TMP/ack.ipc
export CAVRA_ACK_URL=$CLI_URL
export CAVRA_DATABASE_URL

# RPC keys: cavra-rpc signs as an operator (admin, acts as itself); a
# second, auditor-only principal checks the service enforces roles.
CLI_KEYGEN=$CV_TEST_BUILD_DIR/tools/cavra-keygen
{
    "$CLI_KEYGEN" operator "$CLI_TMP/operator.key" admin
    "$CLI_KEYGEN" auditor "$CLI_TMP/auditor.key" auditor
} >"$CLI_TMP/principals"
export CAVRA_PRINCIPALS_FILE=$CLI_TMP/principals
export CAVRA_RPC_KEY_FILE=$CLI_TMP/operator.key

# 1. Start cavra-ack and wait until it answers ack.Health.
"$CLI_ACK" </dev/null >"$CLI_TMP/ack.log" 2>&1 &
CLI_ACK_PID=$!
up=0
for ((i = 0; i < 60; i++)); do
    if ! kill -0 "$CLI_ACK_PID" 2>/dev/null; then
        break
    fi
    cli_rpc --timeout-ms 500 ack.Health
    if cli_rc_is 0; then
        up=1
        break
    fi
    sleep 0.25
done
if [[ $up -ne 1 ]]; then
    cli_fail "cavra-ack answers ack.Health on $CLI_URL"
    sed 's/^/  cavra-ack: /' "$CLI_TMP/ack.log" >&2
    cli_summary
    exit 1
fi
cli_check "ack.Health exits 0" cli_rc_is 0
cli_check "ack.Health: status ok" cli_out_has '"status": "ok"'
cli_check "ack.Health: database_ok" cli_out_has '"database_ok": true'

# 2. Record a plan and read it back.
cli_rpc --request-id "cli-test-$$" ack.RecordPlan '{"generated_by": "cli-test",
    "escalation_routes": [
      {"provider": "slack", "severity": "critical", "slo_breached": true},
      {"provider": "jira", "category": "retry-execution", "failure_count": 2}]}'
plan_id=$(cli_plan_id)
cli_check "ack.RecordPlan exits 0" cli_rc_is 0
cli_check "ack.RecordPlan returns a plan id" \
    cli_is_plan_id "$plan_id"
cli_check "ack.RecordPlan: alert_level critical" \
    cli_out_has '"alert_level": "critical"'

cli_rpc ack.GetPlan "{\"plan_id\": \"$plan_id\"}"
cli_check "ack.GetPlan exits 0" cli_rc_is 0
cli_check "ack.GetPlan returns the same plan" \
    cli_same "$(cli_plan_id)" "$plan_id"

# The request body from stdin.
CLI_RC=0
echo "{\"plan_id\": \"$plan_id\"}" |
    "$CLI_RPC" ack.GetPlan - >"$CLI_TMP/out" 2>"$CLI_TMP/err" || CLI_RC=$?
cli_check "ack.GetPlan reads JSON from stdin" \
    cli_same "$CLI_RC $(cli_plan_id)" "0 $plan_id"

# 3. The trust boundary: the operator acts as itself (acknowledged_by is
#    the principal), may not name another actor, and an idempotency key
#    replays. Unsigned envelopes and missing roles are refused.
ack_body="{\"plan_id\": \"$plan_id\", \"provider\": \"slack\",
    \"acknowledged_by\": \"bob\", \"acknowledgement_state\": \"resolved\"}"
cli_rpc --actor cfo ack.Acknowledge "$ack_body"
cli_check "--actor naming someone else is PERMISSION_DENIED" \
    cli_exits_with 1 PERMISSION_DENIED
cli_rpc --idempotency-key "cli-test-$$" ack.Acknowledge "$ack_body"
cli_check "ack.Acknowledge exits 0" cli_rc_is 0
cli_check "ack.Acknowledge: the principal is the acknowledger" \
    cli_out_has '"acknowledged_by": "operator"'
cli_rpc --idempotency-key "cli-test-$$" ack.Acknowledge "$ack_body"
cli_check "ack.Acknowledge again with the key exits 0" cli_rc_is 0
cli_check "ack.Acknowledge again with the key says replayed" cli_err_has 'replayed'
CAVRA_RPC_KEY_FILE= cli_rpc ack.Acknowledge "$ack_body"
cli_check "an unsigned envelope is UNAUTHENTICATED" \
    cli_exits_with 1 UNAUTHENTICATED
CAVRA_RPC_KEY_FILE=$CLI_TMP/auditor.key cli_rpc ack.Acknowledge "$ack_body"
cli_check "an auditor cannot acknowledge (PERMISSION_DENIED)" \
    cli_exits_with 1 PERMISSION_DENIED
CAVRA_RPC_KEY_FILE=$CLI_TMP/auditor.key cli_rpc ack.GetPlan "{\"plan_id\": \"$plan_id\"}"
cli_check "an auditor can read a plan" cli_rc_is 0
"$CV_TEST_BUILD_DIR/tools/cavra-keygen" stranger "$CLI_TMP/stranger.key" admin >/dev/null
CAVRA_RPC_KEY_FILE=$CLI_TMP/stranger.key cli_rpc ack.Acknowledge "$ack_body"
cli_check "a key not in the principals file is UNAUTHENTICATED" \
    cli_exits_with 1 UNAUTHENTICATED
cli_check "only the one acknowledgement was stored" \
    cli_same "$(psql "$CAVRA_DATABASE_URL" -Atc "SELECT count(*) FROM acknowledgements WHERE plan_id = '$plan_id'" 2>/dev/null || echo none)" 1

# 4. Errors: exit 1 and {"code": ..., "detail": ...} on stderr.
cli_rpc ack.RecordPlan '{"escalation_routes": "nope"}'
cli_check "invalid request exits 1" cli_rc_is 1
cli_check "invalid request: INVALID_ARGUMENT on stderr" \
    cli_err_has '"code": "INVALID_ARGUMENT"'
cli_check "invalid request: the field is named" \
    cli_err_has 'escalation_routes must be an array'
cli_check "invalid request: nothing on stdout" test ! -s "$CLI_TMP/out"

cli_rpc ack.RecordPlan '{not json'
cli_check "malformed JSON exits 1 with INVALID_ARGUMENT" \
    cli_exits_with 1 INVALID_ARGUMENT

cli_rpc ack.Acknowledge "{\"plan_id\": \"$plan_id\", \"provider\": \"pagerduty\",
    \"acknowledged_by\": \"bob\", \"acknowledgement_state\": \"accepted\"}"
cli_check "service-side validation exits 1 with INVALID_ARGUMENT" \
    cli_exits_with 1 INVALID_ARGUMENT

cli_rpc ack.GetPlan '{"plan_id": "gordackrecoveryesc-0000000000000000"}'
cli_check "unknown plan exits 1 with NOT_FOUND" \
    cli_exits_with 1 NOT_FOUND

# 5. Usage errors: exit 2.
cli_rpc ack.NoSuchMethod
cli_check "unknown method exits 2" cli_rc_is 2
cli_rpc
cli_check "missing METHOD exits 2" cli_rc_is 2
cli_rpc --timeout-ms soon ack.Health
cli_check "bad --timeout-ms exits 2" cli_rc_is 2
cli_rpc --request-id 'not a sane id' ack.Health
cli_check "bad --request-id exits 2" cli_rc_is 2

cli_rpc --list
cli_check "--list exits 0" cli_rc_is 0
cli_check "--list names ack.RecordPlan and its messages" \
    cli_out_has 'cv.RecordPlanRequest -> cv.RecordPlanReply'
cli_check "--list names report.VerifyEvidence" cli_out_has 'report.VerifyEvidence'
cli_check "--list names retry.Health" cli_out_has 'retry.Health'

# 6. Stop the service: TERM, wait; then the client says UNAVAILABLE.
kill -TERM "$CLI_ACK_PID"
ack_rc=0
wait "$CLI_ACK_PID" || ack_rc=$?
CLI_ACK_PID=
cli_check "cavra-ack stops cleanly on TERM" test "$ack_rc" -eq 0
if grep -q 'Sanitizer\|runtime error:' "$CLI_TMP/ack.log"; then
    cli_fail "no sanitizer report from cavra-ack"
    sed 's/^/  cavra-ack: /' "$CLI_TMP/ack.log" >&2
fi
cli_rpc --timeout-ms 500 ack.Health
cli_check "a stopped service exits 1 with UNAVAILABLE" \
    cli_exits_with 1 UNAVAILABLE

cli_summary
[[ $CLI_FAILED -eq 0 ]]
