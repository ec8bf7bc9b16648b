"""`oslab snapshot` and `oslab revert` of 3 running nodes, against doing the same with
`virsh snapshot-create-as` and `virsh snapshot-revert` one node after another, in one run.
Also prints the longest time the lab stayed paused during `oslab snapshot`."""

from __future__ import annotations

import os
import re
import subprocess
import time

from common import BenchLab, guest_iso

# the test libvirtd of scripts/in-testns.sh (bench/snapshot runs through it)
URI = os.environ.get("LIBVIRT_DEFAULT_URI") or "qemu:///system"


def virsh(*args: str) -> None:
    subprocess.run(["virsh", "-c", URI, *args], check=True, capture_output=True, timeout=600)


def main() -> None:
    guest_iso()
    lab = BenchLab(3, 203)
    try:
        lab.oslab("up", "--stage", "provision")
        t_snap, out = lab.oslab("snapshot", "bench")
        paused = float(re.search(r"paused for ([0-9.]+)s", out).group(1))  # type: ignore[union-attr]
        t_revert, _ = lab.oslab("revert", "bench")

        domains = [f"{lab.name}-{n}" for n in lab.nodes]
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
    print(f"oslab snapshot, 3 nodes:              {t_snap:.1f} s")
    print(f"virsh snapshot-create-as, one by one: {v_snap:.1f} s")
    print(f"ratio snapshot oslab / virsh:         {t_snap / v_snap:.2f}")
    print(f"oslab revert, 3 nodes (incl. clock fix and SSH wait): {t_revert:.1f} s")
    print(f"virsh snapshot-revert, one by one:    {v_revert:.1f} s")
    print(f"ratio revert oslab / virsh:           {t_revert / v_revert:.2f}")
    print(f"longest time the lab stayed paused during oslab snapshot: {paused:.2f} s")


if __name__ == "__main__":
    main()
