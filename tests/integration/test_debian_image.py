"""A debian13 lab on a real libvirtd: base image built on the host (cached by hash across
runs), overlays, NoCloud seeds, direct kernel boot, SSH with the pinned host key, snapshot and
revert, and a destroy that leaves the base in the cache pool and nothing of the lab.

The image cache is the invoking user's (not the test lab's own), so reruns reuse the image.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import libvirt
import pytest

from oslab.images.pool import CACHE_POOL
from oslab.images.seed import LOCAL_REPO_PORT
from oslab.images.serve import RepoServer
from tests.conftest import URI
from tests.debian_specs import image_spec
from tests.integration.test_provision import assert_nothing_left

pytestmark = pytest.mark.integration


def debian_lab(make_lab: Any, nodes: int) -> Any:
    lab = make_lab(nodes=nodes)
    lab.spec_path.write_text(image_spec(lab.spec_path.read_text()))
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    lab.env["XDG_CACHE_HOME"] = cache
    return lab


def cache_volumes() -> set[str]:
    conn = libvirt.open(URI)
    try:
        pool = conn.storagePoolLookupByName(CACHE_POOL)
        pool.refresh(0)
        return set(pool.listVolumes())
    finally:
        conn.close()


def waiting_for_ssh(lab: Any) -> list[str]:
    """The nodes whose log says they booted and oslab waits for their SSH."""
    logs = lab.home / "state" / "oslab" / lab.name / "logs"
    logged = {n: logs / f"{n}.log" for n in lab.nodes}
    return [n for n, log in logged.items()
            if log.is_file() and "waiting for SSH" in log.read_text()]


def test_debian13_nodes_from_a_base_image(make_lab: Any) -> None:
    lab = debian_lab(make_lab, nodes=2)
    # kill -9 while the nodes boot: the rerun continues from what libvirt holds
    proc = lab.popen("up", "--stage", "provision")
    try:
        deadline = time.monotonic() + 1800
        while len(waiting_for_ssh(lab)) < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "the nodes never started"
            time.sleep(1)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -9, "up was killed while the nodes booted"
    resumed = lab.run("up", "--stage", "provision", timeout=2400)
    repo_key = re.search(r"package repository ([0-9a-f]{16})", resumed.stderr)
    assert repo_key is not None, resumed.stderr

    status = lab.status()
    nodes = {n["node"]: n for n in status["nodes"]}  # type: ignore[attr-defined]
    assert set(nodes) == {"ctl", "cmp1"}
    for node in nodes.values():
        assert (node["state"], node["ssh"], node["phase"]) == ("running", "ok", "final"), node
    vols = {v["name"] for v in status["volumes"]}  # type: ignore[attr-defined]
    assert {"ctl-system.qcow2", "ctl-seed.iso", "cmp1-system.qcow2", "cmp1-seed.iso"} <= vols

    machine_ids = set()
    for name, address in lab.addresses.items():
        # `oslab ssh` pins the host key oslab generated: answering proves the seed's key is used
        out = lab.run("ssh", name, "--",
                      "hostname; ip -4 -o addr show scope global | awk '{print $4}'; "
                      "df -B1 --output=size / | tail -1; cat /etc/machine-id; "
                      "ls /etc/ssh/ssh_host_*_key; grep -c 'no_timer_check panic=10' /proc/cmdline"
                      ).stdout.split()
        hostname, addr, size, machine_id, *keys, timer_args = out
        assert timer_args == "1"  # the direct boot's NODE_KERNEL_ARGS
        assert hostname == name
        assert addr == f"{address}/24"  # the provider NIC is left unconfigured
        assert int(size) > 1.5 * (1 << 30), f"root fs not grown: {size} bytes"
        assert keys == ["/etc/ssh/ssh_host_ed25519_key"]
        machine_ids.add(machine_id)
    assert len(machine_ids) == 2

    again = lab.run("up", "--stage", "provision")
    assert "no changes" in again.stdout, again.stdout + again.stderr

    # source = "local": the node's apt reads the flat repository oslab serves on the gateway
    gateway = lab.addresses["ctl"].rsplit(".", 1)[0] + ".1"
    repo = Path(lab.env["XDG_CACHE_HOME"]) / "oslab" / "debian" / "repos" / repo_key[1]
    with RepoServer(repo, gateway, LOCAL_REPO_PORT) as server:
        apt = lab.run("ssh", "ctl", "--", "apt-get update --error-on=any && "
                      "apt-cache policy openssh-server", timeout=600).stdout
    assert f"{server.url.rstrip('/')}" in apt and " ./ Packages" in apt, apt

    lab.run("ssh", "ctl", "--", "touch /root/before")
    lab.run("snapshot", "s1", timeout=900)
    lab.run("ssh", "ctl", "--", "rm /root/before")
    lab.run("revert", "s1", timeout=1200)
    assert lab.run("ssh", "ctl", "--", "test -e /root/before", check=False).returncode == 0

    bases = {v for v in cache_volumes() if v.startswith("debian13-")}
    assert bases, "the base image is in the cache pool"
    # libvirt's backing stores (and the nodes' kernels) show the lab using its base; a prune
    # (even --all) keeps it
    listed = json.loads(lab.run("images", "--json").stdout)
    used = {row["name"] for row in listed if lab.name in row["used_by"]}
    assert len(used) == 1 and f"{next(iter(used))}.qcow2" in bases, listed
    plan = json.loads(lab.run("images", "--prune", "--dry-run", "--all", "--json").stdout)
    assert [(p["remove"], p["reason"]) for p in plan["plan"] if p["name"] in used] == [
        (False, f"used by {lab.name}")], plan
    lab.run("destroy", "--yes")
    assert_nothing_left(lab)
    assert bases <= cache_volumes(), "destroy never removes a base"
