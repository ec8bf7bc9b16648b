"""All of the host checks, in the order `oslab check` prints them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from oslab.preflight.findings import Finding
from oslab.preflight.kvm import VirtChoice, choose_virt_type
from oslab.preflight.lab_checks import lab_findings
from oslab.preflight.network_clashes import check_networks
from oslab.preflight.resources import (
    check_disk,
    check_libvirtd,
    check_memory,
    check_pool_dir,
    lab_domains,
)
from oslab.preflight.tcg import check_tcg_patching, qemu_version
from oslab.spec import LabSpec
from oslab.virt.definitions import pool_dir as lab_pool_dir
from oslab.virt.handles import Connection


@dataclass(frozen=True)
class HostCheck:
    """What the host check found, and the virt type it chose for the nodes (decided here
    once: `up` provisions with this choice, not with a second look at the host)."""

    findings: list[Finding]
    virt: VirtChoice


def run_checks(spec: LabSpec, conn: Connection | None, uri: str, root: Path = Path("/"),
               pool_dir: Path | None = None, stage: str = "all",
               extra: Iterable[Finding] = ()) -> HostCheck:
    """Every host check for ``spec`` built up to ``stage``; see :func:`blocking`. `oslab check`
    and `oslab up` both run exactly this (by ``oslab.resolve.host_check``), with ``extra``:
    the findings of the checks that need the install content, which this room does not read
    (the [verify] image)."""
    pool = pool_dir if pool_dir is not None else lab_pool_dir(spec)
    findings = [check_libvirtd(conn, uri)]
    choice, virt_findings = choose_virt_type(root, conn)
    findings.extend(virt_findings)
    tcg = check_tcg_patching(spec.nodes, choice.virt_type, qemu_version(conn))
    if tcg is not None:
        findings.append(tcg)
    domains = lab_domains(spec, conn)
    findings.append(check_memory(spec, root, running=[n for n, up in domains.items() if up]))
    findings.append(check_pool_dir(pool))
    findings.append(check_disk(spec, pool, defined=domains))
    findings.extend(check_networks(spec, conn, root))
    findings.extend(lab_findings(spec, stage, defined=domains, root=root))
    findings.extend(extra)
    return HostCheck(findings, choice)
