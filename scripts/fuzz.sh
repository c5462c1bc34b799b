#!/usr/bin/env bash
# fuzz.sh -- `make fuzz`: build the libFuzzer targets with clang
# (-fsanitize=fuzzer,address,undefined) in ./build-fuzz and run each for
# FUZZ_SECONDS (default 60).
#
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh            every target
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh redact     some targets
#
# Seeds are read from tests/fuzz/<target>/; what the fuzzer learns goes to
# build-fuzz/corpus/<target>/ (not the source tree). A crashing input is
# written to build-fuzz/artifacts/<target>/; once fixed, copy it into
# tests/fuzz/<target>/ so `make test` (ctest label "fuzz") replays it.
# The exit status is non-zero when any target found a crash.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then
    TARGETS=(redact transcode envelope routes auth cursor)
fi

if ! command -v clang >/dev/null; then
    echo "fuzz.sh: clang is missing (apt-get install clang)" >&2
    exit 1
fi
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCAVRA_FUZZ=ON >/dev/null
cmake --build build-fuzz -j2 --target "${TARGETS[@]/#/fuzz_}"

rc=0
for t in "${TARGETS[@]}"; do
    mkdir -p "build-fuzz/corpus/$t" "build-fuzz/artifacts/$t"
    echo "fuzz.sh: $t for ${FUZZ_SECONDS}s" >&2
    if ! "build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$FUZZ_SECONDS" \
        -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$t/" \
        "build-fuzz/corpus/$t" "tests/fuzz/$t" \
        2>"build-fuzz/fuzz-$t.log"; then
        echo "fuzz.sh: $t FAILED, see build-fuzz/fuzz-$t.log and build-fuzz/artifacts/$t/" >&2
        rc=1
    fi
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done' \
        "build-fuzz/fuzz-$t.log" | sed "s/^/fuzz.sh: $t: /" >&2 || true
done
exit "$rc"
