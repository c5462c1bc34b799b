#!/usr/bin/env bash
# compose_test.sh -- `make compose-test`: run docker/docker-compose.yml for
# real, with podman, and drive the whole loop through the published gateway.
#
# 1. Installs what is missing (podman, runc, debootstrap, docker-compose and
#    the CNI dnsname plugin, which resolves service names between containers).
# 2. Images, cached in podman's storage between runs:
#    - debian:bookworm-slim: debootstrap --variant=minbase from the host's
#      Debian mirror, with the host's apt sources and Acquire settings, then
#      `podman import` (skipped when the image exists);
#    - PostgreSQL 15 for the test (docker/postgres-test/), tagged with a hash
#      of its files (skipped when that tag exists);
#    - cavra-recovery:latest from docker/Dockerfile (always built; podman's
#      layer cache makes an unchanged tree a few seconds).
# 3. Starts `podman system service` on a socket in a temporary folder and
#    docker-compose (1.29) against it through DOCKER_HOST, with
#    docker-compose.yml + docker-compose.test.yml, a generated env file and
#    token file, the gateway published on 127.0.0.1:<free port from 18000>.
#    Without systemd podman does not run health checks by itself: a
#    background loop runs `podman healthcheck run` on the project's
#    containers, which is what docker-compose's depends_on conditions wait on.
# 4. Checks, through the gateway port only and with a bearer token: the whole
#    loop (plan, delivery attempts, acknowledgement, retry plan, schedule
#    run, dashboard, trace, verify); that no service port is published or
#    listening on the host; that a killed service container is restarted by
#    its restart policy and requests succeed again; that after
#    `docker-compose down` + `up` the data is still there (named volume), the
#    evidence verifies and the migrate job is a no-op.
# 5. Whatever the exit path, everything it started is stopped and removed
#    (containers, network, volume, the podman service, the temporary folder);
#    the images stay as the cache.
#
# Environment: CAVRA_COMPOSE_PORT (first port tried, default 18000).
# Exit status 0 when every check passed. A machine that cannot run
# containers fails with one line starting "COMPOSE TEST CANNOT RUN".
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CT_PROJECT=cavra-compose-test
CT_BASE_IMAGE=debian:bookworm-slim
CT_APP_IMAGE=cavra-recovery:latest
CT_PG_REPO=localhost/cavra-test-postgres
P=/runtime/go-pilot/rollback-drill-notifications/acknowledgements/audit-delivery
# Debian's python3 (a dependency of docker-compose), for reading JSON.
PY=/usr/bin/python3

CT_TMP=
CT_SERVICE_PID=
CT_HEALTH_PID=
CT_COMPOSE_UP=0
CT_START=$SECONDS

ct_log() {
    echo "compose_test.sh: [$((SECONDS - CT_START))s] $*" >&2
}

ct_fail() {
    ct_log "FAIL: $*"
    exit 1
}

ct_cannot_run() {
    echo "########## COMPOSE TEST CANNOT RUN: this machine cannot run containers ($*) ##########" >&2
    exit 1
}

ct_compose() {
    docker-compose -p "$CT_PROJECT" --env-file "$CT_TMP/env" \
        -f docker/docker-compose.yml -f docker/docker-compose.test.yml "$@"
}

# Removes every container, network and volume of the project, whoever left
# them (this run, or an earlier one that was killed).
ct_purge() {
    local ids
    ids=$(podman ps -aq --filter "label=com.docker.compose.project=$CT_PROJECT" 2>/dev/null) || true
    if [[ -n $ids ]]; then
        # shellcheck disable=SC2086
        podman rm -f -t 2 $ids >/dev/null 2>&1 || true
    fi
    ids=$(podman volume ls -q --filter "label=com.docker.compose.project=$CT_PROJECT" 2>/dev/null) || true
    if [[ -n $ids ]]; then
        # shellcheck disable=SC2086
        podman volume rm -f $ids >/dev/null 2>&1 || true
    fi
    if podman network exists "${CT_PROJECT}_default" 2>/dev/null; then
        podman network rm -f "${CT_PROJECT}_default" >/dev/null 2>&1 || true
    fi
}

# shellcheck disable=SC2317  # called from a trap
ct_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $CT_HEALTH_PID ]]; then
        kill "$CT_HEALTH_PID" 2>/dev/null || true
        wait "$CT_HEALTH_PID" 2>/dev/null || true
    fi
    if [[ $rc -ne 0 && $CT_COMPOSE_UP -eq 1 ]]; then
        ct_log "state at failure:"
        podman ps -a --filter "label=com.docker.compose.project=$CT_PROJECT" \
            --format '{{.Names}} {{.Status}}' >&2 || true
        local name
        for name in $(podman ps -a --format '{{.Names}}' \
            --filter "label=com.docker.compose.project=$CT_PROJECT" 2>/dev/null); do
            echo "--- last log lines of $name" >&2
            podman logs --tail 15 "$name" >&2 2>&1 || true
        done
    fi
    if [[ $CT_COMPOSE_UP -eq 1 ]]; then
        timeout 120 docker-compose -p "$CT_PROJECT" --env-file "$CT_TMP/env" \
            -f docker/docker-compose.yml -f docker/docker-compose.test.yml \
            down -v --remove-orphans -t 5 >/dev/null 2>&1 ||
            ct_log "docker-compose down failed; removing by label"
    fi
    if command -v podman >/dev/null 2>&1 && [[ -n $CT_TMP ]]; then
        ct_purge
    fi
    if [[ -n $CT_SERVICE_PID ]]; then
        kill "$CT_SERVICE_PID" 2>/dev/null || true
        wait "$CT_SERVICE_PID" 2>/dev/null || true
    fi
    if [[ -n $CT_TMP ]]; then
        rm -rf "$CT_TMP"
    fi
    if [[ $rc -eq 0 ]]; then
        ct_log "passed in $((SECONDS - CT_START))s"
    else
        ct_log "FAILED (exit $rc) after $((SECONDS - CT_START))s"
    fi
    exit "$rc"
}
trap ct_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# True when something accepts TCP connections on 127.0.0.1:$1.
ct_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# --- 1. packages ------------------------------------------------------------
bash scripts/deps.sh podman runc debootstrap docker-compose \
    golang-github-containernetworking-plugin-dnsname ||
    ct_cannot_run "scripts/deps.sh could not install podman and its tools"
command -v podman >/dev/null 2>&1 || ct_cannot_run "podman is not installed"

# One run at a time on a machine: the project name, and so its containers
# and volume, are fixed (which lets a run clean up after a killed one).
exec 9>/tmp/cavra-compose-test.lock
flock -w 1200 9 || ct_fail "another compose test holds /tmp/cavra-compose-test.lock"

CT_TMP=$(mktemp -d /tmp/cavra-compose.XXXXXX)
# runc here refuses podman's default rlimits, and crun refuses hybrid
# cgroups: no default ulimits, and runc.
cat >"$CT_TMP/containers.conf" <<'EOF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$CT_TMP/containers.conf
podman info >/dev/null 2>"$CT_TMP/podman-info.err" ||
    ct_cannot_run "podman info: $(head -n 1 "$CT_TMP/podman-info.err")"
ct_purge

# --- 2. images --------------------------------------------------------------
# The host's Debian mirror, as apt sees it (whatever its sources format).
ct_mirror() {
    local m
    m=$(apt-cache policy 2>/dev/null |
        awk '$3 == "bookworm/main" && $2 ~ /^https?:/ { print $2; exit }')
    echo "${m:-http://deb.debian.org/debian}"
}

ct_prepare_base() {
    if podman image exists "$CT_BASE_IMAGE"; then
        return 0
    fi
    local root=$CT_TMP/rootfs mirror f
    mirror=$(ct_mirror)
    ct_log "making $CT_BASE_IMAGE with debootstrap from $mirror (once; about 30 s)"
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$CT_TMP/debootstrap.log" 2>&1 || {
        tail -n 20 "$CT_TMP/debootstrap.log" >&2
        ct_fail "debootstrap failed"
    }
    # apt inside `podman build` (host network) uses the host's sources and
    # Acquire settings (e.g. a snapshot mirror's expired Valid-Until), never
    # its hooks.
    rm -f "$root/etc/apt/sources.list"
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -s $f ]] || continue
        if [[ $f == /etc/apt/sources.list ]]; then
            cp "$f" "$root/etc/apt/sources.list"
        else
            cp "$f" "$root/etc/apt/sources.list.d/"
        fi
    done
    for f in /etc/apt/apt.conf.d/*; do
        if grep -q '^[[:space:]]*Acquire' "$f" && ! grep -q 'Invoke' "$f"; then
            cp "$f" "$root/etc/apt/apt.conf.d/"
        fi
    done
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | podman import -q - "$CT_BASE_IMAGE" >/dev/null
    rm -rf "$root"
}

ct_prepare_base
podman run --rm --network none "$CT_BASE_IMAGE" true 2>"$CT_TMP/run.err" ||
    ct_cannot_run "podman run: $(head -n 1 "$CT_TMP/run.err")"

# ct_build LOG ARGS...: podman build with the host's network (apt reaches the
# mirror) and never a pull; the log's tail is shown when it fails.
ct_build() {
    local log=$1
    shift
    podman build --isolation chroot --network host --pull=never "$@" >"$log" 2>&1 || {
        tail -n 40 "$log" >&2
        ct_fail "podman build $* failed"
    }
}

# The PostgreSQL image's tag follows its files, so an edit rebuilds it.
CT_PG_IMAGE=$CT_PG_REPO:15-$(cat docker/postgres-test/Dockerfile docker/postgres-test/entrypoint.sh |
    sha256sum | cut -c1-12)
if ! podman image exists "$CT_PG_IMAGE"; then
    ct_log "building $CT_PG_IMAGE (once)"
    ct_build "$CT_TMP/build-pg.log" -t "$CT_PG_IMAGE" docker/postgres-test
fi

ct_log "building $CT_APP_IMAGE from docker/Dockerfile"
ct_build "$CT_TMP/build-app.log" --ignorefile docker/Dockerfile.dockerignore \
    -f docker/Dockerfile -t "$CT_APP_IMAGE" .
ct_log "images ready"

# --- 3. compose up ----------------------------------------------------------
CT_PORT=${CAVRA_COMPOSE_PORT:-18000}
while ct_port_busy "$CT_PORT"; do
    CT_PORT=$((CT_PORT + 1))
    ((CT_PORT < 18100)) || ct_fail "no free port in 18000-18099"
done
BASE=http://127.0.0.1:$CT_PORT

TOKEN=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
printf '%s compose-test-admin admin\n' "$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)" \
    >"$CT_TMP/tokens"
# Read by the gateway's uid 10001 through the bind mount.
chmod 0644 "$CT_TMP/tokens"
# RPC keys, made with the image's own cavra-keygen: the gateway's (it acts
# for end users) and the health checks' (auditor; cavra-rpc in each service
# container signs with it). The principals file lists both.
mkdir -p "$CT_TMP/keys"
podman run --rm --user 0 --network none -v "$CT_TMP/keys:/keys" "$CT_APP_IMAGE" \
    sh -c 'cavra-keygen gateway /keys/gateway.key admin --delegate &&
           cavra-keygen healthcheck /keys/healthcheck.key auditor' \
    >"$CT_TMP/keys/principals" || ct_fail "cavra-keygen in $CT_APP_IMAGE failed"
# The deployment CA and certificates for tls+tcp:// between containers.
bash docker/make-certs.sh "$CT_TMP/keys/tls" >/dev/null ||
    ct_fail "docker/make-certs.sh failed"
# Read by uid 10001 through the bind mounts (a test folder of its own;
# a real deployment gives each file to the one container that needs it).
chmod 0644 "$CT_TMP/keys/"*.* "$CT_TMP/keys/principals" "$CT_TMP/keys/tls/"*
{
    echo "CAVRA_TEST_KEY_DIR=$CT_TMP/keys"
    echo "CAVRA_DB_PASSWORD=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
    echo "CAVRA_APP_DB_PASSWORD=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
    echo "CAVRA_GATEWAY_PUBLISH=127.0.0.1:$CT_PORT"
    echo "CAVRA_TEST_PG_IMAGE=$CT_PG_IMAGE"
    echo "CAVRA_TEST_TOKEN_FILE=$CT_TMP/tokens"
} >"$CT_TMP/env"
chmod 0600 "$CT_TMP/env"

podman system service --time=0 "unix://$CT_TMP/podman.sock" >"$CT_TMP/service.log" 2>&1 &
CT_SERVICE_PID=$!
export DOCKER_HOST=unix://$CT_TMP/podman.sock
for ((i = 0; i < 100; i++)); do
    [[ -S $CT_TMP/podman.sock ]] && break
    sleep 0.1
done
[[ -S $CT_TMP/podman.sock ]] || ct_cannot_run "podman system service did not start"

# Runs the health checks of the project's running containers, all at once,
# about every second (podman leaves that to systemd timers, and there is no
# systemd here). The compose file's intervals are not honoured: faster
# checks only make start-up quicker, and each check is a cheap exec.
ct_health_driver() {
    local id
    while :; do
        for id in $(podman ps -q --filter "label=com.docker.compose.project=$CT_PROJECT" 2>/dev/null); do
            timeout 10 podman healthcheck run "$id" >/dev/null 2>&1 &
        done
        wait
        sleep 1
    done
}
ct_health_driver &
CT_HEALTH_PID=$!

# Listening TCP sockets on the host that belong to the container engine
# (conmon holds published ports, dnsmasq serves the network's DNS),
# "addr:port" per line. Other programs' sockets are left out: the machine
# is shared, and what they open meanwhile is none of this test's doing.
ct_listeners() {
    ss -Hltnp | awk '/"(conmon|podman|dnsmasq|rootlessport|slirp4netns|docker-proxy)"/ { print $4 }' |
        sort -u
}
ct_listeners >"$CT_TMP/listen.before"
for port in 5432 7101 7102 7103; do
    if ct_port_busy "$port"; then echo "$port"; fi
done >"$CT_TMP/busy.before"

# Waits until the migrate job exited 0 and every other container is healthy.
ct_wait_healthy() {
    local deadline=$((SECONDS + ${1:-180})) svc state all
    while ((SECONDS < deadline)); do
        all=1
        for svc in postgres ack retry report gateway; do
            state=$(podman inspect -f '{{.State.Status}}/{{.State.Health.Status}}' \
                "${CT_PROJECT}_${svc}_1" 2>/dev/null) || state=missing
            [[ $state == running/healthy ]] || all=0
        done
        state=$(podman inspect -f '{{.State.Status}}/{{.State.ExitCode}}' \
            "${CT_PROJECT}_migrate_1" 2>/dev/null) || state=missing
        [[ $state == exited/0 ]] || all=0
        ((all)) && return 0
        sleep 1
    done
    return 1
}

ct_up() {
    ct_compose up -d --no-build >"$CT_TMP/up.log" 2>&1 || {
        cat "$CT_TMP/up.log" >&2
        ct_fail "docker-compose up failed"
    }
    ct_wait_healthy 180 || ct_fail "not every container became healthy within 180 s"
}

ct_log "docker-compose up (gateway on 127.0.0.1:$CT_PORT)"
CT_COMPOSE_UP=1
ct_up
ct_log "all containers healthy; migrate exited 0"

# --- 4. checks --------------------------------------------------------------
# ct_req METHOD PATH [BODY [IDEMPOTENCY_KEY]]: CT_STATUS = HTTP status, body
# in $CT_TMP/body.
ct_req() {
    local method=$1 path=$2 body=${3:-} key=${4:-}
    local args=(-sS -o "$CT_TMP/body" -w '%{http_code}' --max-time 20 -X "$method"
        -H "Authorization: Bearer $TOKEN")
    if [[ $method == POST ]]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$body")
    fi
    if [[ -n $key ]]; then
        args+=(-H "Idempotency-Key: $key")
    fi
    CT_STATUS=$(curl "${args[@]}" "$BASE$path" 2>/dev/null) || CT_STATUS=000
}

# ct_expect WHAT STATUS...: fails unless CT_STATUS is one of them.
ct_expect() {
    local what=$1 s
    shift
    for s in "$@"; do
        [[ $CT_STATUS == "$s" ]] && return 0
    done
    ct_fail "$what: HTTP $CT_STATUS, expected $*: $(head -c 400 "$CT_TMP/body" 2>/dev/null)"
}

# ct_json EXPR: evaluates a Python expression over the last body as `d`.
ct_json() {
    "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)' \
        "$CT_TMP/body" "$1"
}

# ct_check WHAT EXPR: fails unless the Python expression is true.
ct_check() {
    [[ $(ct_json "bool($2)") == true ]] ||
        ct_fail "$1: expected $2 in $(head -c 600 "$CT_TMP/body")"
}

ct_log "the whole loop through the gateway"
CT_STATUS=$(curl -sS -o "$CT_TMP/body" -w '%{http_code}' --max-time 10 \
    "$BASE/runtime/go-pilot/rollback-drill-notifications/dashboard" 2>/dev/null) || CT_STATUS=000
ct_expect "dashboard without a token" 401

ct_req POST "$P/recovery-escalation-plan" '{"generated_by": "release-bot",
  "escalation_routes": [
    {"provider": "slack", "severity": "critical", "slo_breached": true,
     "reason": "webhook connector failed after rollback"},
    {"provider": "jira", "category": "retry-execution", "failure_count": 2}]}'
ct_expect "plan" 201
PLAN_ID=$(ct_json 'd["plan"]["plan_id"]')
[[ $PLAN_ID == gordackrecoveryesc-* ]] || ct_fail "plan id $PLAN_ID"

for i in 1 2; do
    ct_req POST "$P/recovery-escalations/$PLAN_ID/delivery-attempts" \
        '{"provider": "slack", "success": false, "status_code": 503, "error": "upstream timeout"}'
    ct_expect "delivery attempt $i" 201
done

ct_req POST "$P/recovery-escalations/$PLAN_ID/acknowledgements" \
    '{"provider": "slack", "acknowledgement_state": "accepted", "external_ref": "CHG-1234"}'
ct_expect "acknowledgement" 201
ct_check "acknowledgement actor" \
    'd["acknowledgement"]["acknowledged_by"] == "compose-test-admin"'

ct_req POST "$P/recovery-escalations/retry-plan" "{\"plan_id\": \"$PLAN_ID\",
  \"retry_policy\": {\"max_retry_attempts\": 5, \"retry_delay_minutes\": 10, \"backoff_multiplier\": 2}}"
ct_expect "retry plan" 201
ct_check "retry decision" '[(x["provider"], x["action"], x["retry_count"]) for x in d["plan"]["retry_decisions"]] == [("slack", "wait", 2)]'

ct_req POST "$P/recovery-executive-report/schedule-run" \
    '{"generated_by": "exec-scheduler", "schedule": {"interval_minutes": 1440, "schedule_id": "compose-test"}}'
ct_expect "schedule run" 201
RUN_ID=$(ct_json 'd["run"]["run_id"]')
[[ $RUN_ID == gordackexecsched-* ]] || ct_fail "run id $RUN_ID"

ct_req GET /runtime/go-pilot/rollback-drill-notifications/dashboard
ct_expect "dashboard" 200
ct_check "dashboard counts" 'd["acknowledgement_audit_delivery_recovery_escalation_plan_count"] == 1 and d["acknowledgement_audit_delivery_recovery_escalation_ack_count"] == 1 and d["acknowledgement_audit_delivery_recovery_escalation_retry_plan_count"] == 1 and d["acknowledgement_audit_delivery_recovery_executive_report_schedule_run_count"] == 1 and d["failed_delivery_count"] == 2'
cp "$CT_TMP/body" "$CT_TMP/dashboard.1"

CT_TRACE_KINDS='[x["kind"] for x in d["items"]]'
ct_req GET "$P/recovery-escalations/$PLAN_ID/trace"
ct_expect "trace" 200
ct_check "trace length" "len(d[\"items\"]) == 6"
TRACE_1=$(ct_json "$CT_TRACE_KINDS")

ct_req GET /runtime/evidence/verify
ct_expect "verify" 200
ct_check "verify" 'd["valid"] is True and d["events"] >= 6'
ct_log "loop ok: plan $PLAN_ID, trace $TRACE_1"

ct_log "internal RPCs: tls+tcp:// with the deployment CA; the database login is cavra_app"
for svc in ack retry report; do
    # grep reads all of it: with -q it would stop early, podman logs would
    # die of SIGPIPE and pipefail would call the check failed.
    podman logs "${CT_PROJECT}_${svc}_1" 2>&1 | grep "listening on tls+tcp://" >/dev/null ||
        ct_fail "$svc does not listen on tls+tcp://"
done
owner_conns=$(podman exec "${CT_PROJECT}_postgres_1" psql -U cavra -d cavra -Atc \
    "SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('cavra-ack', 'cavra-retry', 'cavra-report') AND usename <> 'cavra_app'" 2>&1) ||
    ct_fail "cannot read pg_stat_activity: $owner_conns"
[[ "$owner_conns" == 0 ]] || ct_fail "$owner_conns service connections are not cavra_app"

ct_log "service ports: not published, not listening on the host"
# "ip:port" per published port of a container (EXPOSE alone maps to null).
ct_published() {
    podman inspect -f '{{json .HostConfig.PortBindings}}' "${CT_PROJECT}_$1_1" |
        "$PY" -c 'import json, sys
for binds in (json.load(sys.stdin) or {}).values():
    for b in binds or []:
        print("%s:%s" % (b.get("HostIp") or "0.0.0.0", b.get("HostPort")))'
}
for svc in postgres migrate ack retry report; do
    published=$(ct_published "$svc")
    [[ -z $published ]] || ct_fail "$svc publishes $published"
done
published=$(ct_published gateway)
[[ $published == "127.0.0.1:$CT_PORT" ]] ||
    ct_fail "gateway publishes '$published', expected 127.0.0.1:$CT_PORT only"
for port in 5432 7101 7102 7103; do
    if ! grep -qx "$port" "$CT_TMP/busy.before" && ct_port_busy "$port"; then
        ct_fail "port $port answers on the host"
    fi
done
# Allowed: the published gateway port, and the network's DNS (the dnsname
# plugin's dnsmasq, on the bridge's own addresses, for the containers).
dns_addrs=$(podman network inspect -f '{{range .Subnets}}{{.Gateway}}:53 {{end}}' \
    "${CT_PROJECT}_default")
bridge=$(podman network inspect -f '{{.NetworkInterface}}' "${CT_PROJECT}_default")
new=$(ct_listeners | comm -13 "$CT_TMP/listen.before" -)
for l in $new; do
    [[ $l == "127.0.0.1:$CT_PORT" || " $dns_addrs " == *" $l "* ||
        ( -n $bridge && $l == *"%$bridge:53" ) ]] ||
        ct_fail "new listener on the host: $l"
done

ct_log "fault: kill -9 the ack container's process; its restart policy brings it back"
restarts=$(podman inspect -f '{{.RestartCount}}' "${CT_PROJECT}_ack_1")
pid=$(podman inspect -f '{{.State.Pid}}' "${CT_PROJECT}_ack_1")
[[ $pid -gt 0 ]] || ct_fail "ack has no process"
kill -9 "$pid"
ok=0
for ((i = 0; i < 60; i++)); do
    sleep 1
    [[ $(podman inspect -f '{{.RestartCount}}' "${CT_PROJECT}_ack_1") -gt $restarts ]] || continue
    ct_req POST "$P/recovery-escalations/$PLAN_ID/acknowledgements" \
        '{"provider": "jira", "acknowledgement_state": "deferred"}'
    if [[ $CT_STATUS == 201 ]]; then
        ok=1
        break
    fi
done
((ok)) || ct_fail "ack did not come back within 60 s (last HTTP $CT_STATUS)"
ct_wait_healthy 60 || ct_fail "not healthy again after the restart"
ct_log "ack restarted and answering after ${i}s"

ct_req GET "$P/recovery-escalations/$PLAN_ID/trace"
ct_expect "trace after restart" 200
TRACE_2=$(ct_json "$CT_TRACE_KINDS")
ct_req GET /runtime/go-pilot/rollback-drill-notifications/dashboard
ct_expect "dashboard after restart" 200
cp "$CT_TMP/body" "$CT_TMP/dashboard.2"

ct_log "docker-compose down, then up: the named volume keeps the data"
ct_compose down -t 10 >"$CT_TMP/down.log" 2>&1 || {
    cat "$CT_TMP/down.log" >&2
    ct_fail "docker-compose down failed"
}
[[ -z $(podman ps -aq --filter "label=com.docker.compose.project=$CT_PROJECT") ]] ||
    ct_fail "containers left after docker-compose down"
! ct_port_busy "$CT_PORT" || ct_fail "port $CT_PORT still answers after down"
ct_up
migrate_out=$(podman logs "${CT_PROJECT}_migrate_1" 2>&1)
[[ $migrate_out == *"migrations: 0 applied,"* ]] ||
    ct_fail "migrate was not a no-op the second time: $migrate_out"

ct_req GET "$P/recovery-escalations/$PLAN_ID/trace"
ct_expect "trace after down/up" 200
[[ $(ct_json "$CT_TRACE_KINDS") == "$TRACE_2" ]] || ct_fail "trace changed across down/up"
ct_req GET /runtime/go-pilot/rollback-drill-notifications/dashboard
ct_expect "dashboard after down/up" 200
"$PY" - "$CT_TMP/dashboard.2" "$CT_TMP/body" <<'EOF' || ct_fail "dashboard counts changed across down/up"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
counts = lambda d: {k: v for k, v in d.items() if k.endswith("_count")}
sys.exit(0 if counts(a) == counts(b) and counts(a) else 1)
EOF
ct_req POST "$P/recovery-executive-report/schedule-run" \
    '{"generated_by": "exec-scheduler", "schedule": {"interval_minutes": 1440, "schedule_id": "compose-test"}}'
ct_expect "schedule run after down/up" 200 201
if [[ $CT_STATUS == 200 ]]; then
    [[ $(ct_json 'd["run"]["run_id"]') == "$RUN_ID" ]] || ct_fail "a replayed window gave another run"
fi
ct_req GET /runtime/evidence/verify
ct_expect "verify after down/up" 200
ct_check "verify after down/up" 'd["valid"] is True and d["events"] >= 7'
ct_log "data, evidence and migrations survived down/up"

ct_log "replicas: profile \"replicas\" adds ack-2, retry-2, report-2; the gateway dials both"
# The same project with the replicas' settings, as docker/.env would give them.
cp "$CT_TMP/env" "$CT_TMP/env.replicas"
{
    echo "CAVRA_ACK_URLS=tls+tcp://ack:7101,tls+tcp://ack-2:7101"
    echo "CAVRA_RETRY_URLS=tls+tcp://retry:7102,tls+tcp://retry-2:7102"
    echo "CAVRA_REPORT_URLS=tls+tcp://report:7103,tls+tcp://report-2:7103"
} >>"$CT_TMP/env.replicas"
ct_compose_replicas() {
    docker-compose -p "$CT_PROJECT" --env-file "$CT_TMP/env.replicas" --profile replicas \
        -f docker/docker-compose.yml -f docker/docker-compose.test.yml "$@"
}
ct_compose_replicas up -d --no-build >"$CT_TMP/up-replicas.log" 2>&1 || {
    cat "$CT_TMP/up-replicas.log" >&2
    ct_fail "docker-compose up with the replicas failed"
}
for ((i = 0; i < 120; i++)); do
    all=1
    for svc in ack ack-2 retry-2 report report-2 gateway; do
        state=$(podman inspect -f '{{.State.Status}}/{{.State.Health.Status}}' \
            "${CT_PROJECT}_${svc}_1" 2>/dev/null) || state=missing
        [[ $state == running/healthy ]] || all=0
    done
    ((all)) && break
    sleep 1
done
((all)) || ct_fail "the replicas did not become healthy within 120 s"
ct_req GET /runtime/go-pilot/rollback-drill-notifications/dashboard
ct_expect "dashboard with replicas" 200
acks_before=$(ct_json 'd["acknowledgement_audit_delivery_recovery_escalation_ack_count"]')

# 30 acknowledgements, one after another; after the 10th the first ack
# replica is stopped for good (SIGKILL, no restart). A call that was in
# flight on it answers 503 and is sent again with its Idempotency-Key, as a
# client would; every one must end in 201 (or 200, a replay) and be stored
# once.
retried=0
for ((i = 0; i < 30; i++)); do
    if ((i == 10)); then
        podman stop -t 0 "${CT_PROJECT}_ack_1" >/dev/null ||
            ct_fail "podman stop ack failed"
    fi
    for ((try = 0; try < 10; try++)); do
        ct_req POST "$P/recovery-escalations/$PLAN_ID/acknowledgements" \
            "{\"provider\": \"jira\", \"acknowledgement_state\": \"acknowledged\", \"notes\": \"replica $i\"}" \
            "compose-replica-$i"
        [[ $CT_STATUS == 201 || $CT_STATUS == 200 ]] && break
        [[ $CT_STATUS == 503 || $CT_STATUS == 000 ]] ||
            ct_fail "acknowledgement $i with one replica stopped: HTTP $CT_STATUS $(head -c 300 "$CT_TMP/body")"
        retried=$((retried + 1))
        sleep 0.5
    done
    [[ $CT_STATUS == 201 || $CT_STATUS == 200 ]] ||
        ct_fail "acknowledgement $i never succeeded with one replica stopped (HTTP $CT_STATUS)"
done
ct_req GET /runtime/go-pilot/rollback-drill-notifications/dashboard
ct_expect "dashboard after stopping a replica" 200
ct_check "each acknowledgement stored once" \
    "d[\"acknowledgement_audit_delivery_recovery_escalation_ack_count\"] == $acks_before + 30"
ct_log "ack stopped after 10 of 30 acknowledgements: all 30 stored once ($retried calls sent again)"

# The single writers fail over: with the first report replica stopped, the
# other takes the sequencer lock, chains the new events and signs a
# checkpoint that covers them; a schedule run is answered by report-2.
podman stop -t 0 "${CT_PROJECT}_report_1" >/dev/null || ct_fail "podman stop report failed"
ct_req POST "$P/recovery-executive-report/schedule-run" \
    '{"generated_by": "exec-scheduler", "schedule": {"interval_minutes": 60, "schedule_id": "compose-replica"}}'
ct_expect "schedule run with report stopped" 201 200
for ((i = 0; i < 60; i++)); do
    ct_req GET /runtime/evidence/verify
    if [[ $CT_STATUS == 200 ]]; then
        events=$(ct_json 'd["events"]')
        ct_req GET /runtime/evidence/checkpoint
        if [[ $CT_STATUS == 200 ]] && (($(sed -n 2p "$CT_TMP/body") >= events)); then
            break
        fi
    fi
    sleep 1
done
((i < 60)) || ct_fail "no checkpoint covering all $events events within 60 s after report stopped"
ct_req GET /runtime/evidence/verify
ct_expect "verify with report stopped" 200
ct_check "verify with report stopped" 'd["valid"] is True'
ct_log "report stopped: report-2 chained and signed $events events (checkpoint after ${i}s), verify valid"

# --- 5. tear down and check that nothing is left listening ------------------
kill "$CT_HEALTH_PID" 2>/dev/null || true
wait "$CT_HEALTH_PID" 2>/dev/null || true
CT_HEALTH_PID=
ct_compose down -v --remove-orphans -t 10 >"$CT_TMP/down.log" 2>&1 || {
    cat "$CT_TMP/down.log" >&2
    ct_fail "final docker-compose down -v failed"
}
CT_COMPOSE_UP=0
ct_purge
kill "$CT_SERVICE_PID" 2>/dev/null || true
wait "$CT_SERVICE_PID" 2>/dev/null || true
CT_SERVICE_PID=
! ct_port_busy "$CT_PORT" || ct_fail "port $CT_PORT still answers at the end"
left=$(ct_listeners | comm -13 "$CT_TMP/listen.before" -)
[[ -z $left ]] || ct_fail "still listening at the end: $left"
[[ -z $(podman volume ls -q --filter "label=com.docker.compose.project=$CT_PROJECT") ]] ||
    ct_fail "volume left at the end"
