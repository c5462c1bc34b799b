#!/bin/bash
# cavra-pg-entrypoint -- the part of the official postgres image's entrypoint
# that docker-compose.yml relies on (test image only; see Dockerfile).
#
# As root: own the data folder, then re-exec as postgres. On an empty data
# folder: initdb with POSTGRES_USER as superuser and POSTGRES_PASSWORD
# (scram-sha-256 from other hosts, trust on the local socket), create
# POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sql and *.sh once against it
# on a server that listens on no TCP port (so pg_isready -h 127.0.0.1 stays
# "no" until the data is ready), then exec the real server as PID 1.
set -euo pipefail

PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA

if [[ ${1:-} != postgres ]]; then
    exec "$@"
fi

if [[ $(id -u) -eq 0 ]]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

if [[ ! -s $PGDATA/PG_VERSION ]]; then
    if [[ -z ${POSTGRES_PASSWORD:-} ]]; then
        echo "cavra-pg-entrypoint: POSTGRES_PASSWORD is required" >&2
        exit 1
    fi
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"

    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -k /var/run/postgresql" \
        start >/dev/null
    psql_su=(psql -v ON_ERROR_STOP=1 -q -h /var/run/postgresql -U "$POSTGRES_USER")
    if [[ $POSTGRES_DB != postgres ]]; then
        # psql quotes the variable as an identifier (:"db"): no injection.
        echo 'CREATE DATABASE :"db";' | "${psql_su[@]}" -d postgres -v db="$POSTGRES_DB"
    fi
    shopt -s nullglob
    for f in /docker-entrypoint-initdb.d/*; do
        case $f in
        *.sql) echo "cavra-pg-entrypoint: running $f"
            "${psql_su[@]}" -d "$POSTGRES_DB" -f "$f" ;;
        *.sh) echo "cavra-pg-entrypoint: running $f"
            # shellcheck disable=SC1090
            . "$f" ;;
        *) echo "cavra-pg-entrypoint: ignoring $f" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -w -m fast stop >/dev/null
    echo "cavra-pg-entrypoint: database $POSTGRES_DB initialised"
fi

exec "$@"
