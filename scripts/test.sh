#!/usr/bin/env bash
# test.sh -- `make test`: every ctest test under AddressSanitizer/UBSan
# against a real PostgreSQL.
#
# Installs missing packages, builds ./build (normal; it provides
# cavra-migrate) and ./build-asan (-DCAVRA_SANITIZE=ON). Unless the caller
# set CAVRA_DATABASE_URL, it creates a throwaway cluster in a mktemp folder
# on a free port (from 56432 up), which is stopped and removed on exit.
# Either way it applies db/migrations, exports CAVRA_DATABASE_URL (and
# CAVRA_TEST_PG_PORT for a throwaway cluster), then runs
#   ctest --test-dir build-asan --output-on-failure -j2
# The tests start the services and the gateway from their build tree
# themselves. The exit status is ctest's.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

TMP_DIR=
PG_UP=0

test_log() {
    echo "test.sh: $*" >&2
}

# shellcheck disable=SC2317  # called from a trap
test_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$TMP_DIR" ]]; then
        bash scripts/pg.sh teardown "$TMP_DIR" || true
    fi
    exit "$rc"
}
trap test_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. Packages and both builds.
bash scripts/deps.sh
# The browser tests need chromium, node and playwright-core; ctest only
# registers them when node is found at configure time, so before cmake.
bash tests/browser/setup.sh
# The OpenAPI lint (ctest docs.openapi_lint) needs @redocly/cli (npm).
bash tests/openapi/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCAVRA_SANITIZE=ON >/dev/null
cmake --build build-asan -j2

# 2. Database.
if [[ -n "${CAVRA_DATABASE_URL:-}" ]]; then
    test_log "using the caller's CAVRA_DATABASE_URL"
else
    TMP_DIR=$(mktemp -d /tmp/cavra-test.XXXXXX)
    # mktemp makes it 0700; the postgres user must be able to traverse it.
    chmod 755 "$TMP_DIR"
    port=56432
    started=0
    # A port can be taken between the check and the start: try a few.
    for ((attempt = 0; attempt < 5; attempt++)); do
        while bash scripts/pg.sh port-busy "$port"; do
            port=$((port + 1))
            if ((port > 65000)); then
                test_log "no free port found from 56432 up"
                exit 1
            fi
        done
        PG_UP=1
        if CAVRA_PG_FAST=1 bash scripts/pg.sh start "$TMP_DIR/pg" "$port"; then
            started=1
            break
        fi
        bash scripts/pg.sh stop "$TMP_DIR/pg" || true
        port=$((port + 1))
    done
    if [[ $started -ne 1 ]]; then
        test_log "could not start a throwaway PostgreSQL"
        exit 1
    fi
    # scram passwords (pg.sh made them): libpq reads them from here.
    PGPASSFILE=$(bash scripts/pg.sh pgpass "$TMP_DIR/pg")
    export PGPASSFILE
    # The services log in as cavra_app, as in production: it owns nothing
    # and may only read and append (migration 0009). Migrations, and the
    # tests' own checks and tampering, use the owner.
    CAVRA_DATABASE_URL=$(bash scripts/pg.sh app-url "$port")
    CAVRA_TEST_OWNER_DATABASE_URL=$(bash scripts/pg.sh url "$port")
    export CAVRA_DATABASE_URL CAVRA_TEST_OWNER_DATABASE_URL
    export CAVRA_TEST_PG_PORT=$port
    unset CAVRA_DB_ROLE
    test_log "throwaway PostgreSQL on 127.0.0.1:$port in $TMP_DIR"
fi
build/tools/cavra-migrate --dir db/migrations \
    --database-url "${CAVRA_TEST_OWNER_DATABASE_URL:-$CAVRA_DATABASE_URL}"

# 3. Tests.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
rc=0
if [[ -n "${TMP_DIR:-}" ]]; then
    # A store nothing has written to yet: the answers that only exist
    # before the first record (the latest report's 404) are checked here,
    # before any other test writes.
    CAVRA_TEST_EXPECT_EMPTY_STORE=1 ctest --test-dir build-asan \
        --output-on-failure -R '^e2e\.compat$' || rc=$?
fi
ctest --test-dir build-asan --output-on-failure -j2 || rc=$?
if [[ $rc -eq 0 ]]; then
    echo "test.sh: all ctest tests passed (ASan/UBSan build, real PostgreSQL)"
else
    echo "test.sh: tests FAILED (ctest exit status $rc)"
fi

# 3b. The read replica (issue 12): a streaming standby of the throwaway
# cluster (scripts/pg.sh standby), and the read-side tests again with the
# reporting service reading from it (CAVRA_READ_DATABASE_URL). Each read
# waits for the standby to replay the primary's WAL up to every commit
# answered before it, so the tests' write-then-read steps must pass
# unchanged; integration.replica_read loops write-then-read ~1,900 times
# (it skips itself in the run above, without a standby) and checks no
# read fell back to the primary; the standby's own commit count shows the
# reads really went there.
if [[ $PG_UP -eq 1 && "${CAVRA_SKIP_STANDBY_TEST:-0}" != 1 ]]; then
    sb_port=$((port + 1))
    while bash scripts/pg.sh port-busy "$sb_port"; do sb_port=$((sb_port + 1)); done
    if bash scripts/pg.sh standby "$TMP_DIR/pg" "$TMP_DIR/standby" "$sb_port"; then
        sb_commits() {
            psql "$(bash scripts/pg.sh url "$sb_port")" -X -At -c \
                "SELECT xact_commit FROM pg_stat_database WHERE datname = 'cavra'"
        }
        before=$(sb_commits)
        src=0
        CAVRA_READ_DATABASE_URL=$(bash scripts/pg.sh app-url "$sb_port") \
            ctest --test-dir build-asan --output-on-failure \
            -R '^(e2e\.(read_side|report_http)|integration\.replica_read)$' ||
            src=$?
        after=$(sb_commits)
        if [[ $src -eq 0 ]] && ((after - before >= 20)); then
            echo "test.sh: read-side tests passed against the standby ($((after - before)) transactions there)"
        else
            echo "test.sh: read-side tests against the standby FAILED (ctest $src, $((after - before)) transactions on the standby)"
            [[ $rc -ne 0 ]] || rc=1
        fi
    else
        echo "test.sh: could not start the standby"
        [[ $rc -ne 0 ]] || rc=1
    fi
fi

# 4. The docker-compose deployment, run for real with podman (make
# compose-test; images are cached between runs). CAVRA_SKIP_COMPOSE_TEST=1
# skips it on a machine without containers, and says so.
if [[ "${CAVRA_SKIP_COMPOSE_TEST:-0}" == 1 ]]; then
    echo "test.sh: compose test SKIPPED (CAVRA_SKIP_COMPOSE_TEST=1)"
else
    crc=0
    bash scripts/compose_test.sh || crc=$?
    if [[ $crc -ne 0 ]]; then
        echo "test.sh: compose test FAILED (exit status $crc)"
        [[ $rc -ne 0 ]] || rc=$crc
    fi
fi
exit "$rc"
