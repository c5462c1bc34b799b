#!/usr/bin/env bash
# profile_ack.sh -- where the CPU of one acknowledgement POST goes.
#
#   bash bench/profile_ack.sh            (after `make build`; root for perf)
#
# Starts a throwaway PostgreSQL (port CAVRA_PROFILE_PG_PORT, default 57157),
# the three services and the gateway from ./build (CAVRA_RPC_GROUP_MAX as
# in the environment), records 200 plans of 2 routes, then sends
# CAVRA_PROFILE_REQUESTS (default 6000) acknowledgement POSTs with 64
# connections spread over the 400 (plan, provider) pairs, and reports:
#  - CPU seconds per 1,000 acknowledgements of each process group (gateway,
#    cavra-ack, the PostgreSQL backends and its WAL writer/others, the load
#    generator), from /proc/<pid>/stat before and after;
#  - with perf (when installed and allowed): the hottest symbols of
#    cavra-ack and of the gateway (perf record, self time).
# Everything it starts is stopped on exit. Output: build/bench/profile.txt.
# CAVRA_PROFILE_BUILD=DIR profiles another build tree instead (e.g. the
# parent commit's, built by hand; its migrations are DIR/../db/migrations),
# without building it; the output is then DIR/bench/profile.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd -P)
PORT=${CAVRA_PROFILE_PG_PORT:-57157}
REQUESTS=${CAVRA_PROFILE_REQUESTS:-6000}
B=build
MIGRATIONS=db/migrations
if [[ -n "${CAVRA_PROFILE_BUILD:-}" ]]; then
    B=$(cd "$CAVRA_PROFILE_BUILD" && pwd -P)
    MIGRATIONS=$B/../db/migrations
fi
OUT=$B/bench
TMP=$(mktemp -d /tmp/cavra-prof.XXXXXX)
chmod 755 "$TMP"
PIDS=()
P=/runtime/go-pilot/rollback-drill-notifications/acknowledgements/audit-delivery

prof_cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    bash scripts/pg.sh stop "$TMP/pg" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap prof_cleanup EXIT

# utime+stime clock ticks of a list of pids (missing ones count 0).
prof_ticks() {
    local pid sum=0 f
    for pid in "$@"; do
        f=$(cut -d' ' -f14,15 "/proc/$pid/stat" 2>/dev/null) || continue
        sum=$((sum + ${f% *} + ${f#* }))
    done
    echo "$sum"
}

mkdir -p "$OUT"
if [[ -z "${CAVRA_PROFILE_BUILD:-}" ]]; then
    cmake --build build -j2 --target cavra-ack cavra-retry cavra-report cavra-gateway \
        cavra-migrate cavra-keygen bench_http >/dev/null
fi
bash scripts/pg.sh start "$TMP/pg" "$PORT"
PGPASSFILE=$(bash scripts/pg.sh pgpass "$TMP/pg")
CAVRA_DATABASE_URL=$(bash scripts/pg.sh url "$PORT")
export PGPASSFILE CAVRA_DATABASE_URL
"$B/tools/cavra-migrate" --dir "$MIGRATIONS" >/dev/null
export CAVRA_ACK_URL=ipc://$TMP/ack.ipc CAVRA_RETRY_URL=ipc://$TMP/retry.ipc
export CAVRA_REPORT_URL=ipc://$TMP/report.ipc CAVRA_GATEWAY_HOST=127.0.0.1
"$B/tools/cavra-keygen" gateway "$TMP/gateway.key" admin --delegate >"$TMP/principals"
export CAVRA_PRINCIPALS_FILE=$TMP/principals CAVRA_RPC_KEY_FILE=$TMP/gateway.key
export CAVRA_GATEWAY_PORT=$((PORT + 1000))
GW=http://127.0.0.1:$CAVRA_GATEWAY_PORT
for s in ack retry report; do
    "$B/services/$s/cavra-$s" >"$TMP/$s.log" 2>&1 &
    PIDS+=("$!")
done
ACK_PID=${PIDS[0]}
"$B/gateway/cavra-gateway" >"$TMP/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
for ((i = 0; i < 60; i++)); do
    curl -fsS -o /dev/null --max-time 2 "$GW/readyz" 2>/dev/null && break
    sleep 0.5
done
: >"$TMP/urls"
for ((i = 0; i < 200; i++)); do
    out=$(curl -fsS -X POST "$GW$P/recovery-escalation-plan" -H 'Content-Type: application/json' \
        -d '{"generated_by":"prof","escalation_routes":[{"provider":"slack","severity":"critical"},{"provider":"jira"}]}')
    id=$(grep -o '"plan_id":"[^"]*"' <<<"$out" | head -n 1 | cut -d'"' -f4)
    echo "$GW$P/recovery-escalations/$id/acknowledgements slack" >>"$TMP/urls"
    echo "$GW$P/recovery-escalations/$id/acknowledgements jira" >>"$TMP/urls"
done
BODY='{"provider":"{{line}}","acknowledged_by":"prof","acknowledgement_state":"accepted","notes":"profile {{n}}"}'
PG_PIDS=$(pgrep -d' ' -P "$(head -n 1 "$TMP/pg/data/postmaster.pid")" || true)
PERF=()
if command -v perf >/dev/null && perf record -o "$TMP/probe.data" -- true >/dev/null 2>&1; then
    PERF=(perf record -g -F 499 -o "$TMP/perf.data" -p "$ACK_PID,$GW_PID")
fi
t_gw=$(prof_ticks "$GW_PID")
t_ack=$(prof_ticks "$ACK_PID")
t_pg=$(prof_ticks $PG_PIDS)
t_self=$(awk '{ print $14 + $15 + $16 + $17 }' /proc/$$/stat)
if [[ ${#PERF[@]} -gt 0 ]]; then
    "${PERF[@]}" >/dev/null 2>&1 &
    PERF_PID=$!
fi
line=$(build/bench/bench_http --name ack-profile --url-file "$TMP/urls" \
    --header 'Content-Type: application/json' --body "$BODY" --threads 64 \
    --requests "$REQUESTS" --warmup 64)
if [[ -n "${PERF_PID:-}" ]]; then
    kill -INT "$PERF_PID"
    wait "$PERF_PID" || true
fi
PG_PIDS_AFTER=$(pgrep -d' ' -P "$(head -n 1 "$TMP/pg/data/postmaster.pid")" || true)
hz=$(getconf CLK_TCK)
per_k() {
    awk -v d="$1" -v hz="$hz" -v n="$REQUESTS" 'BEGIN { printf "%.2f", d / hz / n * 1000 }'
}
{
    echo "ack POST profile, $(date -u +%Y-%m-%dT%H:%M:%SZ), CAVRA_RPC_GROUP_MAX=${CAVRA_RPC_GROUP_MAX:-default}"
    echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "$line"
    echo "CPU seconds per 1,000 acknowledgements:"
    echo "  gateway          $(per_k $(($(prof_ticks "$GW_PID") - t_gw)))"
    echo "  cavra-ack        $(per_k $(($(prof_ticks "$ACK_PID") - t_ack)))"
    echo "  postgres (all)   $(per_k $(($(prof_ticks $PG_PIDS_AFTER) - t_pg)))"
    echo "  load generator   $(per_k $(($(awk '{ print $14 + $15 + $16 + $17 }' /proc/$$/stat) - t_self)))"
    if [[ -f "$TMP/perf.data" ]]; then
        for pid in "$ACK_PID" "$GW_PID"; do
            echo "process $pid ($(tr -d '\0' </proc/$pid/comm 2>/dev/null || echo '?')): share of samples by library, then hottest symbols (self):"
            # head ends the pipe early: SIGPIPE must not end the script.
            { perf report -i "$TMP/perf.data" --no-children -g none --pid "$pid" --sort dso \
                --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -n 8 | sed 's/^/  /'; } || true
            { perf report -i "$TMP/perf.data" --no-children -g none --pid "$pid" --sort dso,symbol \
                --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -n 12 | sed 's/^/  /'; } || true
        done
    fi
} | tee "$OUT/profile.txt"
