"""Small frozen definitions of the lab's libvirt objects, rendered through jinja2 templates.

The plan turns a spec into these; ``xml()`` gives the XML libvirt receives. A domain has two
shapes: install-time (direct kernel boot of the installer, the ISO and the OEMDRV kickstart disk)
and final (boot from disk, no installer media).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from oslab.distro import distro_for
from oslab.networks import network_name
from oslab.spec import LabSpec, Node, VirtType
from oslab.virt.metadata import DomainPhase, LabMeta

_env = Environment(loader=PackageLoader("oslab.virt", "templates"), undefined=StrictUndefined,
                   autoescape=True, keep_trailing_newline=True)

GIB = 1 << 30
INSTALLER_ISO = "installer.iso"
INSTALLER_KERNEL = "installer-vmlinuz"
INSTALLER_INITRD = "installer-initrd.img"
POOL_MARKER = ".oslab-pool"


def domain_name(lab: str, node: str) -> str:
    return f"{lab}-{node}"


def pool_dir(spec: LabSpec) -> Path:
    """The directory of the lab's storage pool: where `oslab check` looks and `oslab up` creates
    it. The spec refuses a ``pool_dir`` that is not absolute (``~`` too), so it is used as is."""
    if spec.pool_dir:
        return Path(spec.pool_dir)
    return Path("/var/lib/libvirt/images") / f"oslab-{spec.name}"


@dataclass(frozen=True)
class PoolDef:
    name: str
    path: Path

    def xml(self) -> str:
        return _env.get_template("pool.xml.j2").render(pool=self)


@dataclass(frozen=True)
class VolumeDef:
    name: str
    capacity: int  # bytes
    format: str = "qcow2"
    backing: str = ""  # path of a qcow2 base: this volume is an overlay on it

    def xml(self) -> str:
        return _env.get_template("volume.xml.j2").render(vol=self)


@dataclass(frozen=True)
class Disk:
    volume: str
    target: str


@dataclass(frozen=True)
class Nic:
    mac: str
    network: str


@dataclass(frozen=True)
class InstallMedia:
    kernel: str  # paths of the pool's volumes
    initrd: str
    cmdline: str
    cdroms: tuple[Disk, ...]


@dataclass(frozen=True)
class ImageBoot:
    """Direct kernel boot of a base image's kernel and initrd (paths of cache-pool volumes),
    the system disk an overlay on the base, and the node's NoCloud seed as a cdrom."""

    kernel: str
    initrd: str
    cmdline: str
    cdroms: tuple[Disk, ...]


@dataclass(frozen=True)
class DomainDef:
    name: str
    virt_type: VirtType
    memory_mib: int
    vcpus: int
    pool: str
    disks: tuple[Disk, ...]
    nics: tuple[Nic, ...]
    console_log: str
    meta: LabMeta
    install: InstallMedia | None = None
    image: ImageBoot | None = None
    uuid: str = ""  # set when redefining an existing domain

    def xml(self) -> str:
        return _env.get_template("domain.xml.j2").render(dom=self, metadata=Markup(self.meta.xml()))

    def final(self) -> DomainDef:
        """The same machine booting from its disk, without the installer media."""
        return replace(self, install=None, meta=self.meta.with_phase(DomainPhase.FINAL))

    def redefinition(self, uuid: str, phase: DomainPhase) -> DomainDef:
        """This definition for the existing domain ``uuid``, in ``phase``."""
        return replace(self, uuid=uuid, meta=self.meta.with_phase(phase))


def system_volume(node: Node) -> VolumeDef:
    return VolumeDef(f"{node.name}-system.qcow2", node.disk_gib * GIB)


def extra_volumes(node: Node) -> tuple[VolumeDef, ...]:
    return tuple(VolumeDef(f"{node.name}-disk{i}.qcow2", size * GIB)
                 for i, size in enumerate(node.extra_disks_gib, start=1))


def oemdrv_volume_name(node: Node) -> str:
    return f"{node.name}-oemdrv.iso"


def node_volumes(node: Node) -> tuple[VolumeDef, ...]:
    return (system_volume(node), *extra_volumes(node))


def seed_volume_name(node: Node) -> str:
    return f"{node.name}-seed.iso"


def image_domain_def(spec: LabSpec, node: Node, *, virt_type: VirtType, console_log: Path,
                     kernel: str, initrd: str, cmdline: str) -> DomainDef:
    """``node`` booting a base image: its final shape from the start (phase ``final``)."""
    base = domain_def(spec, node, virt_type=virt_type, console_log=console_log, kernel="",
                      initrd="", iso_label="")
    boot = ImageBoot(kernel=kernel, initrd=initrd, cmdline=cmdline,
                     cdroms=(Disk(seed_volume_name(node), "sda"),))
    return replace(base.final(), image=boot)


def domain_def(spec: LabSpec, node: Node, *, virt_type: VirtType, console_log: Path,
               kernel: str, initrd: str, iso_label: str) -> DomainDef:
    """The install-time definition of ``node``; ``.final()`` gives the boot-from-disk one."""
    vols = node_volumes(node)
    distro = distro_for(spec.distro)
    return DomainDef(
        name=domain_name(spec.name, node.name),
        virt_type=virt_type,
        memory_mib=node.memory_mib,
        vcpus=node.vcpus,
        pool=spec.name,
        disks=tuple(Disk(v.name, f"vd{chr(ord('a') + i)}") for i, v in enumerate(vols)),
        nics=(Nic(spec.mac(node, 0), network_name(spec.name, "management")),
              Nic(spec.mac(node, 1), network_name(spec.name, "provider"))),
        console_log=str(console_log),
        meta=LabMeta(lab=spec.name, kind="domain", role=node.role.value, spec=spec.digest(),
                     node=node.name, address=str(node.address),
                     phase=DomainPhase.DEFINED),
        install=InstallMedia(
            kernel=kernel, initrd=initrd, cmdline=distro.install_cmdline(iso_label),
            cdroms=(Disk(INSTALLER_ISO, "sda"), Disk(oemdrv_volume_name(node), "sdb")),
        ),
    )
