"""Checks of a lab spec against this host and the stage asked for: what the parser cannot know
(a file must exist here; a cloud needs a compute node, a bare provisioning does not).

Run by ``preflight.run_checks``, so `oslab check` and `oslab up` give the same answer.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from oslab.distro import Family, distro_for, node_os
from oslab.preflight.findings import Finding, Severity
from oslab.spec import DownloadSource, LabSpec, Packages, Scope


def _regular_file(path: Path, root: Path) -> str | None:
    """Why ``path`` (an absolute one, read under ``root``) is not a readable regular file, or
    None when it is."""
    p = root / path.relative_to("/")
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        return exc.strerror or str(exc)
    if not stat.S_ISREG(mode):
        return "not a regular file"
    if not os.access(p, os.R_OK):
        return "not readable"
    return None


def check_iso(spec: LabSpec, defined: Iterable[str], root: Path = Path("/")) -> Finding:
    """A local installer ISO must be there while a node still needs installing. Distros whose
    nodes boot base images built on this host use no ISO: their [iso] is ignored, never a
    reason to stop."""
    if not node_os(spec).uses_iso:
        booted = f"{spec.distro} nodes boot base images built on this host"
        if spec.iso == DownloadSource():
            return Finding("iso", Severity.OK, f"{booted}; no installer ISO is needed")
        return Finding("iso", Severity.WARN, f"{booted}; [iso] is not used",
                       "remove the [iso] table from the lab spec")
    pending = [n.name for n in spec.nodes if n.name not in set(defined)]
    if not spec.iso.path:
        return Finding("iso", Severity.OK, f"the installer ISO is downloaded from {spec.iso.url}"
                       if spec.iso.url else "no installer ISO named")
    if not pending:
        return Finding("iso", Severity.OK, "every node is defined; the ISO is not needed")
    path = spec.local_path(spec.iso.path)
    why = _regular_file(path, root)
    if why:
        return Finding("iso", Severity.BLOCK, f"iso.path {path}: {why}",
                       "fix iso.path in the lab spec (a relative path starts at the spec's "
                       "directory), or give iso.url and iso.sha256 to download it")
    return Finding("iso", Severity.OK, f"the installer ISO is {path}")


def check_roles(spec: LabSpec, stage: str) -> Finding:
    """OpenStack needs a compute node to run instances; provisioning alone does not, nor does a
    lab whose scope stops at Keystone."""
    if spec.scope is Scope.IDENTITY:
        return Finding("roles", Severity.OK, "scope identity: Keystone on the controller; "
                       "compute nodes are not needed")
    if stage != "provision" and not any(n.is_compute for n in spec.nodes):
        return Finding("roles", Severity.BLOCK,
                       "the lab has no compute node, so OpenStack cannot run instances",
                       'add a [[nodes]] entry with role = "compute", or use --stage provision '
                       "to build the nodes only")
    return Finding("roles", Severity.OK, "the lab has a controller and "
                   f"{sum(n.is_compute for n in spec.nodes)} compute node(s)")


def check_packages(spec: LabSpec) -> Finding | None:
    """[packages] says how Debian nodes get packages; other distros' nodes never read it."""
    if spec.packages == Packages() or distro_for(spec.distro).family is Family.DEBIAN:
        return None
    return Finding("packages", Severity.WARN, f"{spec.distro} nodes install from their "
                   "distro's repositories; [packages] is for Debian labs and is not used",
                   "remove the [packages] table from the lab spec")


def lab_findings(spec: LabSpec, stage: str, defined: Iterable[str],
                 root: Path = Path("/")) -> list[Finding]:
    found = [check_iso(spec, defined, root), check_roles(spec, stage)]
    packages = check_packages(spec)
    return found + ([packages] if packages is not None else [])
