"""`oslab check`: the host preflight.

Every check returns findings; a finding that is not OK says what is wrong and carries a hint
with the exact fix. ``root`` is the filesystem root the checks read ``/proc``, ``/sys``,
``/dev`` and ``/etc`` under, so the unit tests run them on a fake tree.

``/dev/kvm`` is judged from ``os.stat`` of ``<root>/dev/kvm``: its permission bits, owner
and group. The file type is deliberately not checked, so a regular file with the right mode
stands in for the character device in tests (``mknod`` needs root).

KVM or QEMU: the product rule is vmx (Intel VT-x) or svm (AMD-V) in ``/proc/cpuinfo``. KVM is
chosen only when, in addition, ``/dev/kvm`` is usable by libvirt's qemu user and libvirt's
domain capabilities offer kvm; otherwise the lab runs under qemu (TCG) and a WARN finding
says why and how to fix it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import libvirt

from oslab.metadata import NS as LAB_XMLNS
from oslab.metadata import LabMeta
from oslab.spec import LabSpec, Network, Node

GIB = 1 << 30
# Thin qcow2 disks start small, but a node still needs room to install and run.
MIN_FREE_GIB_PER_NODE = 5
# What qemu itself needs next to each guest's RAM (page tables, device emulation, TCG cache).
QEMU_OVERHEAD_MIB_PER_NODE = 256
# Debian's build of libvirt runs qemu as libvirt-qemu with the kvm group.
DEFAULT_QEMU_USER = "libvirt-qemu"
DEFAULT_QEMU_GROUP = "kvm"
RTF_UP = 0x0001

_VENDOR = {"vmx": ("Intel VT-x", "kvm_intel"), "svm": ("AMD-V", "kvm_amd")}


class Severity(StrEnum):
    OK = "ok"
    WARN = "warn"
    BLOCK = "block"


@dataclass(frozen=True)
class Finding:
    check: str
    severity: Severity
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class VirtChoice:
    virt_type: str  # "kvm" or "qemu"
    reasons: tuple[str, ...] = field(default=())


def blocking(findings: Iterable[Finding]) -> bool:
    """True when any finding stops the lab from being built."""
    return any(f.severity is Severity.BLOCK for f in findings)


def _read(root: Path, rel: str) -> str | None:
    try:
        return (root / rel).read_text(errors="replace")
    except OSError:
        return None


# -- KVM or QEMU --------------------------------------------------------------------------------


def cpu_virt_flag(root: Path = Path("/")) -> str | None:
    """``vmx`` or ``svm`` when ``/proc/cpuinfo`` lists it in a ``flags`` line, else None."""
    text = _read(root, "proc/cpuinfo") or ""
    flags: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            flags.update(value.split())
    for flag in ("vmx", "svm"):
        if flag in flags:
            return flag
    return None


def _cpu_is_virtual(root: Path) -> bool:
    """The ``hypervisor`` flag: this host is itself a virtual machine."""
    text = _read(root, "proc/cpuinfo") or ""
    return any(line.startswith("flags") and " hypervisor" in line for line in text.splitlines())


def qemu_identity(root: Path = Path("/")) -> tuple[str, str]:
    """The ``user`` and ``group`` libvirt runs qemu as (``/etc/libvirt/qemu.conf``)."""
    user, group = DEFAULT_QEMU_USER, DEFAULT_QEMU_GROUP
    text = _read(root, "etc/libvirt/qemu.conf") or ""
    for line in text.splitlines():
        m = re.match(r'^\s*(user|group)\s*=\s*"([^"]*)"', line)
        if m and m.group(2):
            if m.group(1) == "user":
                user = m.group(2)
            else:
                group = m.group(2)
    return user, group


@dataclass(frozen=True)
class _Accounts:
    """``/etc/passwd`` and ``/etc/group`` of the tree under ``root``."""

    uids: dict[str, int]
    primary_gids: dict[str, int]
    gids: dict[str, int]
    members: dict[int, set[str]]

    @classmethod
    def load(cls, root: Path) -> _Accounts:
        uids: dict[str, int] = {}
        primary: dict[str, int] = {}
        for fields in _colon_records(_read(root, "etc/passwd")):
            if len(fields) >= 4 and fields[2].isdigit() and fields[3].isdigit():
                uids[fields[0]] = int(fields[2])
                primary[fields[0]] = int(fields[3])
        gids: dict[str, int] = {}
        members: dict[int, set[str]] = {}
        for fields in _colon_records(_read(root, "etc/group")):
            if len(fields) >= 4 and fields[2].isdigit():
                gid = int(fields[2])
                gids[fields[0]] = gid
                members.setdefault(gid, set()).update(m for m in fields[3].split(",") if m)
        return cls(uids, primary, gids, members)

    def user(self, user: str) -> tuple[str, int] | None:
        """qemu.conf's ``user``: a name, ``+N`` for a uid, or a bare number (name first)."""
        if user in self.uids:
            return user, self.uids[user]
        number = user[1:] if user.startswith("+") else user
        if not number.isdigit():
            return None
        uid = int(number)
        return next((n for n, u in self.uids.items() if u == uid), number), uid

    def gid(self, group: str) -> int | None:
        if group in self.gids:
            return self.gids[group]
        number = group[1:] if group.startswith("+") else group
        return int(number) if number.isdigit() else None

    def group_name(self, gid: int) -> str:
        return next((name for name, g in self.gids.items() if g == gid), str(gid))

    def user_name(self, uid: int) -> str:
        return next((name for name, u in self.uids.items() if u == uid), str(uid))

    def groups_of(self, name: str, qemu_gid: int | None) -> set[int]:
        """The gids a qemu process started as ``name`` holds (libvirt calls initgroups)."""
        held = {g for g, names in self.members.items() if name in names}
        if name in self.primary_gids:
            held.add(self.primary_gids[name])
        if qemu_gid is not None:
            held.add(qemu_gid)
        return held


def _colon_records(text: str | None) -> Iterator[list[str]]:
    for line in (text or "").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            yield line.split(":")


def _rw(mode: int, who: str) -> bool:
    bits = {"owner": stat.S_IRUSR | stat.S_IWUSR, "group": stat.S_IRGRP | stat.S_IWGRP,
            "other": stat.S_IROTH | stat.S_IWOTH}[who]
    return mode & bits == bits


def _kvm_module_hint(flag: str) -> str:
    module = _VENDOR[flag][1]
    return f"load the kvm module: modprobe {module} (and check `dmesg | grep -i kvm` if it fails)"


def check_dev_kvm(root: Path, flag: str) -> str | Finding:
    """A description of why ``/dev/kvm`` is usable by the qemu user, or a WARN finding."""
    dev = root / "dev" / "kvm"
    try:
        st = dev.stat()
    except FileNotFoundError:
        return _warn_qemu("/dev/kvm does not exist (the kvm module is not loaded)",
                          _kvm_module_hint(flag))
    except OSError as exc:
        return _warn_qemu(f"cannot stat /dev/kvm: {exc.strerror}", _kvm_module_hint(flag))
    user, group = qemu_identity(root)
    accounts = _Accounts.load(root)
    who = accounts.user(user)
    if who is None:
        return _warn_qemu(
            f"libvirt's qemu user {user!r} does not exist on this host",
            "install libvirt-daemon-system (it creates the libvirt-qemu user), or set an "
            "existing user in /etc/libvirt/qemu.conf and restart libvirtd")
    name, uid = who
    held = accounts.groups_of(name, accounts.gid(group))
    mode = stat.S_IMODE(st.st_mode)
    dev_group = accounts.group_name(st.st_gid)
    if uid == st.st_uid:
        ok, via = _rw(mode, "owner"), "its owner"
    elif st.st_gid in held:
        ok, via = _rw(mode, "group"), f"a member of its group {dev_group}"
    else:
        ok, via = _rw(mode, "other"), "neither its owner nor in its group"
    if ok:
        return f"/dev/kvm ({stat.filemode(st.st_mode)[1:]}) is usable by qemu user {user}"
    return _warn_qemu(
        f"/dev/kvm ({stat.filemode(st.st_mode)[1:]} {accounts.user_name(st.st_uid)}:{dev_group}) "
        f"is not readable and writable by libvirt's qemu user {user} ({via})",
        _dev_kvm_fix(mode, st.st_gid, held, user, group, dev_group))


def _dev_kvm_fix(mode: int, dev_gid: int, held: set[int], user: str, group: str,
                 dev_group: str) -> str:
    persist = ("; make it last across reboots with the udev rule "
               f"KERNEL==\"kvm\", GROUP=\"{group}\", MODE=\"0660\" in "
               "/etc/udev/rules.d/65-kvm.rules")
    if dev_gid in held:  # right group, the group bits are missing
        return f"chmod 0660 /dev/kvm{persist}"
    if _rw(mode, "group"):  # group bits fine, qemu is not in the group
        return (f"usermod -aG {dev_group} {user}, then restart libvirtd "
                f"(or: chgrp {group} /dev/kvm{persist})")
    return f"chmod 0660 /dev/kvm; chgrp {group} /dev/kvm{persist}"


_QEMU = "using qemu (software emulation): "


def _warn_qemu(why: str, hint: str) -> Finding:
    return Finding("virt-type", Severity.WARN, _QEMU + why, hint)


def _why(finding: Finding) -> str:
    return finding.message.removeprefix(_QEMU)


def check_libvirt_kvm(conn: Any) -> str | Finding:
    """Whether libvirt's domain capabilities offer kvm for x86_64 guests."""
    try:
        conn.getDomainCapabilities(None, "x86_64", None, "kvm")
    except libvirt.libvirtError as exc:
        return _warn_qemu(
            f"libvirt does not offer kvm domains: {exc.get_error_message() or exc}",
            "after fixing /dev/kvm, restart libvirtd so it probes qemu again "
            "(systemctl restart libvirtd), then check `virsh domcapabilities --virttype kvm`")
    return "libvirt offers kvm domains"


def choose_virt_type(root: Path = Path("/"),
                     conn: Any | None = None) -> tuple[VirtChoice, list[Finding]]:
    """kvm when the CPU has vmx/svm, /dev/kvm is usable and libvirt offers kvm; else qemu."""
    flag = cpu_virt_flag(root)
    if flag is None:
        finding = _no_cpu_flag(root)
        choice = VirtChoice("qemu", (_why(finding),))
        return choice, [finding, _nested_under_qemu()]
    reasons = [f"the CPU has {flag} ({_VENDOR[flag][0]})"]
    problems: list[Finding] = []
    results = [check_dev_kvm(root, flag)]
    if conn is not None:
        results.append(check_libvirt_kvm(conn))
    for result in results:
        if isinstance(result, Finding):
            problems.append(result)
        else:
            reasons.append(result)
    if problems:
        choice = VirtChoice("qemu", tuple(_why(p) for p in problems))
        return choice, [*problems, _nested_under_qemu()]
    ok = Finding("virt-type", Severity.OK, "using kvm: " + "; ".join(reasons))
    return VirtChoice("kvm", tuple(reasons)), [ok, check_nested(root, flag)]


def _no_cpu_flag(root: Path) -> Finding:
    if _cpu_is_virtual(root):
        hint = ("this host is a virtual machine: enable nested virtualization on its "
                "hypervisor (e.g. on a KVM host: options kvm_intel nested=1, and give this VM "
                "<cpu mode='host-passthrough'/>)")
    else:
        hint = ("enable VT-x/AMD-V (Intel Virtualization Technology / SVM mode) in the "
                "firmware (BIOS/UEFI) setup, then reboot")
    return _warn_qemu("the CPU flags in /proc/cpuinfo show neither vmx nor svm", hint)


def _nested_under_qemu() -> Finding:
    return Finding(
        "nested", Severity.WARN,
        "the compute nodes will run instances under nested qemu emulation (slow, but it works)",
        "fix the virt-type findings above so the lab runs on kvm, then enable nested kvm "
        "(options kvm_intel nested=1 or options kvm_amd nested=1 in /etc/modprobe.d/kvm.conf)")


def check_nested(root: Path, flag: str) -> Finding:
    """Nested kvm, so the compute nodes (host-passthrough CPU) can run instances on kvm."""
    module = _VENDOR[flag][1]
    value = _read(root, f"sys/module/{module}/parameters/nested")
    fix = (f"echo 'options {module} nested=1' > /etc/modprobe.d/kvm-nested.conf, then with no "
           f"VMs running: modprobe -r {module} && modprobe {module}")
    if value is None:
        return Finding("nested", Severity.WARN,
                       f"cannot tell whether nested kvm is on: no "
                       f"/sys/module/{module}/parameters/nested", fix)
    if value.strip() in {"Y", "y", "1"}:
        return Finding("nested", Severity.OK,
                       f"nested kvm is on ({module}): compute nodes run instances on kvm")
    return Finding("nested", Severity.WARN,
                   f"nested kvm is off ({module} nested={value.strip()}): the compute nodes "
                   "will run instances under qemu emulation (slow)", fix)


# -- libvirtd, memory, disk ---------------------------------------------------------------------


def check_libvirtd(conn: Any | None, uri: str) -> Finding:
    if conn is None:
        return Finding(
            "libvirtd", Severity.BLOCK, f"libvirtd is not reachable at {uri}",
            "apt-get install libvirt-daemon-system; systemctl enable --now libvirtd; "
            "usermod -aG libvirt $USER (then log in again)")
    return Finding("libvirtd", Severity.OK, f"libvirtd answers at {uri}")


def mem_available_mib(root: Path = Path("/")) -> int | None:
    for line in (_read(root, "proc/meminfo") or "").splitlines():
        key, _, value = line.partition(":")
        if key == "MemAvailable":
            parts = value.split()
            if parts and parts[0].isdigit():
                return int(parts[0]) // 1024  # kB
    return None


def lab_domains(spec: LabSpec, conn: Any | None) -> dict[str, bool]:
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


def default_pool_dir(spec: LabSpec, root: Path = Path("/")) -> Path:
    if spec.pool_dir:
        return Path(spec.pool_dir).expanduser()
    return root / "var/lib/libvirt/images" / f"oslab-{spec.name}"


def check_disk(spec: LabSpec, pool_dir: Path, defined: Iterable[str] = ()) -> Finding:
    """Free space for the nodes not defined yet (BLOCK), and for the disks' full size (WARN)."""
    where = nearest_existing(pool_dir)
    try:
        st = os.statvfs(where)
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


def check_pool_dir(pool_dir: Path) -> Finding:
    fix_other = "or set lab.pool_dir in the lab spec to a directory you can write"
    if pool_dir.exists():
        if not pool_dir.is_dir():
            return Finding("pool-dir", Severity.BLOCK,
                           f"the pool path {pool_dir} exists but is not a directory",
                           f"remove or rename {pool_dir}, {fix_other}")
        if os.access(pool_dir, os.W_OK | os.X_OK):
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
    if os.access(parent, os.W_OK | os.X_OK):
        return Finding("pool-dir", Severity.OK,
                       f"the pool directory {pool_dir} will be created (in {parent})")
    return Finding("pool-dir", Severity.BLOCK,
                   f"cannot create the pool directory {pool_dir}: {parent} is not writable",
                   f"sudo install -d -o $USER {pool_dir}, {fix_other}")


# -- network clashes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HostRoute:
    iface: str
    network: ipaddress.IPv4Network


@dataclass(frozen=True)
class LibvirtNet:
    name: str
    active: bool
    bridge: str
    owner: str | None  # the oslab lab named in its metadata
    ranges: tuple[ipaddress.IPv4Network, ...]


def _le_hex_ip(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(text), "little"))


def host_routes(root: Path = Path("/")) -> list[HostRoute]:
    """The up IPv4 routes in ``/proc/net/route``, without the default route."""
    routes: list[HostRoute] = []
    for line in (_read(root, "proc/net/route") or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest, flags, mask = _le_hex_ip(fields[1]), int(fields[3], 16), _le_hex_ip(fields[7])
            net = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        except ValueError:
            continue
        if flags & RTF_UP and net.prefixlen > 0:
            routes.append(HostRoute(fields[0], net))
    return routes


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def lab_owner(root_el: ET.Element) -> str | None:
    """The lab name in ``<metadata><oslab:lab><name>`` of a libvirt object's XML."""
    meta = root_el.find("metadata")
    if meta is None:
        return None
    for lab in meta.findall(f"{{{LAB_XMLNS}}}lab"):
        for child in lab:
            if _local(child.tag) == "name" and child.text:
                return child.text.strip()
    return None


def parse_network_xml(xml: str, active: bool = True) -> LibvirtNet:
    el = ET.fromstring(xml)
    ranges: list[ipaddress.IPv4Network] = []
    for ip in el.findall("ip"):
        if ip.get("family", "ipv4") != "ipv4" or not ip.get("address"):
            continue
        size = ip.get("prefix") or ip.get("netmask") or "32"
        try:
            ranges.append(ipaddress.IPv4Network(f"{ip.get('address')}/{size}", strict=False))
        except ValueError:
            continue
    bridge = el.find("bridge")
    return LibvirtNet(name=el.findtext("name", ""), active=active,
                      bridge=bridge.get("name", "") if bridge is not None else "",
                      owner=lab_owner(el), ranges=tuple(ranges))


def libvirt_networks(conn: Any) -> list[LibvirtNet]:
    nets: list[LibvirtNet] = []
    for net in conn.listAllNetworks():
        try:
            nets.append(parse_network_xml(net.XMLDesc(0), bool(net.isActive())))
        except (libvirt.libvirtError, ET.ParseError):
            continue  # vanished while we looked, or unreadable: nothing to clash with
    return nets


def _candidates(prefixlen: int) -> Iterator[ipaddress.IPv4Network]:
    """Private ranges of the given size, ``10.x.0.0`` first."""
    seen: set[ipaddress.IPv4Network] = set()
    bases = [f"10.{x}.0.0" for x in range(256)] + [f"172.{x}.0.0" for x in range(16, 32)] \
        + [f"192.168.{x}.0" for x in range(256)]
    for base in bases:
        net = ipaddress.IPv4Network(f"{base}/{prefixlen}", strict=False)
        if net not in seen and net.is_private:
            seen.add(net)
            yield net


def free_range(prefixlen: int, taken: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network \
        | None:
    used = list(taken)
    return next((c for c in _candidates(prefixlen) if not any(c.overlaps(u) for u in used)),
                None)


def check_networks(spec: LabSpec, conn: Any | None, root: Path) -> list[Finding]:
    nets = libvirt_networks(conn) if conn is not None else []
    foreign = [n for n in nets if n.owner != spec.name]
    bridges = {n.bridge for n in nets if n.bridge}
    # Routes on libvirt bridges are the networks' own: the lab's are not clashes, and the
    # others are reported once, by network.
    routes = [r for r in host_routes(root) if r.iface not in bridges]
    taken = [r.network for r in routes] + [rng for n in foreign for rng in n.ranges] \
        + [n.cidr for n in spec.networks]
    findings: list[Finding] = []
    for lab_net in spec.networks:
        clashes = _clashes(lab_net, routes, foreign)
        if not clashes:
            findings.append(Finding(f"network-{lab_net.kind}", Severity.OK,
                                    f"{lab_net.kind} network {lab_net.cidr} is free"))
            continue
        move = _move_hint(lab_net, free_range(lab_net.cidr.prefixlen, taken))
        findings.extend(Finding(f"network-{lab_net.kind}", sev, msg, f"{move}; {other}")
                        for sev, msg, other in clashes)
    return findings


def _clashes(lab_net: Network, routes: list[HostRoute],
             foreign: list[LibvirtNet]) -> list[tuple[Severity, str, str]]:
    """(severity, what clashes, how to remove the other side) for each clash."""
    what = f"the lab's {lab_net.kind} network {lab_net.cidr}"
    out: list[tuple[Severity, str, str]] = []
    for route in routes:
        if route.network.overlaps(lab_net.cidr):
            out.append((Severity.BLOCK,
                        f"{what} clashes with the host route {route.network} dev {route.iface}",
                        f"or, if that route is not needed: ip route del {route.network} dev "
                        f"{route.iface}"))
    for net in foreign:
        for rng in net.ranges:
            if not rng.overlaps(lab_net.cidr):
                continue
            if net.active:
                out.append((Severity.BLOCK,
                            f"{what} clashes with the active libvirt network {net.name!r} "
                            f"({rng})",
                            f"or, if that network is not needed: virsh net-destroy {net.name}; "
                            f"virsh net-undefine {net.name}"))
            else:
                out.append((Severity.WARN,
                            f"{what} clashes with the inactive libvirt network {net.name!r} "
                            f"({rng}): the two cannot run at once",
                            f"or, if that network is not needed: virsh net-undefine {net.name}"))
    return out


def _move_hint(lab_net: Network, free: ipaddress.IPv4Network | None) -> str:
    key = f"networks.{lab_net.kind}.cidr"
    if free is None:
        hint = f"choose an unused private range for {key} in the lab TOML"
    else:
        hint = f"choose another range in the lab TOML, e.g. {key} = \"{free}\" (free here)"
    if lab_net.kind == "management":
        hint += ", and move the [[nodes]] addresses into it"
    return hint


# -- all of it ----------------------------------------------------------------------------------


def run_checks(spec: LabSpec, conn: Any | None, uri: str, root: Path = Path("/"),
               pool_dir: Path | None = None, stage: str = "all") -> list[Finding]:
    """Every host check for ``spec`` built up to ``stage``; see :func:`blocking`. `oslab check`
    and `oslab up` both run exactly this."""
    from oslab.labchecks import lab_findings  # it imports Finding from here

    pool = pool_dir if pool_dir is not None else default_pool_dir(spec, root)
    findings = [check_libvirtd(conn, uri)]
    findings.extend(choose_virt_type(root, conn)[1])
    domains = lab_domains(spec, conn)
    findings.append(check_memory(spec, root, running=[n for n, up in domains.items() if up]))
    findings.append(check_pool_dir(pool))
    findings.append(check_disk(spec, pool, defined=domains))
    findings.extend(check_networks(spec, conn, root))
    findings.extend(lab_findings(spec, stage, defined=domains, root=root))
    return findings


__all__ = ["Finding", "Severity", "VirtChoice", "blocking", "choose_virt_type", "run_checks"]
