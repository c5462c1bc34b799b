#!/usr/bin/env bash
# run.sh -- `make run`: the whole CAVRA Recovery stack on this machine.
#
# Installs missing packages, builds ./build, then:
#  - unless CAVRA_DATABASE_URL is set, starts a local PostgreSQL under
#    ./var/pg on port ${CAVRA_PG_PORT:-55432} (created once; data is kept
#    across runs) and points CAVRA_DATABASE_URL at it;
#  - applies db/migrations with cavra-migrate;
#  - starts cavra-ack, cavra-retry, cavra-report and cavra-gateway under
#    build/tools/cavra-supervise, logging to var/log/<name>.log (pids in
#    var/run/<name>.pid). A process that crashes is restarted with backoff
#    (0.2 s doubling to 5 s; back to 0.2 s after 30 s of running), and the
#    supervisor prints one line per restart: name, exit status or signal,
#    delay;
#  - waits for http://$CAVRA_GATEWAY_HOST:$CAVRA_GATEWAY_PORT/healthz, prints
#    the console address, and stays in the foreground.
# Ctrl-C (or TERM) stops everything it started: the gateway, the services,
# then the PostgreSQL it started. Should the supervisor itself die, the
# rest is stopped too.
#
# Environment (defaults exported to the services): CAVRA_DATABASE_URL,
# CAVRA_PG_PORT, CAVRA_ACK_URL (tcp://127.0.0.1:7101), CAVRA_RETRY_URL
# (tcp://127.0.0.1:7102), CAVRA_REPORT_URL (tcp://127.0.0.1:7103),
# CAVRA_GATEWAY_HOST (127.0.0.1), CAVRA_GATEWAY_PORT (8000).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd -P)

export CAVRA_ACK_URL=${CAVRA_ACK_URL:-tcp://127.0.0.1:7101}
export CAVRA_RETRY_URL=${CAVRA_RETRY_URL:-tcp://127.0.0.1:7102}
export CAVRA_REPORT_URL=${CAVRA_REPORT_URL:-tcp://127.0.0.1:7103}
export CAVRA_GATEWAY_HOST=${CAVRA_GATEWAY_HOST:-127.0.0.1}
export CAVRA_GATEWAY_PORT=${CAVRA_GATEWAY_PORT:-8000}

LOG_DIR=$ROOT/var/log
RUN_DIR=$ROOT/var/run
PG_DIR=$ROOT/var/pg
PG_STARTED=0
SUP_PID=
CLEANED=0

run_log() {
    echo "run.sh: $*" >&2
}

# Stops the supervisor (it stops the gateway and the services; it kills
# any that ignores TERM for 10 s), then the PostgreSQL we started. Runs
# once, whatever the trigger.
# shellcheck disable=SC2317  # called from a trap
run_cleanup() {
    [[ $CLEANED -eq 0 ]] || return 0
    CLEANED=1
    if [[ -n "$SUP_PID" ]]; then
        kill -TERM "$SUP_PID" 2>/dev/null || true
        # The supervisor kills a child that ignores TERM for 10 s, one
        # child at a time: wait for four of those, and a margin.
        local waited=0
        while kill -0 "$SUP_PID" 2>/dev/null && ((waited < 500)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        if kill -0 "$SUP_PID" 2>/dev/null; then
            run_log "the supervisor did not stop within 50 s; killing it"
            kill -KILL "$SUP_PID" 2>/dev/null || true
        fi
        wait "$SUP_PID" 2>/dev/null || true
    fi
    if [[ $PG_STARTED -eq 1 ]]; then
        bash scripts/pg.sh stop "$PG_DIR" || run_log "could not stop PostgreSQL in $PG_DIR"
    fi
    [[ -z "$SUP_PID" ]] || run_log "stopped"
}

# shellcheck disable=SC2317  # called from a trap
run_on_signal() {
    trap - INT TERM
    run_cleanup
    exit "$1"
}

trap run_cleanup EXIT
trap 'run_on_signal 130' INT
trap 'run_on_signal 143' TERM

NAMES=(cavra-ack cavra-retry cavra-report cavra-gateway)

run_tail_logs() {
    local name
    for name in "${NAMES[@]}"; do
        echo "---- $LOG_DIR/$name.log (last 20 lines) ----" >&2
        tail -n 20 "$LOG_DIR/$name.log" >&2 2>/dev/null || true
    done
}

# True when something already answers on the gateway address.
run_gateway_up() {
    curl -fsS -o /dev/null --max-time 2 \
        "http://$CAVRA_GATEWAY_HOST:$CAVRA_GATEWAY_PORT/healthz" 2>/dev/null
}

# 1. Packages and build.
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2

# The order is the start order; the supervisor stops them in reverse,
# the gateway first.
BINS=(
    "cavra-ack=build/services/ack/cavra-ack"
    "cavra-retry=build/services/retry/cavra-retry"
    "cavra-report=build/services/report/cavra-report"
    "cavra-gateway=build/gateway/cavra-gateway"
)
for entry in build/tools/cavra-migrate build/tools/cavra-supervise build/tools/cavra-keygen "${BINS[@]#*=}"; do
    if [[ ! -x "$entry" ]]; then
        run_log "$entry was not built; see the build output above"
        exit 1
    fi
done

# 2. Database.
mkdir -p "$LOG_DIR" "$RUN_DIR"
if [[ -z "${CAVRA_DATABASE_URL:-}" ]]; then
    pg_port=${CAVRA_PG_PORT:-55432}
    pg_pid=$(sed -n 1p "$PG_DIR/data/postmaster.pid" 2>/dev/null || true)
    if [[ -n "$pg_pid" ]] && kill -0 "$pg_pid" 2>/dev/null; then
        run_log "PostgreSQL in $PG_DIR is already running; leaving it running on exit"
    else
        PG_STARTED=1
    fi
    bash scripts/pg.sh start "$PG_DIR" "$pg_port"
    # scram passwords, made once by pg.sh (mode 0600): libpq reads them.
    PGPASSFILE=$(bash scripts/pg.sh pgpass "$PG_DIR")
    export PGPASSFILE
    # The services log in as cavra_app (owns nothing; reads and appends);
    # the migrations run as the owner.
    CAVRA_DATABASE_URL=$(bash scripts/pg.sh app-url "$pg_port")
    CAVRA_MIGRATE_DATABASE_URL=$(bash scripts/pg.sh url "$pg_port")
    export CAVRA_DATABASE_URL
    run_log "PostgreSQL: 127.0.0.1:$pg_port (data in $PG_DIR/data, log $PG_DIR/postgres.log)"
fi
build/tools/cavra-migrate --dir db/migrations \
    --database-url "${CAVRA_MIGRATE_DATABASE_URL:-$CAVRA_DATABASE_URL}"

# 3. RPC keys, made once under var/keys (0700; key files 0600): the
# gateway's (it acts for end users) and a local operator's for cavra-rpc.
# Services need only the principals file (public keys).
KEY_DIR=$ROOT/var/keys
if [[ ! -f "$KEY_DIR/principals" ]]; then
    mkdir -p "$KEY_DIR"
    chmod 700 "$KEY_DIR"
    rm -f "$KEY_DIR/gateway.key" "$KEY_DIR/operator.key"
    {
        build/tools/cavra-keygen gateway "$KEY_DIR/gateway.key" admin --delegate
        build/tools/cavra-keygen operator "$KEY_DIR/operator.key" admin
    } >"$KEY_DIR/principals.tmp"
    mv "$KEY_DIR/principals.tmp" "$KEY_DIR/principals"
    run_log "created RPC keys in $KEY_DIR (principals: gateway, operator)"
fi
# The evidence log's checkpoint key (docs/evidence.md), made once (0600; never in
# the database), and the witness folder outside PostgreSQL. Every service
# here inherits them: any one of them signs at a time (the sequencer
# lock), so checkpoints go on while one restarts. Save var/keys/evidence.pub
# (the verifier key) where an auditor can find it.
if [[ ! -f "$KEY_DIR/evidence.key" ]]; then
    build/tools/cavra-keygen --evidence "$KEY_DIR/evidence.key" \
        "${CAVRA_EVIDENCE_ORIGIN:-cavra.local/evidence}" >"$KEY_DIR/evidence.pub.tmp"
    mv "$KEY_DIR/evidence.pub.tmp" "$KEY_DIR/evidence.pub"
    run_log "created the evidence checkpoint key $KEY_DIR/evidence.key (verifier key: $KEY_DIR/evidence.pub)"
fi
export CAVRA_EVIDENCE_KEY_FILE=${CAVRA_EVIDENCE_KEY_FILE:-$KEY_DIR/evidence.key}
export CAVRA_WITNESS_DIR=${CAVRA_WITNESS_DIR:-$ROOT/var/witness}
export CAVRA_PRINCIPALS_FILE=${CAVRA_PRINCIPALS_FILE:-$KEY_DIR/principals}
export CAVRA_RPC_KEY_FILE=${CAVRA_RPC_KEY_FILE:-$KEY_DIR/gateway.key}

# 4. The services and the gateway, under the supervisor.
if run_gateway_up; then
    run_log "something already answers on http://$CAVRA_GATEWAY_HOST:$CAVRA_GATEWAY_PORT/;" \
        "stop it or set CAVRA_GATEWAY_PORT"
    exit 1
fi
build/tools/cavra-supervise --log-dir "$LOG_DIR" --pid-dir "$RUN_DIR" "${BINS[@]}" &
SUP_PID=$!

ready=0
for ((i = 0; i < 40; i++)); do
    if run_gateway_up; then
        ready=1
        break
    fi
    if ! kill -0 "$SUP_PID" 2>/dev/null; then
        run_log "the supervisor exited during start-up"
        run_tail_logs
        exit 1
    fi
    sleep 0.5
done
if [[ $ready -ne 1 ]]; then
    run_log "the gateway did not answer /healthz within 20 s"
    run_tail_logs
    exit 1
fi

echo "CAVRA Recovery Evidence Console: http://$CAVRA_GATEWAY_HOST:$CAVRA_GATEWAY_PORT/"
echo "Logs: $LOG_DIR/  (a crashed process is restarted; Ctrl-C stops everything)"
echo "RPC as the local operator: CAVRA_RPC_KEY_FILE=$KEY_DIR/operator.key build/tools/cavra-rpc ack.Health"

# 4. Stay up until a signal arrives (the trap stops everything) or the
# supervisor itself exits.
rc=0
wait "$SUP_PID" || rc=$?
# A trapped signal interrupts `wait` and its trap exits the script; so
# here the supervisor really is gone.
SUP_PID=
run_log "the supervisor exited (status $rc); stopping"
run_tail_logs
exit 1
