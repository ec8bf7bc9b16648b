#!/usr/bin/env bash
# The whole test suite: lint and types, then every test (unit and integration) on a real
# libvirtd with qemu, run inside a network namespace that this script creates, so bridges,
# dnsmasq, the guests and the test traffic stay there.  Run as root.
#
#   scripts/test.sh [PYTEST ARGS...]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
ns=${OSLAB_TEST_NETNS:-oslab-test}
log() { echo "test.sh: $*" >&2; }

scripts/setup-host.sh --test --no-services
bin="$repo/.venv/bin"

log "ruff, mypy, shellcheck"
"$bin/ruff" check .
MYPY="$bin/mypy" scripts/typecheck.sh
mapfile -t shells < <(git ls-files '*.sh')
shellcheck "${shells[@]}"

log "building (or reusing) the test guest"
OSLAB_TEST_ISO=$(tests/guest/build.sh | tail -n 1)
export OSLAB_TEST_ISO

started=()
made_ns=0
cleanup() {
    local rc=$?
    local i pid
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
    sleep 0.5
    started+=("$(cat /run/oslab-test-virtlogd.pid)")
fi
if pid=$(pgrep -x libvirtd); then
    if [ "$(ip netns identify "$pid")" != "$ns" ]; then
        log "libvirtd (pid $pid) runs outside the namespace $ns; its bridges and guests would" \
            "live in that namespace. Stop it (kill $pid) and rerun."
        exit 1
    fi
    log "reusing libvirtd (pid $pid) in namespace $ns"
else
    ip netns exec "$ns" libvirtd -d -p /run/oslab-test-libvirtd.pid
    for _ in $(seq 100); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.1; done
    started+=("$(cat /run/oslab-test-libvirtd.pid)")
    log "started libvirtd (pid ${started[-1]}) in namespace $ns"
fi

ip netns exec "$ns" "$bin/pytest" "$@"
