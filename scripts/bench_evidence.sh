#!/usr/bin/env bash
# bench_evidence.sh -- figures of the evidence Merkle log (docs/evidence.md), measured
# side by side in one run on a throwaway PostgreSQL:
#
#   1. write rate vs sequencer: N events (default 1,000,000) inserted
#      unsequenced in one SQL statement (the database's bulk write rate, a
#      ceiling no request path reaches), then the time the sequencer (one
#      cavra-report given the evidence key) takes to make them leaves and
#      tiles: leaves/s. Also the acknowledgement rate through the gateway
#      (16 threads) for scale.
#   2. inclusion-proof latency at N events: GET /runtime/evidence/proof/
#      inclusion for random records, through the gateway (bench_http).
#   3. checkpoint lag under sustained acknowledgement load: while 16 threads
#      POST acknowledgements, every 100 ms the event count and the served
#      checkpoint's size are sampled; the lag of a sample is the time until
#      a checkpoint covers that many events.
#
# Usage: scripts/bench_evidence.sh [EVENTS]   (needs ./build: make build,
#        plus `cmake --build build --target bench_http`)
#
#   scripts/bench_evidence.sh --sequencer [EVENTS] [ROUNDS]
#      only the sequencer, side by side: a backlog of EVENTS (default
#      100,000) events shaped as bench/seed.sql stores them (a third each of
#      plans, deliveries, acknowledgements), chained by one cavra-report
#      (leaves/s, median of ROUNDS, default 3); then the lag under a
#      sustained write load: pgbench inserts events at CAVRA_BENCH_RATE
#      (default 3000) per second for CAVRA_BENCH_LOAD_SECS (20) while the
#      sequencer runs; every 100 ms the inserted and chained counts are
#      sampled, the lag of a sample is the time until the chained count
#      reaches it. With CAVRA_BENCH_BASE=DIR (another checkout, e.g. a git
#      worktree of an older commit, with DIR/build built) each round runs
#      that tree too, on its own database migrated with its migrations.
#      Needs only tools/ and services/report in each build.
# Environment: CAVRA_BENCH_PG_PORT (default 57111), CAVRA_BENCH_GW_PORT
#   (default 57118). Prints one block of figures; logs stay in the temp folder
#   it names on failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

MODE=full
if [[ ${1:-} == --sequencer ]]; then
    MODE=sequencer
    shift
fi
EVENTS=${1:-1000000}
[[ $MODE == full || -n ${1:-} ]] || EVENTS=100000
ROUNDS=${2:-3}
PG_PORT=${CAVRA_BENCH_PG_PORT:-57111}
GW_PORT=${CAVRA_BENCH_GW_PORT:-57118}
BUILD=build
P=/runtime/go-pilot/rollback-drill-notifications/acknowledgements/audit-delivery
GW=http://127.0.0.1:$GW_PORT
JSON='Content-Type: application/json'
TMP_DIR=$(mktemp -d /tmp/cavra-bench-evidence.XXXXXX)
chmod 755 "$TMP_DIR"
PIDS=()
PG_UP=0

be_log() { echo "bench_evidence: $*" >&2; }

be_cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    [[ $PG_UP -eq 0 ]] || bash scripts/pg.sh stop "$TMP_DIR/pg" >/dev/null 2>&1 || true
    if [[ $rc -eq 0 ]]; then rm -rf "$TMP_DIR"; else be_log "logs kept in $TMP_DIR"; fi
    exit "$rc"
}
trap be_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

NEEDED="tools/cavra-migrate tools/cavra-keygen services/report/cavra-report"
[[ $MODE == sequencer ]] || NEEDED="$NEEDED services/ack/cavra-ack gateway/cavra-gateway bench/bench_http"
for b in $NEEDED; do
    [[ -x $BUILD/$b ]] || { be_log "$BUILD/$b missing: build it first"; exit 1; }
done

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

CAVRA_PG_FAST=1 bash scripts/pg.sh start "$TMP_DIR/pg" "$PG_PORT" >/dev/null
PG_UP=1
PGPASSFILE=$(bash scripts/pg.sh pgpass "$TMP_DIR/pg")
export PGPASSFILE
OWNER=$(bash scripts/pg.sh url "$PG_PORT")
CAVRA_DATABASE_URL=$(bash scripts/pg.sh app-url "$PG_PORT")
export CAVRA_DATABASE_URL
$BUILD/tools/cavra-migrate --dir db/migrations --database-url "$OWNER" >/dev/null
sql() { psql "$OWNER" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

export CAVRA_RPC_INSECURE_NO_AUTH=1
export CAVRA_ACK_URL=ipc://$TMP_DIR/ack.sock CAVRA_RETRY_URL=ipc://$TMP_DIR/retry.sock
export CAVRA_REPORT_URL=ipc://$TMP_DIR/report.sock
export CAVRA_GATEWAY_HOST=127.0.0.1 CAVRA_GATEWAY_PORT=$GW_PORT
$BUILD/tools/cavra-keygen --evidence "$TMP_DIR/evidence.key" >"$TMP_DIR/evidence.pub"

# --sequencer: the sequencer alone, this tree and CAVRA_BENCH_BASE side by
# side, each round on fresh copies of one seeded backlog per tree.
if [[ $MODE == sequencer ]]; then
    RATE=${CAVRA_BENCH_RATE:-3000}
    LOAD_SECS=${CAVRA_BENCH_LOAD_SECS:-20}
    SUPER=postgresql://postgres@127.0.0.1:$PG_PORT/postgres
    TREES=("this=$ROOT")
    if [[ -n ${CAVRA_BENCH_BASE:-} ]]; then
        for b in tools/cavra-migrate services/report/cavra-report; do
            [[ -x $CAVRA_BENCH_BASE/build/$b ]] ||
                { be_log "$CAVRA_BENCH_BASE/build/$b missing: build it first"; exit 1; }
        done
        TREES+=("base=$(cd "$CAVRA_BENCH_BASE" && pwd)")
    fi
    db_url() { sed "s,/[a-z]*\$,/$2," <<<"$1"; }
    PGBIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
    PGBENCH=$PGBIN/pgbench
    [[ -x $PGBENCH ]] || PGBENCH=pgbench
    # One request's event: an acknowledgement of the size the services store.
    cat >"$TMP_DIR/load.sql" <<'SQL'
INSERT INTO evidence_events (kind, record_id, plan_id, provider, actor,
    request_id, created_at, record)
VALUES ('recovery_escalation_ack', 'lagack-' || gen_random_uuid(),
    'lagplan-' || :client_id, 'slack', 'bench', 'bench-load', now(),
    jsonb_build_object('acknowledgement_id', 'lagack-x',
        'acknowledgement_state', 'accepted', 'acknowledged_by', 'bench',
        'provider', 'slack', 'schema_version', 'cavra.recovery.ack.v1',
        'notes', repeat('sustained load ', 16), 'seq', :client_id));
SQL
    for tree in "${TREES[@]}"; do
        label=${tree%%=*} dir=${tree#*=}
        psql "$SUPER" -X -q -v ON_ERROR_STOP=1 \
            -c "CREATE DATABASE seqt_$label OWNER cavra TEMPLATE template0"
        "$dir/build/tools/cavra-migrate" --dir "$dir/db/migrations" \
            --database-url "$(db_url "$OWNER" "seqt_$label")" >/dev/null
        psql "$(db_url "$OWNER" "seqt_$label")" -X -q -v ON_ERROR_STOP=1 \
            -v records=$(((EVENTS + 2) / 3)) -f bench/seed.sql >/dev/null
        psql "$(db_url "$SUPER" "seqt_$label")" -X -q -c "VACUUM ANALYZE"
    done
    # How many events have a position: an index lookup in either schema
    # (evidence_leaves since migration 0017, chain_seq before), cheap
    # enough to poll every 100 ms while the sequencer works.
    chained_sql() {
        if [[ $(psql "$1" -X -At -c "SELECT to_regclass('evidence_leaves') IS NOT NULL") == t ]]; then
            echo "(SELECT coalesce(max(seq), 0) FROM evidence_leaves)"
        else
            echo "(SELECT coalesce(max(chain_seq), 0) FROM evidence_events)"
        fi
    }
    declare -A RESULTS
    for ((r = 1; r <= ROUNDS; r++)); do
        for tree in "${TREES[@]}"; do
            label=${tree%%=*} dir=${tree#*=} db=seqr_${label}_$r
            psql "$SUPER" -X -q -v ON_ERROR_STOP=1 \
                -c "CREATE DATABASE $db OWNER cavra TEMPLATE seqt_$label"
            owner=$(db_url "$OWNER" "$db")
            chained=$(chained_sql "$owner")
            total=$(psql "$owner" -X -At -c "SELECT count(*) FROM evidence_events")
            n=$((total - $(psql "$owner" -X -At -c "SELECT $chained")))
            mkdir -p "$TMP_DIR/$db"
            t0=$(now)
            CAVRA_DATABASE_URL=$(db_url "$CAVRA_DATABASE_URL" "$db") \
                CAVRA_REPORT_URL=ipc://$TMP_DIR/$db/report.sock \
                CAVRA_EVIDENCE_KEY_FILE=$TMP_DIR/evidence.key \
                CAVRA_WITNESS_DIR=$TMP_DIR/$db/witness \
                "$dir/build/services/report/cavra-report" </dev/null \
                >"$TMP_DIR/$db/report.log" 2>&1 &
            pid=$!
            PIDS+=("$pid")
            while [[ $(psql "$owner" -X -At -c "SELECT $chained < $total") == t ]]; do
                sleep 0.1
            done
            t1=$(now)
            s=$(secs "$t0" "$t1")
            rate=$(awk -v n="$n" -v s="$s" 'BEGIN { printf "%.0f", n / s }')
            # CPU spent on it (less at the mercy of the machine's load than
            # the wall time): cavra-report plus its database sessions.
            ticks=0
            for p in "$pid" $(psql "$SUPER" -X -At -c "SELECT pid FROM pg_stat_activity
                    WHERE datname = '$db' AND pid <> pg_backend_pid()"); do
                t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
                ticks=$((ticks + t))
            done
            cpu_us=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$n" \
                'BEGIN { printf "%.0f", t * 1e6 / hz / n }')
            # Sustained load: the lag of each 100 ms sample.
            offset=$(psql "$owner" -X -At -c "SELECT max(id) - $chained FROM evidence_events")
            (
                while :; do
                    echo "$(now) $(psql "$owner" -X -At -F ' ' -c "SELECT max(id) - $offset, $chained FROM evidence_events")"
                    sleep 0.1
                done
            ) >"$TMP_DIR/$db/lag.txt" 2>/dev/null &
            sampler=$!
            tps=$("$PGBENCH" -n -c 4 -j 2 -R "$RATE" -T "$LOAD_SECS" -f "$TMP_DIR/load.sql" "$owner" 2>/dev/null |
                sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
            sleep 2
            kill "$sampler" 2>/dev/null || true
            wait "$sampler" 2>/dev/null || true
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            # The whole log verifies (and how long that takes).
            t0=$(now)
            "$dir/build/tools/cavra-verify" --database-url "$owner" >"$TMP_DIR/$db/verify.json" ||
                { be_log "round $r $label: the log does not verify"; cat "$TMP_DIR/$db/verify.json" >&2; exit 1; }
            vs=$(secs "$t0" "$(now)")
            lag=$(awk '{ t[NR] = $1; n[NR] = $2; c[NR] = $3 }
                END {
                    for (i = 2; i <= NR; i++) {
                        if (n[i] == n[i - 1]) continue
                        for (j = i; j <= NR && c[j] < n[i]; j++) ;
                        if (j <= NR) printf "%.3f\n", t[j] - t[i]
                        else print "999"
                    }
                }' "$TMP_DIR/$db/lag.txt" | sort -n | awk '{ l[NR] = $1 }
                END { if (NR == 0) { print "- - -"; exit }
                      printf "%.2f %.2f %.2f", l[int((NR + 1) / 2)], l[int(NR * 0.9 + 0.5)], l[NR] }')
            read -r lmed lp90 lmax <<<"$lag"
            RESULTS[$label]+="$rate $s ${tps:-0} $lmed $lp90 $lmax $vs $cpu_us"$'\n'
            be_log "round $r $label: $n events in $s s ($rate/s, $cpu_us us CPU each); load ${tps:-?} events/s: lag median $lmed s, p90 $lp90 s, max $lmax s; verify $vs s"
        done
    done
    median() { awk 'NF' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    echo "bench_evidence.sh --sequencer: $EVENTS-event backlog (bench/seed.sql shapes), $ROUNDS rounds, side by side, shared noisy machine"
    for tree in "${TREES[@]}"; do
        label=${tree%%=*} dir=${tree#*=}
        rows=${RESULTS[$label]}
        printf '  %-5s %s (%s)\n' "$label" "$dir" "$(git -C "$dir" rev-parse --short HEAD 2>/dev/null || echo ?)"
        printf '        backlog: median %s events/s (%s s; rounds: %s); CPU per event (cavra-report + its PostgreSQL sessions): median %s us\n' \
            "$(awk '{ print $1 }' <<<"$rows" | median)" "$(awk '{ print $2 }' <<<"$rows" | median)" \
            "$(awk 'NF { printf "%s ", $1 }' <<<"$rows")" "$(awk '{ print $8 }' <<<"$rows" | median)"
        printf '        under %s events/s offered (%s s; achieved median %s/s): lag median %s s, p90 %s s, max %s s (medians of rounds)\n' \
            "$RATE" "$LOAD_SECS" "$(awk '{ print $3 }' <<<"$rows" | median)" \
            "$(awk '{ print $4 }' <<<"$rows" | median)" "$(awk '{ print $5 }' <<<"$rows" | median)" \
            "$(awk '{ print $6 }' <<<"$rows" | median)"
        printf '        cavra-verify of the whole log afterwards: median %s s\n' \
            "$(awk '{ print $7 }' <<<"$rows" | median)"
    done
    exit 0
fi

# 1. Bulk write rate, then the sequencer on the backlog. Only cavra-report
# runs (with the key): one sequencer, one signer.
t0=$(now)
sql -c "INSERT INTO evidence_events (kind, record_id, plan_id, provider, actor,
        request_id, created_at, record)
        SELECT 'recovery_escalation_ack', 'benchack-' || g, 'benchplan-' || (g / 4),
               'slack', 'bench', 'bench-seed', now(),
               jsonb_build_object('acknowledgement_id', 'benchack-' || g,
                                  'acknowledgement_state', 'accepted',
                                  'notes', 'seeded by bench_evidence.sh')
        FROM generate_series(1, $EVENTS) g"
t1=$(now)
WRITE_SECS=$(secs "$t0" "$t1")
sql -c "ANALYZE evidence_events" >/dev/null

CAVRA_EVIDENCE_KEY_FILE=$TMP_DIR/evidence.key CAVRA_WITNESS_DIR=$TMP_DIR/witness \
    $BUILD/services/report/cavra-report </dev/null >"$TMP_DIR/report.log" 2>&1 &
PIDS+=("$!")
t0=$(now)
while [[ $(sql -c "SELECT (SELECT count(*) FROM evidence_events) - (SELECT coalesce(max(seq), 0) FROM evidence_leaves)") -gt 0 ]]; do
    sleep 0.5
done
t1=$(now)
SEQ_SECS=$(secs "$t0" "$t1")
# The first checkpoint over the whole backlog.
while [[ $(sql -c "SELECT coalesce(max(tree_size), 0) FROM evidence_checkpoints") -lt $EVENTS ]]; do
    sleep 0.2
done
t2=$(now)
CP_SECS=$(secs "$t1" "$t2")

$BUILD/services/ack/cavra-ack </dev/null >"$TMP_DIR/ack.log" 2>&1 &
PIDS+=("$!")
$BUILD/gateway/cavra-gateway </dev/null >"$TMP_DIR/gateway.log" 2>&1 &
PIDS+=("$!")
for ((i = 0; i < 60; i++)); do
    curl -fsS -o /dev/null --max-time 2 "$GW/healthz" 2>/dev/null && break
    sleep 0.5
done

# 2. Inclusion proofs at N events: 2000 random records.
sql -c "SELECT '$GW/runtime/evidence/proof/inclusion?record_id=benchack-' ||
        (1 + floor(random() * $EVENTS))::bigint FROM generate_series(1, 2000)" \
    >"$TMP_DIR/proof-urls.txt"
PROOF_LINE=$($BUILD/bench/bench_http --name proof-inclusion --url-file "$TMP_DIR/proof-urls.txt" \
    --threads 4 --requests 2000 --warmup 50)
TILE_LINE=$($BUILD/bench/bench_http --name checkpoint --url "$GW/runtime/evidence/checkpoint" \
    --threads 4 --requests 2000 --warmup 50)

# 3. Acknowledgements under load, and the checkpoint lag meanwhile.
PLAN_BODY='{"generated_by":"bench-{{run}}-{{n}}","recovery_slo_minutes":240,"escalation_routes":[{"provider":"slack","severity":"critical"},{"provider":"jira","severity":"warning"}]}'
ACK_BODY='{"provider":"slack","acknowledged_by":"bench","acknowledgement_state":"accepted","notes":"bench {{run}} {{n}}"}'
: >"$TMP_DIR/ack-urls.txt"
for ((i = 1; i <= 64; i++)); do
    plan=$(curl -fsS -H "$JSON" -d "${PLAN_BODY//\{\{n\}\}/$i}" "$GW$P/recovery-escalation-plan" |
        sed -n 's/.*"plan_id": *"\([^"]*\)".*/\1/p' | head -1)
    echo "$GW$P/recovery-escalations/$plan/acknowledgements" >>"$TMP_DIR/ack-urls.txt"
done
(
    # Sampler: "<t> events <n>" and "<t> checkpoint <size>" every 100 ms.
    while :; do
        t=$(now)
        # max(id): every insert here succeeds, so it is the event count,
        # without a count(*) over the whole table per sample.
        n=$(sql -c "SELECT max(id) FROM evidence_events")
        c=$(curl -fsS "$GW/runtime/evidence/checkpoint" | sed -n 2p)
        echo "$t $n ${c:-0}"
        sleep 0.1
    done
) >"$TMP_DIR/lag.txt" 2>/dev/null &
SAMPLER=$!
ACK_LINE=$($BUILD/bench/bench_http --name post-ack-c16 --url-file "$TMP_DIR/ack-urls.txt" \
    --header "$JSON" --body "$ACK_BODY" --threads 16 --requests 8000 --warmup 16)
sleep 3
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
# Lag of each sample taken while events were still arriving: the first
# later sample whose checkpoint covers its event count.
LAG=$(awk '{ t[NR] = $1; n[NR] = $2; c[NR] = $3 }
    END {
        for (i = 1; i <= NR; i++) {
            if (i > 1 && n[i] == n[i - 1]) continue
            for (j = i; j <= NR && c[j] < n[i]; j++) ;
            if (j <= NR) printf "%.3f\n", t[j] - t[i]
        }
    }' "$TMP_DIR/lag.txt" | sort -n | awk '{ l[NR] = $1 }
    END {
        if (NR == 0) { print "no samples"; exit }
        printf "samples=%d median_s=%.2f p90_s=%.2f max_s=%.2f", NR,
            l[int((NR + 1) / 2)], l[int(NR * 0.9 + 0.5)], l[NR]
    }')

field() { sed -n "s/.*$2=\([^ ]*\).*/\1/p" <<<"$1"; }
cat <<EOF
bench_evidence.sh: $EVENTS events, one run, shared noisy machine (2 cores)
  bulk SQL insert of $EVENTS unsequenced events: ${WRITE_SECS} s ($(awk -v n="$EVENTS" -v s="$WRITE_SECS" 'BEGIN { printf "%.0f", n / s }') events/s)
  sequencer (one cavra-report): ${SEQ_SECS} s ($(awk -v n="$EVENTS" -v s="$SEQ_SECS" 'BEGIN { printf "%.0f", n / s }') leaves/s, tiles written in the same transactions)
  first checkpoint covering all of them: ${CP_SECS} s after the last leaf
  acknowledgements through the gateway: $(field "$ACK_LINE" rps) /s (16 threads; median $(field "$ACK_LINE" median_ms) ms)
  checkpoint lag under that load: $LAG
  inclusion proof at $EVENTS events: median $(field "$PROOF_LINE" median_ms) ms, p99 $(field "$PROOF_LINE" p99_ms) ms, $(field "$PROOF_LINE" rps) /s (4 threads, failures $(field "$PROOF_LINE" failures))
  GET checkpoint: median $(field "$TILE_LINE" median_ms) ms
EOF
