#!/usr/bin/env bash
# Build (or reuse) a venv with a real Keystone and python-openstackclient of the lab's release,
# for the tests that drive oslab's verification against a real identity service on loopback.
#
#   tests/keystone/setup.sh            prints the venv's path as its last line
#
# Keystone is pinned here (it is not in the constraints file); every other package comes
# under the release's upper-constraints (install/schema/upper-constraints-2025.1.txt). The venv
# is cached under ${OSLAB_TEST_CACHE:-$HOME/.cache/oslab-tests}, keyed by this script, the
# constraints file and the Python version, so a rerun with the same inputs is instant. Only
# this step needs the network (PyPI); run it before entering the test network namespace.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
log() { echo "keystone-setup: $*" >&2; }

KEYSTONE_SPEC=${OSLAB_KEYSTONE_SPEC:-"keystone==27.*"}
CLIENT_SPEC="python-openstackclient"
constraints=${OSLAB_UPPER_CONSTRAINTS:-"$repo/install/schema/upper-constraints-2025.1.txt"}
python=${OSLAB_PYTHON:-python3}
cache=${OSLAB_TEST_CACHE:-"$HOME/.cache/oslab-tests"}

[ -r "$constraints" ] || { log "no constraints file at $constraints"; exit 1; }
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$( { cat "${BASH_SOURCE[0]}" "$constraints"; echo "$pyver $KEYSTONE_SPEC $CLIENT_SPEC"; } \
       | sha256sum | cut -c1-16)
venv="$cache/keystone-$key"
mkdir -p "$cache"

exec 8>"$cache/.keystone.lock"
flock 8
if [ -f "$venv/.complete" ]; then
    echo "$venv"
    exit 0
fi

log "building $venv (Python $pyver, $KEYSTONE_SPEC, $CLIENT_SPEC under $(basename "$constraints"))"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/pip" install --quiet --disable-pip-version-check \
    -c "$constraints" "$KEYSTONE_SPEC" "$CLIENT_SPEC"
"$venv/bin/keystone-manage" --version >/dev/null
"$venv/bin/openstack" --version >/dev/null
"$venv/bin/pip" freeze --disable-pip-version-check > "$venv/freeze.txt"
touch "$venv/.complete"
log "ready: $(grep -E '^(keystone|python-openstackclient)==' "$venv/freeze.txt" | tr '\n' ' ')"
echo "$venv"
