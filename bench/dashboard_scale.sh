#!/usr/bin/env bash
# dashboard_scale.sh -- the dashboard's and the schedule-run report's
# statements at several store sizes, BEFORE (report_sql.c of a base
# commit) and AFTER (the working tree's), side by side in one run on one
# seeded store; then what the read projections' triggers (migration 0014)
# cost an acknowledgement.
#
#   bench/dashboard_scale.sh [RECORDS...]      (default: 333 33333)
#
# RECORDS is bench/seed.sql's :records (3 evidence events each: 333 gives
# about 1,000 events, 33333 about 100,000, 333333 about 1,000,000). For
# each size: a fresh database, every migration, the seed, the deltas
# folded (read_projections_compact), VACUUM ANALYZE; then, ROUNDS times
# interleaved, N transactions at concurrency 1 (pgbench -M prepared, so
# generic and custom plans as the service gets them) of
#   dashboard     BEGIN REPEATABLE READ READ ONLY; report_dashboard;
#                 report_outstanding (50 rows); report_hourly; COMMIT
#   schedule-run  report_counts and report_providers (SLO 240 minutes, the
#                 current UTC hour as the window) in one transaction
# with "now" passed as a parameter as the service does. Both versions'
# answers at one fixed "now" are compared first (line "same answers").
# Medians and p99 over all rounds, in ms.
#
# Write cost: two databases with 1,000 seeded plans, one migrated to 0013
# (no projections) and one to the end; WRITE_ROUNDS interleaved rounds of
# pgbench -c 4 for WRITE_SECS each of an acknowledgement's statements (the
# acknowledgement row, the ack_current upsert, the evidence row: as
# services/ack/ack_sql.c and lib/cv_evidence.c write them), one transaction
# each; transactions per second and median latency, medians of the rounds.
#
# Environment: CAVRA_SCALE_PORT (57201), CAVRA_SCALE_BASE (59ee3c5: the
# BEFORE statements), CAVRA_SCALE_N (200), CAVRA_SCALE_BEFORE_N (N: fewer
# keeps a 1,000,000-event run short), CAVRA_SCALE_ROUNDS (2),
# CAVRA_SCALE_WRITE_SECS (10), CAVRA_SCALE_WRITE_ROUNDS (3),
# CAVRA_SCALE_READS=0 (only the write cost). The cluster is
# a throwaway one in a mktemp folder with fsync off (CAVRA_PG_FAST=1): the
# write figures show CPU cost, not disk flushes. Needs ./build (cavra
# library and cavra-migrate: cmake --build build). Output on stdout.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PORT=${CAVRA_SCALE_PORT:-57201}
BASE=${CAVRA_SCALE_BASE:-59ee3c5}
N=${CAVRA_SCALE_N:-200}
BEFORE_N=${CAVRA_SCALE_BEFORE_N:-$N}
ROUNDS=${CAVRA_SCALE_ROUNDS:-2}
WRITE_SECS=${CAVRA_SCALE_WRITE_SECS:-10}
WRITE_ROUNDS=${CAVRA_SCALE_WRITE_ROUNDS:-3}
SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(333 33333)
[[ "${CAVRA_SCALE_READS:-1}" != 0 ]] || SIZES=()

TMP=$(mktemp -d /tmp/cavra-scale.XXXXXX)
chmod 755 "$TMP"
PG_UP=0
scale_cleanup() {
    if [[ $PG_UP -eq 1 ]]; then
        bash scripts/pg.sh stop "$TMP/pg" >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
}
trap scale_cleanup EXIT

log() { echo "dashboard_scale: $*" >&2; }

PGBIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGBENCH=$PGBIN/pgbench
[[ -x $PGBENCH ]] || PGBENCH=pgbench

# 1. The statement dumpers: BEFORE from git, AFTER from the tree.
B=$ROOT/build
[[ -f $B/lib/libcavra.a && -x $B/tools/cavra-migrate ]] || {
    log "build ./build first (cmake --build build)"
    exit 1
}
git show "$BASE:services/report/report_sql.c" >"$TMP/before_report_sql.c"
for v in before after; do
    src=$TMP/before_report_sql.c
    [[ $v == after ]] && src=$ROOT/services/report/report_sql.c
    cc -O0 -w -I"$B/proto" -I"$ROOT/lib" -I"$ROOT/services/report" \
        -I"$(pg_config --includedir)" -DREPORT_SQL_SRC="\"$src\"" \
        bench/dashboard_scale_dump.c "$B/lib/libcavra.a" \
        "$B/proto/libcv_proto.a" -lprotobuf-c -lnng -lpq -ljansson -lcrypto \
        -lm -lpthread -o "$TMP/dump_$v"
done

# SQL of statement $2 of version $1 with $1..$5 turned into pgbench
# variables (sent as parameters under -M prepared).
stmt() {
    "$TMP/dump_$1" "$2" | sed -e 's/\$5/:lim/g' -e 's/\$4/:we/g' \
        -e 's/\$3/:ws/g' -e "s/\\\$2/${3:-:p2}/g" -e 's/\$1/:now/g'
}

for v in before after; do
    {
        echo "SELECT now()::text AS now \\gset"
        echo "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
        echo "$(stmt $v report_dashboard);"
        echo "$(stmt $v report_outstanding 50);"
        echo "$(stmt $v report_hourly);"
        echo "COMMIT;"
    } >"$TMP/$v-dashboard.sql"
    {
        echo "\\set slo 240"
        echo "\\set lim 200"
        echo "SELECT now()::text AS now, date_trunc('hour', now(), 'UTC')::text AS ws,"
        echo "  (date_trunc('hour', now(), 'UTC') + interval '1 hour')::text AS we \\gset"
        echo "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
        echo "$(stmt $v report_counts :slo);"
        echo "$(stmt $v report_providers :slo);"
        echo "COMMIT;"
    } >"$TMP/$v-schedule-run.sql"
done

# 2. The cluster.
PG_UP=1
CAVRA_PG_FAST=1 bash scripts/pg.sh start "$TMP/pg" "$PORT" >/dev/null
PGPASSFILE=$(bash scripts/pg.sh pgpass "$TMP/pg")
export PGPASSFILE
OWNER=$(bash scripts/pg.sh url "$PORT")
SUPER="postgresql://postgres@127.0.0.1:$PORT/postgres"
url_of() { echo "${OWNER%/*}/$1"; }
sql() { psql "$(url_of "$1")" -X -q -At -v ON_ERROR_STOP=1 "${@:2}"; }

# fresh_db NAME MIGRATIONS_DIR
fresh_db() {
    psql "$SUPER" -X -q -v ON_ERROR_STOP=1 \
        -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" \
        -c "CREATE DATABASE $1 OWNER cavra" >/dev/null
    build/tools/cavra-migrate --dir "$2" --database-url "$(url_of "$1")" >/dev/null
}

# stats FILES...: "median / p99" (ms) of pgbench -l latencies (3rd field, us).
stats() {
    cat "$@" | awk '{ print $3 / 1000 }' | sort -n | awk '
        { v[NR] = $1 }
        END { m = v[int((NR + 1) / 2)]; p = v[int(NR * 0.99 + 0.999)];
              printf "%.2f / %.2f", m, p }'
}

echo "dashboard_scale: BEFORE = report_sql.c of $BASE, AFTER = this tree" \
    "($(git rev-parse --short HEAD)$(git diff --quiet HEAD -- services db || echo +changes));" \
    "$N transactions (BEFORE $BEFORE_N) x $ROUNDS interleaved rounds, concurrency 1; load $(cut -d' ' -f1-3 /proc/loadavg)"

# 3. Reads per size.
for records in ${SIZES[@]+"${SIZES[@]}"}; do
    fresh_db scale db/migrations
    t0=$(date +%s)
    sql scale -v records="$records" -f bench/seed.sql >/dev/null
    t1=$(date +%s)
    sql scale -c "SELECT read_projections_compact()" >/dev/null
    sql scale -c "SET client_min_messages = error" -c "VACUUM ANALYZE" >/dev/null
    events=$(sql scale -c "SELECT count(*) FROM evidence_events")
    log "seeded $records records ($events events) in $((t1 - t0)) s"

    # The same answers at one fixed now (both versions, same snapshot).
    same=yes
    fixed=$(sql scale -c "SELECT now()::text")
    for kind in dashboard schedule-run; do
        for v in before after; do
            sed -e "s/now()/'$fixed'::timestamptz/g" \
                "$TMP/$v-$kind.sql" |
                perl -pe "s/(?<!:):([a-z]+)\b/:'\$1'/g" >"$TMP/check.sql"
            # BEFORE's outstanding rows carried the total as a 7th column.
            sql scale -f "$TMP/check.sql" 2>&1 |
                awk -F'|' -v OFS='|' 'NF == 7 { NF = 6 } { print }' \
                    >"$TMP/answer-$v-$kind.txt" || true
        done
        if ! cmp -s "$TMP/answer-before-$kind.txt" "$TMP/answer-after-$kind.txt"; then
            same="NO ($kind differs: diff $TMP/answer-{before,after}-$kind.txt)"
            diff "$TMP/answer-before-$kind.txt" "$TMP/answer-after-$kind.txt" | head -20 >&2 || true
        fi
    done

    for ((r = 1; r <= ROUNDS; r++)); do
        for kind in dashboard schedule-run; do
            for v in before after; do
                n=$N
                [[ $v == before ]] && n=$BEFORE_N
                (cd "$TMP" && "$PGBENCH" -n -M prepared -c 1 -t "$n" \
                    -f "$TMP/$v-$kind.sql" -l --log-prefix="lat-$records-$v-$kind-$r" \
                    "$(url_of scale)" >/dev/null 2>"$TMP/pgbench.err") || {
                    cat "$TMP/pgbench.err" >&2
                    exit 1
                }
            done
        done
    done
    echo
    echo "store: $records seeded records, $events evidence events (seed $((t1 - t0)) s); same answers: $same"
    printf '%-14s %-22s %-22s\n' "median / p99" "BEFORE ms" "AFTER ms"
    for kind in dashboard schedule-run; do
        printf '%-14s %-22s %-22s\n' "$kind" \
            "$(stats "$TMP"/lat-"$records"-before-"$kind"-*)" \
            "$(stats "$TMP"/lat-"$records"-after-"$kind"-*)"
    done
done

# 4. Write cost: an acknowledgement's statements with and without 0014.
mkdir -p "$TMP/mig13"
for f in db/migrations/*.sql; do
    case $(basename "$f") in
    0014_* | 0015_* | 0016_* | 0018_*) ;;
    *) ln -s "$ROOT/$f" "$TMP/mig13/" ;;
    esac
done
fresh_db w13 "$TMP/mig13"
fresh_db w14 db/migrations
for db in w13 w14; do
    sql $db -v records=1000 -f bench/seed.sql >/dev/null
    sql $db -c "SET client_min_messages = error" -c "VACUUM ANALYZE" >/dev/null
done
cat >"$TMP/ack.sql" <<'EOF'
\set n random(1, 1000)
\set k random(0, 1)
\set s random(1, 6)
SELECT r.plan_id, r.provider FROM plan_routes r JOIN escalation_plans p ON p.plan_id = r.plan_id WHERE p.seq = :n ORDER BY r.position OFFSET :k LIMIT 1 \gset
BEGIN;
INSERT INTO acknowledgements (acknowledgement_id, plan_id, provider, acknowledgement_state, acknowledged_at) VALUES ('wb-' || md5(random()::text), :plan_id, :provider, (ARRAY['acknowledged', 'accepted', 'deferred', 'escalated', 'resolved', 'dismissed'])[:s::int], now()) RETURNING seq, acknowledgement_id AS aid, acknowledgement_state AS st \gset
INSERT INTO ack_current (plan_id, provider, acknowledgement_id, acknowledgement_state, seq) VALUES (:plan_id, :provider, :aid, :st, :seq::bigint) ON CONFLICT (plan_id, provider) DO UPDATE SET acknowledgement_id = EXCLUDED.acknowledgement_id, acknowledgement_state = EXCLUDED.acknowledgement_state, seq = EXCLUDED.seq WHERE ack_current.seq < EXCLUDED.seq;
INSERT INTO evidence_events (kind, record_id, plan_id, provider, actor, request_id, created_at, record) VALUES ('recovery_escalation_ack', :aid, :plan_id, :provider, 'bench', 'bench', now(), '{"bench": true}');
COMMIT;
EOF
declare -A TPS LAT
for ((r = 1; r <= WRITE_ROUNDS; r++)); do
    for db in w13 w14; do
        out=$(cd "$TMP" && "$PGBENCH" -n -M prepared -c 4 -j 2 -T "$WRITE_SECS" \
            -f "$TMP/ack.sql" "$(url_of $db)" 2>&1)
        TPS[$db]+="$(echo "$out" | awk '/^tps/ { printf "%.0f ", $3 }')"
        LAT[$db]+="$(echo "$out" | awk '/^latency average/ { printf "%s ", $4 }')"
        # Fold as the sequencer would between rounds.
        sql $db -c "SELECT read_projections_compact()" >/dev/null 2>&1 || true
    done
done
med() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo
echo "write cost: pgbench -c 4, an acknowledgement's 3 statements per transaction, $WRITE_ROUNDS x ${WRITE_SECS} s interleaved, medians"
printf '%-34s %-10s %-14s %s\n' "" "tps" "latency ms" "(rounds: tps)"
printf '%-34s %-10s %-14s %s\n' "without projections (0001-0013)" "$(echo "${TPS[w13]}" | med)" "$(echo "${LAT[w13]}" | med)" "${TPS[w13]}"
printf '%-34s %-10s %-14s %s\n' "with projections (0014)" "$(echo "${TPS[w14]}" | med)" "$(echo "${LAT[w14]}" | med)" "${TPS[w14]}"
sql w14 -c "SELECT 'w14 projections agree with the tables: ' || (count(*) = 0) FROM read_projections_diff()"
