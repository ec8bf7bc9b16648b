#!/usr/bin/env bash
# Run a command inside the test network namespace with a libvirtd (and virtlogd) of its own:
# started in that namespace and in a mount namespace of their own, where libvirt's runtime
# directory (/run/libvirt: sockets, pid files, network and domain status), its persistent
# configuration (/etc/libvirt/{qemu,storage,secrets}), its state (/var/lib/libvirt/{qemu,
# dnsmasq}) and its cache (/var/cache/libvirt) are fresh directories under $run. So the test
# daemon neither sees nor disturbs a libvirtd the user runs (scripts/setup-host.sh starts one),
# and the user's never sees the tests' objects. Bridges, dnsmasq, guests and every packet the
# command sends stay in the network namespace.
#
# The command reaches the test libvirtd through LIBVIRT_DEFAULT_URI (exported here:
# qemu:///system with the test daemon's socket), which oslab, virsh and tests/conftest.py honour.
# Stops only the daemons it started (by pid) and removes the namespace it made, even when the
# command fails.  Run as root.
#
#   scripts/in-testns.sh COMMAND [ARGS...]
set -euo pipefail
ns=${OSLAB_TEST_NETNS:-oslab-test}
# One test libvirtd per namespace: its state and lock are named after the namespace, so a long
# run (scripts/e2e.sh, OSLAB_TEST_NETNS=oslab-e2e) and the test suite can run side by side.
run=/run/$ns
lock=/run/$ns.lock
# OSLAB_TEST_KEEP_STATE=1 keeps the test libvirtd's persistent objects (domains, networks,
# pools, snapshot metadata) between runs, so a rerun continues with the same lab.
keep_state=${OSLAB_TEST_KEEP_STATE:-0}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { echo "in-testns: $*" >&2; }
[ "$#" -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

# One run at a time: the test daemons and $run are one per host. A caller that holds the lock
# already (on fd 9, for a test around a whole run) passes it down; flock then succeeds at once.
if [ "$(readlink /proc/$$/fd/9 2>/dev/null || true)" != "$lock" ]; then
    exec 9>"$lock"
fi
if ! flock -n 9; then
    log "another test run holds $lock; waiting for it"
    flock 9
fi

uri="qemu:///system?socket=$run/libvirt/libvirt-sock"
virsh_test() { LIBVIRT_DEFAULT_URI=$uri virsh "$@"; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

own_libvirtd=0
made_ns=0
cleanup() {
    local rc=$? pid dom net name
    if [ "$own_libvirtd" = 1 ]; then
        # a run killed midway can leave test guests running; qemu outlives libvirtd
        for dom in $(virsh_test list --name 2>/dev/null | grep -E '^(tst|bch)'); do
            virsh_test destroy "$dom" >/dev/null 2>&1 || true
        done
        # and their networks, whose dnsmasq would outlive libvirtd too
        for net in $(virsh_test net-list --name 2>/dev/null | grep -E '^(tst|bch)'); do
            virsh_test net-destroy "$net" >/dev/null 2>&1 || true
        done
        # the daemons in the reverse order of their start, by the pid files read now: a run
        # may have restarted the test libvirtd (scripts/e2e.sh does), and the one to stop is
        # the one running
        for name in libvirtd virtlogd; do
            alive "$run/$name.pid" || continue
            pid=$(cat "$run/$name.pid")
            kill "$pid" 2>/dev/null || true
            # wait (bounded) until it is gone, so the next run never finds it half-stopped
            for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        done
        if [ "$keep_state" = 1 ]; then rm -rf "$run/libvirt" "$run"/*.pid; else rm -rf "$run"; fi
    fi
    if [ "$made_ns" = 1 ]; then ip netns del "$ns" 2>/dev/null || true; fi
    exit "$rc"
}
trap cleanup EXIT

if ! ip netns list | grep -qw "^$ns"; then
    ip netns add "$ns"
    made_ns=1
fi
ip netns exec "$ns" ip link set lo up

if alive "$run/libvirtd.pid"; then
    pid=$(cat "$run/libvirtd.pid")
    if [ "$(ip netns identify "$pid")" != "$ns" ]; then
        log "the test libvirtd (pid $pid, $run/libvirtd.pid) runs outside the namespace $ns;" \
            "stop it (kill $pid) and rerun"
        exit 1
    fi
    log "reusing the test libvirtd (pid $pid) in namespace $ns"
else
    if [ "$keep_state" = 1 ]; then rm -rf "$run/libvirt"; else rm -rf "$run"; fi
    mkdir -p "$run" && chmod 0700 "$run"
    own_libvirtd=1
    # Where /dev/kvm exists but libvirt's qemu user cannot use it (oslab's own check then
    # says qemu), libvirt 9.0 probes qemu with KVM as root, finds KVM unusable as the qemu
    # user, and so re-probes qemu on every capability lookup, forever: each define or start
    # then waits for minutes. The test libvirtd's mount namespace covers /dev/kvm with an
    # empty file nobody can open, so both views agree: no KVM.
    hide_kvm=0
    virt=$("$repo/.venv/bin/python" -c \
        'from oslab.preflight import choose_virt_type; print(choose_virt_type()[0].virt_type)')
    if [ -e /dev/kvm ] && [ "$virt" = qemu ]; then
        hide_kvm=1
        install -m 000 /dev/null "$run/nokvm"
        # libvirt's per-domain /dev namespace would try to move that mount: the test daemon
        # runs its guests without it (namespaces = [ ] in its own copy of qemu.conf).
        { cat /etc/libvirt/qemu.conf; echo 'namespaces = [ ]'; } > "$run/qemu.conf"
        log "oslab's check says qemu: the test libvirtd will not see /dev/kvm"
    fi
    # the mount points; a user's libvirtd would make the same directories
    mkdir -p /run/libvirt /etc/libvirt/qemu /etc/libvirt/storage /etc/libvirt/secrets \
        /var/lib/libvirt/qemu /var/lib/libvirt/dnsmasq /var/cache/libvirt
    # shellcheck disable=SC2016  # $1 and $2 expand in the inner sh
    ip netns exec "$ns" unshare --mount --propagation private sh -euc '
        run=$1
        for d in libvirt etc-qemu etc-storage etc-secrets lib-qemu lib-dnsmasq cache; do
            mkdir -p "$run/$d"
        done
        mount --bind "$run/libvirt" /run/libvirt
        mount --bind "$run/etc-qemu" /etc/libvirt/qemu
        mount --bind "$run/etc-storage" /etc/libvirt/storage
        mount --bind "$run/etc-secrets" /etc/libvirt/secrets
        mount --bind "$run/lib-qemu" /var/lib/libvirt/qemu
        mount --bind "$run/lib-dnsmasq" /var/lib/libvirt/dnsmasq
        mount --bind "$run/cache" /var/cache/libvirt
        if [ "$2" = 1 ]; then
            mount --bind "$run/nokvm" /dev/kvm
            mount --bind "$run/qemu.conf" /etc/libvirt/qemu.conf
        fi
        virtlogd -d -p "$run/virtlogd.pid"
        exec libvirtd -d -p "$run/libvirtd.pid"' libvirtd-in-testns "$run" "$hide_kvm" 9>&-
    for _ in $(seq 100); do
        [ -s "$run/libvirtd.pid" ] && [ -S "$run/libvirt/libvirt-sock" ] && break
        sleep 0.1
    done
    log "started libvirtd (pid $(cat "$run/libvirtd.pid")) in namespace $ns, socket" \
        "$run/libvirt/libvirt-sock"
fi

export LIBVIRT_DEFAULT_URI=$uri
# where the test daemons' pid files are (scripts/e2e.sh restarts libvirtd there)
export OSLAB_TEST_RUN=$run
# not exec: the trap must run afterwards
ip netns exec "$ns" "$@"
