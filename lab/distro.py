"""Distro and OpenStack release profiles: small registered classes.

A distro profile says where an installer ISO keeps its kernel and initrd, how to boot it
with a kickstart, which kickstart template renders it and how long an install may take.
``testlinux`` is the small Debian-built guest the test suite installs through the very same
path as CentOS (ISO, OEMDRV kickstart, install boot, power-off, boot from disk).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from oslab.spec import LabSpec


class Family(StrEnum):
    """What a distro's nodes are like inside: package manager, unit names and paths."""

    EL = "el"  # CentOS Stream / RHEL: dnf, rpm, httpd
    DEBIAN = "debian"  # Debian: apt, dpkg, apache2, uwsgi-run API services


class NodeOs(StrEnum):
    """How a node gets its operating system."""

    KICKSTART = "kickstart"  # an installer ISO reads a kickstart from the OEMDRV disk
    IMAGE = "image"  # a base image built on the host; a qcow2 overlay per node
    # ``lab.golden``: the installer installs one generalised base disk (cached); each node
    # is a qcow2 overlay on it that takes its identity from a NoCloud seed at first boot
    GOLDEN = "golden"

    @property
    def overlays(self) -> bool:
        """Nodes are overlays on a cached base, booted in their final shape from the start."""
        return self is not NodeOs.KICKSTART

    @property
    def uses_iso(self) -> bool:
        """An installer ISO is booted: on each node, or on the builder of a golden base."""
        return self is not NodeOs.IMAGE


# Every node kernel's console and timer arguments, on every boot (the install, the installed
# system, a Debian base's direct boot). Under TCG on a loaded host the kernel's check that the
# 8254 timer reaches the IO-APIC can miss its window ("MP-BIOS bug: 8254 timer not connected to
# IO-APIC") and the boot stops there; `no_timer_check` skips that check, as the RHEL and Debian
# cloud images do.
KERNEL_ARGS = "console=ttyS0,115200n8 no_timer_check"
# An installed node's boots also restart the node 10 s after a kernel panic instead of leaving it
# hung: multi-vCPU TCG can still catch the kernel patching its own code ("Oops: int3" in a
# static-key site, then "Fatal exception in interrupt"), seen at a compute node's cold boot on
# QEMU 10.0.2 under load. Not the install boot: its domain ends on a reboot, as on a power-off.
NODE_KERNEL_ARGS = f"{KERNEL_ARGS} panic=10"


class Distro:
    name: ClassVar[str]
    family: ClassVar[Family] = Family.EL
    node_os: ClassVar[NodeOs] = NodeOs.KICKSTART
    kickstart_template: ClassVar[str] = ""
    kernel_path: ClassVar[str] = "/images/pxeboot/vmlinuz"
    initrd_path: ClassVar[str] = "/images/pxeboot/initrd.img"
    install_timeout_s: ClassVar[int] = 3600
    # Lines on the serial console that mean the unattended install failed.
    install_failures: ClassVar[tuple[str, ...]] = (
        "Kickstart insufficient", "An unknown error has occurred",
        "Traceback (most recent call last)", "The installation was stopped",
    )

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        DISTROS[cls.name] = cls

    @classmethod
    def install_cmdline(cls, iso_label: str) -> str:
        """Kernel arguments for the unattended install: stage2 from the ISO, ks from OEMDRV."""
        return (f"inst.stage2=hd:LABEL={iso_label} inst.ks=hd:LABEL=OEMDRV:/ks.cfg "
                f"{KERNEL_ARGS} inst.text")


DISTROS: dict[str, type[Distro]] = {}


class CentOSStream9(Distro):
    name = "centos-stream9"
    kickstart_template = "centos-stream9.ks.j2"
    mirror = "http://mirror.stream.centos.org/9-stream"


class TestLinux(Distro):
    """The test suite's guest: a Debian kernel and busybox, installed by a kickstart-reading
    initrd through the same path as CentOS."""

    name = "testlinux"
    kickstart_template = "testlinux.ks.j2"
    install_timeout_s = 600
    install_failures = ("testlinux-install: FAILED",)


class Debian13(Distro):
    """Debian 13 ("trixie"), whose own archive ships OpenStack Epoxy. Nodes boot a base image
    built on the host with mmdebstrap (one per role, packages baked in unless
    ``[packages] bake = false``), as qcow2 overlays; their identity comes from a NoCloud seed."""

    name = "debian13"
    family = Family.DEBIAN
    node_os = NodeOs.IMAGE
    suite = "trixie"
    install_timeout_s = 0  # no installer runs inside the node


def node_os(spec: LabSpec) -> NodeOs:
    """How ``spec``'s nodes get their operating system."""
    return NodeOs.GOLDEN if spec.golden else DISTROS[spec.distro].node_os


class Release:
    """An OpenStack release profile: what RDO ships for it on the lab's distro."""

    name: ClassVar[str]
    version: ClassVar[str]
    rdo_release_package: ClassVar[str]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        RELEASES[cls.name] = cls


RELEASES: dict[str, type[Release]] = {}


class Epoxy(Release):
    name = "epoxy"
    version = "2025.1"
    rdo_release_package = "centos-release-openstack-epoxy"


def distro_for(name: str) -> type[Distro]:
    return DISTROS[name]


__all__ = ["DISTROS", "RELEASES", "Distro", "Family", "NodeOs", "Release", "distro_for", "node_os"]
