#!/usr/bin/env bash
# setup.sh -- what the browser tests of the Evidence Console need, installed
# only when missing (idempotent; a second run does nothing):
#   - Debian's chromium (/usr/bin/chromium)          apt-get install chromium
#   - node and npm                                    apt-get install nodejs npm
#   - playwright-core and axe-core, pinned in
#     package-lock.json                               npm ci (in this folder)
# apt-get update runs first only when an install is needed and the package
# is not known to apt yet (or the first install attempt fails).
# Runs as root, or through sudo. Prints nothing when everything is there.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

setup_log() {
    echo "browser/setup.sh: $*" >&2
}

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    SUDO=(sudo)
fi

APT_UPDATED=0
apt_update() {
    if [[ $APT_UPDATED -eq 0 ]]; then
        setup_log "apt-get update"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
        APT_UPDATED=1
    fi
}

# apt_install PKG...: installs, updating the package lists first when apt
# does not know a package (fresh image) or when the first attempt fails.
apt_install() {
    local pkg
    for pkg in "$@"; do
        if ! apt-cache show "$pkg" >/dev/null 2>&1; then
            apt_update
            break
        fi
    done
    setup_log "apt-get install $*"
    if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q "$@" </dev/null >&2; then
        apt_update
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q "$@" </dev/null >&2
    fi
}

# 1. The browser: Debian's chromium (playwright never downloads one here).
if [[ ! -x /usr/bin/chromium ]]; then
    apt_install chromium
fi

# 2. node and npm.
if ! command -v node >/dev/null 2>&1; then
    apt_install nodejs npm
elif ! command -v npm >/dev/null 2>&1; then
    apt_install npm
fi

# 3. The npm packages of package.json (playwright-core, axe-core) from the
#    lock file, when node_modules is missing, older than the lock file, or
#    does not hold a locked version.
need_ci=0
if [[ ! -f "$HERE/node_modules/.package-lock.json" ]]; then
    need_ci=1
elif [[ "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]]; then
    need_ci=1
elif ! node -e '
    const fs = require("fs"), path = require("path");
    const dir = process.argv[1];
    const lock = require(path.join(dir, "package-lock.json"));
    for (const name of Object.keys(require(path.join(dir, "package.json")).dependencies)) {
      const want = lock.packages["node_modules/" + name].version;
      const file = path.join(dir, "node_modules", name, "package.json");
      if (!fs.existsSync(file) || JSON.parse(fs.readFileSync(file, "utf8")).version !== want) process.exit(1);
    }' "$HERE"; then
    need_ci=1
fi
if [[ $need_ci -eq 1 ]]; then
    setup_log "npm ci (playwright-core, axe-core)"
    # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing
    # by itself, but make sure no install hook tries to.
    (cd "$HERE" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
        npm ci --no-audit --no-fund --loglevel=error >&2)
fi
