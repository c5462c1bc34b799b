#!/usr/bin/env bash
# bench.sh -- `make bench`: how the read and write paths scale with the size
# of the store, measured side by side in one run.
#
# What it does (everything on loopback, everything it starts is stopped on
# exit, whatever the exit path):
#   1. installs missing packages (scripts/deps.sh), builds the services, the
#      gateway, cavra-migrate and cavra-verify in ./build (only those
#      targets; log in build/bench/logs/build.log), and bench/bench_http (in
#      ./build when the top-level CMakeLists.txt includes bench/, else in
#      ./build-bench);
#   2. unless CAVRA_BENCH_DATABASE_URL is set, starts a throwaway
#      PostgreSQL in a mktemp folder on a free port (durable settings, plus
#      log_min_duration_statement so slow statements are named), and
#      migrates it;
#   3. starts cavra-ack, cavra-retry, cavra-report (ipc:// sockets in the
#      temporary folder) and cavra-gateway on a free port;
#   4. measures on the (nearly) empty store: reads first (dashboard, evidence
#      stream first page and a plan_id page, trace page (limit=50, as the stream page), retry-plan for one plan
#      and over the whole store, schedule-run with a new schedule each call,
#      /runtime/evidence/verify when that route answers, and the same check
#      by tools/cavra-verify without the RPC deadline), then writes (POST
#      plan and POST acknowledgement at concurrency 1 and 16);
#   5. seeds CAVRA_BENCH_RECORDS (default 100000) plans, delivery attempts
#      and acknowledgements with bench/seed.sql (timed), runs ANALYZE, and
#      times how long the evidence sequencer takes to chain the backlog;
#      then VACUUM ANALYZE, so the measurement sees a settled store (what
#      autovacuum would leave) rather than one full of dead row versions;
#   4b. (after the empty-store phase) holds 5,000 idle connections from one client
#      (127.0.0.2) with bench/bench_idle and times another client's
#      (127.0.0.1) GET /readyz and /healthz: once against the gateway with
#      its default per-client limit (it keeps 256 and closes the rest), once
#      against a second gateway allowed 8192 per client, so all 5,000 stay
#      open while the other client is timed;
#   6. measures the same set again, prints a table of the empty and seeded
#      medians with their ratio, and writes it with every raw line to
#      build/bench/results.txt;
#   5b. write throughput side by side: pgbench one-row INSERT at 32 clients
#      vs acknowledgement POSTs at 64 connections (1,000 seeded plans x their
#      2 providers, and one hot plan), with group commit and with one
#      transaction per request (CAVRA_RPC_GROUP_MAX=1), 3 interleaved
#      rounds; medians and the line "ack/pgbench ratio: R";
#   5c. (throwaway cluster only) reads at 16 connections with the reporting
#      service on the primary, then on a streaming standby (pg.sh standby,
#      CAVRA_READ_DATABASE_URL), TPUT_ROUNDS interleaved rounds, medians;
#   5d. acknowledgement POSTs at 64 connections with 1 and with 2 replicas
#      of cavra-ack (a second process; the gateway restarted with both
#      URLs, comma-separated), TPUT_ROUNDS interleaved rounds, medians;
#   7. (throwaway cluster only) restarts the services with auto_explain and
#      calls each endpoint once more, so every statement slower than
#      CAVRA_BENCH_EXPLAIN_MS gets its EXPLAIN ANALYZE in
#      build/bench/explain.log.
#
# Environment:
#   CAVRA_BENCH_RECORDS        records of each kind to seed (default 20000,
#                              60,000 events; 333333 = 1,000,000 events)
#   CAVRA_BENCH_DATABASE_URL   use this database instead of a throwaway one.
#                              The seeded rows stay: evidence is append-only.
#   CAVRA_BENCH_CHAIN_TIMEOUT  seconds to wait for the sequencer (default 300)
#   CAVRA_BENCH_EXPLAIN_MS     auto_explain threshold (default 200; 0 = skip
#                              the EXPLAIN pass)
#   CAVRA_BENCH_PG_FAST=1      fsync/synchronous_commit off (default: durable)
#   CAVRA_BENCH_BUILD_DIR      build tree of the services (default build)
#   CAVRA_BENCH_CMAKE_ARGS     extra cmake arguments for that tree
#   CAVRA_BENCH_PG_PORT        first port tried for the throwaway cluster
#                              (default 57432)
#   CAVRA_BENCH_READ_CALLS     calls of each read at concurrency 1 (default
#                              200; their p99 is the 3rd slowest)
#   CAVRA_BENCH_RUN_CALLS      schedule-run calls (default 50; each writes a
#                              report)
#   CAVRA_BENCH_TPUT_ROUNDS    rounds of the write-throughput comparison (3)
#   CAVRA_BENCH_TPUT_SECS      seconds of each pgbench run (5)
#   CAVRA_BENCH_TPUT_REQUESTS  acknowledgements per spread run (4000; the
#                              hot-plan runs send half)
#   CAVRA_BENCH_ONLY=scale-out only steps 1-3, the seed (5), 5c and 5d:
#                              the read replica and ack replica figures
#                              (with a small CAVRA_BENCH_RECORDS, minutes)
#   CAVRA_BENCH_ONLY=reads     only steps 1-3, the reads of step 4 (no writes),
#                              the seed (5), the same reads again, the table
#                              and 7: the read figures at 1,000 and at
#                              CAVRA_BENCH_RECORDS * 3 events (about 12 minutes
#                              at 333333 on the loaded 2-core machine)
# Output: build/bench/results.txt (table + raw lines), build/bench/results.json
# (the same figures as JSON), build/bench/explain.log,
# build/bench/logs/ (service and PostgreSQL logs of the last run).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd -P)

RECORDS=${CAVRA_BENCH_RECORDS:-20000}
ONLY=${CAVRA_BENCH_ONLY:-}
READ_CALLS=${CAVRA_BENCH_READ_CALLS:-200}
RUN_CALLS=${CAVRA_BENCH_RUN_CALLS:-50}
CHAIN_TIMEOUT=${CAVRA_BENCH_CHAIN_TIMEOUT:-300}
EXPLAIN_MS=${CAVRA_BENCH_EXPLAIN_MS:-200}
BUILD=${CAVRA_BENCH_BUILD_DIR:-build}
read -r -a CMAKE_EXTRA <<<"${CAVRA_BENCH_CMAKE_ARGS:-}"
OUT=$ROOT/build/bench
P=/runtime/go-pilot/rollback-drill-notifications/acknowledgements/audit-delivery
FEED=/runtime/go-pilot/rollback-drill-notifications
JSON='Content-Type: application/json'
TABLES="evidence_events, escalation_plans, plan_routes, acknowledgements, ack_current,
    delivery_attempts, retry_plans, retry_decisions, report_schedules, report_runs,
    executive_reports, idempotency_keys"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
TMP_DIR=
PG_UP=0
PIDS=()
NAMES=()
CLEANED=0

bench_log() {
    echo "bench.sh: $*" >&2
}

if [[ ! "$RECORDS" =~ ^[0-9]+$ ]] || ((RECORDS < 8 || RECORDS > 10000000)); then
    bench_log "CAVRA_BENCH_RECORDS must be an integer in 8..10000000"
    exit 2
fi
if [[ -n "$ONLY" && "$ONLY" != scale-out && "$ONLY" != reads ]]; then
    bench_log "CAVRA_BENCH_ONLY must be empty (everything), scale-out or reads"
    exit 2
fi
for v in CHAIN_TIMEOUT EXPLAIN_MS; do
    if [[ ! "${!v}" =~ ^[0-9]+$ ]]; then
        bench_log "CAVRA_BENCH_${v} must be a non-negative integer"
        exit 2
    fi
done

# Stops the services we started (TERM, then KILL after 10 s each).
bench_stop_services() {
    local i pid waited
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[i]}" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        waited=0
        while kill -0 "$pid" 2>/dev/null && ((waited < 100)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            bench_log "process $pid ignored TERM for 10 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
    NAMES=()
}

# shellcheck disable=SC2317  # called from a trap
bench_cleanup() {
    local rc=$?
    [[ $CLEANED -eq 0 ]] || return 0
    CLEANED=1
    trap - EXIT INT TERM
    bench_stop_services
    if [[ -n "$TMP_DIR" ]]; then
        mkdir -p "$OUT/logs"
        cp "$TMP_DIR"/*.log "$OUT/logs/" 2>/dev/null || true
        cp "$TMP_DIR/pg/postgres.log" "$OUT/logs/postgres.log" 2>/dev/null || true
        bash scripts/pg.sh teardown "$TMP_DIR" || true
    fi
    exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints the first free port from $1 up.
bench_free_port() {
    local port=$1
    while bash scripts/pg.sh port-busy "$port"; do
        port=$((port + 1))
        if ((port > 65000)); then
            bench_log "no free port found from $1 up"
            return 1
        fi
    done
    echo "$port"
}

bench_now() {
    date +%s.%N
}

# Seconds between two bench_now values, 1 decimal.
bench_secs() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'
}

bench_sql() {
    psql "$CAVRA_DATABASE_URL" -X -q -At -v ON_ERROR_STOP=1 "$@"
}

# psql as the superuser of the throwaway cluster.
bench_sql_admin() {
    psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres \
        -d postgres "$@"
}

bench_tail_logs() {
    local name
    for name in "${NAMES[@]}"; do
        echo "---- $name (last 20 lines) ----" >&2
        tail -n 20 "$TMP_DIR/$name.log" >&2 2>/dev/null || true
    done
}

# bench_start NAME BINARY
bench_start() {
    "$2" </dev/null >>"$TMP_DIR/$1.log" 2>&1 &
    PIDS+=("$!")
    NAMES+=("$1")
}

# bench_restart NAME BINARY [VAR=VALUE...]: restarts the process bench_start
# started as NAME from BINARY with that environment added, and waits (at
# most 15 s) until the gateway answers /readyz again.
bench_restart() {
    local name=$1 bin=$2 i pid
    shift 2
    for ((i = 0; i < ${#NAMES[@]}; i++)); do
        [[ "${NAMES[i]}" == "$name" ]] || continue
        pid=${PIDS[i]}
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        env "$@" "$bin" </dev/null >>"$TMP_DIR/$name.log" 2>&1 &
        PIDS[i]=$!
    done
    for ((i = 0; i < 60; i++)); do
        curl -fsS -o /dev/null --max-time 2 "$GW/readyz" 2>/dev/null && return 0
        sleep 0.25
    done
    bench_log "$name was not ready again within 15 s"
    return 1
}

bench_start_services() {
    local s i j
    for s in ack retry report; do
        bench_start "cavra-$s" "$BUILD/services/$s/cavra-$s"
    done
    bench_start cavra-gateway "$BUILD/gateway/cavra-gateway"
    for ((i = 0; i < 60; i++)); do
        if curl -fsS -o /dev/null --max-time 2 "$GW/readyz" 2>/dev/null; then
            return 0
        fi
        for ((j = 0; j < ${#PIDS[@]}; j++)); do
            if ! kill -0 "${PIDS[j]}" 2>/dev/null; then
                bench_log "${NAMES[j]} exited during start-up"
                bench_tail_logs
                return 1
            fi
        done
        sleep 0.5
    done
    bench_log "the gateway was not ready within 30 s"
    bench_tail_logs
    return 1
}

# Number of evidence events the sequencer has not chained yet.
bench_pending() {
    bench_sql -c "SELECT count(*) FROM evidence_unsequenced"
}

# True when every evidence event has its leaf: only the events above the
# sequencer's floor (every id at or below it has a leaf or never
# committed; docs/evidence.md) are looked up, so a poll stays an index
# range however large the store. (Counting the unsequenced events every
# 0.5 s took about 1 s of a core per poll at a million of them, beside the
# sequencer being timed.)
bench_chained() {
    [[ $(bench_sql -c "SELECT NOT EXISTS (SELECT 1 FROM evidence_events e
        WHERE e.id > coalesce((SELECT id_floor FROM evidence_leaves
                               ORDER BY seq DESC LIMIT 1), 0)
          AND NOT EXISTS (SELECT 1 FROM evidence_leaves l
                          WHERE l.event_id = e.id))") == t ]]
}

# bench_wait_chain LIMIT_SECONDS: waits until every event is chained.
# Prints the seconds it took, or "timeout(N left)".
bench_wait_chain() {
    local limit=$1 t0 deadline
    t0=$(bench_now)
    deadline=$(($(date +%s) + limit))
    while :; do
        if bench_chained; then
            bench_secs "$t0" "$(bench_now)"
            return 0
        fi
        if (($(date +%s) >= deadline)); then
            echo "timeout($(bench_pending) left)"
            return 0
        fi
        sleep 0.5
    done
}

# bench_http NAME ARGS...: runs bench_http, keeps its line in RESULTS[NAME].
declare -A RESULTS=()
RAW_LINES=()
bench_run() {
    local name=$1 line
    shift
    if ! line=$("$BENCH_HTTP" --name "$name" "$@"); then
        bench_log "$name had failures (see above)"
    fi
    [[ -n "$line" ]] || line="$name count=0 failures=? median_ms=nan p90_ms=nan p99_ms=nan max_ms=nan rps=nan"
    echo "  $line" >&2
    RESULTS[$name]=$line
    RAW_LINES+=("$line")
}

# bench_field LINE KEY: the value of KEY=... in a bench_http line.
bench_field() {
    local tok
    for tok in $1; do
        if [[ "$tok" == "$2="* ]]; then
            echo "${tok#*=}"
            return 0
        fi
    done
    echo "-"
}

# bench_post URL BODY: one POST with curl; prints the body (fails on non-2xx).
bench_post() {
    curl -fsS --max-time 120 -X POST "$1" -H "$JSON" -d "$2"
}

# bench_json_str TEXT KEY: the first "KEY":"value" of a JSON text.
bench_json_str() {
    grep -o "\"$2\":\"[^\"]*\"" <<<"$1" | head -n 1 | sed 's/.*:"\(.*\)"/\1/'
}

# bench_record NAME MS FAILURES NOTE: a single timed call as a result line.
bench_record() {
    local line="$1 count=1 failures=$3 median_ms=$2 p90_ms=$2 p99_ms=$2 max_ms=$2 rps=- $4"
    echo "  $line" >&2
    RESULTS[$1]=$line
    RAW_LINES+=("$line")
}

# bench_ms_since T0: milliseconds since a bench_now value.
bench_ms_since() {
    awk -v a="$1" -v b="$(bench_now)" 'BEGIN { printf "%.2f", (b - a) * 1000 }'
}

# Waits (at most $1 s) until no other session of the database is working:
# a request the gateway gave up on may still run in a service (and NNG
# resends a request unanswered after 5 s), which would disturb the next
# measurement.
bench_wait_idle() {
    local limit=$1 i n quiet=0
    for ((i = 0; i < limit * 2; i++)); do
        n=$(bench_sql -c "SELECT count(*) FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
            AND backend_type = 'client backend'
            AND state IN ('active', 'idle in transaction')")
        if [[ "$n" == 0 ]]; then
            quiet=$((quiet + 1))
            ((quiet < 3)) || return 0
        else
            quiet=0
        fi
        sleep 0.5
    done
    bench_log "note: the services were still busy after ${limit} s"
}

# GET /runtime/evidence/verify: a probe first; when it answers 200 within
# 5 s (before NNG's resend), three timed calls; else the probe is the result.
# Then the same verification without the RPC deadline: tools/cavra-verify.
bench_verify() {
    local tag=$1 t0 code ms rc=0
    t0=$(bench_now)
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 120 "$GW/runtime/evidence/verify") ||
        code=000
    ms=$(bench_ms_since "$t0")
    if [[ "$code" == 200 ]] && awk -v m="$ms" 'BEGIN { exit !(m < 5000) }'; then
        bench_run "verify@$tag" --url "$GW/runtime/evidence/verify" \
            --requests 3 --timeout-ms 120000
    else
        bench_record "verify@$tag" "$ms" 1 "(one call: HTTP $code)"
    fi
    bench_wait_idle 300
    t0=$(bench_now)
    "$BUILD/tools/cavra-verify" --database-url "$CAVRA_DATABASE_URL" \
        >"$TMP_DIR/verify-$tag.json" 2>&1 || rc=1
    ms=$(bench_ms_since "$t0")
    bench_record "verify-cli@$tag" "$ms" "$rc" \
        "($(tr -d ' \n' <"$TMP_DIR/verify-$tag.json" | cut -c1-60))"
}

# bench_phase TAG PLAN_ID ACK_URL_FILE: one full measurement set; names are
# <endpoint>@TAG.
bench_phase() {
    local tag=$1 plan=$2 ack_urls=$3
    bench_log "measuring ($tag)"
    bench_wait_idle 120

    # Reads, concurrency 1; enough calls that the p99 is not just the
    # slowest of a handful (20 calls made it the machine's worst hiccup).
    bench_run "dashboard@$tag" --url "$GW$FEED/dashboard" \
        --requests "$READ_CALLS" --warmup 2
    bench_run "stream-page@$tag" --url "$GW$FEED?limit=50" \
        --requests "$READ_CALLS" --warmup 2
    bench_run "stream-plan-page@$tag" --url "$GW$FEED?plan_id=$plan&limit=50" \
        --requests "$READ_CALLS" --warmup 2
    bench_run "trace@$tag" --url "$GW$P/recovery-escalations/$plan/trace?limit=50" \
        --requests "$READ_CALLS" --warmup 2
    bench_run "retry-plan-one@$tag" --url "$GW$P/recovery-escalations/retry-plan" \
        --header "$JSON" --body "{\"generated_by\":\"bench\",\"plan_id\":\"$plan\"}" \
        --requests "$READ_CALLS" --warmup 2
    bench_run "retry-plan-all@$tag" --url "$GW$P/recovery-escalations/retry-plan" \
        --header "$JSON" --body '{"generated_by":"bench"}' \
        --requests 5 --warmup 1
    DECISIONS[$tag]=$(bench_sql -c "SELECT decision_count FROM retry_plans
        WHERE plan_id IS NULL ORDER BY seq DESC LIMIT 1")
    # The trace unpacks every retry plan that names the plan: again, now
    # that the store holds 6 more retry plans over the whole store.
    bench_run "trace-after-retry@$tag" --url "$GW$P/recovery-escalations/$plan/trace?limit=50" \
        --requests "$READ_CALLS" --warmup 2
    bench_run "schedule-run@$tag" \
        --url "$GW$P/recovery-executive-report/schedule-run" --header "$JSON" \
        --body '{"generated_by":"bench","schedule":{"schedule_id":"bench","interval_minutes":1440,"enabled":false}}' \
        --vary-json-field schedule_id --requests "$RUN_CALLS" --warmup 1
    [[ $VERIFY_OK -ne 1 ]] || bench_verify "$tag"
    bench_wait_idle 300
    bench_wait_chain 120 >/dev/null
    [[ "$ONLY" != reads ]] || return 0

    # Writes: every request a new record.
    bench_run "post-plan-c1@$tag" --url "$GW$P/recovery-escalation-plan" \
        --header "$JSON" --body "$PLAN_BODY" --threads 1 --requests 200 --warmup 5
    bench_run "post-plan-c16@$tag" --url "$GW$P/recovery-escalation-plan" \
        --header "$JSON" --body "$PLAN_BODY" --threads 16 --requests 800 --warmup 16
    bench_wait_chain 120 >/dev/null
    bench_run "post-ack-c1@$tag" --url-file "$ack_urls" \
        --header "$JSON" --body "$ACK_BODY" --threads 1 --requests 200 --warmup 5
    bench_run "post-ack-c16@$tag" --url-file "$ack_urls" \
        --header "$JSON" --body "$ACK_BODY" --threads 16 --requests 800 --warmup 16
    CHAIN_AFTER[$tag]=$(bench_wait_chain 120)
}

declare -A DECISIONS=() CHAIN_AFTER=()
PLAN_BODY='{"generated_by":"bench-{{run}}-{{n}}","recovery_slo_minutes":240,"escalation_routes":[{"provider":"slack","severity":"critical","category":"connector-recovery","reason":"webhook connector failed after rollback","slo_breached":true},{"provider":"jira","severity":"warning","category":"retry-execution","failure_count":3}]}'
ACK_BODY='{"provider":"slack","acknowledged_by":"bench","acknowledgement_state":"accepted","external_ref":"CHG-{{n}}","notes":"bench run {{run}}"}'

bench_die_build() {
    tail -n 20 "$OUT/logs/build.log" >&2 || true
    bench_log "could not build $1; see build/bench/logs/build.log"
    exit 1
}

# ---------------------------------------------------------------------------
# 1. Packages and builds.
bash scripts/deps.sh
mkdir -p "$OUT"
mkdir -p "$OUT/logs"
bench_log "building $BUILD (log: build/bench/logs/build.log)"
if ! {
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${CMAKE_EXTRA[@]}" &&
        cmake --build "$BUILD" -j2 --target cavra-ack cavra-retry cavra-report \
            cavra-gateway cavra-migrate cavra-verify cavra-keygen
} >"$OUT/logs/build.log" 2>&1; then
    grep -E 'error|Error' "$OUT/logs/build.log" | head -n 20 >&2 || true
    bench_log "the build of $BUILD failed. To benchmark anyway with a private tree:"
    bench_log "  CAVRA_BENCH_BUILD_DIR=build-bench-stack" \
        "CAVRA_BENCH_CMAKE_ARGS=-DCMAKE_C_FLAGS=-Wno-error make bench"
    exit 1
fi
if grep -Eq '^[[:space:]]*add_subdirectory\(bench\)' CMakeLists.txt; then
    cmake --build "$BUILD" -j2 --target bench_http bench_idle >>"$OUT/logs/build.log" 2>&1 ||
        bench_die_build bench_http
    BENCH_HTTP=$ROOT/$BUILD/bench/bench_http
    BENCH_IDLE=$ROOT/$BUILD/bench/bench_idle
else
    {
        cmake -S bench -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
            cmake --build build-bench -j2
    } >>"$OUT/logs/build.log" 2>&1 || bench_die_build bench_http
    BENCH_HTTP=$ROOT/build-bench/bench_http
    BENCH_IDLE=$ROOT/build-bench/bench_idle
fi

# 2. Database.
TMP_DIR=$(mktemp -d /tmp/cavra-bench.XXXXXX)
chmod 755 "$TMP_DIR" # the postgres user must traverse it
PG_PORT=
PG_MODE="caller's CAVRA_BENCH_DATABASE_URL"
if [[ -n "${CAVRA_BENCH_DATABASE_URL:-}" ]]; then
    export CAVRA_DATABASE_URL=$CAVRA_BENCH_DATABASE_URL
    bench_log "using CAVRA_BENCH_DATABASE_URL; the seeded rows will stay there"
else
    started=0
    PG_PORT=${CAVRA_BENCH_PG_PORT:-57432}
    for ((attempt = 0; attempt < 5; attempt++)); do
        PG_PORT=$(bench_free_port "$PG_PORT")
        PG_UP=1
        if CAVRA_PG_FAST=${CAVRA_BENCH_PG_FAST:-0} bash scripts/pg.sh start "$TMP_DIR/pg" "$PG_PORT"; then
            started=1
            break
        fi
        bash scripts/pg.sh stop "$TMP_DIR/pg" || true
        PG_PORT=$((PG_PORT + 1))
    done
    if [[ $started -ne 1 ]]; then
        bench_log "could not start a throwaway PostgreSQL"
        exit 1
    fi
    CAVRA_DATABASE_URL=$(bash scripts/pg.sh url "$PG_PORT")
    PGPASSFILE=$(bash scripts/pg.sh pgpass "$TMP_DIR/pg")
    export CAVRA_DATABASE_URL PGPASSFILE
    PG_MODE="throwaway cluster 127.0.0.1:$PG_PORT"
    if [[ "${CAVRA_BENCH_PG_FAST:-0}" == 1 ]]; then
        PG_MODE+=" (fsync off)"
    else
        PG_MODE+=" (default durable settings)"
    fi
    slow_ms=$EXPLAIN_MS
    ((slow_ms > 0)) || slow_ms=200
    bench_sql_admin -c "ALTER SYSTEM SET log_min_duration_statement = '${slow_ms}ms'" \
        -c "ALTER SYSTEM SET log_parameter_max_length = 64" \
        -c "SELECT pg_reload_conf()" >/dev/null
fi
"$BUILD/tools/cavra-migrate" --dir db/migrations
PG_VERSION=$(bench_sql -c "SHOW server_version")

# 3. Services and gateway.
export CAVRA_ACK_URL=ipc://$TMP_DIR/ack.ipc
export CAVRA_RETRY_URL=ipc://$TMP_DIR/retry.ipc
export CAVRA_REPORT_URL=ipc://$TMP_DIR/report.ipc
export CAVRA_GATEWAY_HOST=127.0.0.1
# Signed RPCs, as in production: the gateway's key and the principals.
"$BUILD/tools/cavra-keygen" gateway "$TMP_DIR/gateway.key" admin --delegate \
    >"$TMP_DIR/principals"
export CAVRA_PRINCIPALS_FILE=$TMP_DIR/principals
export CAVRA_RPC_KEY_FILE=$TMP_DIR/gateway.key
CAVRA_GATEWAY_PORT=$(bench_free_port 58000)
export CAVRA_GATEWAY_PORT
GW=http://127.0.0.1:$CAVRA_GATEWAY_PORT
bench_start_services
bench_log "stack up: gateway $GW, database $PG_MODE"

VERIFY_OK=0
if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 120 "$GW/runtime/evidence/verify") == 200 ]]; then
    VERIFY_OK=1
fi
if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X POST -H "$JSON" -d '{}' \
    "$GW$P/recovery-executive-report/schedule-run") != 201 ]]; then
    bench_log "note: schedule-run does not answer 201 yet; its lines will show failures"
fi

# 4. The (nearly) empty store: one plan with failed deliveries for the
# retry-plan, trace and stream-page measurements, and 64 plans to spread
# the acknowledgements over.
out=$(bench_post "$GW$P/recovery-escalation-plan" "${PLAN_BODY//\{\{n\}\}/0}")
EMPTY_PLAN=$(bench_json_str "$out" plan_id)
bench_post "$GW$P/recovery-escalations/$EMPTY_PLAN/delivery-attempts" \
    '{"provider":"slack","success":false,"status_code":503}' >/dev/null
bench_post "$GW$P/recovery-escalations/$EMPTY_PLAN/delivery-attempts" \
    '{"provider":"jira","success":false,"status_code":429}' >/dev/null
: >"$TMP_DIR/ack-urls-empty.txt"
for ((i = 1; i <= 64; i++)); do
    out=$(bench_post "$GW$P/recovery-escalation-plan" "${PLAN_BODY//\{\{n\}\}/$i}")
    echo "$GW$P/recovery-escalations/$(bench_json_str "$out" plan_id)/acknowledgements" \
        >>"$TMP_DIR/ack-urls-empty.txt"
done
# About 1,000 evidence events in all for the first phase (the read
# figures "at 1,000 events"): 3 events per seeded record.
SMALL_RECORDS=$(( (1000 - $(bench_sql -c "SELECT count(*) FROM evidence_events")) / 3 ))
((SMALL_RECORDS >= 8)) || SMALL_RECORDS=8
bench_sql -v records="$SMALL_RECORDS" -f bench/seed.sql >/dev/null
bench_wait_chain "$CHAIN_TIMEOUT" >/dev/null
bench_sql -c "VACUUM ANALYZE $TABLES"
EMPTY_EVENTS=$(bench_sql -c "SELECT count(*) FROM evidence_events")
[[ "$ONLY" == scale-out ]] || bench_phase 1k "$EMPTY_PLAN" "$TMP_DIR/ack-urls-empty.txt"

# 4b. Idle connections: one client holds 5,000, another is timed.
bench_idle_run() {
    local name=$1 line
    shift
    if ! line=$("$BENCH_IDLE" --name "$name" "$@"); then
        bench_log "$name had failures"
    fi
    [[ -n "$line" ]] || line="$name failures=?"
    echo "  $line" >&2
    IDLE_LINES+=("$line")
    RAW_LINES+=("$line")
}
IDLE_LINES=()
if [[ -z "$ONLY" ]]; then
bench_log "idle connections: 5000 held by 127.0.0.2, 127.0.0.1 timed"
bench_idle_run idle-readyz --port "$CAVRA_GATEWAY_PORT" --idle 5000 --path /readyz --requests 200
bench_idle_run idle-readyz-partial --port "$CAVRA_GATEWAY_PORT" --idle 5000 --partial \
    --path /readyz --requests 200
bench_idle_run idle-healthz --port "$CAVRA_GATEWAY_PORT" --idle 5000 --path /healthz --requests 200
# A second gateway (same services) that lets one client keep all 5,000.
IDLE_PORT=$(bench_free_port $((CAVRA_GATEWAY_PORT + 1)))
CAVRA_GATEWAY_PORT=$IDLE_PORT CAVRA_GATEWAY_PER_IP_CONNECTIONS=8192 \
    bench_start cavra-gateway-idle "$BUILD/gateway/cavra-gateway"
for ((i = 0; i < 60; i++)); do
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$IDLE_PORT/readyz" 2>/dev/null && break
    sleep 0.5
done
bench_idle_run idle-readyz-all-held --port "$IDLE_PORT" --idle 5000 --path /readyz --requests 200
bench_idle_run idle-healthz-all-held --port "$IDLE_PORT" --idle 5000 --path /healthz --requests 200
fi

# 5. Seed, ANALYZE, sequencer catch-up, VACUUM ANALYZE.
bench_log "seeding $RECORDS records of each kind"
t0=$(bench_now)
bench_sql -v records="$RECORDS" -f bench/seed.sql >/dev/null
SEED_SECS=$(bench_secs "$t0" "$(bench_now)")
# The sequencer starts on the backlog as soon as the seed commits; the
# catch-up time counts from here (ANALYZE runs meanwhile).
t_chain=$(bench_now)
SEED_PENDING=$(bench_sql -c "SELECT count(*) FROM evidence_events WHERE request_id = 'bench-seed'")
bench_log "seeded in ${SEED_SECS} s; waiting for the sequencer to chain the" \
    "$SEED_PENDING seeded events (limit ${CHAIN_TIMEOUT} s)"
t0=$(bench_now)
bench_sql -c "ANALYZE $TABLES"
ANALYZE_SECS=$(bench_secs "$t0" "$(bench_now)")
CHAIN_LEFT=$(bench_wait_chain "$CHAIN_TIMEOUT")
if [[ "$CHAIN_LEFT" == timeout* ]]; then
    CHAIN_NOTE="did not finish within ${CHAIN_TIMEOUT} s: $CHAIN_LEFT"
else
    CHAIN_SECS=$(bench_secs "$t_chain" "$(bench_now)")
    CHAIN_NOTE="${CHAIN_SECS} s for $SEED_PENDING seeded events ($(awk -v n="$SEED_PENDING" -v s="$CHAIN_SECS" \
        'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }') events/s), counted from the seed's commit"
fi
bench_log "sequencer: $CHAIN_NOTE"
t0=$(bench_now)
bench_sql -c "VACUUM ANALYZE $TABLES"
VACUUM_SECS=$(bench_secs "$t0" "$(bench_now)")
TOTAL_EVENTS=$(bench_sql -c "SELECT count(*) FROM evidence_events")

# A seeded plan whose deliveries end in failures, and 1000 seeded plans
# that route to slack for the acknowledgements.
SEED_PLAN=$(bench_sql -c "SELECT plan_id FROM delivery_attempts WHERE request_id = 'bench-seed'
    GROUP BY plan_id, provider HAVING bool_and(NOT success) ORDER BY plan_id DESC LIMIT 1")
bench_sql -c "SELECT '$GW$P/recovery-escalations/' || plan_id || '/acknowledgements'
    FROM escalation_plans WHERE generated_by = 'bench-seed' AND 'slack' = ANY (providers)
    ORDER BY seq DESC LIMIT 1000" >"$TMP_DIR/ack-urls-seeded.txt"
TAG=$RECORDS
[[ "$ONLY" == scale-out ]] || bench_phase "$TAG" "$SEED_PLAN" "$TMP_DIR/ack-urls-seeded.txt"

# 5b. Write throughput, side by side in one run: pgbench's one-row INSERT
# at 32 clients on the same PostgreSQL, then acknowledgement POSTs with 64
# connections through the gateway (signed RPC, durable commit with the
# evidence row): spread over 1,000 seeded plans x their 2 routed providers,
# and all to one hot plan and provider. Each with the ack service's group
# commit (default CAVRA_RPC_GROUP_MAX) and with one transaction per
# request (CAVRA_RPC_GROUP_MAX=1, the "before"). TPUT_ROUNDS rounds,
# interleaved, so noise hits every configuration alike; medians reported.
PGBENCH=$( (. scripts/pg.sh && d=$(cavra_pg_bindir 2>/dev/null) && [[ -x "$d/pgbench" ]] && echo "$d/pgbench") ||
    command -v pgbench || true)
TPUT_ROUNDS=${CAVRA_BENCH_TPUT_ROUNDS:-3}
TPUT_SECS=${CAVRA_BENCH_TPUT_SECS:-5}
TPUT_REQUESTS=${CAVRA_BENCH_TPUT_REQUESTS:-4000}
declare -A TPUT=()
ACK_TPUT_BODY='{"provider":"{{line}}","acknowledged_by":"bench","acknowledgement_state":"accepted","external_ref":"CHG-{{n}}","notes":"bench run {{run}}"}'

# Restarts only cavra-ack with CAVRA_RPC_GROUP_MAX=$1 and waits for /readyz.
bench_restart_ack() {
    bench_restart cavra-ack "$BUILD/services/ack/cavra-ack" "CAVRA_RPC_GROUP_MAX=$1"
}

# bench_pgbench ROUND: one pgbench run; keeps its tps.
bench_pgbench() {
    local out tps
    if [[ -z "$PGBENCH" ]]; then
        TPUT[pgbench#$1]=nan
        return 0
    fi
    out=$("$PGBENCH" -n -c 32 -j 2 -T "$TPUT_SECS" -f "$TMP_DIR/pgbench-insert.sql" \
        "$CAVRA_DATABASE_URL" 2>&1) || bench_log "pgbench failed: $(tail -n 3 <<<"$out")"
    tps=$(grep -o 'tps = [0-9.]*' <<<"$out" | head -n 1 | cut -d' ' -f3)
    tps=$(awk -v t="${tps:-nan}" 'BEGIN { if (t + 0 > 0) printf "%.1f", t; else print "nan" }')
    TPUT[pgbench#$1]=$tps
    RAW_LINES+=("pgbench-insert-c32#$1 tps=${tps:-nan} clients=32 seconds=$TPUT_SECS")
    echo "  pgbench-insert-c32#$1 tps=${tps:-nan}" >&2
}

# bench_median V...: the median of numbers (nan when none).
bench_median() {
    printf '%s\n' "$@" | { grep -E '^[0-9.]+$' || true; } | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_tput_median NAME FIELD: median of FIELD over NAME#1..ROUNDS.
bench_tput_median() {
    local r vals=()
    for ((r = 1; r <= TPUT_ROUNDS; r++)); do
        vals+=("$(bench_field "${RESULTS[$1#$r]:-}" "$2")")
    done
    bench_median "${vals[@]}"
}

[[ -n "$ONLY" ]] ||
    bench_log "write throughput: pgbench vs acknowledgement POSTs, $TPUT_ROUNDS rounds"
if [[ -z "$PGBENCH" ]]; then
    bench_log "pgbench not found (Debian: postgresql-15); the ratio line will say nan"
fi
bench_sql -c "CREATE TABLE IF NOT EXISTS bench_pgbench_insert (id bigserial PRIMARY KEY, v text NOT NULL)" 2>/dev/null ||
    bench_log "note: cannot create bench_pgbench_insert (needs CREATE on the database)"
echo "INSERT INTO bench_pgbench_insert (v) VALUES ('bench');" >"$TMP_DIR/pgbench-insert.sql"
bench_sql -c "SELECT '$GW$P/recovery-escalations/' || r.plan_id || '/acknowledgements ' || r.provider
    FROM (SELECT plan_id FROM escalation_plans WHERE generated_by = 'bench-seed'
          ORDER BY seq DESC LIMIT 1000) p JOIN plan_routes r USING (plan_id)
    ORDER BY r.plan_id, r.position" >"$TMP_DIR/ack-urls-spread.txt"
head -n 1 "$TMP_DIR/ack-urls-spread.txt" >"$TMP_DIR/ack-urls-hot.txt"
SPREAD_PAIRS=$(wc -l <"$TMP_DIR/ack-urls-spread.txt")
WRITE_ROUNDS=$TPUT_ROUNDS
[[ -z "$ONLY" ]] || WRITE_ROUNDS=0
for ((round = 1; round <= WRITE_ROUNDS; round++)); do
    bench_wait_chain 120 >/dev/null
    bench_wait_idle 60
    bench_pgbench "$round"
    for mode in single group; do
        if [[ $mode == single ]]; then bench_restart_ack 1; else bench_restart_ack 32; fi
        bench_run "ack-c64-spread-$mode#$round" --url-file "$TMP_DIR/ack-urls-spread.txt" \
            --header "$JSON" --body "$ACK_TPUT_BODY" --threads 64 \
            --requests "$TPUT_REQUESTS" --warmup 128
        bench_run "ack-c64-hot-$mode#$round" --url-file "$TMP_DIR/ack-urls-hot.txt" \
            --header "$JSON" --body "$ACK_TPUT_BODY" --threads 64 \
            --requests "$((TPUT_REQUESTS / 2))" --warmup 64
    done
done
((WRITE_ROUNDS == 0)) || bench_restart_ack "${CAVRA_RPC_GROUP_MAX:-32}"
TPUT_CHAIN=$(bench_wait_chain 300)
PGBENCH_TPS=$(bench_median $(for ((r = 1; r <= TPUT_ROUNDS; r++)); do echo "${TPUT[pgbench#$r]:-nan}"; done))
for key in spread-group spread-single hot-group hot-single; do
    TPUT[$key.rps]=$(bench_tput_median "ack-c64-$key" rps)
    TPUT[$key.p99]=$(bench_tput_median "ack-c64-$key" p99_ms)
    TPUT[$key.med]=$(bench_tput_median "ack-c64-$key" median_ms)
    TPUT[$key.fail]=$(bench_tput_median "ack-c64-$key" failures)
    TPUT[$key.ratio]=$(awk -v a="${TPUT[$key.rps]}" -v b="$PGBENCH_TPS" \
        'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "nan" }')
done

# 5c. Read throughput with and without a streaming standby (throwaway
# cluster only): 16 connections on the dashboard, a trace and the stream's
# first page, first with the reporting service reading the primary, then
# with CAVRA_READ_DATABASE_URL on a standby made by pg_basebackup (each
# read first waits for the standby to replay the primary's WAL position).
# On one machine the standby competes for the same cores: this shows the
# cost of the freshness wait, not the gain of a second host.
# bench_restart_svc NAME [VAR=VALUE...]: restarts cavra-NAME with that
# environment and waits for /readyz.
bench_restart_svc() {
    local name=$1
    shift
    bench_restart "cavra-$name" "$BUILD/services/$name/cavra-$name" "$@"
}
# bench_primary_commits: committed transactions in the primary's database.
bench_primary_commits() {
    bench_sql -c "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
}
declare -A PRIMARY_TX=()
READ_MODES=()
READ_FALLBACKS=-
if [[ $PG_UP -eq 1 && "$ONLY" != reads ]]; then
    SB_PORT=$(bench_free_port $((PG_PORT + 1)))
    READ_MODES=(primary)
    if bash scripts/pg.sh standby "$TMP_DIR/pg" "$TMP_DIR/standby" "$SB_PORT" >&2; then
        READ_MODES+=(standby)
    else
        bench_log "could not start a standby; reads measured on the primary only"
    fi
    bench_log "reads at 16 connections: ${READ_MODES[*]}, $TPUT_ROUNDS rounds"
    for ((round = 1; round <= TPUT_ROUNDS; round++)); do
        for mode in "${READ_MODES[@]}"; do
            if [[ $mode == standby ]]; then
                bench_restart_svc report \
                    "CAVRA_READ_DATABASE_URL=$(bash scripts/pg.sh url "$SB_PORT")"
            elif [[ ${#READ_MODES[@]} -gt 1 ]]; then
                bench_restart_svc report
            fi
            bench_wait_idle 60
            sleep 2 # every backend's statistics flushed (at most 1 s late)
            c0=$(bench_primary_commits)
            bench_run "read-dashboard-c16-$mode#$round" --url "$GW$FEED/dashboard" \
                --threads 16 --requests 96 --warmup 16
            bench_run "read-trace-c16-$mode#$round" --url "$GW$P/recovery-escalations/$SEED_PLAN/trace?limit=50" \
                --threads 16 --requests 400 --warmup 16
            bench_run "read-stream-c16-$mode#$round" --url "$GW$FEED?limit=50" \
                --threads 16 --requests 800 --warmup 16
            sleep 2
            c1=$(bench_primary_commits)
            # Transactions on the primary per read (warm-ups included): 1
            # plus background work on the primary alone; on the standby,
            # the WAL position queries (one serves every read queued
            # before it) plus the same background.
            n=48
            for ep in dashboard trace stream; do
                k=$(bench_field "${RESULTS[read-$ep-c16-$mode#$round]}" count)
                [[ "$k" =~ ^[0-9]+$ ]] || k=0
                n=$((n + k))
            done
            PRIMARY_TX[$mode#$round]=$(awk -v c="$((c1 - c0))" -v n="$n" 'BEGIN { printf "%.2f", c / n }')
        done
    done
    [[ ${#READ_MODES[@]} -lt 2 ]] || bench_restart_svc report
    # Reads the standby sent back to the primary (it lagged longer than
    # CAVRA_READ_MAX_LAG_MS, or failed): the reporting service logs them.
    READ_FALLBACKS=$({ grep -o 'CV-READ-REPLICA.* [0-9]* read(s) ran on the primary' \
        "$TMP_DIR/cavra-report.log" || true; } | awk '{ for (i = 1; i < NF; i++) if ($(i + 1) == "read(s)") n += $i }
        END { print n + 0 }')
fi
for mode in "${READ_MODES[@]}"; do
    TPUT[primary-tx-$mode]=$(bench_median $(for ((r = 1; r <= TPUT_ROUNDS; r++)); do echo "${PRIMARY_TX[$mode#$r]:-nan}"; done))
done
for ep in dashboard trace stream; do
    for mode in "${READ_MODES[@]}"; do
        for f in rps median_ms p99_ms failures; do
            TPUT[read-$ep-$mode.$f]=$(bench_tput_median "read-$ep-c16-$mode" "$f")
        done
    done
done

# 5d. Acknowledgement throughput with 1 and 2 replicas of cavra-ack: a
# second process on its own socket, and the gateway restarted with one
# URL or both (CAVRA_ACK_URL, comma-separated), 64 connections spread over
# the seeded plans, TPUT_ROUNDS interleaved rounds, medians. On this
# machine both replicas share the same cores and PostgreSQL: the figure
# shows what a second process buys when one service process is the
# bottleneck, not what a second host would.
# bench_restart_gateway [VAR=VALUE...]: restarts the gateway with that
# environment and waits for /readyz.
bench_restart_gateway() {
    bench_restart cavra-gateway "$BUILD/gateway/cavra-gateway" "$@"
}
# bench_pid NAME: the pid of a process bench_start started.
bench_pid() {
    local i
    for ((i = 0; i < ${#NAMES[@]}; i++)); do
        [[ "${NAMES[i]}" != "$1" ]] || echo "${PIDS[i]}"
    done
}
# bench_cpu_ticks PID: user + system CPU time of a process, in clock ticks.
bench_cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
ACK2_URL=ipc://$TMP_DIR/ack2.ipc
ACK_REPLICAS=(1 2)
[[ "$ONLY" != reads ]] || ACK_REPLICAS=()
ACK_CPU1=0
ACK_CPU2=0
ACK_CPU_NOTE=
if ((${#ACK_REPLICAS[@]} > 0)); then
CAVRA_ACK_URL=$ACK2_URL bench_start cavra-ack2 "$BUILD/services/ack/cavra-ack"
bench_log "acknowledgements with 1 and 2 cavra-ack replicas, $TPUT_ROUNDS rounds"
for ((round = 1; round <= TPUT_ROUNDS; round++)); do
    for n in "${ACK_REPLICAS[@]}"; do
        if [[ $n == 1 ]]; then
            bench_restart_gateway "CAVRA_ACK_URL=$CAVRA_ACK_URL"
        else
            bench_restart_gateway "CAVRA_ACK_URL=$CAVRA_ACK_URL,$ACK2_URL"
        fi
        bench_wait_chain 120 >/dev/null
        bench_wait_idle 60
        a1=$(bench_cpu_ticks "$(bench_pid cavra-ack)")
        a2=$(bench_cpu_ticks "$(bench_pid cavra-ack2)")
        bench_run "ack-c64-replicas$n#$round" --url-file "$TMP_DIR/ack-urls-spread.txt" \
            --header "$JSON" --body "$ACK_TPUT_BODY" --threads 64 \
            --requests "$TPUT_REQUESTS" --warmup 128
        if [[ $n == 2 ]]; then
            # Both replicas must have served: their CPU time while both ran.
            ACK_CPU1=$((ACK_CPU1 + $(bench_cpu_ticks "$(bench_pid cavra-ack)") - a1))
            ACK_CPU2=$((ACK_CPU2 + $(bench_cpu_ticks "$(bench_pid cavra-ack2)") - a2))
        fi
    done
done
TICKS=$(getconf CLK_TCK)
ACK_CPU_NOTE="CPU of the replicas during the 2-replica runs: cavra-ack $(awk -v t="$ACK_CPU1" -v h="$TICKS" 'BEGIN { printf "%.1f", t / h }') s, second cavra-ack $(awk -v t="$ACK_CPU2" -v h="$TICKS" 'BEGIN { printf "%.1f", t / h }') s"
bench_log "$ACK_CPU_NOTE"
bench_restart_gateway
fi
for n in "${ACK_REPLICAS[@]}"; do
    for f in rps median_ms p99_ms failures; do
        TPUT[replicas$n.$f]=$(bench_tput_median "ack-c64-replicas$n" "$f")
    done
done
TPUT[replicas.ratio]=$(awk -v a="${TPUT[replicas2.rps]:-nan}" -v b="${TPUT[replicas1.rps]:-nan}" \
    'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "nan" }')

# 6. The table.
mkdir -p "$OUT"
{
    echo "CAVRA Recovery benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "command:   ${ONLY:+CAVRA_BENCH_ONLY=$ONLY }CAVRA_BENCH_RECORDS=$RECORDS make bench   (scripts/bench.sh)"
    echo "commit:    $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
    echo "machine:   $(nproc) CPUs; load average at the start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "database:  PostgreSQL $PG_VERSION, $PG_MODE"
    echo "services:  $BUILD (RelWithDebInfo), default CAVRA_DB_WORKERS/CAVRA_RPC_CONTEXTS/CAVRA_GATEWAY_THREADS"
    echo "store:     '1k' = $EMPTY_EVENTS evidence events; '$TAG' = $RECORDS seeded plans (2 routes each),"
    echo "           $RECORDS delivery attempts and $RECORDS acknowledgements, $TOTAL_EVENTS evidence events in all"
    echo "seed:      ${SEED_SECS} s (bench/seed.sql), ANALYZE ${ANALYZE_SECS} s, VACUUM ANALYZE ${VACUUM_SECS} s"
    echo "sequencer: chained the seeded backlog in $CHAIN_NOTE"
    echo "           after the 1000 acknowledgement writes of each phase, the rest of the backlog took:"
    echo "           1k ${CHAIN_AFTER[1k]:--} s, $TAG ${CHAIN_AFTER[$TAG]:--} s"
    echo "retry plan over the whole store: ${DECISIONS[1k]:--} decisions (1k), ${DECISIONS[$TAG]:--} decisions ($TAG)"
    echo "trace-after-retry: the same trace after the 6 retry-plan-all calls (each retry plan naming the plan is read)"
    echo
    printf '%-18s %5s %5s %9s %9s %9s %9s %7s %9s %9s %9s\n' \
        endpoint conc n "1k_med" "1k_p99" "${TAG}_med" "${TAG}_p99" ratio "p99ratio" "${TAG}_max" "${TAG}_rps"
    printf '%-18s %5s %5s %9s %9s %9s %9s %7s %9s %9s %9s\n' \
        "" "" "" "(ms)" "(ms)" "(ms)" "(ms)" "" "" "(ms)" ""
    for ep in dashboard stream-page stream-plan-page trace retry-plan-one retry-plan-all \
        trace-after-retry schedule-run verify verify-cli post-plan-c1 post-plan-c16 post-ack-c1 post-ack-c16; do
        a=${RESULTS[$ep@1k]:-}
        b=${RESULTS[$ep@$TAG]:-}
        [[ -n "$a" || -n "$b" ]] || continue
        conc=1
        [[ "$ep" != *-c16 ]] || conc=16
        am=$(bench_field "$a" median_ms)
        bm=$(bench_field "$b" median_ms)
        ratio=$(awk -v a="$am" -v b="$bm" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1fx", b / a; else print "-" }')
        ap=$(bench_field "$a" p99_ms)
        bp=$(bench_field "$b" p99_ms)
        pratio=$(awk -v a="$ap" -v b="$bp" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1fx", b / a; else print "-" }')
        printf '%-18s %5s %5s %9s %9s %9s %9s %7s %9s %9s %9s\n' "$ep" "$conc" \
            "$(bench_field "$b" count)" "$am" "$ap" "$bm" "$bp" "$ratio" "$pratio" \
            "$(bench_field "$b" max_ms)" "$(bench_field "$b" rps)"
    done
    if [[ $VERIFY_OK -ne 1 ]]; then
        echo "(GET /runtime/evidence/verify did not answer 200: not measured)"
    fi
    if ((WRITE_ROUNDS > 0)); then
    echo
    echo "Write throughput, $TPUT_ROUNDS interleaved rounds, medians (pgbench -T $TPUT_SECS; bench_http"
    echo "$TPUT_REQUESTS requests per ack run, half for hot): spread = $SPREAD_PAIRS (plan, provider) pairs"
    echo "of 1000 seeded plans; hot = one plan and provider; group = CAVRA_RPC_GROUP_MAX 32 (default),"
    echo "single = CAVRA_RPC_GROUP_MAX=1 (one transaction per request, as before group commit):"
    printf '  %-34s %10s %9s %9s %8s %9s\n' figure "per_s" "med_ms" "p99_ms" "fails" "x_pgbench"
    printf '  %-34s %10s %9s %9s %8s %9s\n' "pgbench one-row INSERT, 32 clients" "$PGBENCH_TPS" - - - 1.00
    for key in spread-group spread-single hot-group hot-single; do
        printf '  %-34s %10s %9s %9s %8s %9s\n' "ack POST c64 $key" "${TPUT[$key.rps]}" \
            "${TPUT[$key.med]}" "${TPUT[$key.p99]}" "${TPUT[$key.fail]}" "${TPUT[$key.ratio]}"
    done
    echo "ack/pgbench ratio: ${TPUT[spread-group.ratio]}"
    echo "  (spread over many plans, group commit; one transaction per request: ${TPUT[spread-single.ratio]} x;"
    echo "  one hot plan: ${TPUT[hot-group.ratio]} x; target >= 1.0 x and ack p99 <= 20 ms)"
    echo "  sequencer backlog after the throughput rounds chained in: $TPUT_CHAIN s"
    fi
    if [[ ${#READ_MODES[@]} -gt 0 ]]; then
        echo
        echo "Reads at 16 connections, reporting service on the primary vs on a streaming standby"
        echo "(CAVRA_READ_DATABASE_URL; same machine, so the standby shares the 2 cores;"
        echo "$TPUT_ROUNDS interleaved rounds, medians; reads the standby sent back to the primary,"
        echo "as cavra-report logged them (CV-READ-REPLICA): $READ_FALLBACKS):"
        printf '  %-22s %10s %10s %10s %10s %8s\n' read mode rps med_ms p99_ms fails
        for ep in dashboard trace stream; do
            for mode in "${READ_MODES[@]}"; do
                printf '  %-22s %10s %10s %10s %10s %8s\n' "$ep" "$mode" \
                    "${TPUT[read-$ep-$mode.rps]}" "${TPUT[read-$ep-$mode.median_ms]}" \
                    "${TPUT[read-$ep-$mode.p99_ms]}" "${TPUT[read-$ep-$mode.failures]}"
            done
            if [[ ${#READ_MODES[@]} -gt 1 && $ep == stream ]]; then
                echo "  primary transactions per read (median): reading the primary ${TPUT[primary-tx-primary]},"
                echo "  reading the standby ${TPUT[primary-tx-standby]:-nan} (its WAL position queries + background work)"
            fi
            if [[ ${#READ_MODES[@]} -gt 1 ]]; then
                echo "  read $ep standby/primary: $(awk -v a="${TPUT[read-$ep-standby.rps]}" \
                    -v b="${TPUT[read-$ep-primary.rps]}" \
                    'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "nan" }') x"
            fi
        done
    fi
    if ((${#ACK_REPLICAS[@]} > 0)); then
    echo
    echo "Acknowledgement POSTs at 64 connections spread over $SPREAD_PAIRS (plan, provider) pairs,"
    echo "with 1 and 2 cavra-ack replicas (the gateway given both URLs), $TPUT_ROUNDS interleaved"
    echo "rounds, medians; same machine and PostgreSQL for both:"
    printf '  %-22s %10s %10s %10s %8s\n' replicas rps med_ms p99_ms fails
    for n in "${ACK_REPLICAS[@]}"; do
        printf '  %-22s %10s %10s %10s %8s\n' "ack POST c64, $n" "${TPUT[replicas$n.rps]}" \
            "${TPUT[replicas$n.median_ms]}" "${TPUT[replicas$n.p99_ms]}" "${TPUT[replicas$n.failures]}"
    done
    echo "ack 2 replicas/1 replica: ${TPUT[replicas.ratio]} x"
    echo "  ($ACK_CPU_NOTE)"
    fi
    if ((${#IDLE_LINES[@]} > 0)); then
    echo
    echo "Idle connections (bench/bench_idle): 127.0.0.2 opens 5000 connections and sends"
    echo "nothing (partial=1: half a request line); held = how many the gateway kept open"
    echo "(default per-client limit 256; *-all-held: a gateway allowed 8192 per client);"
    echo "127.0.0.1 meanwhile sends 200 GETs, each on a new connection, timed to the last byte:"
    printf '  %s\n' "${IDLE_LINES[@]}"
    fi
    echo
    echo "Medians of n timed requests after a short warm-up; ratio = $TAG median / 1k median,"
    echo "p99ratio = $TAG p99 / 1k p99 (target: p99 <= 20 ms and <= 2x at 1,000,000 events)."
    echo "Reads and single-plan calls run at concurrency 1; c16 = 16 client threads."
    echo "Any failures are counted in the raw lines below (failures=)."
    echo "verify = GET /runtime/evidence/verify (one timed probe when it needs more than 5 s or"
    echo "fails); verify-cli = the same chain check by tools/cavra-verify, without the RPC deadline."
    echo
    echo "raw (bench/bench_http):"
    printf '  %s\n' "${RAW_LINES[@]}"
} >"$OUT/results.txt"

# 6b. The same as JSON (build/bench/results.json): every raw line as an
# object of its key=value fields (numbers where they parse), plus the
# throughput summary and the run's settings.
bench_json_line() {
    awk '{
        printf "{\"name\":\"%s\"", $1
        for (i = 2; i <= NF; i++) {
            k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v)
            if (k == $i) continue
            gsub(/["\\]/, "", v)
            if (v ~ /^-?[0-9]+(\.[0-9]+)?$/) printf ",\"%s\":%s", k, v
            else printf ",\"%s\":\"%s\"", k, v
        }
        printf "}"
    }' <<<"$1"
}
bench_json_num() {
    if [[ "$1" =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; then echo "$1"; else echo null; fi
}
{
    echo "{"
    echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
    echo "  \"commit\": \"$(git rev-parse --short HEAD 2>/dev/null || echo '?')\","
    echo "  \"cpus\": $(nproc), \"records\": $RECORDS, \"events\": $TOTAL_EVENTS,"
    echo "  \"small_events\": $EMPTY_EVENTS, \"postgresql\": \"$PG_VERSION\","
    echo "  \"throughput\": {"
    echo "    \"rounds\": $TPUT_ROUNDS, \"pgbench_insert_c32_tps\": $(bench_json_num "$PGBENCH_TPS"),"
    for key in spread-group spread-single hot-group hot-single; do
        echo "    \"ack_c64_$key\": {\"rps\": $(bench_json_num "${TPUT[$key.rps]}"), \"median_ms\": $(bench_json_num "${TPUT[$key.med]}"), \"p99_ms\": $(bench_json_num "${TPUT[$key.p99]}"), \"x_pgbench\": $(bench_json_num "${TPUT[$key.ratio]}")},"
    done
    echo "    \"ack_pgbench_ratio\": $(bench_json_num "${TPUT[spread-group.ratio]}")"
    echo "  },"
    echo "  \"scale_out\": {"
    echo "    \"rounds\": $TPUT_ROUNDS,"
    for n in "${ACK_REPLICAS[@]}"; do
        echo "    \"ack_c64_replicas$n\": {\"rps\": $(bench_json_num "${TPUT[replicas$n.rps]}"), \"median_ms\": $(bench_json_num "${TPUT[replicas$n.median_ms]}"), \"p99_ms\": $(bench_json_num "${TPUT[replicas$n.p99_ms]}"), \"failures\": $(bench_json_num "${TPUT[replicas$n.failures]}")},"
    done
    echo "    \"ack_replicas_ratio\": $(bench_json_num "${TPUT[replicas.ratio]}"),"
    echo "    \"ack_cpu_ticks_during_2_replicas\": [$ACK_CPU1, $ACK_CPU2],"
    for ep in dashboard trace stream; do
        for mode in "${READ_MODES[@]}"; do
            echo "    \"read_${ep}_c16_$mode\": {\"rps\": $(bench_json_num "${TPUT[read-$ep-$mode.rps]}"), \"median_ms\": $(bench_json_num "${TPUT[read-$ep-$mode.median_ms]}"), \"p99_ms\": $(bench_json_num "${TPUT[read-$ep-$mode.p99_ms]}"), \"failures\": $(bench_json_num "${TPUT[read-$ep-$mode.failures]}")},"
        done
    done
    for mode in "${READ_MODES[@]}"; do
        echo "    \"primary_tx_per_read_$mode\": $(bench_json_num "${TPUT[primary-tx-$mode]}"),"
    done
    echo "    \"reads_sent_to_primary\": $(bench_json_num "$READ_FALLBACKS")"
    echo "  },"
    echo "  \"raw\": ["
    n=${#RAW_LINES[@]}
    for ((i = 0; i < n; i++)); do
        sep=,
        ((i < n - 1)) || sep=
        echo "    $(bench_json_line "${RAW_LINES[i]}")$sep"
    done
    echo "  ]"
    echo "}"
} >"$OUT/results.json"

# 7. EXPLAIN ANALYZE of every statement slower than EXPLAIN_MS (throwaway
# cluster only): restart the services with auto_explain loaded.
if [[ $PG_UP -eq 1 && $EXPLAIN_MS -gt 0 && "$ONLY" != scale-out ]]; then
    bench_log "EXPLAIN pass: statements slower than ${EXPLAIN_MS} ms"
    PG_LOG=$TMP_DIR/pg/postgres.log
    log_mark=$(wc -l <"$PG_LOG")
    bench_stop_services
    bench_sql_admin -c "LOAD 'auto_explain'" \
        -c "ALTER SYSTEM SET session_preload_libraries = 'auto_explain'" \
        -c "ALTER SYSTEM SET auto_explain.log_min_duration = '${EXPLAIN_MS}ms'" \
        -c "ALTER SYSTEM SET auto_explain.log_analyze = on" \
        -c "ALTER SYSTEM SET auto_explain.log_buffers = on" \
        -c "SELECT pg_reload_conf()" >/dev/null
    bench_start_services
    for url in "$FEED/dashboard" "$FEED?limit=50" "$FEED?plan_id=$SEED_PLAN&limit=50" \
        "$P/recovery-escalations/$SEED_PLAN/trace?limit=50"; do
        curl -s -o /dev/null --max-time 300 "$GW$url" || true
    done
    bench_post "$GW$P/recovery-escalations/retry-plan" \
        "{\"generated_by\":\"bench\",\"plan_id\":\"$SEED_PLAN\"}" >/dev/null || true
    bench_post "$GW$P/recovery-escalations/retry-plan" '{"generated_by":"bench"}' >/dev/null || true
    bench_post "$GW$P/recovery-executive-report/schedule-run" \
        '{"generated_by":"bench","schedule":{"schedule_id":"bench-explain-'"$$"'","interval_minutes":1440,"enabled":false}}' \
        >/dev/null || true
    if [[ $VERIFY_OK -eq 1 ]]; then
        curl -s -o /dev/null --max-time 600 "$GW/runtime/evidence/verify" || true
    fi
    sleep 1
    bench_sql_admin -c "ALTER SYSTEM RESET session_preload_libraries" \
        -c "SELECT pg_reload_conf()" >/dev/null
    # Keep each "duration: ... plan:" entry up to the next log line.
    tail -n +"$((log_mark + 1))" "$PG_LOG" | awk '
        /^[0-9-]+ [0-9:.]+ [A-Z]+ \[[0-9]+\] / { keep = ($0 ~ /duration: .* ms  plan:/) }
        keep { print }' >"$OUT/explain.log"
    {
        echo
        echo "Statements slower than ${EXPLAIN_MS} ms in this run (postgres.log), by prepared-statement name:"
        grep -o 'duration: [0-9.]* ms  execute [^:]*' "$PG_LOG" |
            awk '{ n[$5]++; if ($2 + 0 > m[$5] + 0) m[$5] = $2 }
                 END { for (k in n) printf "  %-32s %5d times, max %9.1f ms\n", k, n[k], m[k] }' |
            sort || true
        echo "EXPLAIN ANALYZE of each (one more call per endpoint, auto_explain): build/bench/explain.log"
    } >>"$OUT/results.txt"
fi

cat "$OUT/results.txt"
bench_log "results: $OUT/results.txt, $OUT/results.json"
