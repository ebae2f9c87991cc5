#!/usr/bin/env bash
# The tests' one setup step: every change to this machine that the test suite needs, so that
# `cargo test` itself installs nothing (a test that finds a piece missing fails and names this
# script). The README's test command runs it: `tests/setup.sh && cargo test --locked`.
#
#   - Debian packages, with apt-get as root or through sudo, only those missing: the OpenSSL 3
#     headers and pkg-config (the build), python3-venv (the interop venvs), chromium, nodejs
#     and npm (the browser test), postgresql (the replication tests' throwaway clusters).
#   - The Python venvs of the interop clients, with the pinned tests/interop/*requirements.txt
#     from PyPI, under the target directory's tmp/ (cargo's CARGO_TARGET_TMPDIR, where the
#     tests look; CARGO_TARGET_DIR is honoured as cargo honours it).
#   - `npm ci` in tests/browser from its package-lock.json (from the npm registry).
#
# Idempotent: a venv or node_modules carries a stamp, a copy of the requirements file or lockfile
# it was made from, and is remade only when that file changes. Quiet on success (one line per
# thing done); on failure, prints the failing command's output and names the step.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
did=0

say() { echo "tests/setup.sh: $*"; }
fail() {
    echo "tests/setup.sh: FAILED: $*" >&2
    exit 1
}
# Runs a command with its output kept aside: shown only if it fails.
quiet() {
    local what=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        fail "$what"
    fi
}

# --- Debian packages ---------------------------------------------------------------------
missing() {
    need=()
    dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
    dpkg -s pkg-config >/dev/null 2>&1 || need+=(pkg-config)
    python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
    [ -x /usr/bin/chromium ] || need+=(chromium)
    command -v node >/dev/null || need+=(nodejs)
    command -v npm >/dev/null || need+=(npm)
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
}
missing
if [ ${#need[@]} -gt 0 ]; then
    command -v apt-get >/dev/null ||
        fail "not a Debian machine (no apt-get): install ${need[*]} yourself, then run this again"
    if [ "$(id -u)" = 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null; then
        sudo=(sudo)
    else
        fail "apt-get install ${need[*]} needs root or sudo"
    fi
    say "apt-get install ${need[*]}"
    quiet "apt-get update" "${sudo[@]}" apt-get update -qq
    quiet "apt-get install ${need[*]}" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq "${need[@]}"
    missing
    [ ${#need[@]} -eq 0 ] || fail "still missing after apt-get install: ${need[*]}"
    did=$((did + 1))
fi

# --- Python venvs of the interop clients (tests/it/support/interop.rs) --------------------
# The tests find them under CARGO_TARGET_TMPDIR, which is <target directory>/tmp.
target=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])') ||
    target=${CARGO_TARGET_DIR:-$PWD/target}
for pair in interop-venv:requirements.txt packager-venv:packager-requirements.txt \
    speke-venv:speke-requirements.txt; do
    venv=$target/tmp/${pair%%:*}
    req=tests/interop/${pair#*:}
    cmp -s "$req" "$venv/requirements.installed" && continue
    say "venv $venv from $req (PyPI)"
    rm -rf "$venv"
    mkdir -p "$target/tmp"
    quiet "python3 -m venv $venv" python3 -m venv "$venv"
    quiet "pip install -r $req into $venv" "$venv/bin/python" -m pip install --quiet \
        --disable-pip-version-check -r "$req"
    cp "$req" "$venv/requirements.installed"
    did=$((did + 1))
done

# --- npm packages of the browser test (tests/it/support/browser.rs) ----------------------
if ! cmp -s tests/browser/package-lock.json tests/browser/node_modules/.tessera-installed; then
    say "npm ci in tests/browser (npm registry)"
    quiet "npm ci in tests/browser" sh -c \
        'cd tests/browser && exec npm ci --no-audit --no-fund --loglevel=error'
    cp tests/browser/package-lock.json tests/browser/node_modules/.tessera-installed
    did=$((did + 1))
fi

if [ $did -eq 0 ]; then
    say "nothing to do: Debian packages, venvs under $target/tmp and tests/browser/node_modules are in place"
else
    say "done ($did steps)"
fi
