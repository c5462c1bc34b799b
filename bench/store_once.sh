#!/usr/bin/env bash
# store_once.sh -- bytes stored per acknowledgement, this tree against an
# older commit, side by side (issue 11, item 5: records stored once).
#
#   bash bench/store_once.sh [N] [BASE_COMMIT] [PORT]
#
# N acknowledgements (default 10000), BASE_COMMIT the layout to compare
# with (default f89b56c: three copies of each record), PORT the first of
# two loopback ports for throwaway PostgreSQL clusters (default 57122).
#
# For each of the two trees (BASE_COMMIT exported with `git archive` to a
# /tmp/cavra-store-once-base-<commit>, kept for the next run; this working
# tree): builds the services, the gateway,
# cavra-migrate and the test support library (RelWithDebInfo, ./build or
# <tmp>/build), links bench/store_once.c against them, starts a fresh
# PostgreSQL, applies that tree's migrations, and runs store_once, which
# sends the acknowledgements over HTTP through the real stack and prints
# the growth of pg_total_relation_size of acknowledgements, ack_current
# and evidence_events per acknowledgement, and the response bytes of the
# three mission endpoints, as sent to a client that accepts gzip (Python
# requests' "Accept-Encoding: gzip, deflate") and to one that does not.
# Both runs happen one after the other on the same machine; sizes are
# deterministic up to page fill, timings are not measured. With
# STORE_ONCE_DUMP=DIR, each run writes its plain answers to DIR/before
# and DIR/after.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd -P)
N=${1:-10000}
BASE=${2:-f89b56c}
PORT=${3:-57122}
TMP=$(mktemp -d /tmp/cavra-store-once.XXXXXX)
chmod 755 "$TMP"
PG_DIRS=()

so_log() {
    echo "store_once.sh: $*" >&2
}

so_cleanup() {
    for d in "${PG_DIRS[@]}"; do
        bash "$ROOT/scripts/pg.sh" stop "$d" >/dev/null 2>&1 || true
    done
    rm -rf "$TMP"
}
trap so_cleanup EXIT

# so_build SRC BUILD: the binaries store_once needs, then store_once.
so_build() {
    local src=$1 build=$2
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" -j2 --target cavra-ack cavra-retry cavra-report \
        cavra-gateway cavra-migrate cv_test_support >/dev/null
    # shellcheck disable=SC2046  # pkg-config prints several words
    cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
        -I "$src/tests/support" -I "$src/lib" -I "$build/proto" \
        "$ROOT/bench/store_once.c" "$build/tests/libcv_test_support.a" \
        "$build/lib/libcavra.a" "$build/proto/libcv_proto.a" \
        $(pkg-config --cflags --libs libcurl cmocka jansson libpq \
            libprotobuf-c libcrypto) -lnng -lpthread -lm \
        -o "$build/store_once"
}

# so_run NAME SRC BUILD PORT
so_run() {
    local name=$1 src=$2 build=$3 port=$4 pg=$TMP/pg-$1
    PG_DIRS+=("$pg")
    CAVRA_PG_FAST=1 bash "$ROOT/scripts/pg.sh" start "$pg" "$port" >/dev/null
    PGPASSFILE=$(bash "$ROOT/scripts/pg.sh" pgpass "$pg")
    CAVRA_DATABASE_URL=$(bash "$ROOT/scripts/pg.sh" app-url "$port")
    CAVRA_TEST_OWNER_DATABASE_URL=$(bash "$ROOT/scripts/pg.sh" url "$port")
    export PGPASSFILE CAVRA_DATABASE_URL CAVRA_TEST_OWNER_DATABASE_URL
    "$build/tools/cavra-migrate" --dir "$src/db/migrations" \
        --database-url "$CAVRA_TEST_OWNER_DATABASE_URL" >/dev/null
    echo "== $name"
    if [[ -n "${STORE_ONCE_DUMP:-}" ]]; then
        mkdir -p "$STORE_ONCE_DUMP/${name%% *}"
        STORE_ONCE_DUMP="$STORE_ONCE_DUMP/${name%% *}" "$build/store_once" "$N"
    else
        "$build/store_once" "$N"
    fi
    bash "$ROOT/scripts/pg.sh" stop "$pg" >/dev/null
}

# The older tree is kept between runs (it never changes).
BASE_DIR=/tmp/cavra-store-once-base-$(git -C "$ROOT" rev-parse --short "$BASE")
so_log "exporting $BASE to $BASE_DIR"
if [[ ! -f "$BASE_DIR/CMakeLists.txt" ]]; then
    mkdir -p "$BASE_DIR"
    git -C "$ROOT" archive "$BASE" | tar -x -C "$BASE_DIR"
fi
so_log "building $BASE"
so_build "$BASE_DIR" "$BASE_DIR/build"
so_log "building this tree"
so_build "$ROOT" "$ROOT/build"
so_run "before ($BASE)" "$BASE_DIR" "$BASE_DIR/build" "$PORT"
so_run "after (this tree)" "$ROOT" "$ROOT/build" "$((PORT + 1))"
