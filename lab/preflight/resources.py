"""libvirtd, memory, disk and the pool directory: can this host hold the lab's nodes?"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path

import libvirt

from oslab.preflight.findings import Finding, Severity, read_text
from oslab.spec import LabSpec, Node
from oslab.virt.handles import Connection
from oslab.virt.metadata import LabMeta

GIB = 1 << 30
# Thin qcow2 disks start small, but a node still needs room to install and run.
MIN_FREE_GIB_PER_NODE = 5
# What qemu itself needs next to each guest's RAM (page tables, device emulation, TCG cache).
QEMU_OVERHEAD_MIB_PER_NODE = 256


def check_libvirtd(conn: Connection | None, uri: str) -> Finding:
    if conn is None:
        return Finding(
            "libvirtd", Severity.BLOCK, f"libvirtd is not reachable at {uri}",
            "apt-get install libvirt-daemon-system; systemctl enable --now libvirtd; "
            "usermod -aG libvirt $USER (then log in again)")
    return Finding("libvirtd", Severity.OK, f"libvirtd answers at {uri}")


def mem_available_mib(root: Path = Path("/")) -> int | None:
    for line in (read_text(root, "proc/meminfo") or "").splitlines():
        key, _, value = line.partition(":")
        if key == "MemAvailable":
            parts = value.split()
            if parts and parts[0].isdigit():
                return int(parts[0]) // 1024  # kB
    return None


def lab_domains(spec: LabSpec, conn: Connection | None) -> dict[str, bool]:
    """This lab's defined nodes (by their oslab metadata) and whether each is running."""
    if conn is None:
        return {}
    found: dict[str, bool] = {}
    for dom in conn.listAllDomains(0):
        try:
            meta = LabMeta.from_object_xml(dom.XMLDesc(0))
            active = bool(dom.isActive())
        except (libvirt.libvirtError, ET.ParseError):
            continue  # vanished while we looked
        if meta is not None and meta.lab == spec.name and meta.node:
            found[meta.node] = active
    return found


def check_memory(spec: LabSpec, root: Path, running: Iterable[str] = ()) -> Finding:
    """The RAM of the nodes that are not running yet against MemAvailable."""
    up = set(running)
    nodes = [n for n in spec.nodes if n.name not in up]
    if not nodes:
        return Finding("memory", Severity.OK, "every node of the lab is already running")
    planned = sum(n.memory_mib for n in nodes)
    detail = ", ".join(f"{n.name} {n.memory_mib}" for n in nodes)
    available = mem_available_mib(root)
    if available is None:
        return Finding("memory", Severity.WARN,
                       "cannot read MemAvailable from /proc/meminfo to check the lab's RAM",
                       "check by hand with `free -m` that "
                       f"{planned} MiB ({detail}) fits")
    if planned > available:
        return Finding(
            "memory", Severity.BLOCK,
            f"the lab's nodes need {planned} MiB of RAM ({detail}) but only {available} MiB "
            "is available",
            f"lower memory_mib of the [[nodes]] in the lab spec by {planned - available} MiB "
            "in total, or free memory on the host (stop other VMs or programs)")
    overhead = QEMU_OVERHEAD_MIB_PER_NODE * len(nodes)
    if planned + overhead > available:
        return Finding(
            "memory", Severity.WARN,
            f"the lab's nodes need {planned} MiB of RAM ({detail}) plus about {overhead} MiB "
            f"for qemu, and {available} MiB is available: the host may start swapping",
            f"lower memory_mib of the [[nodes]] by {planned + overhead - available} MiB in "
            "total, or free memory on the host")
    return Finding("memory", Severity.OK,
                   f"the lab's nodes need {planned} MiB of RAM; {available} MiB is available")


def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def check_disk(spec: LabSpec, pool_dir: Path, defined: Iterable[str] = (), *,
               statvfs: Callable[[Path], os.statvfs_result] = os.statvfs) -> Finding:
    """Free space for the nodes not defined yet (BLOCK), and for the disks' full size (WARN),
    as ``statvfs`` reports it for the pool's filesystem."""
    where = nearest_existing(pool_dir)
    try:
        st = statvfs(where)
    except OSError as exc:
        return Finding("disk", Severity.WARN, f"cannot check free space at {where}: "
                       f"{exc.strerror}", "set lab.pool_dir in the lab spec to a directory "
                       "oslab can read")
    free_gib = st.f_bavail * st.f_frsize / GIB
    planned = sum(n.disk_gib + sum(n.extra_disks_gib) for n in spec.nodes)
    new: list[Node] = [n for n in spec.nodes if n.name not in set(defined)]
    minimum = MIN_FREE_GIB_PER_NODE * len(new)
    have = f"{free_gib:.1f} GiB free at {where}"
    if free_gib < minimum:
        return Finding(
            "disk", Severity.BLOCK,
            f"only {have}; the lab's {len(new)} new nodes need at least {minimum} GiB "
            f"to install ({MIN_FREE_GIB_PER_NODE} GiB each)",
            f"free at least {minimum - free_gib:.1f} GiB there, or set lab.pool_dir in the lab "
            "spec to a directory on a filesystem with more room")
    if planned > free_gib:
        return Finding(
            "disk", Severity.WARN,
            f"the lab's thin qcow2 disks may grow to {planned} GiB but there is {have}",
            f"free {planned - free_gib:.1f} GiB there, set lab.pool_dir to a larger "
            "filesystem, or lower disk_gib/extra_disks_gib of the [[nodes]]")
    return Finding("disk", Severity.OK, f"the lab's disks may grow to {planned} GiB; {have}")


def check_pool_dir(pool_dir: Path, *,
                   access: Callable[[Path, int], bool] = os.access) -> Finding:
    """The pool directory is writable, or can be created (``access`` answers for a path)."""
    fix_other = "or set lab.pool_dir in the lab spec to a directory you can write"
    if pool_dir.exists():
        if not pool_dir.is_dir():
            return Finding("pool-dir", Severity.BLOCK,
                           f"the pool path {pool_dir} exists but is not a directory",
                           f"remove or rename {pool_dir}, {fix_other}")
        if access(pool_dir, os.W_OK | os.X_OK):
            return Finding("pool-dir", Severity.OK, f"the pool directory {pool_dir} is writable")
        return Finding("pool-dir", Severity.BLOCK,
                       f"the pool directory {pool_dir} is not writable",
                       f"chown $USER {pool_dir} (or run oslab as a user that can write it), "
                       f"{fix_other}")
    parent = nearest_existing(pool_dir.parent)
    if not parent.is_dir():
        return Finding("pool-dir", Severity.BLOCK,
                       f"cannot create the pool directory {pool_dir}: {parent} is not a "
                       "directory", f"remove or rename {parent}, {fix_other}")
    if access(parent, os.W_OK | os.X_OK):
        return Finding("pool-dir", Severity.OK,
                       f"the pool directory {pool_dir} will be created (in {parent})")
    return Finding("pool-dir", Severity.BLOCK,
                   f"cannot create the pool directory {pool_dir}: {parent} is not writable",
                   f"sudo install -d -o $USER {pool_dir}, {fix_other}")
