#!/usr/bin/env bash
# Run a command inside the test network namespace, with virtlogd running and a libvirtd
# (qemu:///system) started inside that namespace, so bridges, dnsmasq, guests and every packet
# the command sends stay there.  Stops only the daemons it started (by pid) and removes the
# namespace it made, even when the command fails.  Run as root.
#
#   scripts/in-testns.sh COMMAND [ARGS...]
set -euo pipefail
ns=${OSLAB_TEST_NETNS:-oslab-test}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { echo "in-testns: $*" >&2; }
[ "$#" -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

# One run at a time: libvirtd is one per host, and a finishing run stops what it started.
exec 9>/run/oslab-test.lock
if ! flock -n 9; then
    log "another test run holds /run/oslab-test.lock; waiting for it"
    flock 9
fi

started=()
own_libvirtd=0
made_ns=0
cleanup() {
    local rc=$? i pid dom
    if [ "$own_libvirtd" = 1 ]; then
        # a run killed midway can leave test guests running; qemu outlives libvirtd
        for dom in $(virsh -c qemu:///system list --name 2>/dev/null | grep -E '^(tst|bch)'); do
            virsh -c qemu:///system destroy "$dom" >/dev/null 2>&1 || true
        done
        # and their networks, whose dnsmasq would outlive libvirtd too
        for net in $(virsh -c qemu:///system net-list --name 2>/dev/null | grep -E '^(tst|bch)'); do
            virsh -c qemu:///system net-destroy "$net" >/dev/null 2>&1 || true
        done
    fi
    for ((i = ${#started[@]} - 1; i >= 0; i--)); do
        pid=${started[i]}
        kill "$pid" 2>/dev/null || true
        # wait (bounded) until it is gone, so the next run never finds it half-stopped
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    if [ "$made_ns" = 1 ]; then ip netns del "$ns" 2>/dev/null || true; fi
    rm -f /run/oslab-test-nokvm /run/oslab-test-qemu.conf
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
    # Where /dev/kvm exists but libvirt's qemu user cannot use it (oslab's own check then
    # says qemu), libvirt 9.0 probes qemu with KVM as root, finds KVM unusable as the qemu
    # user, and so re-probes qemu on every capability lookup, forever: each define or start
    # then waits for minutes. The test libvirtd runs in its own mount namespace where
    # /dev/kvm is covered by an empty file nobody can open, so both views agree: no KVM.
    hide_kvm=0
    virt=$("$repo/.venv/bin/python" -c \
        'from oslab.preflight import choose_virt_type; print(choose_virt_type()[0].virt_type)')
    if [ -e /dev/kvm ] && [ "$virt" = qemu ]; then
        hide_kvm=1
        install -m 000 /dev/null /run/oslab-test-nokvm
        # libvirt's per-domain /dev namespace would try to move that mount: the test daemon
        # runs its guests without it (namespaces = [ ] in its own copy of qemu.conf).
        { cat /etc/libvirt/qemu.conf; echo 'namespaces = [ ]'; } > /run/oslab-test-qemu.conf
        log "oslab's check says qemu: the test libvirtd will not see /dev/kvm"
    fi
    # shellcheck disable=SC2016  # $1 expands in the inner sh
    ip netns exec "$ns" unshare --mount --propagation private sh -c '
        if [ "$1" = 1 ]; then
            mount --bind /run/oslab-test-nokvm /dev/kvm
            mount --bind /run/oslab-test-qemu.conf /etc/libvirt/qemu.conf
        fi
        exec libvirtd -d -p /run/oslab-test-libvirtd.pid' libvirtd-in-testns "$hide_kvm"
    for _ in $(seq 100); do
        [ -s /run/oslab-test-libvirtd.pid ] && [ -S /run/libvirt/libvirt-sock ] && break
        sleep 0.1
    done
    started+=("$(cat /run/oslab-test-libvirtd.pid)")
    own_libvirtd=1
    log "started libvirtd (pid ${started[-1]}) in namespace $ns"
fi

# not exec: the trap must run afterwards
ip netns exec "$ns" "$@"
