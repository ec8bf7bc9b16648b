"""A lab's life after its build on a real 2-node lab of the test guest: `oslab suspend` and
`resume` (memory kept, clocks set), `stop` and `start` (disks kept, compute nodes stopped first),
one node at a time, a power loss (every node's qemu killed with -9), `up` on a suspended lab,
and the refusals of a lab in the wrong state."""

from __future__ import annotations

import os
import re
import signal
import time

import libvirt
import pytest

from oslab.access.ssh import reachable
from oslab.access.state import LabState
from oslab.power.decide import read_facts
from oslab.power.reach import await_ssh
from tests.conftest import URI, Lab
from tests.procfs import process_files

pytestmark = pytest.mark.integration


def states(lab: Lab) -> dict[str, str]:
    nodes: list[dict[str, str]] = lab.status()["nodes"]  # type: ignore[assignment]
    return {n["node"]: n["state"] for n in nodes}


def test_suspend_and_resume_keep_memory_and_set_the_clocks(lab: Lab) -> None:
    pids = {}
    for node in lab.nodes:
        lab.sh(node, f"echo mem-{node} > /dev/shm/value")
        pids[node] = lab.sh(node, "sleep 100000 >/dev/null 2>&1 </dev/null & echo $!")
    out = lab.run("suspend")
    assert re.search(r"^lab \S+ suspended in \d+s$", out.stdout, re.M), out.stdout
    assert "every node paused" in out.stderr
    assert states(lab) == {"ctl": "suspended", "cmp1": "suspended"}
    for node in lab.nodes:  # libvirt keeps their memory on disk; the qemu processes are gone
        assert not libvirt.open(URI).lookupByName(f"{lab.name}-{node}").isActive()

    refused = lab.run("snapshot", "while-suspended", check=False)
    assert refused.returncode != 0
    assert "is suspended (its memory is saved to disk)" in refused.stderr
    assert "oslab resume" in refused.stderr

    time.sleep(5)  # the saved clocks fall behind
    out = lab.run("resume", timeout=600)
    assert states(lab) == {"ctl": "running", "cmp1": "running"}
    for node in lab.nodes:
        # the same memory: the tmpfs file and the very same process
        assert lab.sh(node, "cat /dev/shm/value") == f"mem-{node}"
        assert lab.sh(node, f"kill -0 {pids[node]} && echo alive") == "alive"
        assert abs(int(lab.sh(node, "date -u +%s")) - time.time()) < 10, node
        assert re.search(rf"^  {node} +restore .*clock was \d+s off, now set", out.stdout,
                         re.M), out.stdout
    assert "OpenStack services: not waited for: OpenStack is not installed" in out.stdout

    again = lab.run("resume")
    assert "nothing to resume" in again.stdout


def test_stop_then_start_keeps_the_disks_and_stops_compute_nodes_first(lab: Lab) -> None:
    for node in lab.nodes:
        lab.sh(node, f"echo disk-{node} > /root/marker; sync; echo mem > /dev/shm/value")
    out = lab.run("stop", timeout=900)
    lines = [line.split()[0] for line in out.stdout.splitlines() if line.startswith("  ")]
    assert lines == ["cmp1", "ctl"], out.stdout  # the compute node's wave, then the controller's
    assert "shutting down (poweroff over SSH)" in out.stderr
    assert states(lab) == {"ctl": "shut off", "cmp1": "shut off"}

    refused = lab.run("resume", check=False)
    assert refused.returncode == 2
    assert "is stopped, not suspended" in refused.stderr
    assert "start` boots it" in refused.stderr
    assert "nothing to stop" in lab.run("stop").stdout

    out = lab.run("start", timeout=900)
    assert re.search(r"^  ctl +boot .*SSH after \d+s, ready after \d+s", out.stdout, re.M)
    assert out.stdout.index("  ctl ") < out.stdout.index("  cmp1 ")  # controllers first
    for node in lab.nodes:
        assert lab.sh(node, "cat /root/marker") == f"disk-{node}"
        assert lab.sh(node, "cat /dev/shm/value 2>/dev/null || echo gone") == "gone"


def test_one_node_stops_and_starts_alone(lab: Lab) -> None:
    lab.run("stop", "cmp1", timeout=900)
    assert states(lab) == {"ctl": "running", "cmp1": "shut off"}
    refused = lab.run("ssh", "cmp1", "--", "true", check=False)
    assert "node cmp1 is not running" in refused.stderr
    assert "start cmp1` boots it" in refused.stderr
    # verify refuses the stopped node at once, with the command that brings it back
    refused = lab.run("verify", "--only", "services", check=False, timeout=300)
    assert refused.returncode == 2, refused.stderr
    assert "node cmp1 is shut off" in refused.stderr
    assert f"`oslab --lab {lab.name} start` brings it up" in refused.stderr
    unknown = lab.run("start", "cmp9", check=False)
    assert unknown.returncode == 2
    assert "has no node 'cmp9'" in unknown.stderr and "its nodes: cmp1, ctl" in unknown.stderr
    lab.run("start", "cmp1", timeout=900)
    assert states(lab) == {"ctl": "running", "cmp1": "running"}


def test_a_node_rebooting_from_inside_is_waited_for(lab: Lab) -> None:
    """What `oslab verify` and `start` do for a node whose domain runs but whose SSH is gone:
    wait for it (oslab.power.reach), not fail at the first refusal."""
    conn = libvirt.open(URI)
    state = LabState(lab.name, lab.home / "state" / "oslab")
    target = state.target("cmp1", lab.addresses["cmp1"])
    assert target is not None
    before = lab.sh("cmp1", "cat /proc/sys/kernel/random/boot_id")
    lab.sh("cmp1", "(sleep 1; reboot) >/dev/null 2>&1 </dev/null &")
    deadline = time.monotonic() + 120
    while reachable(target, timeout=3)[0]:  # until its SSH has gone with the old boot
        assert time.monotonic() < deadline, "cmp1 did not go down for its reboot"
        time.sleep(0.5)
    assert states(lab)["cmp1"] == "running"
    took = await_ssh(lab.name, target, 600, lambda _line: None,
                     lambda: read_facts(conn, lab.name))
    assert took > 0
    assert lab.sh("cmp1", "cat /proc/sys/kernel/random/boot_id") != before


def test_power_loss_then_start(lab: Lab) -> None:
    conn = libvirt.open(URI)
    for node in lab.nodes:
        lab.sh(node, f"echo after-loss-{node} > /root/kept; sync")
        os.kill(_qemu_pid(f"{lab.name}-{node}"), signal.SIGKILL)
    for node in lab.nodes:
        dom = conn.lookupByName(f"{lab.name}-{node}")
        deadline = time.monotonic() + 60
        while dom.isActive() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not dom.isActive()
    assert set(states(lab).values()) == {"shut off"}
    lab.run("start", timeout=900)
    for node in lab.nodes:
        assert lab.sh(node, "cat /root/kept") == f"after-loss-{node}"


def test_up_on_a_suspended_lab_restores_it_and_sets_the_clocks(lab: Lab) -> None:
    lab.run("suspend")
    time.sleep(3)
    out = lab.run("up", "--stage", "provision", timeout=900)
    assert "restored from its saved memory" in out.stderr
    assert re.search(r"clock was \d+s off, now set", out.stderr)
    for node in lab.nodes:
        assert abs(int(lab.sh(node, "date -u +%s")) - time.time()) < 10, node


def _qemu_pid(domain: str) -> int:
    """The pid of the domain's qemu (its command line names the guest)."""
    for pid, cmdline in process_files("cmdline"):
        args = cmdline.split(b"\0")
        if b"qemu-system" in args[0] and f"guest={domain},".encode() in cmdline:
            return pid
    raise AssertionError(f"no qemu process for {domain}")
