"""Golden bases (``lab.golden``): `oslab up --stage provision` of a 3-node test-guest lab with a
cold image cache, then, after `oslab destroy`, with the warm cache, in one run; and the disk
the 3 nodes use as overlays on the base against 3 full disks.

Cold is forced with ``--fresh-image`` (a base of its own, even when the cache holds one for the
same inputs); warm is the same lab rebuilt, which finds that base. For context it also times
today's default, the same lab installed node by node by the installer (``golden = false``).
The bench's base is removed from the cache pool at the end.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import libvirt
from common import BenchLab, guest_iso

from oslab.images.pool import CACHE_POOL

URI = os.environ.get("LIBVIRT_DEFAULT_URI") or "qemu:///system"


def allocation(vol: Any) -> int:
    return int(ET.fromstring(vol.XMLDesc(0)).findtext("allocation") or 0)


def main() -> None:
    guest_iso()
    conn = libvirt.open(URI)
    plain = BenchLab(3, 211)
    try:
        t_plain, _ = plain.oslab("up", "--stage", "provision")
        full = sum(allocation(plain_pool_vol) for plain_pool_vol in
                   (conn.storagePoolLookupByName(plain.name).storageVolLookupByName(
                       f"{n}-system.qcow2") for n in plain.nodes))
    finally:
        plain.destroy()
    print(f"installer on every node (golden = false), 3 nodes: {t_plain:.1f} s", flush=True)

    lab = BenchLab(3, 212, golden=True)
    base = ""
    try:
        t_cold, _ = lab.oslab("up", "--stage", "provision", "--fresh-image")
        pool = conn.storagePoolLookupByName(lab.name)
        backing = ET.fromstring(pool.storageVolLookupByName("ctl-system.qcow2").XMLDesc(0))
        base = Path(backing.findtext("backingStore/path") or "").stem  # <distro>-golden-<hash>
        overlays = sum(allocation(pool.storageVolLookupByName(f"{n}-system.qcow2"))
                       for n in lab.nodes)
        cache = conn.storagePoolLookupByName(CACHE_POOL)
        cache.refresh(0)
        base_bytes = allocation(cache.storageVolLookupByName(f"{base}.qcow2")) if base else 0
        print(f"golden, cold cache (installs the base), 3 nodes: {t_cold:.1f} s", flush=True)
        lab.oslab("destroy", "--yes")
        t_warm, _ = lab.oslab("up", "--stage", "provision")
        print(f"golden, warm cache (after destroy), 3 nodes: {t_warm:.1f} s", flush=True)
    finally:
        lab.destroy()
        if base:
            cache = conn.storagePoolLookupByName(CACHE_POOL)
            cache.refresh(0)
            for name in (f"{base}.json", f"{base}.qcow2"):
                if name in cache.listVolumes():
                    cache.storageVolLookupByName(name).delete(0)
        conn.close()
    print(f"ratio warm / cold: {t_warm / t_cold:.2f} (target <= 0.3)")
    print(f"ratio warm / installer on every node: {t_warm / t_plain:.2f}")
    mib = 1 << 20
    print(f"disk, 3 nodes as overlays: {overlays / mib:.1f} MiB + the shared base "
          f"{base_bytes / mib:.1f} MiB = {(overlays + base_bytes) / mib:.1f} MiB; "
          f"3 full disks (installer on every node): {full / mib:.1f} MiB; "
          f"ratio {(overlays + base_bytes) / full:.2f}")


if __name__ == "__main__":
    main()
