#!/usr/bin/env bash
# deps.sh -- install the Debian packages CAVRA Recovery needs to build, test
# and run, when they are missing.
#
# Usage: scripts/deps.sh [EXTRA_PACKAGE...]
#   e.g. scripts/deps.sh chromium nodejs npm
#
# Checks each package with dpkg-query; when all are installed it prints
# nothing and exits 0. Otherwise it runs `apt-get update` once and installs
# only the missing ones (non-interactive; through sudo when not root).
set -euo pipefail

CAVRA_DEPS_BASE=(
    build-essential cmake pkg-config
    protobuf-c-compiler libprotobuf-c-dev
    libnng-dev libpq-dev libcmocka-dev libmicrohttpd-dev libjansson-dev
    libssl-dev libcurl4-openssl-dev
    zlib1g-dev
    postgresql postgresql-client
    curl clang-format clang
)

deps_installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ "$status" == "install ok installed" ]]
}

main() {
    local missing=() pkg
    for pkg in "${CAVRA_DEPS_BASE[@]}" "$@"; do
        [[ -n "$pkg" ]] || continue
        deps_installed "$pkg" || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0

    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "deps.sh: missing packages (${missing[*]}) and not root; sudo not found" >&2
            return 1
        fi
        sudo=(sudo)
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "deps.sh: missing packages (${missing[*]}) and apt-get not found" >&2
        return 1
    fi

    echo "deps.sh: installing ${missing[*]}" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}

main "$@"
