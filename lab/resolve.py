"""What the commands read from the install content and hand down to the rooms below them.

The rooms under ``lab/`` (images, preflight, provisioning, virt, power, access, snapshots,
downloads) never import ``oslab.install``: what they need of it is worked out here, by the
commands (`up`, `check`, the test suite's repository prefetch), once per run:

- :func:`bake`: the packages each role's base image carries (its nodes' install steps') and the
  debconf answers preseeded before they install;
- :func:`lab_repository`: the package repository a Debian lab's nodes install from;
- :func:`host_check`: every host check, with the [verify] image chosen as `verify` chooses it;
- :func:`virt_types`: the virt type nova is told to use on each compute node (`up`'s install
  stage, `plan`, `render`: one rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from oslab import preflight
from oslab.access.state import LabState
from oslab.distro import Family, distro_for
from oslab.errors import OslabError
from oslab.images.common import Say
from oslab.images.nodes import Bake, repository_inputs
from oslab.images.repo import Repo, build_repo
from oslab.preflight.findings import Finding, Severity
from oslab.spec import LabSpec, Role, VirtType
from oslab.virt.handles import Connection

if TYPE_CHECKING:
    from oslab.access.ssh import Target
    from oslab.install.content import Content


def bake(spec: LabSpec, state: LabState, virt_type: str, content: Content | None = None) -> Bake:
    """Each of the lab's roles with the packages of its nodes' install steps (``content``'s,
    by default oslab's), and the install content's debconf answers; nothing for a lab of
    another family (CentOS nodes install their packages themselves). The steps are built once.

    An error of the install content (a damaged passwords.json, a bug) goes out as it is:
    the base images and the package repository are keyed by these packages, so an empty
    list here would build, and cache, bases and a repository without the role's packages,
    and the nodes would then fail to install them, far from the cause."""
    roles = sorted({n.role for n in spec.nodes})
    if distro_for(spec.distro).family is not Family.DEBIAN:
        return Bake({r: () for r in roles})
    from oslab.install import content as install
    from oslab.install.debian import debconf_selections
    from oslab.install.services import steps_for

    steps = install.lab_steps(spec, state, install.host_virt_types(spec, virt_type),
                              content or steps_for)
    role_of = {n.name: n.role for n in spec.nodes}
    packages: dict[Role, set[str]] = {r: set() for r in roles}
    for node, node_steps in steps.items():
        for step in node_steps:
            packages[role_of[node]].update(step.packages)
    return Bake({r: tuple(sorted(p)) for r, p in packages.items()}, debconf_selections())


def lab_repository(spec: LabSpec, state: LabState, virt_type: str, say: Say) -> Repo | None:
    """Build (or find cached) the package repository a Debian lab's nodes need, as `oslab up`
    would; None for a lab of another family. Needs the archive only when not cached."""
    if distro_for(spec.distro).family is not Family.DEBIAN:
        return None
    return build_repo(repository_inputs(spec, bake(spec, state, virt_type).packages), say)


def verify_image(spec: LabSpec, stage: str) -> Finding | None:
    """The spec's instance image, chosen exactly as `up` and `verify` choose it (a relative
    path from the spec's directory, its manifest read and validated)."""
    from oslab.install import instance_image

    if not spec.verify.image or stage not in ("verify", "all"):
        return None
    try:
        image = instance_image.choose(None, spec)
    except OslabError as exc:
        return Finding("verify-image", Severity.BLOCK, exc.message,
                       exc.hint or "fix verify.image in the lab spec, or remove it to use "
                                   "cirros")
    return Finding("verify-image", Severity.OK,
                   f"instances boot {image.path} (as {image.user}, {image.disk_format})")


def host_check(spec: LabSpec, conn: Connection | None, uri: str, pool_dir: Path,
               stage: str) -> preflight.HostCheck:
    """`oslab check`'s checks, which `oslab up` runs too: the host's, then the [verify]
    image's."""
    image = verify_image(spec, stage)
    return preflight.run_checks(spec, conn, uri, pool_dir=pool_dir, stage=stage,
                                extra=() if image is None else (image,))


def virt_types(spec: LabSpec, targets: Mapping[str, Target], host: str | None = None,
               forced: str | None = None) -> tuple[dict[str, str], str]:
    """Each compute node's virt type for nova, and where it comes from: ``forced`` for every
    one (`--virt-type`); qemu for every one when this host runs the nodes under qemu (``host``,
    the host check's choice, looked up here when not given); each node's own answer when every
    compute node is reachable (``targets``); else this host's choice."""
    from oslab.install import content

    if forced:
        return content.host_virt_types(spec, forced), "--virt-type"
    if host is None:
        host = preflight.choose_virt_type()[0].virt_type
    if host == VirtType.QEMU:
        return content.host_virt_types(spec, host), "this host runs the nodes under qemu"
    if all(n.name in targets for n in spec.nodes if n.is_compute):
        return content.read_virt_types(spec, targets, host), "read on each compute node"
    return content.host_virt_types(spec, host), "this host's choice"
