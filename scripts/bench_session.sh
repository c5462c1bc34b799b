#!/usr/bin/env bash
# bench_session.sh -- acknowledgement POST throughput, side by side in one
# run: the unsigned build of the parent of the signing commit, signed
# envelopes per request, and session-authenticated envelopes (docs/rpc.md).
#
#   scripts/bench_session.sh PARENT_BUILD THIS_BUILD [RUNS] [REQUESTS] [PORT]
#
# PARENT_BUILD: a build tree of the parent commit (its own migrations are
# taken from PARENT_BUILD/..); THIS_BUILD: ./build of this tree. Starts a
# durable throwaway PostgreSQL per tree (ports PORT, PORT+1; the gateway
# gets PORT+2); each run starts cavra-ack and cavra-gateway per variant,
# spreads REQUESTS (default 20000, about 10 s) POSTs over 64 plans with 64
# client threads (bench/bench_http), and prints the median of RUNS
# (default 3) per variant and the ratios. Variants (CAVRA_BENCH_VARIANTS,
# default "parent signed session"): parent = the parent's unsigned build;
# signed = this build, an Ed25519 signature per request
# (CAVRA_RPC_SESSIONS=0); session = this build, session MACs; session2 =
# like session with two cavra-ack replicas (CAVRA_ACK_URL=url1,url2);
# nogroup = like session with one transaction per request
# (CAVRA_RPC_GROUP_MAX=1), the parent's database path; base = the
# PARENT_BUILD with session MACs, the same set-up as session (to measure a
# change against its parent commit); pgbench = pgbench's one-row INSERT
# at 32 clients for CAVRA_BENCH_PGBENCH_SECS (default 5) on this tree's
# PostgreSQL (the reference of the ack/pgbench ratio; tps in the req/s
# column); wN = like session with N database workers (CAVRA_DB_WORKERS,
# default 4); gN = like session with N gateway HTTP threads
# (CAVRA_GATEWAY_THREADS). Each variant's median p99 is printed too.
# CAVRA_BENCH_PLANS: plans the POSTs are spread over (default 64).
# CAVRA_BENCH_PERF_DIR=D: also `perf record -g` cavra-ack and the gateway
# during each measurement into D/<variant>.data.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd -P)
PARENT=$(cd "$1" && pwd -P)
THIS=$(cd "$2" && pwd -P)
RUNS=${3:-3}
REQS=${4:-20000}
PORT=${5:-57140}
T=$(mktemp -d /tmp/cavra-bench-session.XXXXXX)
chmod 755 "$T"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    bash scripts/pg.sh stop "$T/pg-parent" >/dev/null 2>&1 || true
    bash scripts/pg.sh stop "$T/pg-this" >/dev/null 2>&1 || true
    rm -rf "$T"
}
trap cleanup EXIT
P=/runtime/go-pilot/rollback-drill-notifications/acknowledgements/audit-delivery
PLAN='{"generated_by":"bench","recovery_slo_minutes":240,"escalation_routes":[{"provider":"slack","severity":"critical","category":"connector-recovery","reason":"x","slo_breached":true}]}'
ACK='{"provider":"slack","acknowledged_by":"bench","acknowledgement_state":"accepted","external_ref":"CHG-{{n}}","notes":"bench run {{run}}"}'

bash scripts/pg.sh start "$T/pg-parent" "$PORT" >/dev/null
bash scripts/pg.sh start "$T/pg-this" $((PORT + 1)) >/dev/null
PGPASS_PARENT=$(bash scripts/pg.sh pgpass "$T/pg-parent")
PGPASS_THIS=$(bash scripts/pg.sh pgpass "$T/pg-this")
PGPASSFILE=$PGPASS_PARENT "$PARENT/tools/cavra-migrate" --dir "$PARENT/../db/migrations" \
    --database-url "$(bash scripts/pg.sh url "$PORT")" >/dev/null
PGPASSFILE=$PGPASS_THIS "$THIS/tools/cavra-migrate" --dir "$ROOT/db/migrations" \
    --database-url "$(bash scripts/pg.sh url $((PORT + 1)))" >/dev/null
"$THIS/tools/cavra-keygen" gateway "$T/gateway.key" admin --delegate >"$T/principals"

# start_ack VARIANT BUILD PGPASS PGPORT URL: one cavra-ack process.
start_ack() {
    (
        export PGPASSFILE=$3 CAVRA_ACK_URL=$5
        export CAVRA_DATABASE_URL=$(bash scripts/pg.sh app-url "$4")
        if [[ $1 != parent ]]; then export CAVRA_PRINCIPALS_FILE=$T/principals; fi
        if [[ -n "${CAVRA_BENCH_GROUP_MAX:-}" ]]; then export CAVRA_RPC_GROUP_MAX=$CAVRA_BENCH_GROUP_MAX; fi
        if [[ -n "${CAVRA_BENCH_DB_WORKERS:-}" ]]; then export CAVRA_DB_WORKERS=$CAVRA_BENCH_DB_WORKERS; fi
        # nogroup: sessions, one transaction per request (no group commit),
        # the parent's database path: isolates what authentication costs.
        if [[ $1 == nogroup ]]; then export CAVRA_RPC_GROUP_MAX=1; fi
        # wN: like session with N database workers (CAVRA_DB_WORKERS).
        if [[ $1 =~ ^w([0-9]+)$ ]]; then export CAVRA_DB_WORKERS=${BASH_REMATCH[1]}; fi
        exec "$2/services/ack/cavra-ack" >>"$T/ack-$1.log" 2>&1
    ) &
    PIDS+=($!)
    ACK_PIDS+=($!)
}

# start VARIANT: cavra-ack (two for session2) and the gateway; sets GW.
start() {
    local v=$1 b pg port gwport urls
    if [[ $v == parent || $v == base ]]; then b=$PARENT pg=$PGPASS_PARENT port=$PORT; else b=$THIS pg=$PGPASS_THIS port=$((PORT + 1)); fi
    gwport=$((PORT + 2))
    ACK_PIDS=()
    urls=ipc://$T/ack.ipc
    start_ack "$v" "$b" "$pg" "$port" "ipc://$T/ack.ipc"
    if [[ $v == session2 ]]; then
        # The second replica: its own listen URL, the same database.
        start_ack "$v" "$b" "$pg" "$port" "ipc://$T/ack2.ipc"
        urls+=,ipc://$T/ack2.ipc
    fi
    (
        export CAVRA_ACK_URL=$urls
        export CAVRA_RETRY_URL=ipc://$T/retry.ipc CAVRA_REPORT_URL=ipc://$T/report.ipc
        export CAVRA_GATEWAY_HOST=127.0.0.1 CAVRA_GATEWAY_PORT=$gwport
        if [[ $v != parent ]]; then export CAVRA_RPC_KEY_FILE=$T/gateway.key; fi
        [[ $v != signed ]] || export CAVRA_RPC_SESSIONS=0
        if [[ $v =~ ^g([0-9]+)$ ]]; then export CAVRA_GATEWAY_THREADS=${BASH_REMATCH[1]}; fi
        exec "$b/gateway/cavra-gateway" >>"$T/gw-$v.log" 2>&1
    ) &
    PIDS+=($!)
    GW_PID=$!
    GW=http://127.0.0.1:$gwport
    for _ in $(seq 100); do
        curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' -d "$PLAN" "$GW$P/recovery-escalation-plan" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "bench_session: $v did not start" >&2
    tail "$T/ack-$v.log" "$T/gw-$v.log" >&2
    return 1
}
stop() {
    kill -TERM "${ACK_PIDS[@]}" "$GW_PID" 2>/dev/null || true
    wait "${ACK_PIDS[@]}" "$GW_PID" 2>/dev/null || true
    PIDS=()
}
# cpu_ticks PID...: utime + stime of the processes, in clock ticks.
cpu_ticks() {
    local p sum=0 f
    for p in "$@"; do
        f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        set -- $f
        sum=$((sum + ${12} + ${13}))
    done
    echo "$sum"
}
PGBENCH=$( (. scripts/pg.sh && d=$(cavra_pg_bindir 2>/dev/null) && [[ -x "$d/pgbench" ]] && echo "$d/pgbench") ||
    command -v pgbench || true)
# run_pgbench ROUND: pgbench's one-row INSERT, 32 clients, this tree's cluster.
run_pgbench() {
    local url out tps
    url=$(bash scripts/pg.sh url $((PORT + 1)))
    if [[ -z "$PGBENCH" ]]; then
        echo "pgbench-run$1 tps=nan (pgbench not found)"
        RPS[pgbench]+="nan "
        return 0
    fi
    PGPASSFILE=$PGPASS_THIS PGOPTIONS='-c client_min_messages=warning' \
        "$(dirname "$PGBENCH")/psql" -qX "$url" -c \
        "CREATE TABLE IF NOT EXISTS bench_pgbench_insert (id bigserial PRIMARY KEY, v text NOT NULL)" >/dev/null
    echo "INSERT INTO bench_pgbench_insert (v) VALUES ('bench');" >"$T/pgbench.sql"
    out=$(PGPASSFILE=$PGPASS_THIS "$PGBENCH" -n -c 32 -j 2 -T "${CAVRA_BENCH_PGBENCH_SECS:-5}" \
        -f "$T/pgbench.sql" "$url" 2>&1) || true
    tps=$(grep -o 'tps = [0-9.]*' <<<"$out" | head -n 1 | cut -d' ' -f3)
    echo "pgbench-insert-c32-run$1 tps=${tps:-nan}"
    RPS[pgbench]+="${tps:-nan} "
}
declare -A RPS=() CPU=() P99=()
for ((r = 1; r <= RUNS; r++)); do
    for v in ${CAVRA_BENCH_VARIANTS:-parent signed session}; do
        if [[ $v == pgbench ]]; then
            run_pgbench "$r"
            continue
        fi
        start "$v"
        : >"$T/urls"
        for i in $(seq "${CAVRA_BENCH_PLANS:-64}"); do
            id=$(curl -fsS -X POST -H 'Content-Type: application/json' -d "$PLAN" "$GW$P/recovery-escalation-plan" |
                grep -o '"plan_id":"[^"]*"' | head -1 | cut -d'"' -f4)
            echo "$GW$P/recovery-escalations/$id/acknowledgements" >>"$T/urls"
        done
        if [[ -n "${CAVRA_BENCH_PERF_DIR:-}" ]]; then
            perf record -q -F 499 -g -p "${ACK_PIDS[0]},$GW_PID" -o "$CAVRA_BENCH_PERF_DIR/$v.data" 2>/dev/null &
            PERF_PID=$!
        fi
        cpu0=$(cpu_ticks "${ACK_PIDS[@]}" "$GW_PID")
        line=$("$THIS/bench/bench_http" --name "$v-run$r" --url-file "$T/urls" --method POST \
            --header 'Content-Type: application/json' --body "$ACK" --threads 64 \
            --requests "$REQS" --warmup 640)
        # CPU time the gateway and the ack process(es) spent per request:
        # steadier than req/s on a machine shared with other work.
        cpu=$(cpu_ticks "${ACK_PIDS[@]}" "$GW_PID")
        cpu_us=$(awk -v t="$((cpu - cpu0))" -v hz="$(getconf CLK_TCK)" -v n="$((REQS + 640))" \
            'BEGIN { printf "%.0f", t / hz * 1e6 / n }')
        echo "$line cpu_us_per_req(ack+gateway)=$cpu_us"
        CPU[$v]+="$cpu_us "
        if [[ -n "${CAVRA_BENCH_PERF_DIR:-}" ]]; then kill -INT "$PERF_PID"; wait "$PERF_PID" || true; fi
        RPS[$v]+="$(sed 's/.*rps=\([0-9.]*\).*/\1/' <<<"$line") "
        P99[$v]+="$(sed 's/.*p99_ms=\([0-9.]*\).*/\1/' <<<"$line") "
        stop
    done
done
median() { tr ' ' '\n' <<<"$1" | { grep . || true; } | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
first=
for v in ${CAVRA_BENCH_VARIANTS:-parent signed session}; do
    m=$(median "${RPS[$v]}")
    [[ -n "$first" ]] || first=$m
    c=$(median "${CPU[$v]:-}")
    p=$(median "${P99[$v]:-}")
    awk -v v="$v" -v m="$m" -v f="$first" -v r="$RUNS" -v c="${c:--}" -v p="${p:--}" \
        'BEGIN { printf "%-9s median of %d runs: %8.1f req/s  ratio to the first variant: %.2f  p99: %s ms  cpu/req (ack+gateway): %s us\n", v, r, m, m / f, p, c }'
done
# The target of issue 12: acknowledgement POSTs against pgbench's INSERT.
if [[ -n "${RPS[pgbench]:-}" ]]; then
    pg=$(median "${RPS[pgbench]}")
    for v in ${CAVRA_BENCH_VARIANTS:-parent signed session}; do
        [[ $v != pgbench ]] || continue
        awk -v v="$v" -v m="$(median "${RPS[$v]}")" -v pg="$pg" \
            'BEGIN { if (pg + 0 > 0) printf "%-9s ack/pgbench ratio: %.2f\n", v, m / pg }'
    done
fi
