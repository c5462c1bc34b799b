#!/usr/bin/env bash
# fuzz.sh -- `make fuzz`: build the libFuzzer targets with clang
# (-fsanitize=fuzzer,address,undefined) in ./build-fuzz and run each for
# FUZZ_SECONDS (default 60).
#
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh            every target
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh redact     some targets
#   FUZZ_CPU_SECONDS=660 FUZZ_NICE=19 bash scripts/fuzz.sh auth
#                                     a CPU-time budget instead of wall time
#
# On a shared machine wall time says little: with FUZZ_CPU_SECONDS each
# target runs until its process has used that much CPU (user + system,
# read from /proc every few seconds) and is then stopped with SIGINT, which
# makes libFuzzer print its final stats. Either way the log
# build-fuzz/fuzz-<t>.log ends with the CPU seconds the run took.
# FUZZ_ARGS adds libFuzzer options (e.g. -max_len=4096).
#
# Seeds are read from tests/fuzz/<target>/; what the fuzzer learns goes to
# build-fuzz/corpus/<target>/ (not the source tree). A crashing input is
# written to build-fuzz/artifacts/<target>/; once fixed, copy it into
# tests/fuzz/<target>/ so `make test` (ctest label "fuzz") replays it.
# The exit status is non-zero when any target found a crash.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_CPU_SECONDS=${FUZZ_CPU_SECONDS:-}
FUZZ_NICE=${FUZZ_NICE:-0}
read -r -a FUZZ_EXTRA <<<"${FUZZ_ARGS:-}"
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then
    TARGETS=(redact transcode envelope routes auth cursor retry_cursor checkpoint tile_path proof
        accept_encoding)
fi

if ! command -v clang >/dev/null; then
    echo "fuzz.sh: clang is missing (apt-get install clang)" >&2
    exit 1
fi
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCAVRA_FUZZ=ON >/dev/null
cmake --build build-fuzz -j2 --target "${TARGETS[@]/#/fuzz_}"

# fuzz_cpu_ticks PID -- user + system CPU of PID in clock ticks (0 if gone).
fuzz_cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# fuzz_run T LOG -- one target; with a CPU budget, watch it and stop it.
fuzz_run() {
    local t=$1 log=$2 max_time=$FUZZ_SECONDS pid ticks used=0 hz status stopped=0
    hz=$(getconf CLK_TCK)
    if [[ -n $FUZZ_CPU_SECONDS ]]; then
        max_time=$((FUZZ_CPU_SECONDS * 100)) # the watcher below stops it
    fi
    nice -n "$FUZZ_NICE" "build-fuzz/tests/fuzz/fuzz_$t" \
        -max_total_time="$max_time" -print_final_stats=1 \
        -artifact_prefix="build-fuzz/artifacts/$t/" "${FUZZ_EXTRA[@]}" \
        "build-fuzz/corpus/$t" "tests/fuzz/$t" 2>"$log" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        ticks=$(fuzz_cpu_ticks "$pid")
        if ((ticks > used)); then used=$ticks; fi
        if [[ -n $FUZZ_CPU_SECONDS ]] && ((used >= FUZZ_CPU_SECONDS * hz)); then
            kill -INT "$pid" 2>/dev/null || true
            stopped=1
            break
        fi
        sleep 2
    done
    status=0
    wait "$pid" || status=$?
    echo "cpu_seconds: $((used / hz)) (exit status $status)" >>"$log"
    # libFuzzer exits 72 after our SIGINT, once it printed its stats.
    if ((status != 0 && !(stopped && status == 72))); then return 1; fi
    ! grep -q '^==[0-9]*==ERROR\|^SUMMARY: \(Address\|Undefined\)' "$log"
}

rc=0
for t in "${TARGETS[@]}"; do
    mkdir -p "build-fuzz/corpus/$t" "build-fuzz/artifacts/$t"
    echo "fuzz.sh: $t for ${FUZZ_CPU_SECONDS:-$FUZZ_SECONDS}s${FUZZ_CPU_SECONDS:+ of CPU}" >&2
    if ! fuzz_run "$t" "build-fuzz/fuzz-$t.log"; then
        echo "fuzz.sh: $t FAILED, see build-fuzz/fuzz-$t.log and build-fuzz/artifacts/$t/" >&2
        rc=1
    fi
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done|^cpu_seconds' \
        "build-fuzz/fuzz-$t.log" | sed "s/^/fuzz.sh: $t: /" >&2 || true
done
exit "$rc"
