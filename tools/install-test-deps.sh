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

# `ansible-test sanity` (tests/ansible/test_collection.py) makes its own virtualenvs and bootstraps pip in them with
# get-pip.py from ci-files.testing.ansible.com, which a machine with a package index but no other network cannot
# fetch.  When that script is not cached, cache a stand-in in its place: pip's own wheel (from the package index)
# installing itself, which is what get-pip.py does with the copy of pip it carries.
pip_version=$(.venv/bin/python -c 'import ansible_test._internal.python_requirements as r
print(r.get_venv_packages(type("P", (), {"version": "3"})())["pip"])')
cache="$HOME/.ansible/test/cache"
get_pip="$cache/get_pip_${pip_version//./_}.py"
if [ ! -f "$get_pip" ]; then
    mkdir -p "$cache"
    if ! curl -fsS --max-time 60 -o "$get_pip.download" \
            "https://ci-files.testing.ansible.com/ansible-test/get-pip-$pip_version.py" 2>/dev/null; then
        echo "deps: get-pip.py unreachable: pip $pip_version's wheel bootstraps the ansible-test virtualenvs"
        .venv/bin/pip download -q --disable-pip-version-check --no-deps -d "$cache" "pip==$pip_version"
        cat > "$get_pip.download" <<PY
# Stand-in for get-pip.py $pip_version (written by tools/install-test-deps.sh): pip installs itself from its wheel.
import glob, os, runpy, sys
sys.path.insert(0, glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pip-$pip_version-*.whl"))[0])
sys.argv = ["pip", "install"] + [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
PY
    fi
    mv "$get_pip.download" "$get_pip"
fi
