#!/usr/bin/env bash
# supervise_test.sh -- cavra-supervise on its own, with small stand-in
# programs (no database):
#  1. a program that keeps crashing is restarted with the backoff
#     0.2 s, 0.4 s, 0.8 s ..., one log line per restart naming it, its exit
#     status and the delay; a program killed by a signal is named so;
#  2. its pid file always holds the running process;
#  3. SIGTERM stops everything, a program ignoring SIGTERM is killed after
#     --stop-timeout, pid files are removed, no process is left behind,
#     and nothing is restarted during the stop;
#  4. a bad command line is a usage error (exit 2);
#  5. when the supervisor is killed outright, its children stop too.
# Needs CV_TEST_BUILD_DIR (ctest sets it). Run: ctest -R fault.supervise
set -euo pipefail

SUP=${CV_TEST_BUILD_DIR:?CV_TEST_BUILD_DIR is not set}/tools/cavra-supervise
DIR=$(mktemp -d /tmp/cvsup.XXXXXX)
SUP_PID=

st_cleanup() {
    if [[ -n "$SUP_PID" ]] && kill -0 "$SUP_PID" 2>/dev/null; then
        kill -KILL "$SUP_PID" 2>/dev/null || true
    fi
    rm -rf "$DIR"
}
trap st_cleanup EXIT

st_fail() {
    echo "FAIL: $*" >&2
    for f in "$DIR"/*.log; do
        echo "---- $f ----" >&2
        cat "$f" >&2 || true
    done
    exit 1
}

# Stand-ins: one crashes after 0.1 s, one runs until TERM (and says so),
# one ignores TERM.
cat >"$DIR/crash.sh" <<'EOF'
#!/usr/bin/env bash
echo "crash running as $$"
sleep 0.1
exit 3
EOF
cat >"$DIR/steady.sh" <<'EOF'
#!/usr/bin/env bash
trap 'echo "steady got TERM"; exit 0' TERM
echo "steady running as $$"
while true; do sleep 0.05; done
EOF
cat >"$DIR/stubborn.sh" <<'EOF'
#!/usr/bin/env bash
trap '' TERM
echo "stubborn running as $$"
while true; do sleep 0.05; done
EOF
chmod +x "$DIR"/*.sh

# 4. Usage errors.
for args in "" "--log-dir" "noequals" "=prog" "name=" "--bogus x a=b"; do
    rc=0
    # shellcheck disable=SC2086  # word splitting wanted
    "$SUP" $args >/dev/null 2>&1 || rc=$?
    [[ $rc -eq 2 ]] || st_fail "'cavra-supervise $args' exited $rc, want 2"
done

"$SUP" --log-dir "$DIR" --pid-dir "$DIR" --stop-timeout 1000 \
    steady="$DIR/steady.sh" crash="$DIR/crash.sh" \
    stubborn="$DIR/stubborn.sh" 2>"$DIR/supervise.log" &
SUP_PID=$!

# 1. Four restarts of crash take 0.1+0.2 + 0.1+0.4 + 0.1+0.8 + 0.1 s.
for ((i = 0; i < 100; i++)); do
    n=$(grep -c "crash (pid [0-9]*) exited with status 3 after" "$DIR/supervise.log" || true)
    ((n < 4)) || break
    sleep 0.1
done
((n >= 4)) || st_fail "crash was restarted $n times in 10 s, want >= 4"
for want in "restart #1 in 0.2 s" "restart #2 in 0.4 s" "restart #3 in 0.8 s" \
    "restart #4 in 1.6 s"; do
    grep -q "crash (pid [0-9]*) exited with status 3 after 0\.[0-9] s; $want" \
        "$DIR/supervise.log" || st_fail "no line '... $want' for crash"
done
# The line also lands in the program's own log.
grep -q "restart #1 in 0.2 s" "$DIR/crash.log" || st_fail "crash.log lacks the restart line"

# A signal death is named as such.
steady_pid=$(cat "$DIR/steady.pid")
kill -0 "$steady_pid" || st_fail "steady.pid ($steady_pid) is not running"
kill -KILL "$steady_pid"
for ((i = 0; i < 50; i++)); do
    new=$(cat "$DIR/steady.pid" 2>/dev/null || true)
    [[ -z "$new" || "$new" == "$steady_pid" ]] || break
    sleep 0.05
done
[[ -n "$new" && "$new" != "$steady_pid" ]] || st_fail "steady was not restarted"
kill -0 "$new" || st_fail "the new steady.pid ($new) is not running"
grep -q "steady (pid $steady_pid) killed by signal 9 after [0-9.]* s; restart #1 in 0.2 s" \
    "$DIR/supervise.log" || st_fail "no restart line for the killed steady"

# 3. Stop: steady exits on TERM, stubborn is killed after 1 s. (The new
# steady sets its TERM trap before it says it runs: wait for that.)
for ((i = 0; i < 100; i++)); do
    (($(grep -c "steady running" "$DIR/steady.log") < 2)) || break
    sleep 0.05
done
stubborn_pid=$(cat "$DIR/stubborn.pid")
t0=$(date +%s%N)
kill -TERM "$SUP_PID"
rc=0
wait "$SUP_PID" || rc=$?
SUP_PID=
took=$((($(date +%s%N) - t0) / 1000000))
# stubborn was killed: not every process stopped with status 0.
[[ $rc -eq 1 ]] || st_fail "supervisor exited $rc after the stop, want 1"
((took < 5000)) || st_fail "the stop took $took ms"
grep -q "stubborn ignored SIGTERM for 1000 ms; killing it" "$DIR/supervise.log" ||
    st_fail "no line about killing stubborn"
grep -q "steady got TERM" "$DIR/steady.log" || st_fail "steady did not get TERM"
for pid in "$new" "$stubborn_pid"; do
    ! kill -0 "$pid" 2>/dev/null || st_fail "process $pid survived the stop"
done
! ls "$DIR"/*.pid >/dev/null 2>&1 || st_fail "pid files left: $(ls "$DIR"/*.pid)"
last_restarts=$(grep -c "restart #" "$DIR/supervise.log")
sleep 0.5
[[ $(grep -c "restart #" "$DIR/supervise.log") -eq $last_restarts ]] ||
    st_fail "something was restarted after the stop"
! pgrep -f "$DIR/" >/dev/null || st_fail "processes of $DIR are still running"

# A clean stop (every program exits 0 on TERM) exits 0.
mkdir "$DIR/2"
"$SUP" --log-dir "$DIR/2" steady="$DIR/steady.sh" 2>"$DIR/supervise2.log" &
SUP_PID=$!
# Its TERM trap is set once it says it runs.
for ((i = 0; i < 100; i++)); do
    ! grep -q "steady running" "$DIR/2/steady.log" 2>/dev/null || break
    sleep 0.05
done
kill -INT "$SUP_PID"
rc=0
wait "$SUP_PID" || rc=$?
SUP_PID=
[[ $rc -eq 0 ]] || st_fail "supervisor exited $rc after a clean stop (SIGINT), want 0"

# Should the supervisor be killed outright, its children follow it.
mkdir "$DIR/3"
"$SUP" --log-dir "$DIR/3" --pid-dir "$DIR/3" steady="$DIR/steady.sh" 2>/dev/null &
SUP_PID=$!
for ((i = 0; i < 100; i++)); do
    ! grep -q "steady running" "$DIR/3/steady.log" 2>/dev/null || break
    sleep 0.05
done
orphan=$(cat "$DIR/3/steady.pid")
kill -KILL "$SUP_PID"
wait "$SUP_PID" 2>/dev/null || true
SUP_PID=
for ((i = 0; i < 40; i++)); do
    kill -0 "$orphan" 2>/dev/null || break
    sleep 0.05
done
! kill -0 "$orphan" 2>/dev/null || st_fail "steady ($orphan) outlived its killed supervisor"

echo "supervise_test: all checks passed"
