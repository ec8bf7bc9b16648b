"""Lab-wide snapshots on a real 2-node lab of the test guest."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import libvirt
import pytest

from tests.conftest import URI, Lab

pytestmark = pytest.mark.integration


def domain(lab: Lab, node: str) -> Any:
    return libvirt.open(URI).lookupByName(f"{lab.name}-{node}")


def snapshot_names(lab: Lab, node: str) -> list[str]:
    return sorted(s.getName() for s in domain(lab, node).listAllSnapshots(0))


def test_revert_brings_back_disk_and_memory_on_every_node(lab: Lab) -> None:
    for node in lab.nodes:
        lab.sh(node, f"echo disk-before-{node} > /root/marker; sync; "
                      f"echo shm-before-{node} > /dev/shm/value")
    out = lab.run("snapshot", "base", "--description", "before the risky step")
    assert "the lab was paused for" in out.stdout
    for node in lab.nodes:
        lab.sh(node, "echo after > /root/marker; sync; echo after > /dev/shm/value")
    lab.run("revert", "base")
    for node in lab.nodes:
        assert lab.sh(node, "cat /root/marker") == f"disk-before-{node}"
        # tmpfs lives in RAM only: it is back because the snapshot captured memory
        assert lab.sh(node, "cat /dev/shm/value") == f"shm-before-{node}"
    listed = json.loads(lab.run("snapshot", "--list", "--json").stdout)
    base = next(s for s in listed if s["name"] == "base")
    assert base["description"] == "before the risky step"
    assert {n["node"]: n["state"] for n in base["nodes"]} == {"ctl": "running", "cmp1": "running"}


def test_revert_sets_the_clock_of_every_node(lab: Lab) -> None:
    # a clock far off when the snapshot is taken comes back with the memory on revert
    for node in lab.nodes:
        lab.sh(node, "date -u -s '2020-01-01 00:00:00' >/dev/null")
    lab.run("snapshot", "clock")
    out = lab.run("revert", "clock").stdout
    assert out.startswith("reverted to clock in ")
    for phase in ("check", "revert paused", "resume", "SSH and clocks"):
        assert f"{phase} " in out.splitlines()[0]
    for node in lab.nodes:
        host = time.time()
        assert abs(int(lab.sh(node, "date -u +%s")) - host) < 10, node
        corrected = re.search(rf"^  {node} +answers SSH [0-9.]+s after the resume; "
                              r"clock corrected by ([0-9]+)s$", out, re.M)
        assert corrected is not None, out
        assert int(corrected.group(1)) > 3600 * 24 * 365 * 5


def test_shut_off_node_is_shut_off_again_after_revert(lab: Lab) -> None:
    dom = domain(lab, "cmp1")
    dom.destroy()  # power it off
    lab.run("snapshot", "half")
    dom.create()
    lab.run("up", "--stage", "provision")  # waits until it answers SSH again
    lab.run("revert", "half")
    assert not domain(lab, "cmp1").isActive()
    assert domain(lab, "ctl").isActive()
    assert lab.sh("ctl", "true") == ""
    listed = json.loads(lab.run("snapshot", "--list", "--json").stdout)
    half = next(s for s in listed if s["name"] == "half")
    assert {n["node"]: n["state"] for n in half["nodes"]} == {"ctl": "running",
                                                               "cmp1": "shut off"}
    lab.run("up", "--stage", "provision")  # bring cmp1 back for the next tests


def test_failure_on_one_node_leaves_no_snapshot_anywhere(lab: Lab) -> None:
    # A raw disk cannot hold an internal snapshot: libvirt refuses it on that node only.
    pool = libvirt.open(URI).storagePoolLookupByName(lab.name)
    pool.createXML("<volume><name>raw-inject.img</name><capacity unit='MiB'>1</capacity>"
                   "<target><format type='raw'/></target></volume>", 0)
    dom = domain(lab, "cmp1")
    disk = (f"<disk type='volume' device='disk'><driver name='qemu' type='raw'/>"
            f"<source pool='{lab.name}' volume='raw-inject.img'/>"
            f"<target dev='vdz' bus='virtio'/></disk>")
    dom.attachDeviceFlags(disk, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    try:
        out = lab.run("snapshot", "broken", check=False)
        assert out.returncode != 0
        assert "failed on node cmp1" in out.stderr
        for node in lab.nodes:
            assert "broken" not in snapshot_names(lab, node)
            assert domain(lab, node).state()[0] == libvirt.VIR_DOMAIN_RUNNING
    finally:
        dom.detachDeviceFlags(disk, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        pool.storageVolLookupByName("raw-inject.img").delete(0)


def test_revert_to_a_name_one_node_lacks_changes_nothing(lab: Lab) -> None:
    lab.run("snapshot", "partial")
    domain(lab, "cmp1").snapshotLookupByName("partial", 0).delete(0)
    for node in lab.nodes:
        lab.sh(node, "echo kept > /root/after-partial; sync")
    out = lab.run("revert", "partial", check=False)
    assert out.returncode != 0
    assert "missing on node(s) cmp1" in out.stderr and "no node was touched" in out.stderr
    for node in lab.nodes:
        assert lab.sh(node, "cat /root/after-partial") == "kept"


def test_guards_refuse_bad_and_used_names(lab: Lab) -> None:
    bad = lab.run("snapshot", "no spaces", check=False)
    assert bad.returncode != 0 and "not a valid snapshot name" in bad.stderr
    lab.run("snapshot", "dup")
    again = lab.run("snapshot", "dup", check=False)
    assert again.returncode != 0 and "exists already" in again.stderr


def test_automatic_checkpoints_replace_and_can_be_turned_off(lab: Lab) -> None:
    from oslab.snapshots.checkpoint import Checkpoints

    conn = libvirt.open(URI)
    said: list[str] = []
    off = Checkpoints(conn, lab.name, enabled=False, say=said.append)
    assert off.take("os") is None and off.hint() is None
    on = Checkpoints(conn, lab.name, say=said.append)
    on.take("os")
    on.take("os")  # a rerun replaces it
    for node in lab.nodes:
        assert snapshot_names(lab, node).count("auto-os") == 1
    assert on.last == "auto-os"
    assert on.hint() == (f"the last checkpoint is auto-os: `oslab --lab {lab.name} revert "
                         "auto-os` returns the lab to it")
    assert len(said) == 2 and "checkpoint auto-os taken" in said[0]


def test_delete_then_list_and_destroy_leaves_nothing(lab: Lab) -> None:
    lab.run("snapshot", "gone")
    assert "gone" in lab.run("snapshot", "--list").stdout
    lab.run("snapshot", "--delete", "gone")
    assert "gone" not in [s["name"] for s in json.loads(
        lab.run("snapshot", "--list", "--json").stdout)]
    for node in lab.nodes:
        assert "gone" not in snapshot_names(lab, node)
    lab.run("destroy", "--yes")
    conn = libvirt.open(URI)
    assert not [d for d in conn.listAllDomains(0) if d.name().startswith(lab.name)]
    assert not [p for p in conn.listAllStoragePools(0) if p.name() == lab.name]
