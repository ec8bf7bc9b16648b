"""`oslab snapshot` and `oslab revert` of 3 running nodes, against doing the same with virsh one
node after another, in one run. Also prints the longest time the lab stayed paused during
`oslab snapshot`.

Revert is compared twice:
- with bare `virsh snapshot-revert` one node after another, which waits for nothing;
- like for like: `virsh snapshot-revert --running` node after node, each followed by waiting
  until that node answers SSH with the pinned key, with the same wait oslab uses
  (``oslab.access.ssh.open_when_ready``). oslab's figure is the whole `oslab revert` command, which
  also sets every node's clock. Both run ROUNDS times, alternating which goes first; the
  medians and their ratio are printed, with the host's load average.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import time

import libvirt
from common import BenchLab, guest_iso

from oslab.access.ssh import Target, open_when_ready
from oslab.access.state import LabState
from oslab.snapshots.checkpoint import node_targets

# the test libvirtd of scripts/in-testns.sh (bench/snapshot runs through it)
URI = os.environ.get("LIBVIRT_DEFAULT_URI") or "qemu:///system"
ROUNDS = 3


def virsh(*args: str) -> None:
    subprocess.run(["virsh", "-c", URI, *args], check=True, capture_output=True, timeout=600)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def revert_then_ssh(domains: list[str], targets: list[Target], name: str) -> float:
    """The like-for-like baseline: revert one node, wait until it answers SSH, then the next."""
    start = time.monotonic()
    for dom, target in zip(domains, targets, strict=True):
        virsh("snapshot-revert", dom, name, "--running")
        open_when_ready(target, 300).close()
    return time.monotonic() - start


def main() -> None:
    guest_iso()
    lab = BenchLab(3, 203)
    load_start = load()
    oslab_runs: list[tuple[float, str]] = []
    base_runs: list[float] = []
    try:
        lab.oslab("up", "--stage", "provision")
        t_snap, out = lab.oslab("snapshot", "bench")
        paused = float(re.search(r"paused for ([0-9.]+)s", out).group(1))  # type: ignore[union-attr]

        domains = [f"{lab.name}-{n}" for n in lab.nodes]
        conn = libvirt.open(URI)
        by_node = node_targets(conn, lab.name, LabState(lab.name, lab.home / "state" / "oslab"))
        targets = [by_node[n] for n in lab.nodes]
        for i in range(ROUNDS):
            if i % 2:
                base_runs.append(revert_then_ssh(domains, targets, "bench"))
            took, out = lab.oslab("revert", "bench")
            oslab_runs.append((took, out.splitlines()[0]))
            if not i % 2:
                base_runs.append(revert_then_ssh(domains, targets, "bench"))
            print(f"round {i + 1}: oslab revert {took:.1f} s, virsh + SSH one by one "
                  f"{base_runs[-1]:.1f} s; {oslab_runs[-1][1]}", flush=True)

        start = time.monotonic()
        for dom in domains:
            virsh("snapshot-create-as", dom, "seq")
        v_snap = time.monotonic() - start
        start = time.monotonic()
        for dom in domains:
            virsh("snapshot-revert", dom, "seq", "--running")
        v_revert = time.monotonic() - start
    finally:
        lab.destroy()
    t_revert = statistics.median(t for t, _ in oslab_runs)
    t_base = statistics.median(base_runs)
    print(f"oslab snapshot, 3 nodes:              {t_snap:.1f} s")
    print(f"virsh snapshot-create-as, one by one: {v_snap:.1f} s")
    print(f"ratio snapshot oslab / virsh:         {t_snap / v_snap:.2f}")
    print(f"oslab revert, 3 nodes (incl. clock fix and SSH wait), median of {ROUNDS}: "
          f"{t_revert:.1f} s")
    print(f"virsh snapshot-revert, one by one:    {v_revert:.1f} s")
    print(f"ratio revert oslab / virsh:           {t_revert / v_revert:.2f}")
    print(f"virsh snapshot-revert + SSH wait, one node after another, median of {ROUNDS}: "
          f"{t_base:.1f} s")
    print(f"ratio revert oslab / like-for-like:   {t_revert / t_base:.2f}")
    print(f"longest time the lab stayed paused during oslab snapshot: {paused:.2f} s")
    print(f"host: {os.cpu_count()} CPUs, load average {load_start} at the start, "
          f"{load()} at the end")


if __name__ == "__main__":
    main()
