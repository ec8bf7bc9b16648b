"""The lab spec's model: frozen dataclasses and StrEnums, one lab and its nodes and networks.

spec_file reads a spec (TOML, or the built-in default) and validates it into these.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from oslab.errors import SpecError

# The lab name prefixes every libvirt object and the bridges ("<lab>-mgmt" must fit IFNAMSIZ 15).
LAB_NAME_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,8}[a-z0-9])?$")
LAB_NAME_HINT = ("use 1 to 10 lower-case letters, digits or '-', starting with a letter "
                 "(it prefixes bridge names, which are at most 15 bytes)")


def valid_lab_name(name: str) -> bool:
    """The one rule for a lab name, from a spec's lab.name or from --lab: the whole string
    (no trailing newline slips through ``$``), so it is safe as one path component."""
    return LAB_NAME_RE.fullmatch(name) is not None


MAX_PATH_CHARS = 1024
LOCAL_PATH_HINT = ("give the file's path: absolute, under ~/, or relative to the lab spec's "
                   "directory")


def local_path_problem(text: str) -> str:
    """Why ``text`` cannot name a file on this host ('' when it can). The one rule for the
    paths a spec names (iso.path, [verify] image) and for `verify --image`: one line of
    printable characters (so no NUL), and no ``~user`` (only ``~/``, your own home)."""
    if not text.strip():
        return "is empty"
    if len(text) > MAX_PATH_CHARS or not text.isprintable():
        return (f"is not a usable path (one line of at most {MAX_PATH_CHARS} printable "
                "characters)")
    if text.startswith("~") and text != "~" and not text.startswith("~/"):
        return "names another user's home; only ~/ (your own) is expanded"
    return ""


def local_path(text: str, base: Path) -> Path:
    """``text`` (see :func:`local_path_problem`) as a path on this host: ``~/`` is the user's
    home, and a relative path is taken from ``base``."""
    path = Path(text)
    if text == "~" or text.startswith("~/"):
        try:
            path = path.expanduser()
        except RuntimeError as exc:  # no $HOME and no passwd entry
            raise SpecError(f"{text!r}: cannot expand ~ ({exc})",
                            hint="set HOME, or write the full path") from exc
    return path if path.is_absolute() else base / path


class Role(StrEnum):
    CONTROLLER = "controller"
    COMPUTE = "compute"


class VirtType(StrEnum):
    """What a domain runs on (libvirt's ``<domain type>``, nova's ``[libvirt] virt_type``)."""

    KVM = "kvm"  # hardware virtualization through /dev/kvm
    QEMU = "qemu"  # software emulation (TCG)


class NetMode(StrEnum):
    NAT = "nat"
    ISOLATED = "isolated"


@dataclass(frozen=True)
class Network:
    """A libvirt network. ``kind`` is ``management`` or ``provider``."""

    kind: str
    cidr: ipaddress.IPv4Network
    mode: NetMode

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The host side of the bridge: the first address of the range."""
        return self.cidr.network_address + 1


@dataclass(frozen=True)
class Node:
    name: str
    role: Role
    address: ipaddress.IPv4Address
    memory_mib: int
    vcpus: int
    disk_gib: int
    extra_disks_gib: tuple[int, ...] = ()

    @property
    def is_compute(self) -> bool:
        return self.role is Role.COMPUTE


@dataclass(frozen=True)
class DownloadSource:
    """A local ``path``, or a ``url`` with its ``sha256`` (or ``sha256_url``: a CHECKSUM file)."""

    path: str = ""
    url: str = ""
    sha256: str = ""
    sha256_url: str = ""


class Scope(StrEnum):
    """How much of OpenStack the lab installs."""

    ALL = "all"  # the whole install guide
    IDENTITY = "identity"  # the environment, MariaDB, RabbitMQ, memcached, etcd and Keystone


class PackageSource(StrEnum):
    """Where Debian nodes get packages from."""

    MIRROR = "mirror"  # a Debian mirror, through the management network's NAT
    LOCAL = "local"  # a repository oslab builds on the host from packages the host fetched


@dataclass(frozen=True)
class Packages:
    """How Debian nodes get their packages (``[packages]``; CentOS labs use the RDO repos)."""

    mirror: str = ""  # "" means the Debian mirror in this host's apt sources
    source: PackageSource = PackageSource.MIRROR
    bake: bool = True  # install each role's packages into its base image on the host


@dataclass(frozen=True)
class VerifySettings:
    """``[verify]``: ``image`` is a local instance image to boot instead of cirros."""

    image: str = ""


@dataclass(frozen=True)
class LabSpec:
    name: str
    distro: str
    release: str
    iso: DownloadSource
    management: Network
    provider: Network
    nodes: tuple[Node, ...]
    timezone: str = "UTC"
    pool_dir: str = ""
    install_timeout_s: int = 0
    boot_timeout_s: int = 600
    scope: Scope = Scope.ALL
    # kickstart distros: install one generalised base disk, cached, and make every node a
    # qcow2 overlay on it that takes its identity from a NoCloud seed at first boot
    golden: bool = False
    # a lab made from another lab's save under a new name keeps that lab's MAC addresses
    # (its nodes' disks and the install steps' NIC checks name them): the name they come from
    macs_from: str = ""
    packages: Packages = Packages()
    verify: VerifySettings = VerifySettings()
    source: str = field(default="<built-in default>", compare=False)

    @property
    def directory(self) -> Path:
        """Where the spec's relative paths start: its file's directory (the current directory
        for the built-in spec)."""
        return Path.cwd() if self.source.startswith("<") else Path(self.source).absolute().parent

    def local_path(self, text: str) -> Path:
        """A path this spec names (iso.path, [verify] image) on this host: one rule for
        `check`, `up` and `verify`."""
        return local_path(text, self.directory)

    @property
    def installer_iso(self) -> DownloadSource:
        """``iso`` with its path (if any) as a path on this host (see :meth:`local_path`)."""
        if not self.iso.path:
            return self.iso
        return replace(self.iso, path=str(self.local_path(self.iso.path)))

    @property
    def networks(self) -> tuple[Network, Network]:
        return (self.management, self.provider)

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes)
        raise SpecError(f"lab {self.name!r} has no node {name!r}", hint=f"nodes are: {known}")

    @property
    def controller(self) -> Node:
        return next(n for n in self.nodes if n.role is Role.CONTROLLER)

    def digest(self) -> str:
        """A short hash of everything that shapes the libvirt objects (stored in their metadata)."""
        data = asdict(self)
        data.pop("source")
        if not data["golden"]:
            del data["golden"]  # the digests of labs made before the key existed
        if not data["macs_from"]:
            del data["macs_from"]
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def mac(self, node: Node, nic: int) -> str:
        """A fixed, locally administered MAC per lab, node and NIC (qemu's 52:54:00 prefix)."""
        h = hashlib.sha256(f"{self.macs_from or self.name}/{node.name}/{nic}".encode()).digest()
        return "52:54:00:{:02x}:{:02x}:{:02x}".format(*h[:3])

