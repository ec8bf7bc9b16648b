"""Golden bases for distros installed by kickstart (``lab.golden``): install once, clone often.

The installer installs one generic system into a builder domain (``<lab>-golden``), from a
kickstart without any node's identity whose %post generalises the disk: empty machine-id, no
SSH host keys, no root key, no network state, empty logs (``golden_kickstart``). When the
builder has powered off, its disk is copied into the ``oslab-images`` cache pool as
``<distro>-golden-<hash>.qcow2``, with a manifest volume written last (a base without one is an
interrupted copy, made again), and the builder is removed. Every node of every lab with the
same inputs is then a qcow2 overlay on that base with a NoCloud seed, as Debian's nodes are:
cloud-init (CentOS) or testlinux's first-boot agent applies the node's identity.

The builder is an ordinary domain of the lab with its phase in its metadata, so a run killed
while the base installs waits for that install on the next `oslab up`, and `destroy` removes
it. The key is the hash of the distro, the release, the installer ISO, the kickstart (rendered
for a canonical builder, so labs with other addresses share the base) and the disk size.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from oslab.access.state import LabState
from oslab.downloads.iso import InstallerMedia
from oslab.images import rebuilds
from oslab.images.build import images_dir, lock_path
from oslab.images.common import digest, locked
from oslab.images.pool import BaseVolumes, ImageCache
from oslab.kickstart.render import BUILDER, builder_kickstart, golden_kickstart, oemdrv_iso
from oslab.report import Reporter
from oslab.spec import LabSpec, Node, VirtType
from oslab.virt.definitions import GIB, DomainDef, VolumeDef, oemdrv_volume_name, system_volume
from oslab.virt.handles import Connection, Domain
from oslab.virt.lab_objects import LabObjects, stream_into
from oslab.virt.metadata import LabMeta


class Provisioner(Protocol):
    """What installing a base needs of the provisioner (oslab.provisioning.provisioner)."""

    spec: LabSpec
    conn: Connection
    state: LabState
    report: Reporter
    virt_type: VirtType
    objs: LabObjects
    changed: list[str]

    def installer_media(self) -> InstallerMedia: ...

    def definition(self, node: Node, media: InstallerMedia | None) -> DomainDef: ...

    def meta(self, dom: Domain) -> LabMeta: ...

    def install(self, node: Node, dom: Domain, phase: str, media: InstallerMedia,
                changed: list[str], then: str = ...) -> None: ...

FORMAT = 1  # bump when the golden kickstart's shape or the copy changes


@dataclass(frozen=True)
class GoldenInputs:
    """Everything that shapes a golden base: its cache key."""

    distro: str
    release: str
    iso: str  # the installer ISO's identity: its sha256, or its URL
    kickstart: str  # rendered for the canonical builder
    disk_gib: int  # the base's disk; each overlay is at least as large
    rebuild: str = ""  # `oslab up --fresh-image`: a new base beside the cached one

    def key(self) -> str:
        fields = asdict(self)
        if not self.rebuild:
            del fields["rebuild"]
        return digest({"format": FORMAT, **fields})

    @property
    def name(self) -> str:
        """The base's name in the cache pool: ``<distro>-golden-<hash>``."""
        return f"{self.distro}-golden-{self.key()}"


def iso_identity(spec: LabSpec) -> str:
    """What names the installer ISO: the sha256 of a local file or the given one, else the URL
    (a base then follows the URL; `--fresh-image` installs it again)."""
    if spec.iso.path:
        h = hashlib.sha256()
        with Path(spec.installer_iso.path).open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return "sha256:" + h.hexdigest()
    if spec.iso.sha256:
        return "sha256:" + spec.iso.sha256.lower()
    return "url:" + spec.iso.url


def golden_inputs(spec: LabSpec) -> GoldenInputs:
    return GoldenInputs(distro=spec.distro, release=spec.release, iso=iso_identity(spec),
                        kickstart=golden_kickstart(spec.distro, spec.timezone),
                        disk_gib=min(n.disk_gib for n in spec.nodes))


def chosen(inputs: GoldenInputs, fresh: bool, cache: ImageCache) -> GoldenInputs:
    """What to install or use for ``inputs`` (see :mod:`.rebuilds`)."""
    return rebuilds.choose(inputs, fresh, images_dir(),
                           lambda latest: cached(cache, latest) is not None)


def builder_node(spec: LabSpec, inputs: GoldenInputs) -> Node:
    """The builder: the first node's shape and address (no node exists yet), its own name
    (so its own MACs), the base's disk size and no extra disks."""
    first = spec.nodes[0]
    return replace(first, name=BUILDER, disk_gib=inputs.disk_gib, extra_disks_gib=())


def manifest_name(inputs: GoldenInputs) -> str:
    return f"{inputs.name}.json"


def disk_name(inputs: GoldenInputs) -> str:
    return f"{inputs.name}.qcow2"


def cached(cache: ImageCache, inputs: GoldenInputs) -> BaseVolumes | None:
    pool = cache.ensure()
    pool.refresh(0)
    if manifest_name(inputs) not in pool.listVolumes():
        return None
    return BaseVolumes(pool.storageVolLookupByName(disk_name(inputs)).path(), "", "", "")


def golden_base(prov: Provisioner, inputs: GoldenInputs) -> BaseVolumes:
    """The cached golden base of ``inputs``; installed now in the builder when missing."""
    cache = ImageCache(prov.conn)
    say = prov.report.lab
    found = cached(cache, inputs)
    if found is not None:
        say(f"golden base {inputs.name}: cached")
        remove_builder(prov, builder_node(prov.spec, inputs))  # a run killed after its copy
        return found
    with locked(lock_path(images_dir(), inputs.key())):  # one builder per base on this host
        found = cached(cache, inputs)
        if found is not None:
            say(f"golden base {inputs.name}: cached (another `oslab up` installed it)")
            return found
        start = time.monotonic()
        node = builder_node(prov.spec, inputs)
        disk = install_builder(prov, node)
        copy_into_cache(prov, cache, inputs, disk, start)
        remove_builder(prov, node)
        rebuilds.remember(inputs, images_dir())
        base = cached(cache, inputs)
        assert base is not None
        say(f"golden base {inputs.name}: installed and cached in "
            f"{time.monotonic() - start:.0f}s")
        return base


def install_builder(prov: Provisioner, node: Node) -> Any:
    """Run (or wait for) the builder's install; its installed system volume."""
    from oslab.virt.definitions import domain_name
    from oslab.virt.metadata import DomainPhase

    name = domain_name(prov.spec.name, node.name)
    dom = prov.objs.domain(name)
    if dom is not None and prov.meta(dom).spec != prov.spec.digest():
        prov.report.node(node.name, f"{name} was defined for another spec: installing again")
        remove_builder(prov, node)
        dom = None
    phase = "" if dom is None else prov.meta(dom).phase
    changed: list[str] = []
    if phase != DomainPhase.FINAL:
        media = prov.installer_media()
        if dom is None or (phase == DomainPhase.DEFINED and not dom.isActive()):
            vol = system_volume(node)
            if dom is not None:  # a builder never started: its disk may hold an old try
                prov.objs.remove_domain(name)
            _fresh_volume(prov, vol)
            with tempfile.TemporaryDirectory(prefix="oslab-golden-") as tmp:
                path = oemdrv_iso(builder_kickstart(prov.spec, node),
                                  Path(tmp) / oemdrv_volume_name(node))
                prov.objs.upload(oemdrv_volume_name(node), path, replace=True)
            dom = prov.conn.defineXML(prov.definition(node, media).xml())
            prov.report.node(node.name, f"defined {name} to install the golden base "
                                        f"({prov.virt_type}, {node.disk_gib} GiB disk)")
        prov.install(node, dom, prov.meta(dom).phase, media, changed,
                     then="its disk becomes the golden base")
    prov.changed += [f"golden base: {c}" for c in changed]
    return prov.objs.volume(system_volume(node).name)


def _fresh_volume(prov: Provisioner, vol: VolumeDef) -> None:
    old = prov.objs.volume(vol.name)
    if old is not None:
        old.delete(0)
    prov.objs.ensure_volume(vol)


def copy_into_cache(prov: Provisioner, cache: ImageCache, inputs: GoldenInputs, disk: Any,
                    start: float) -> None:
    """The builder's disk into the cache pool (libvirt copies it, qcow2 to qcow2), then the
    manifest, last."""
    pool = cache.ensure()
    pool.refresh(0)
    have = set(pool.listVolumes())
    for name in (disk_name(inputs), manifest_name(inputs)):
        if name in have:  # an interrupted copy
            pool.storageVolLookupByName(name).delete(0)
    prov.report.lab(f"golden base {inputs.name}: copying the installed disk into storage pool "
                    f"{cache.name}")
    pool.createXMLFrom(VolumeDef(disk_name(inputs), inputs.disk_gib * GIB).xml(), disk, 0)
    manifest = {"name": inputs.name, "key": inputs.key(),
                "inputs": {k: v for k, v in asdict(inputs).items() if k != "kickstart"},
                "kickstart_sha256": hashlib.sha256(inputs.kickstart.encode()).hexdigest(),
                "built_s": round(time.monotonic() - start, 1), "built_at": round(time.time())}
    with tempfile.TemporaryDirectory(prefix="oslab-golden-") as tmp:
        path = Path(tmp) / "manifest.json"
        path.write_text(json.dumps(manifest, indent=1) + "\n")
        vol = pool.createXML(VolumeDef(manifest_name(inputs), path.stat().st_size, "raw").xml(),
                             0)
        stream_into(prov.conn, vol, path)


def remove_builder(prov: Provisioner, node: Node) -> None:
    """The builder domain, its disks and the installer media: the base holds what they made."""
    from oslab.virt.definitions import (
        INSTALLER_INITRD,
        INSTALLER_ISO,
        INSTALLER_KERNEL,
        domain_name,
    )

    prov.objs.remove_domain(domain_name(prov.spec.name, node.name))
    for name in (system_volume(node).name, oemdrv_volume_name(node), INSTALLER_ISO,
                 INSTALLER_KERNEL, INSTALLER_INITRD):
        vol = prov.objs.volume(name)
        if vol is not None:
            vol.delete(0)

