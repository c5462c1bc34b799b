#!/usr/bin/env bash
# pg.sh -- a local PostgreSQL cluster for development and tests.
#
# Usage (called):
#   scripts/pg.sh start DIR PORT   initdb once into DIR/data, start the server
#                                  on 127.0.0.1:PORT (log: DIR/postgres.log),
#                                  then make sure role and database `cavra`
#                                  exist. Already running: only the last step.
#   scripts/pg.sh standby PRIMARY_DIR DIR PORT
#                                  a hot streaming standby of the running
#                                  cluster in PRIMARY_DIR (pg_basebackup -R)
#                                  in DIR on 127.0.0.1:PORT (read replica
#                                  tests and benchmarks)
#   scripts/pg.sh stop DIR         fast shutdown; fine when not running.
#   scripts/pg.sh teardown DIR     the end of a throwaway stack (bench.sh,
#                                  test.sh): stops DIR/standby and DIR/pg
#                                  (whichever runs), then removes DIR.
#   scripts/pg.sh port-busy PORT   true when 127.0.0.1:PORT accepts TCP.
#   scripts/pg.sh url PORT         prints postgresql://cavra@127.0.0.1:PORT/cavra
#                                  (the owner: migrations, administration)
#   scripts/pg.sh app-url PORT     prints postgresql://cavra_app@127.0.0.1:PORT/cavra
#                                  (the services' login: SELECT and INSERT)
#   scripts/pg.sh pgpass DIR       prints DIR/pgpass (export it as PGPASSFILE)
#
# Usage (sourced): `. scripts/pg.sh` defines cavra_pg_start, cavra_pg_stop,
# cavra_pg_teardown, cavra_pg_port_busy and cavra_pg_url with the same
# arguments; they return non-zero on failure
# and never exit the caller's shell.
#
# Environment:
#   CAVRA_PG_BINDIR  server binaries (default: newest /usr/lib/postgresql/*/bin,
#                    else `pg_config --bindir`, else PATH)
#   CAVRA_PG_FAST=1  fsync/synchronous_commit/full_page_writes off: for
#                    throwaway test clusters only (applied at each start).
#
# Design notes:
#  - PostgreSQL refuses to run as root. When root, server-side commands run
#    as the `postgres` user: DIR is chowned to it, and any parent folder it
#    cannot traverse gets o+x (search only, no read), with a note on stderr.
#  - The server listens on 127.0.0.1 only. Its unix socket goes to DIR, or to
#    a short /tmp/cavra-pg-<cksum> folder when DIR is too long for a socket
#    path (sun_path is 108 bytes). Clients here always use TCP.
#  - Authentication: scram-sha-256 over TCP, never trust. Passwords for
#    postgres, cavra (the owner) and cavra_app (the services' login, which
#    owns nothing, is no superuser and no member of cavra) are generated
#    once into DIR/pgpass (mode 0600, libpq's password-file format); point
#    PGPASSFILE at it. pg_hba.conf is rewritten at every start, so a
#    cluster made before this change is moved to scram too.
#  - Per-start settings (port, sockets, fast mode) live in DIR/data/cavra.conf,
#    included from postgresql.conf and rewritten at every start, so a path
#    with spaces needs no shell quoting through pg_ctl -o.

cavra_pg_err() {
    echo "pg.sh: $*" >&2
}

# Prints the folder holding initdb/pg_ctl/postgres, or fails.
cavra_pg_bindir() {
    local d
    if [[ -n "${CAVRA_PG_BINDIR:-}" ]]; then
        d=$CAVRA_PG_BINDIR
    else
        d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
        if [[ -z "$d" || ! -x "$d/pg_ctl" ]]; then
            d=$(pg_config --bindir 2>/dev/null || true)
        fi
        if [[ -z "$d" || ! -x "$d/pg_ctl" ]]; then
            d=$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")
        fi
    fi
    if [[ ! -x "$d/pg_ctl" || ! -x "$d/initdb" ]]; then
        cavra_pg_err "PostgreSQL server binaries (initdb, pg_ctl) not found;" \
            "run scripts/deps.sh or set CAVRA_PG_BINDIR"
        return 1
    fi
    printf '%s\n' "$d"
}

# Runs a command as the server's owner: `postgres` when we are root.
cavra_pg_as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- env LC_ALL=C "$@"
    else
        env LC_ALL=C "$@"
    fi
}

# Prints the unix socket folder for absolute DIR.
cavra_pg_sockdir() {
    local dir=$1
    # "<dir>/.s.PGSQL.<port>.lock" must fit in 107 bytes; keep a margin.
    if ((${#dir} > 80)); then
        printf '/tmp/cavra-pg-%s\n' "$(printf '%s' "$dir" | cksum | cut -d' ' -f1)"
    else
        printf '%s\n' "$dir"
    fi
}

# As root: hand DIR (and the socket folder) to postgres, and make sure
# postgres can reach them.
cavra_pg_grant() {
    local dir=$1 sockdir=$2 p
    [[ $(id -u) -eq 0 ]] || return 0
    if ! getent passwd postgres >/dev/null; then
        cavra_pg_err "running as root but there is no 'postgres' user;" \
            "install the postgresql package (scripts/deps.sh)"
        return 1
    fi
    chown postgres: "$dir" "$sockdir" || return 1
    [[ ! -e "$dir/postgres.log" ]] || chown postgres: "$dir/postgres.log" || return 1
    # Check from / downwards: a folder below an untraversable one would
    # look untraversable too.
    local parents=() i
    p=$(dirname "$dir")
    while [[ "$p" != / ]]; do
        parents+=("$p")
        p=$(dirname "$p")
    done
    for ((i = ${#parents[@]} - 1; i >= 0; i--)); do
        p=${parents[i]}
        if ! runuser -u postgres -- test -x "$p"; then
            cavra_pg_err "note: chmod o+x $p so the postgres user can reach $dir"
            chmod o+x "$p" || return 1
        fi
    done
    if ! runuser -u postgres -- test -w "$dir"; then
        cavra_pg_err "the postgres user cannot write $dir"
        return 1
    fi
}

# Prints the port a running cluster in DATA listens on (postmaster.pid line 4).
cavra_pg_running_port() {
    sed -n 4p "$1/postmaster.pid" 2>/dev/null
}

# psql over TCP as the superuser; extra arguments follow.
cavra_pg_psql() {
    local bindir=$1 port=$2
    shift 2
    PGCONNECT_TIMEOUT=5 "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}

# Makes DIR/pgpass once: a random password per role, mode 0600.
cavra_pg_make_pgpass() {
    local dir=$1 f=$1/pgpass role
    [[ -s "$f" ]] && return 0
    (
        umask 077
        for role in postgres cavra cavra_app; do
            printf '127.0.0.1:*:*:%s:%s\n' "$role" \
                "$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
        done >"$f.tmp"
    ) && mv "$f.tmp" "$f"
}

# The password of ROLE in DIR/pgpass.
cavra_pg_password() {
    awk -F: -v r="$2" '$4 == r { print $5; exit }' "$1/pgpass"
}

# Sets the roles' passwords from DIR/pgpass, then moves the cluster to
# scram-sha-256 (pg_hba.conf rewritten, reloaded). Passwords reach psql as
# variables (:'pw' quotes them), never pasted into SQL text.
cavra_pg_secure() {
    local bindir=$1 port=$2 dir=$3 data=$3/data role
    for role in postgres cavra cavra_app; do
        printf 'ALTER ROLE %s PASSWORD :'"'"'pw'"'"';\n' "$role" |
            cavra_pg_psql "$bindir" "$port" -v pw="$(cavra_pg_password "$dir" "$role")" ||
            return 1
    done
    {
        echo "# Written by scripts/pg.sh at each start; edits are lost."
        echo "local all postgres peer"
        echo "host  all all 127.0.0.1/32 scram-sha-256"
        echo "host  all all ::1/128      scram-sha-256"
        echo "host  replication postgres 127.0.0.1/32 scram-sha-256"
    } | cavra_pg_as_owner tee "$data/pg_hba.conf" >/dev/null || return 1
    cavra_pg_as_owner "$bindir/pg_ctl" reload -D "$data" >/dev/null
}

# Creates role and database `cavra` when missing, and the role
# `cavra_app` the services act as (SET ROLE): the migrations grant it
# INSERT/SELECT but never UPDATE or DELETE of evidence (docs/evidence.md).
cavra_pg_ensure_db() {
    local bindir=$1 port=$2 out
    out=$(cavra_pg_psql "$bindir" "$port" \
        -c "SELECT 1 FROM pg_roles WHERE rolname = 'cavra'") || return 1
    if [[ "$out" != 1 ]]; then
        cavra_pg_psql "$bindir" "$port" -c "CREATE ROLE cavra LOGIN" || return 1
    fi
    out=$(cavra_pg_psql "$bindir" "$port" \
        -c "SELECT 1 FROM pg_roles WHERE rolname = 'cavra_app'") || return 1
    if [[ "$out" != 1 ]]; then
        cavra_pg_psql "$bindir" "$port" -c "CREATE ROLE cavra_app" \
            -c "GRANT cavra_app TO cavra" || return 1
    fi
    # The services' login: owns nothing, no superuser, cannot become the
    # owner (not a member of cavra), no role or database creation.
    cavra_pg_psql "$bindir" "$port" \
        -c "ALTER ROLE cavra_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION" \
        -c "ALTER ROLE cavra NOSUPERUSER" \
        -c "REVOKE cavra FROM cavra_app" >/dev/null 2>&1 || return 1
    out=$(cavra_pg_psql "$bindir" "$port" \
        -c "SELECT 1 FROM pg_database WHERE datname = 'cavra'") || return 1
    if [[ "$out" != 1 ]]; then
        cavra_pg_psql "$bindir" "$port" \
            -c "CREATE DATABASE cavra OWNER cavra ENCODING 'UTF8' TEMPLATE template0" ||
            return 1
    fi
}

# cavra_pg_start DIR PORT
cavra_pg_start() {
    local dir=${1:-} port=${2:-} bindir sockdir data running
    if [[ -z "$dir" || ! "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
        cavra_pg_err "usage: pg.sh start DIR PORT"
        return 2
    fi
    bindir=$(cavra_pg_bindir) || return 1
    mkdir -p "$dir" || return 1
    dir=$(cd "$dir" && pwd -P) || return 1
    data=$dir/data
    cavra_pg_make_pgpass "$dir" || return 1
    export PGPASSFILE=$dir/pgpass
    sockdir=$(cavra_pg_sockdir "$dir")
    mkdir -p "$sockdir" || return 1
    chmod 700 "$sockdir" 2>/dev/null || true
    cavra_pg_grant "$dir" "$sockdir" || return 1

    if cavra_pg_as_owner "$bindir/pg_ctl" status -D "$data" >/dev/null 2>&1; then
        running=$(cavra_pg_running_port "$data")
        if [[ "$running" != "$port" ]]; then
            cavra_pg_err "cluster in $data already runs on port ${running:-?}, not $port"
            return 1
        fi
        cavra_pg_ensure_db "$bindir" "$port" && cavra_pg_secure "$bindir" "$port" "$dir" || {
            cavra_pg_err "could not create role/database cavra on port $port"
            return 1
        }
        return 0
    fi

    if [[ ! -f "$data/PG_VERSION" ]]; then
        if [[ -e "$data" ]] && [[ -n "$(ls -A "$data" 2>/dev/null)" ]]; then
            cavra_pg_err "$data exists but is not a cluster; remove it and retry"
            return 1
        fi
        # scram from the first start: the superuser's password comes from
        # DIR/pgpass through a file only the server's owner reads.
        cavra_pg_password "$dir" postgres | cavra_pg_as_owner tee "$dir/.pwfile" >/dev/null
        cavra_pg_as_owner chmod 600 "$dir/.pwfile"
        if ! (cd "$dir" && cavra_pg_as_owner "$bindir/initdb" -D "$data" \
            -A scram-sha-256 --pwfile="$dir/.pwfile" -U postgres \
            --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1); then
            rm -f "$dir/.pwfile"
            cavra_pg_err "initdb failed in $data; see $dir/initdb.log:"
            tail -n 20 "$dir/initdb.log" >&2
            return 1
        fi
        rm -f "$dir/.pwfile"
        printf "\n# CAVRA: per-start settings written by scripts/pg.sh\ninclude_if_exists = 'cavra.conf'\n" |
            cavra_pg_as_owner tee -a "$data/postgresql.conf" >/dev/null || return 1
    fi

    {
        echo "# Written by scripts/pg.sh at each start; edits are lost."
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '${sockdir//\'/\'\'}'"
        if [[ "${CAVRA_PG_FAST:-0}" == 1 ]]; then
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
            # Asynchronous commits reach a standby only once the WAL
            # writer flushes them: every 10 ms, not 200 (read replica
            # tests wait for that before each read).
            echo "wal_writer_delay = 10ms"
        fi
    } | cavra_pg_as_owner tee "$data/cavra.conf" >/dev/null || return 1

    if ! (cd "$dir" && cavra_pg_as_owner "$bindir/pg_ctl" start -w -t 60 \
        -D "$data" -l "$dir/postgres.log" >/dev/null); then
        cavra_pg_err "PostgreSQL did not start on 127.0.0.1:$port; end of $dir/postgres.log:"
        tail -n 20 "$dir/postgres.log" >&2 2>/dev/null
        return 1
    fi
    cavra_pg_ensure_db "$bindir" "$port" && cavra_pg_secure "$bindir" "$port" "$dir" || {
        cavra_pg_err "could not create role/database cavra on port $port"
        return 1
    }
}

# cavra_pg_standby PRIMARY_DIR DIR PORT: a streaming standby of the running
# cluster in PRIMARY_DIR (pg_basebackup -R, WAL streamed), in DIR, on
# 127.0.0.1:PORT, hot (read-only queries). Same roles and passwords: DIR
# gets a copy of PRIMARY_DIR/pgpass. Stop it with `pg.sh stop DIR`.
cavra_pg_standby() {
    local pdir=${1:-} dir=${2:-} port=${3:-} bindir sockdir data pport i
    if [[ -z "$pdir" || -z "$dir" || ! "$port" =~ ^[0-9]+$ ]]; then
        cavra_pg_err "usage: pg.sh standby PRIMARY_DIR DIR PORT"
        return 2
    fi
    bindir=$(cavra_pg_bindir) || return 1
    pdir=$(cd "$pdir" && pwd -P) || return 1
    pport=$(cavra_pg_running_port "$pdir/data")
    if [[ -z "$pport" ]]; then
        cavra_pg_err "no running cluster in $pdir"
        return 1
    fi
    mkdir -p "$dir" || return 1
    dir=$(cd "$dir" && pwd -P) || return 1
    data=$dir/data
    if [[ -e "$data" ]]; then
        cavra_pg_err "$data exists already; remove it first"
        return 1
    fi
    (umask 077 && cp "$pdir/pgpass" "$dir/pgpass") || return 1
    sockdir=$(cavra_pg_sockdir "$dir")
    mkdir -p "$sockdir" || return 1
    chmod 700 "$sockdir" 2>/dev/null || true
    cavra_pg_grant "$dir" "$sockdir" || return 1
    # The server's owner reads the password file (it stays the standby's
    # primary_conninfo passfile).
    [[ $(id -u) -ne 0 ]] || chown postgres: "$dir/pgpass" || return 1
    if ! (cd "$dir" && cavra_pg_as_owner PGPASSFILE="$dir/pgpass" "$bindir/pg_basebackup" \
        -h 127.0.0.1 -p "$pport" -U postgres -D "$data" -R -X stream -c fast \
        >"$dir/basebackup.log" 2>&1); then
        cavra_pg_err "pg_basebackup from port $pport failed; see $dir/basebackup.log:"
        tail -n 20 "$dir/basebackup.log" >&2
        return 1
    fi
    {
        echo "# Written by scripts/pg.sh (standby of port $pport); edits are lost."
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '${sockdir//\'/\'\'}'"
        echo "hot_standby = on"
        # Long reads (verify) are not cancelled by the replay of vacuum.
        echo "hot_standby_feedback = on"
    } | cavra_pg_as_owner tee "$data/cavra.conf" >/dev/null || return 1
    if ! (cd "$dir" && cavra_pg_as_owner "$bindir/pg_ctl" start -w -t 60 \
        -D "$data" -l "$dir/postgres.log" >/dev/null); then
        cavra_pg_err "the standby did not start on 127.0.0.1:$port; end of $dir/postgres.log:"
        tail -n 20 "$dir/postgres.log" >&2 2>/dev/null
        return 1
    fi
    for ((i = 0; i < 60; i++)); do
        [[ "$(PGPASSFILE=$dir/pgpass cavra_pg_psql "$bindir" "$port" \
            -c "SELECT pg_is_in_recovery()" 2>/dev/null)" == t ]] && return 0
        sleep 0.5
    done
    cavra_pg_err "the standby on port $port does not answer as a standby"
    return 1
}

# cavra_pg_stop DIR
cavra_pg_stop() {
    local dir=${1:-} bindir data sockdir
    if [[ -z "$dir" ]]; then
        cavra_pg_err "usage: pg.sh stop DIR"
        return 2
    fi
    [[ -d "$dir" ]] || return 0
    dir=$(cd "$dir" && pwd -P) || return 1
    data=$dir/data
    [[ -f "$data/PG_VERSION" ]] || return 0
    bindir=$(cavra_pg_bindir) || return 1
    if cavra_pg_as_owner "$bindir/pg_ctl" status -D "$data" >/dev/null 2>&1; then
        if ! (cd "$dir" && cavra_pg_as_owner "$bindir/pg_ctl" stop -w -m fast \
            -D "$data" >/dev/null); then
            cavra_pg_err "could not stop the cluster in $data"
            return 1
        fi
    fi
    sockdir=$(cavra_pg_sockdir "$dir")
    [[ "$sockdir" == "$dir" ]] || rmdir "$sockdir" 2>/dev/null || true
    return 0
}

# cavra_pg_teardown DIR: stops the standby in DIR/standby first (it would
# retry its primary), then the cluster in DIR/pg, then removes DIR. A
# cluster that does not stop is named; DIR goes anyway.
cavra_pg_teardown() {
    local dir=${1:-} rc=0
    if [[ -z "$dir" ]]; then
        cavra_pg_err "usage: pg.sh teardown DIR"
        return 2
    fi
    cavra_pg_stop "$dir/standby" || {
        cavra_pg_err "could not stop the standby in $dir/standby"
        rc=1
    }
    cavra_pg_stop "$dir/pg" || {
        cavra_pg_err "could not stop the cluster in $dir/pg"
        rc=1
    }
    rm -rf "$dir"
    return "$rc"
}

# cavra_pg_port_busy PORT: true when something accepts TCP connections on
# 127.0.0.1:PORT.
cavra_pg_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# cavra_pg_url PORT
cavra_pg_url() {
    if [[ ! "${1:-}" =~ ^[0-9]+$ ]]; then
        cavra_pg_err "usage: pg.sh url PORT"
        return 2
    fi
    printf 'postgresql://cavra@127.0.0.1:%s/cavra\n' "$1"
}

# cavra_pg_app_url PORT: the services' login.
cavra_pg_app_url() {
    if [[ ! "${1:-}" =~ ^[0-9]+$ ]]; then
        cavra_pg_err "usage: pg.sh app-url PORT"
        return 2
    fi
    printf 'postgresql://cavra_app@127.0.0.1:%s/cavra\n' "$1"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    cmd=${1:-}
    shift || true
    case "$cmd" in
    start) cavra_pg_start "$@" ;;
    standby) cavra_pg_standby "$@" ;;
    stop) cavra_pg_stop "$@" ;;
    teardown) cavra_pg_teardown "$@" ;;
    port-busy) cavra_pg_port_busy "${1:?usage: pg.sh port-busy PORT}" ;;
    url) cavra_pg_url "$@" ;;
    app-url) cavra_pg_app_url "$@" ;;
    pgpass) printf '%s/pgpass\n' "$(cd "${1:?usage: pg.sh pgpass DIR}" && pwd -P)" ;;
    *)
        cavra_pg_err "usage: pg.sh start DIR PORT | standby PRIMARY_DIR DIR PORT | stop DIR | teardown DIR | port-busy PORT | url PORT | app-url PORT | pgpass DIR"
        exit 2
        ;;
    esac
fi
