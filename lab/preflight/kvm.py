"""KVM or QEMU: which virt type the lab's domains get, and whether nested kvm is on.

``/dev/kvm`` is judged from ``os.stat`` of ``<root>/dev/kvm``: its permission bits, owner
and group. The file type is deliberately not checked, so a regular file with the right mode
stands in for the character device in tests (``mknod`` needs root).

KVM or QEMU: the product rule is vmx (Intel VT-x) or svm (AMD-V) in ``/proc/cpuinfo``. KVM is
chosen only when, in addition, ``/dev/kvm`` is usable by libvirt's qemu user and libvirt's
domain capabilities offer kvm; otherwise the lab runs under qemu (TCG) and a WARN finding
says why and how to fix it.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import libvirt

from oslab.preflight.findings import Finding, Severity, read_text
from oslab.spec import VirtType
from oslab.virt.handles import Connection

# Debian's build of libvirt runs qemu as libvirt-qemu with the kvm group.
DEFAULT_QEMU_USER = "libvirt-qemu"
DEFAULT_QEMU_GROUP = "kvm"

_VENDOR = {"vmx": ("Intel VT-x", "kvm_intel"), "svm": ("AMD-V", "kvm_amd")}


@dataclass(frozen=True)
class VirtChoice:
    virt_type: VirtType
    reasons: tuple[str, ...] = field(default=())


def cpu_virt_flag(root: Path = Path("/")) -> str | None:
    """``vmx`` or ``svm`` when ``/proc/cpuinfo`` lists it in a ``flags`` line, else None."""
    text = read_text(root, "proc/cpuinfo") or ""
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
    text = read_text(root, "proc/cpuinfo") or ""
    return any(line.startswith("flags") and " hypervisor" in line for line in text.splitlines())


def qemu_identity(root: Path = Path("/")) -> tuple[str, str]:
    """The ``user`` and ``group`` libvirt runs qemu as (``/etc/libvirt/qemu.conf``)."""
    user, group = DEFAULT_QEMU_USER, DEFAULT_QEMU_GROUP
    text = read_text(root, "etc/libvirt/qemu.conf") or ""
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
        for fields in _colon_records(read_text(root, "etc/passwd")):
            if len(fields) >= 4 and fields[2].isdigit() and fields[3].isdigit():
                uids[fields[0]] = int(fields[2])
                primary[fields[0]] = int(fields[3])
        gids: dict[str, int] = {}
        members: dict[int, set[str]] = {}
        for fields in _colon_records(read_text(root, "etc/group")):
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


def check_libvirt_kvm(conn: Connection) -> str | Finding:
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
                     conn: Connection | None = None) -> tuple[VirtChoice, list[Finding]]:
    """kvm when the CPU has vmx/svm, /dev/kvm is usable and libvirt offers kvm; else qemu."""
    flag = cpu_virt_flag(root)
    if flag is None:
        finding = _no_cpu_flag(root)
        choice = VirtChoice(VirtType.QEMU, (_why(finding),))
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
        choice = VirtChoice(VirtType.QEMU, tuple(_why(p) for p in problems))
        return choice, [*problems, _nested_under_qemu()]
    ok = Finding("virt-type", Severity.OK, "using kvm: " + "; ".join(reasons))
    return VirtChoice(VirtType.KVM, tuple(reasons)), [ok, check_nested(root, flag)]


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
    value = read_text(root, f"sys/module/{module}/parameters/nested")
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
