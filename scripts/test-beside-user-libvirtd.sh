#!/usr/bin/env bash
# The README's two commands on one host: a libvirtd the user runs (started as
# scripts/setup-host.sh starts it, unless one already runs), then integration tests through
# scripts/in-testns.sh. Passes when the tests pass, the test libvirtd never saw the user's
# objects, and the user's libvirtd still runs, untouched, with exactly the objects it had.
# Stops only what it started (by pid). Run as root.
#
#   scripts/test-beside-user-libvirtd.sh [PYTEST ARGS...]   (default: one integration test)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
log() { echo "beside-user-libvirtd: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
user_uri="qemu:///system?socket=/run/libvirt/libvirt-sock"  # the user's: the default socket
marker=oslab-user-marker
[ "$#" -gt 0 ] || set -- tests/integration/test_provision.py::test_cidr_clash_with_libvirt_network_and_host_route

# Hold the harness lock for the whole check: no other test run starts or stops a daemon
# meanwhile. in-testns.sh sees the lock on fd 9 and takes it over.
exec 9>/run/oslab-test.lock
if ! flock -n 9; then log "waiting for /run/oslab-test.lock"; flock 9; fi

user() { virsh -c "$user_uri" "$@"; }
started=()
made_marker=0
cleanup() {
    local rc=$? pid
    if [ "$made_marker" = 1 ]; then user net-undefine "$marker" >/dev/null 2>&1 || true; fi
    for pid in "${started[@]}"; do
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    exit "$rc"
}
trap cleanup EXIT

root_libvirtd() { pgrep -o -x libvirtd --ns $$ --nslist net || true; }
if [ -n "$(root_libvirtd)" ]; then
    log "a libvirtd already runs in the root namespace (pid $(root_libvirtd)): it is the user's"
elif user version >/dev/null 2>&1; then
    fail "a libvirtd outside the root namespace holds /run/libvirt/libvirt-sock (an old" \
         "harness run?); stop it first"
else
    # exactly as scripts/setup-host.sh does on a host without systemd
    pgrep -x virtlogd >/dev/null || {
        virtlogd -d -p /run/oslab-user-virtlogd.pid
        for _ in $(seq 50); do [ -s /run/oslab-user-virtlogd.pid ] && break; sleep 0.1; done
        started+=("$(cat /run/oslab-user-virtlogd.pid)")
    }
    libvirtd -d -p /run/oslab-user-libvirtd.pid
    for _ in $(seq 100); do user version >/dev/null 2>&1 && break; sleep 0.1; done
    started+=("$(cat /run/oslab-user-libvirtd.pid)")
    log "started the user's libvirtd (pid ${started[-1]}) in the root namespace"
fi
user_pid=$(root_libvirtd)
[ -n "$user_pid" ] || fail "no libvirtd runs in the root namespace"
# an object the user has: the test libvirtd must not see it, the tests must not touch it
user net-define /dev/stdin >/dev/null <<EOF
<network><name>$marker</name><bridge name='oslabusr0'/></network>
EOF
made_marker=1
before=$(user list --all --name; user net-list --all --name; user pool-list --all --name)

OSLAB_TEST_ISO=$(OSLAB_PYTHON="$repo/.venv/bin/python" tests/guest/build.sh | tail -n 1)
export OSLAB_TEST_ISO OSLAB_REQUIRE_INTEGRATION=1
# shellcheck disable=SC2016  # expands in the inner sh, inside the namespace
scripts/in-testns.sh sh -euc '
    if virsh net-list --all --name | grep -qx "$1"; then
        echo "the test libvirtd sees the network $1 of the user libvirtd" >&2; exit 1
    fi
    shift
    exec "$0" -q "$@"' "$repo/.venv/bin/pytest" "$marker" "$@" \
    || fail "the tests through the harness failed (see above)"

user version >/dev/null 2>&1 || fail "the user's libvirtd does not answer any more"
now_pid=$(root_libvirtd)
[ "$now_pid" = "$user_pid" ] || fail "the user's libvirtd changed (pid $user_pid, now $now_pid)"
after=$(user list --all --name; user net-list --all --name; user pool-list --all --name)
[ "$before" = "$after" ] || fail "the user's libvirtd objects changed: before [$before] after [$after]"
log "ok: tests passed beside the user's libvirtd (pid $user_pid), which still runs with the" \
    "same objects"
