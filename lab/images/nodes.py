"""Debian nodes from base images: what the provisioner needs before it defines the domains.

The package repository (the lab's whole package set), one base image per role, the bases in
the cache pool, and for every node an overlay system disk, its extra disks and its NoCloud
seed in the lab's pool. With ``[packages] source = "local"`` the repository is then served to
the nodes from the management gateway while oslab runs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from oslab.access.state import LabState
from oslab.distro import distro_for
from oslab.images.build import (
    BASE_PACKAGES,
    ImageInputs,
    build_image,
    chosen_inputs,
    images_dir,
    use_path,
)
from oslab.images.common import Say, locked
from oslab.images.pool import BaseVolumes, ImageCache
from oslab.images.repo import Repo, RepoInputs, build_repo
from oslab.images.seed import LOCAL_REPO_PORT, SeedInput, seed_files, write_seed
from oslab.images.serve import RepoServer
from oslab.images.sources import host_mirror
from oslab.spec import LabSpec, Node, PackageSource, Role
from oslab.virt.definitions import GIB, VolumeDef, extra_volumes, seed_volume_name, system_volume
from oslab.virt.handles import Connection
from oslab.virt.lab_objects import LabObjects


@dataclass(frozen=True)
class Bake:
    """What a Debian lab's base images carry beyond the base packages: each role's packages
    and the debconf answers preseeded before they install. Worked out from the install
    content by the command (``oslab.resolve.bake``); nothing of it for another family."""

    packages: Mapping[Role, tuple[str, ...]]
    preseed: str = ""


def suite_and_mirror(spec: LabSpec) -> tuple[str, str]:
    """The Debian suite of the lab's distro ("" for another family) and the mirror its
    packages come from (the spec's, else the host's own)."""
    return getattr(distro_for(spec.distro), "suite", ""), spec.packages.mirror or host_mirror()


def repository_inputs(spec: LabSpec, packages: Mapping[Role, tuple[str, ...]]) -> RepoInputs:
    """The lab's package repository: the base image's packages and every role's."""
    every = set(BASE_PACKAGES).union(*packages.values())
    suite, mirror = suite_and_mirror(spec)
    return RepoInputs.of(suite, mirror, sorted(every))


def overlay_volumes(objs: LabObjects, node: Node, base: BaseVolumes) -> list[str]:
    """The node's system disk, an overlay on ``base``, and its extra disks; what was made."""
    changed = []
    overlay = VolumeDef(system_volume(node).name, node.disk_gib * GIB, backing=base.disk)
    for vol in (overlay, *extra_volumes(node)):
        if objs.ensure_volume(vol):
            changed.append(f"volume {vol.name}")
    return changed


def seed_volume(objs: LabObjects, state: LabState, spec: LabSpec, node: Node, suite: str,
                mirror: str, growpart: bool = False) -> list[str]:
    """The node's NoCloud seed in the lab's pool, unless there; what was made."""
    name = seed_volume_name(node)
    if objs.volume(name) is not None:
        return []
    host = state.host_key(node.name)
    files = seed_files(SeedInput(
        spec=spec, node=node, authorized_key=state.ssh_key().public,
        host_private=host.private_path.read_text(), host_public=host.public,
        mirror=mirror, growpart=growpart), suite)
    with tempfile.TemporaryDirectory(prefix="oslab-seed-") as tmp:
        objs.upload(name, write_seed(files, Path(tmp) / name))
    return [f"volume {name}"]


class ImageNodes:
    def __init__(self, spec: LabSpec, conn: Connection, state: LabState, objs: LabObjects, say: Say,
                 bake: Bake, fresh_image: bool = False) -> None:
        self.spec = spec
        self.conn = conn
        self.state = state
        self.objs = objs
        self.say = say
        self.bake = bake
        self.suite, self.mirror = suite_and_mirror(spec)
        self.repo: Repo | None = None
        self.fresh_image = fresh_image  # build new bases instead of the cached ones
        # the bases' use locks, held from choosing them until every overlay on them exists
        self.holds = ExitStack()
        self.waiting: set[str] = set()  # the nodes whose overlay is not made yet

    def repository(self, packages: Mapping[Role, tuple[str, ...]]) -> Repo:
        self.repo = build_repo(repository_inputs(self.spec, packages), self.say)
        return self.repo

    def bases(self, nodes: list[Node]) -> dict[str, BaseVolumes]:
        """The base volumes of each of ``nodes``, built and uploaded when missing."""
        packages = self.bake.packages
        repo = self.repository(packages)
        if not nodes:
            if self.fresh_image:
                self.say("--fresh-image: every node exists and keeps its base, so no base is "
                         "rebuilt (destroy the lab first to rebuild it on a new one)")
            return {}
        cache = ImageCache(self.conn)
        bake = self.spec.packages.bake
        by_role: dict[Role, BaseVolumes] = {}
        by_inputs: dict[ImageInputs, BaseVolumes] = {}
        for role in sorted({n.role for n in nodes}):
            baked = packages[role] if bake else ()
            # with nothing baked, every role boots the same "base" image
            inputs = ImageInputs(
                distro=self.spec.distro, suite=self.suite, role=role.value if baked else "base",
                repo=repo.inputs.key(), packages=baked,
                preseed=self.bake.preseed if baked else "")
            if inputs not in by_inputs:
                chosen = chosen_inputs(inputs, self.fresh_image)
                self.holds.enter_context(locked(use_path(images_dir(), chosen.key()),
                                                shared=True))
                image = build_image(repo, chosen, self.say)
                by_inputs[inputs] = cache.ensure_base(image, self.say)
            by_role[role] = by_inputs[inputs]
        self.waiting = {n.name for n in nodes}
        return {n.name: by_role[n.role] for n in nodes}

    def volumes(self, node: Node, base: BaseVolumes) -> list[str]:
        """The node's overlay, extra disks and seed in the lab's pool; what was created."""
        changed = overlay_volumes(self.objs, node, base)
        self.waiting.discard(node.name)
        if not self.waiting:
            self.holds.close()  # every overlay exists: libvirt shows the bases in use now
        return changed + seed_volume(self.objs, self.state, self.spec, node, self.suite,
                                     self.mirror)

    def serve(self) -> RepoServer | None:
        """Serve the repository to the nodes when they install from the local source."""
        if self.spec.packages.source is not PackageSource.LOCAL or self.repo is None:
            return None
        server = RepoServer(self.repo.path, str(self.spec.management.gateway),
                            LOCAL_REPO_PORT).start()
        self.say(f"serving the local package repository at {server.url}")
        return server
