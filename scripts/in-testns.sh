#!/usr/bin/env bash
# Run a command inside the test network namespace, with virtlogd running and a libvirtd
# (qemu:///system) started inside that namespace, so bridges, dnsmasq, guests and every packet
# the command sends stay there.  Stops only the daemons it started (by pid) and removes the
# namespace it made, even when the command fails.  Run as root.
#
#   scripts/in-testns.sh COMMAND [ARGS...]
set -euo pipefail
ns=${OSLAB_TEST_NETNS:-oslab-test}
log() { echo "in-testns: $*" >&2; }
[ "$#" -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

# One run at a time: libvirtd is one per host, and a finishing run stops what it started.
exec 9>/run/oslab-test.lock
if ! flock -n 9; then
    log "another test run holds /run/oslab-test.lock; waiting for it"
    flock 9
fi

started=()
made_ns=0
cleanup() {
    local rc=$? i pid
    for ((i = ${#started[@]} - 1; i >= 0; i--)); do
        pid=${started[i]}
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    if [ "$made_ns" = 1 ]; then ip netns del "$ns" 2>/dev/null || true; fi
    exit "$rc"
}
trap cleanup EXIT

if ! ip netns list | grep -qw "^$ns"; then
    ip netns add "$ns"
    made_ns=1
fi
ip netns exec "$ns" ip link set lo up

if ! pgrep -x virtlogd >/dev/null; then
    virtlogd -d -p /run/oslab-test-virtlogd.pid
    for _ in $(seq 50); do [ -s /run/oslab-test-virtlogd.pid ] && break; sleep 0.1; done
    started+=("$(cat /run/oslab-test-virtlogd.pid)")
fi
if pid=$(pgrep -x libvirtd); then
    if [ "$(ip netns identify "$pid")" != "$ns" ]; then
        log "libvirtd (pid $pid) runs outside the namespace $ns; its bridges and guests would" \
            "live there. Stop it (kill $pid) and rerun."
        exit 1
    fi
    log "reusing libvirtd (pid $pid) in namespace $ns"
else
    rm -f /run/oslab-test-libvirtd.pid
    ip netns exec "$ns" libvirtd -d -p /run/oslab-test-libvirtd.pid
    for _ in $(seq 100); do
        [ -s /run/oslab-test-libvirtd.pid ] && [ -S /run/libvirt/libvirt-sock ] && break
        sleep 0.1
    done
    started+=("$(cat /run/oslab-test-libvirtd.pid)")
    log "started libvirtd (pid ${started[-1]}) in namespace $ns"
fi

# not exec: the trap must run afterwards
ip netns exec "$ns" "$@"
