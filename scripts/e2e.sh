#!/usr/bin/env bash
# The proof that oslab builds a working cloud: inside the test network namespace, with the
# harness's own libvirtd (scripts/in-testns.sh), it
#   1. builds the caches: the package repository and the base images (by `oslab up`'s provision
#      stage) and the test instance image (tests/instance/build.sh);
#   2. runs `oslab up` on a two-node Debian 13 lab (tests/e2e/debian13-lab.toml) through all
#      three stages, and keeps its verification table and time per stage;
#   3. runs `oslab up --stage install` again, which must change nothing;
#   4. takes `oslab snapshot before-risk`, breaks nova on the compute node, shows `oslab verify
#      --only services` failing on compute services, runs `oslab revert before-risk` and shows
#      `oslab verify` passing again;
#   4b. checks the nodes' identities are their own, then lives the lab's life, each with its
#      time: `oslab suspend`, `resume` and `verify --only services`; `stop`, `start` and a full
#      verify; compute1 rebooted from inside and `verify --only services`; the host's libvirtd
#      restarted under the running nodes and `verify --only services`; a power loss (every
#      node's qemu killed with -9), `start` and a full verify; then no node's console shows a
#      kernel panic;
#   4c. from the host: `oslab openrc --clouds-yaml` and `openstack --os-cloud ... token issue`; the dashboard
#      in Debian's headless Chromium (tests/e2e/browser.py): log in as demo, the instances page
#      lists verify's instance, a screenshot in $E2E_DIR/dashboard.png;
#   5. destroys the lab and checks that nothing of it is left.
# It exits 0 only when every row passes; its last line is `N passed, N failed`.
#
# Long (an hour or more on a 2-core host without KVM), so it is not part of .ci/run. Resumable:
# run it again after an interruption or a failure and `oslab up` continues where the lab is
# (the lab is destroyed only after a build that succeeded).
#
#   scripts/e2e.sh [--keep]        --keep: skip step 5; the nodes are shut down, not removed
#   scripts/e2e.sh --life [--keep] only steps 4b and 4c, on the lab a run with --keep left:
#                                  `oslab start` of it (a timed row), then the lab's life
#   E2E_REBUILD=1 scripts/e2e.sh   also destroy and rebuild from warm caches, and time it
#   scripts/e2e.sh --saves [--life] [--keep]
#                                  the issue-22 rows instead of steps 3 to 4c: after the build
#                                  (or, with --life, the start of the kept lab), `oslab save` of
#                                  the verified cloud (time, size), `destroy` (the save is kept),
#                                  `up --from-saved` until every service reports up (time), a
#                                  full verify, and an export and import round trip (time, size).
#                                  The save is E2E_SAVE (default e2e-verified); an earlier run's
#                                  save of that name is deleted first, which is refused while a
#                                  lab made from it still stands: give the new one another name
#   scripts/e2e.sh --exercises NAME[,NAME...] [--life] [--keep]
#                                  the issue-23 rows instead of steps 3 to 4c: each exercise
#                                  started (`oslab exercise start`), checked as unsolved, fixed
#                                  by its documented fix (`exercise solve`), checked as solved,
#                                  and reset; a row each, with the time of each part
#   scripts/e2e.sh --attaches N [--life] [--keep]
#                                  the issue-21 panic proof instead of steps 3 to 4c: after the
#                                  build (a rerun continues a kept lab; --life: after the start of
#                                  the kept lab), N times compute1 stopped and
#                                  started, then its first iSCSI login since boot (a volume
#                                  attached to verify's shut-off instance, then detached), and
#                                  its console read for a panic; a row per attach, with times
# Run as root. Output: the terminal, and everything under $E2E_DIR (default /var/tmp/oslab-e2e).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
keep=0
life=0
attaches=0
saves=0
exercises=()
args=("$@")     # for the run inside the namespace (the loop below consumes them)
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) keep=1 ;;
        --life) life=1 ;;
        --saves) saves=1 ;;
        --exercises) IFS=, read -r -a exercises <<< "${2:-}"; shift
            [ "${#exercises[@]}" -gt 0 ] || { echo "--exercises: names" >&2; exit 2; } ;;
        --attaches) attaches=${2:-}; shift
            [[ "$attaches" =~ ^[1-9][0-9]*$ ]] || { echo "--attaches: a count" >&2; exit 2; } ;;
        *) echo "usage: $0 [--keep] [--life] [--saves] [--attaches N] [--exercises A,B]" >&2
           exit 2 ;;
    esac
    shift
done
work=${E2E_DIR:-/var/tmp/oslab-e2e}

if [ -z "${OSLAB_E2E_INSIDE:-}" ]; then
    mkdir -p "$work"
    started=$(date +%s)
    scripts/setup-host.sh --test --e2e --no-services
    echo "e2e: building (or reusing) the test instance image" >&2
    image=$(tests/instance/build.sh | tail -n 1)
    sed "s|@IMAGE@|$image|" tests/e2e/debian13-lab.toml > "$work/lab.toml"
    # the lab's package repository, by the host's apt (the namespace reaches no archive)
    .venv/bin/python -m tests.debian_specs "$work/lab.toml"
    # the release's openstack client from PyPI, for the clouds.yaml row (the namespace has no
    # PyPI either)
    E2E_CLIENT_VENV=$(tests/keystone/setup.sh | tail -n 1)
    export E2E_CLIENT_VENV
    echo "$started" > "$work/started"
    # its own namespace and test libvirtd, whose objects outlive a run (so a rerun continues)
    export OSLAB_E2E_INSIDE=1 E2E_DIR="$work" OSLAB_TEST_NETNS=oslab-e2e OSLAB_TEST_KEEP_STATE=1
    exec scripts/in-testns.sh "$repo/scripts/e2e.sh" "${args[@]}"
fi

oslab=("$repo/.venv/bin/oslab" -f "$work/lab.toml")
rows="$work/rows.txt"       # "name|pass or FAIL|details", one line per e2e row
: > "$rows"
: > "$work/memory.txt"      # this run's samples only (its peaks are what the summary prints)
row() { printf '%s|%s|%s\n' "$1" "$2" "${3:-}" >> "$rows"; echo "e2e: $1: $2 ${3:-}" >&2; }
stamp() { date +%s; }

# Peak memory of each node, sampled every 30 s while the run lasts.
sampler() {
    while sleep 30; do
        for node in controller compute1; do
            used=$("${oslab[@]}" ssh "$node" -- "free -m | awk '/^Mem:/ {print \$3}'" \
                   2>/dev/null) || continue
            echo "$node $used" >> "$work/memory.txt"
        done
    done
}
sampler &
sampler_pid=$!
# The harness stops its libvirtd and removes the namespace when this script ends: shut the lab's
# nodes down first, so a rerun boots them again and `oslab up` continues from their disks.
finish() {
    kill "$sampler_pid" 2>/dev/null || true
    local dom
    for dom in $(virsh list --name 2>/dev/null | grep -E '^e2e-'); do
        virsh shutdown "$dom" >/dev/null 2>&1 || true
    done
    for _ in $(seq 60); do
        virsh list --name 2>/dev/null | grep -qE '^e2e-' || break
        sleep 2
    done
    for dom in $(virsh list --name 2>/dev/null | grep -E '^e2e-'); do
        virsh destroy "$dom" >/dev/null 2>&1 || true
    done
    # their networks' dnsmasq would outlive the test libvirtd; `oslab up` starts them again
    for net in $(virsh net-list --name 2>/dev/null | grep -E '^e2e-'); do
        virsh net-destroy "$net" >/dev/null 2>&1 || true
    done
}
trap finish EXIT

# The test libvirtd (scripts/in-testns.sh) stopped and started again while the nodes run, as a
# host's libvirtd restarts on an upgrade: in the mount namespace its virtlogd still runs in,
# with its pid file where in-testns.sh's clean-up finds it. Its guests must run on.
restart_libvirtd() {
    local pid_file=$OSLAB_TEST_RUN/libvirtd.pid old
    old=$(cat "$pid_file")
    kill "$old"
    for _ in $(seq 300); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$old" 2>/dev/null; then echo "libvirtd $old did not stop in 30s"; return 1; fi
    nsenter --target "$(cat "$OSLAB_TEST_RUN/virtlogd.pid")" --mount --net \
        libvirtd -d -p "$pid_file" 9>&-
    for _ in $(seq 300); do
        if [ -s "$pid_file" ] && [ "$(cat "$pid_file")" != "$old" ] \
                && virsh list --name > /dev/null 2>&1; then break; fi
        sleep 0.1
    done
    echo "libvirtd $old stopped, $(cat "$pid_file") started; its domains:"
    virsh list --all
    [ "$(virsh domstate e2e-controller)" = running ] && [ "$(virsh domstate e2e-compute1)" = running ]
}

# A row for one command: pass or FAIL with its time; its output in $work/NAME.log.
timed() {
    local name=$1 log=$2 t
    shift 2
    t=$(stamp)
    if "$@" > "$work/$log.log" 2>&1; then row "$name" pass "$(( $(stamp) - t ))s"
    else row "$name" FAIL "exit after $(( $(stamp) - t ))s; see $work/$log.log"; fi
}
# A kernel panic on any node's serial console fails the run with its lines (under TCG a first
# iSCSI login has panicked a compute node: issue 21).
consoles=${XDG_STATE_HOME:-$HOME/.local/state}/oslab/e2e/logs   # NODE.console.log
PANIC_RE='Kernel panic|Oops:|BUG: '
panics() {
    local found=""
    found=$(grep -H -E -A3 "$PANIC_RE" "$consoles"/*.console.log 2>/dev/null \
            | head -n 40 || true)
    if [ -z "$found" ]; then row "no node's kernel panicked (serial console logs)" pass
    else row "no node's kernel panicked (serial console logs)" FAIL "$(echo "$found" | tr '\n' ' ')"; fi
}

if [ "$life" = 1 ]; then
    # --life: the lab a run with --keep left, shut off; its cold boot is the first row
    t0=$(stamp)
    if "${oslab[@]}" start > "$work/start-kept.log" 2>&1; then
        up_rc=0
        row "start of the kept lab, until every service is up" pass "$(( $(stamp) - t0 ))s"
    else
        up_rc=1
        row "start of the kept lab, until every service is up" FAIL \
            "exit after $(( $(stamp) - t0 ))s; see $work/start-kept.log"
    fi
else
# 2. the whole build, verification included
t0=$(stamp)
set +e
"${oslab[@]}" up 2>&1 | tee "$work/up.log"
up_rc=${PIPESTATUS[0]}
set -e
t_up=$(( $(stamp) - t0 ))
# the verification rows `oslab up` printed: "  name   pass|FAIL|skip   time  details"
awk '/^verification:/ {on=1; next} on && /^  [0-9]+ passed/ {on=0} on && NF>1' "$work/up.log" \
    | sed -n '2,$p' > "$work/verify-table.txt" || true
while read -r line; do
    name=$(echo "$line" | sed -E 's/ {2,}(pass|FAIL|fail|skip) .*//')
    # a "look at:" line under a failed row has no result (and grep fails: pipefail)
    result=$(echo "$line" | grep -oE ' (pass|FAIL|fail|skip) ' | head -n 1 | tr -d ' ' || true)
    [ -n "$result" ] || continue
    if [ "$result" = pass ]; then row "verify: $name" pass; else row "verify: $name" FAIL "$line"; fi
done < "$work/verify-table.txt"
if [ "$up_rc" = 0 ]; then row "oslab up (all stages)" pass "${t_up}s"
else row "oslab up (all stages)" FAIL "exit $up_rc after ${t_up}s; see $work/up.log"; fi

if [ "$up_rc" = 0 ] && [ "$attaches" = 0 ] && [ "$saves" = 0 ] && [ "${#exercises[@]}" = 0 ]; then
    # 3. a rerun changes nothing
    "${oslab[@]}" up --stage install 2>&1 | tee "$work/rerun.log" || true
    if grep -q "no changes; every node answers SSH" "$work/rerun.log" \
        && grep -q "install: no changes" "$work/rerun.log"; then
        row "rerun of oslab up changes nothing" pass
    else
        row "rerun of oslab up changes nothing" FAIL "see $work/rerun.log"
    fi

    # 4. snapshot, break, verify fails, revert, verify passes
    "${oslab[@]}" snapshot --delete before-risk >/dev/null 2>&1 || true
    "${oslab[@]}" snapshot before-risk --description "e2e: a verified cloud"
    "${oslab[@]}" ssh compute1 -- 'rm -f /etc/nova/nova.conf && systemctl restart nova-compute' \
        || true
    # the services group is where a dead nova-compute shows (the whole run would also boot an
    # instance that cannot be scheduled); it must fail, and on that row
    if "${oslab[@]}" verify --only services > "$work/verify-broken.log" 2>&1; then
        row "verify fails with nova.conf removed on compute1" FAIL "see $work/verify-broken.log"
    elif grep -Eq "^ *compute services +FAIL" "$work/verify-broken.log"; then
        row "verify fails with nova.conf removed on compute1" pass
    else
        row "verify fails with nova.conf removed on compute1" FAIL \
            "it failed, but not on compute services; see $work/verify-broken.log"
    fi
    "${oslab[@]}" revert before-risk
    if "${oslab[@]}" verify 2>&1 | tee "$work/verify-reverted.log"; then
        row "verify passes after oslab revert before-risk" pass
    else
        row "verify passes after oslab revert before-risk" FAIL "see $work/verify-reverted.log"
    fi

fi
fi

if [ "$up_rc" = 0 ] && [ "$attaches" -gt 0 ]; then
    # the issue-21 proof: each attach is compute1's first iSCSI login since its boot. Nova
    # attaches a volume to a shut-off instance too (os-brick logs in on its compute node), so
    # verify's kept instance, shut off by compute1's stop, needs no boot of its own.
    timed "verify --only volume --keep (the instance and volume the attaches use)" \
        verify-keep "${oslab[@]}" verify --only volume --keep
    on_controller() { "${oslab[@]}" ssh controller -- ". ~/demo-openrc && $1"; }
    vol_status() { on_controller "openstack volume show oslab-verify-vol -f value -c status"; }
    wait_status() {     # wait_status WANT: until the volume's status is WANT, for 10 min
        local s=""
        for _ in $(seq 120); do
            s=$(vol_status 2>/dev/null || true)
            [ "$s" = "$1" ] && return 0
            case "$s" in error*) break ;; esac
            sleep 5
        done
        echo "volume status $s, not $1"; return 1
    }
    console=$consoles/compute1.console.log
    for i in $(seq "$attaches"); do
        t=$(stamp)
        if ! { "${oslab[@]}" stop compute1 && "${oslab[@]}" start compute1; } \
                > "$work/attach-$i-restart.log" 2>&1; then
            row "attach $i: compute1 stopped and started" FAIL "see $work/attach-$i-restart.log"
            break
        fi
        t_boot=$(( $(stamp) - t ))
        mark=$(wc -l < "$console" 2>/dev/null || echo 0)
        t=$(stamp)
        if { on_controller "openstack server add volume oslab-verify-vm oslab-verify-vol" \
                && wait_status in-use \
                && on_controller "openstack server remove volume oslab-verify-vm oslab-verify-vol" \
                && wait_status available; } > "$work/attach-$i.log" 2>&1; then
            result=pass
        else
            result=FAIL
        fi
        panic=$(tail -n +"$((mark + 1))" "$console" 2>/dev/null \
                | grep -E -A3 "$PANIC_RE" | head -n 20 | tr '\n' ' ' || true)
        if [ -n "$panic" ]; then result=FAIL; fi
        row "attach $i: first iSCSI login after compute1's boot" "$result" \
            "boot ${t_boot}s, attach+detach $(( $(stamp) - t ))s${panic:+; PANIC: $panic}"
        if [ "$result" = FAIL ] && [ -z "$panic" ]; then
            row "attach $i: the attach" FAIL "see $work/attach-$i.log"
        fi
    done
fi

if [ "$up_rc" = 0 ] && [ "${#exercises[@]}" -gt 0 ]; then
    # the issue-23 rows: each exercise on the real cloud, from its fault to its fix
    for ex in "${exercises[@]}"; do
        log=$work/exercise-$ex.log
        : > "$log"
        times=""
        part() {    # part NAME WANT(0|1) ARGS...: one `oslab exercise` call, its time kept
            local name=$1 want=$2 t rc=0
            shift 2
            t=$(stamp)
            { echo "== oslab exercise $*"; "${oslab[@]}" exercise "$@"; } >> "$log" 2>&1 || rc=$?
            times="$times${times:+, }$name $(( $(stamp) - t ))s"
            if [ "$want" = 0 ]; then [ "$rc" = 0 ]; else [ "$rc" != 0 ]; fi
        }
        if part start 0 start "$ex" && part unsolved 1 check && part solve 0 solve \
                && part solved 0 check && part reset 0 reset; then
            row "exercise $ex: started, unsolved, fixed, solved, reset" pass "$times"
        else
            row "exercise $ex: started, unsolved, fixed, solved, reset" FAIL "$times; see $log"
            "${oslab[@]}" exercise reset >> "$log" 2>&1 || true
        fi
    done
fi

if [ "$up_rc" = 0 ] && [ "$saves" = 1 ]; then
    # the issue-22 rows: a verified cloud saved, destroyed, and made again from the save
    export OSLAB_SAVES_DIR=/var/lib/libvirt/images/oslab-e2e-saves
    bare=("$repo/.venv/bin/oslab")      # --from-saved takes no spec: the save carries it
    save_name=${E2E_SAVE:-e2e-verified}
    "${bare[@]}" saved --delete "$save_name" >/dev/null 2>&1 || true   # an earlier run's
    t=$(stamp)
    if "${oslab[@]}" save "$save_name" > "$work/save.log" 2>&1; then
        row "save of the running verified cloud" pass "$(( $(stamp) - t ))s, $(du -sh \
            "$OSLAB_SAVES_DIR/$save_name" | cut -f1) on disk"
    else row "save of the running verified cloud" FAIL "see $work/save.log"; fi
    timed "verify --only services after the save (the lab ran on)" verify-after-save \
        "${oslab[@]}" verify --only services
    panics   # destroy removes the state directory, the console logs with it
    timed "destroy (the save is kept)" destroy-saved "${oslab[@]}" destroy --yes
    timed "up --from-saved, until every service reports up" from-saved \
        "${bare[@]}" up --from-saved "$save_name"
    timed "full verify of the lab made from the save" verify-from-saved "${oslab[@]}" verify
    archive=$work/$save_name.tar.zst
    rm -f "$archive"
    t=$(stamp)
    if "${bare[@]}" saved --export "$save_name" "$archive" > "$work/export.log" 2>&1; then
        row "export of the save" pass "$(( $(stamp) - t ))s, $(du -h "$archive" | cut -f1)"
    else row "export of the save" FAIL "see $work/export.log"; fi
    other=$OSLAB_SAVES_DIR-imported
    rm -rf "$other"
    t=$(stamp)
    if OSLAB_SAVES_DIR=$other "${bare[@]}" import "$archive" > "$work/import.log" 2>&1 \
            && OSLAB_SAVES_DIR=$other "${bare[@]}" saved | grep -q "^$save_name "; then
        row "import of the export (every member's sha256 checked)" pass \
            "$(( $(stamp) - t ))s, $(du -sh "$other/$save_name" | cut -f1) on disk"
    else row "import of the export (every member's sha256 checked)" FAIL "see $work/import.log"; fi
    rm -rf "$other" "$archive"
fi

if [ "$up_rc" = 0 ] && [ "$attaches" = 0 ] && [ "$saves" = 0 ] && [ "${#exercises[@]}" = 0 ]; then
    # 4b. the lab's life: identities, suspend/resume, stop/start, a reboot, a power loss
    ids=$(for node in controller compute1; do
              "${oslab[@]}" ssh "$node" -- 'cat /etc/machine-id; sed -n "s/^InitiatorName=//p" \
                  /etc/iscsi/initiatorname.iscsi 2>/dev/null' || echo "unreadable-$node"
          done)
    if [ "$(echo "$ids" | sort | uniq -d)" = "" ] && [ "$(echo "$ids" | wc -l)" -ge 4 ]; then
        row "nodes have distinct machine-ids and iSCSI initiator names" pass
    else
        row "nodes have distinct machine-ids and iSCSI initiator names" FAIL "$(echo "$ids" | tr '\n' ' ')"
    fi
    timed "suspend" suspend "${oslab[@]}" suspend
    timed "resume, until every service is up" resume "${oslab[@]}" resume
    timed "verify --only services after resume" verify-resumed "${oslab[@]}" verify --only services
    timed "stop" stop "${oslab[@]}" stop
    timed "start, until every service is up" start "${oslab[@]}" start
    timed "full verify after stop and start" verify-started "${oslab[@]}" verify
    boot_id() { "${oslab[@]}" ssh compute1 -- 'cat /proc/sys/kernel/random/boot_id' 2>/dev/null; }
    before=$(boot_id || true)
    "${oslab[@]}" ssh compute1 -- 'systemctl reboot' >/dev/null 2>&1 || true
    # until its SSH has gone with the old boot; verify then waits for the new one
    for _ in $(seq 60); do
        now=$(boot_id) || break
        [ "$now" = "$before" ] || break
        sleep 2
    done
    timed "compute1 rebooted from inside: verify --only services" verify-rebooted \
        "${oslab[@]}" verify --only services
    after=$(boot_id || true)
    if [ -n "$after" ] && [ "$after" != "$before" ]; then
        row "compute1 came back from its reboot (a new boot id)" pass
    else
        row "compute1 came back from its reboot (a new boot id)" FAIL "before $before, after $after"
    fi
    if restart_libvirtd >> "$work/libvirtd-restart.log" 2>&1; then
        timed "the host's libvirtd restarted under the running nodes: verify --only services" \
            verify-libvirtd "${oslab[@]}" verify --only services
    else
        row "the host's libvirtd restarted under the running nodes: verify --only services" \
            FAIL "the test libvirtd did not restart; see $work/libvirtd-restart.log"
    fi
    for dom in e2e-controller e2e-compute1; do
        pid=$(pgrep -f -- "guest=$dom," | head -n 1 || true)
        if [ -n "$pid" ]; then kill -9 "$pid"; fi
    done
    sleep 5
    timed "power loss (kill -9 of every node's qemu), then start" start-after-loss \
        "${oslab[@]}" start
    # --keep: the browser row below looks for verify's instance (the next verify removes it)
    timed "full verify after the power loss" verify-after-loss "${oslab[@]}" verify --keep

    # 4c. day-two access from the host: clouds.yaml and the real client; the dashboard in a
    # real browser (Debian's headless Chromium) as the demo user
    rm -f "$work/clouds.yaml"
    # (token issue: the catalog's other endpoints name the host `controller`, which only the
    # nodes resolve)
    if "${oslab[@]}" openrc --clouds-yaml --out "$work/clouds.yaml" >> "$work/clouds-yaml.log" \
            2>&1 && ( for cloud in e2e-admin e2e-demo; do
                OS_CLIENT_CONFIG_FILE="$work/clouds.yaml" "$E2E_CLIENT_VENV/bin/openstack" \
                    --os-cloud "$cloud" token issue -f value -c project_id || exit 1
            done ) >> "$work/clouds-yaml.log" 2>&1; then
        row "openstack --os-cloud e2e-admin and e2e-demo token issue (openrc --clouds-yaml)" pass
    else
        row "openstack --os-cloud e2e-admin and e2e-demo token issue (openrc --clouds-yaml)" \
            FAIL "see $work/clouds-yaml.log"
    fi
    address=$("${oslab[@]}" ssh-config controller | awk '$1 == "HostName" {print $2}')
    t=$(stamp)
    # shellcheck source=/dev/null
    if ( . "$("${oslab[@]}" openrc demo)" && "$repo/.venv/bin/python" tests/e2e/browser.py \
             --url "http://$address/dashboard/" --user demo --instance oslab-verify-vm \
             --screenshot "$work/dashboard.png" ) > "$work/browser.log" 2>&1; then
        row "the dashboard in headless Chromium: demo logs in, sees the instance" pass \
            "$(( $(stamp) - t ))s; screenshot $work/dashboard.png"
    else
        row "the dashboard in headless Chromium: demo logs in, sees the instance" FAIL \
            "see $work/browser.log; screenshot $work/dashboard.png"
    fi

    if [ -n "${E2E_REBUILD:-}" ]; then
        "${oslab[@]}" destroy --yes
        t1=$(stamp)
        if "${oslab[@]}" up > "$work/rebuild.log" 2>&1; then
            row "rebuild from warm caches" pass "$(( $(stamp) - t1 ))s"
        else
            row "rebuild from warm caches" FAIL "see $work/rebuild.log"
        fi
    fi
fi

panics

# 5. nothing left behind (after a failed build the lab stays, so a rerun continues from it)
if [ "$keep" = 0 ] && [ "$up_rc" = 0 ]; then
    "${oslab[@]}" destroy --yes
    left=$( { virsh list --all --name; virsh net-list --all \
              --name; virsh pool-list --all --name; } | grep -E '^e2e' || true)
    if [ -z "$left" ]; then row "destroy leaves nothing of the lab" pass
    else row "destroy leaves nothing of the lab" FAIL "$(echo "$left" | tr '\n' ' ')"; fi
    if [ "$saves" = 1 ]; then
        timed "saved --delete (no lab uses the save now)" delete-save \
            "${bare[@]}" saved --delete "$save_name"
    fi
fi

echo
if [ "$life" = 0 ]; then
    echo "== time per stage (from oslab up)"
    sed -n '/^time per stage:/,/total/p' "$work/up.log"
fi
echo "whole e2e run: $(( $(stamp) - $(cat "$work/started") ))s"
if [ -s "$work/memory.txt" ]; then
    echo "== peak memory used per node (MiB, free -m every 30 s)"
    sort -k1,1 -k2,2n "$work/memory.txt" | awk '{peak[$1]=$2} END {for (n in peak) print "  " n, peak[n]}'
fi
echo "== rows"
awk -F'|' '{printf "  %-52s %-5s %s\n", $1, $2, $3}' "$rows"
passed=$(grep -c '|pass|' "$rows" || true)
failed=$(grep -c '|FAIL|' "$rows" || true)
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
