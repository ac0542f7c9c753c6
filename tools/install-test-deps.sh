#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine:
# system packages (systemd-nspawn for the live tests, gpg, tar's compressors,
# openssl, busybox-static for the images of real rkt pods), Debian's redis-server and nginx unpacked for the real-server
# live tests, and the test virtualenvs.  ops itself needs none of it.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need systemd-nspawn systemd-container
need systemctl systemd
need gpg gpg
need xz xz-utils
need bzip2 bzip2
need openssl openssl
need nsenter util-linux
need setpriv util-linux
need tar tar
need gzip gzip
# the static busybox that the hello example's image (and the real-rkt live tests' images) are built from
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
# Real servers from Debian's packages for the live tests on the real rkt (tests/live/server_aci.py builds their
# images): downloaded and unpacked into one tree, never installed, so no service starts and no user is made here.
SERVERS=${OPS_TEST_SERVERS:-/var/cache/ops-tests/servers}
SERVER_DEBS="redis-server redis-tools libjemalloc2 liblzf1 liblua5.1-0 nginx"
# the libraries those binaries take from the machine itself (present on most Debian machines already)
for p in libssl3 libsystemd0 libatomic1 libstdc++6 libpcre2-8-0 libcrypt1 zlib1g; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: apt-get update (the package lists; needs the Debian mirrors)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    echo "deps: apt-get install ${missing[*]} (a minute or two on a fresh machine)"
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$SERVERS/usr/bin/redis-server" ] || [ ! -x "$SERVERS/usr/sbin/nginx" ]; then
    echo "deps: apt-get download $SERVER_DEBS, unpacked into $SERVERS (not installed)"
    debs=$(mktemp -d)
    ( cd "$debs" && apt-get download -qq $SERVER_DEBS 2>/dev/null ) || {
        export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; ( cd "$debs" && apt-get download -qq $SERVER_DEBS ); }
    rm -rf "$SERVERS.new" && mkdir -p "$SERVERS.new"
    for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$SERVERS.new"; done
    rm -rf "$SERVERS" "$debs" && mv "$SERVERS.new" "$SERVERS"
fi

make_venv() {   # make_venv DIR PYTHON REQUIREMENTS...
    local dir=$1 py=$2; shift 2
    if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import pytest' 2>/dev/null; then
        echo "deps: making the virtualenv $dir ($py)"
        rm -rf "$dir"
        "$py" -m venv "$dir"
    fi
    # a venv made before a requirement was added gets it now; one that has everything is left alone
    if ! "$dir/bin/python" -c 'import pytest, hypothesis, xdist' 2>/dev/null; then
        echo "deps: pip install into $dir: $* (needs PyPI)"
        "$dir/bin/pip" install -q --disable-pip-version-check "$@"
    fi
}
make_venv .venv "${PYTHON:-python3}" -r tests/requirements.txt
"./.venv/bin/python" -c 'import ansible, ansible_collections.community.docker.plugins.connection.nsenter' \
    2>/dev/null || { echo "deps: pip install into .venv: ansible (needs PyPI)"
                     .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt; }

# The compatibility subset of the unit tests also runs on the oldest and newest supported Pythons.
for v in 3.8 3.13; do
    py=$(tools/find-python.sh "$v") || { echo "python$v not found: the unit tests need it" >&2; exit 1; }
    make_venv ".venv-$v" "$py" "pytest" "hypothesis" "pytest-xdist"
done
