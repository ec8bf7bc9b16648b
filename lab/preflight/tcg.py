"""QEMU's TCG and the guest kernel's live code patching (issue 21).

A Linux guest patches its own code while it runs: a static key (a jump label) flipped by a
first iSCSI login, a socket asking for time stamps or a tracepoint switched on rewrites the
instructions at every site of that key, with an ``int3`` on the site while the other vCPUs
are kept off it. Multi-threaded TCG in QEMU before 8.1 races that rewrite ("accel/tcg: Always
lock pages before translation", deba78709a, with cb62bd15e1 and ad17868eb1): another vCPU runs
the half-patched site and the guest dies with ``Oops: int3``. On this project's 2-core e2e host
(Debian 12's QEMU 7.2, trixie's 6.12 kernel) one in four first volume attaches panicked the
compute node, in ``__alloc_skb`` at its first iSCSI login. A reproducer that flips a static key
on one vCPU while the other runs through its sites panicked 8 of 8 runs on 7.2 within 10 s,
about once per 4 minutes of continuous flipping on 10.0.2, and never with one vCPU or
single-threaded TCG.

Pure: the nodes, the virt type and QEMU's version in, one finding (or none) out.
"""

from __future__ import annotations

from collections.abc import Iterable

import libvirt

from oslab.preflight.findings import Finding, Severity
from oslab.spec import Node, VirtType
from oslab.virt.handles import Connection

FIXED_IN = (8, 1)  # deba78709a "accel/tcg: Always lock pages before translation"


def qemu_version(conn: Connection | None) -> tuple[int, int] | None:
    """QEMU's (major, minor) as libvirt reports it, or None (no connection, not QEMU)."""
    if conn is None:
        return None
    try:
        if conn.getType() != "QEMU":
            return None
        version = int(conn.getVersion())
    except libvirt.libvirtError:
        return None
    return version // 1_000_000, version // 1_000 % 1_000


def check_tcg_patching(nodes: Iterable[Node], virt_type: VirtType,
                       version: tuple[int, int] | None) -> Finding | None:
    """A warning for multi-vCPU nodes under TCG on a QEMU older than 8.1; None where the
    race cannot happen (kvm, one vCPU each) or QEMU's version is unknown."""
    many = [n.name for n in nodes if n.vcpus > 1]
    if virt_type is not VirtType.QEMU or not many or version is None:
        return None
    shown = f"{version[0]}.{version[1]}"
    if version >= FIXED_IN:
        return Finding("tcg", Severity.OK,
                       f"QEMU {shown}: its TCG locks pages before translation, so a guest "
                       "kernel's live code patching rarely races it (QEMU 8.1's fix)")
    return Finding(
        "tcg", Severity.WARN,
        f"QEMU {shown} runs {', '.join(many)} with several vCPUs under TCG, which races the "
        "guest kernel's live code patching: a node can panic (Oops: int3 at a jump-label "
        "site), as one in four first volume attaches did on a compute node",
        "install QEMU 8.1 or later (on Debian 12: qemu-system-x86 from bookworm-backports), "
        "or give each node vcpus = 1 in the lab's spec (its boot and install are then slower)")
