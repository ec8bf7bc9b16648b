"""oslab.preflight on fake /proc, /sys, /dev and /etc trees in tmp_path.

``/dev/kvm`` is a regular file here: preflight judges it by ``stat`` (mode, owner, group)
through ``root``, so a plain file with the mode under test stands in for the character device
(``mknod`` would need root). Its owner and group are whoever runs the tests; the fake
``/etc/passwd`` and ``/etc/group`` name those ids as the scenario needs.

libvirt is the test driver: ``test:///<file>.xml`` with networks and domains defined per test.
"""

from __future__ import annotations

import io
import ipaddress
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import libvirt
import pytest

from oslab import preflight
from oslab.access.state import LabState
from oslab.images.nodes import Bake
from oslab.preflight import Finding, Severity, kvm, network_clashes, resources, tcg
from oslab.provisioning.provisioner import Provisioner
from oslab.report import Reporter
from oslab.spec import LabSpec, VirtType
from oslab.spec_file import parse
from oslab.virt.definitions import pool_dir

QEMU_UID = 64055
QEMU_PRIMARY_GID = 64055


def spec_text(name: str = "oslab", controller_mib: int = 6144, compute_mib: int = 4096,
              management: str = "10.0.0.0/24", provider: str = "203.0.113.0/24") -> str:
    net = ipaddress.IPv4Network(management)
    return f"""
[lab]
name = "{name}"
[iso]
path = "/srv/boot.iso"
[networks.management]
cidr = "{management}"
[networks.provider]
cidr = "{provider}"
[[nodes]]
name = "controller"
role = "controller"
address = "{net.network_address + 11}"
memory_mib = {controller_mib}
vcpus = 2
disk_gib = 40
extra_disks_gib = [20]
[[nodes]]
name = "compute1"
role = "compute"
address = "{net.network_address + 31}"
memory_mib = {compute_mib}
vcpus = 2
disk_gib = 40
"""


def make_spec(**kwargs: Any) -> LabSpec:
    return parse(spec_text(**kwargs))


def hexle(addr: str) -> str:
    return ipaddress.IPv4Address(addr).packed[::-1].hex().upper()


def route_line(iface: str, cidr: str, gateway: str = "0.0.0.0", flags: int = 1) -> str:
    net = ipaddress.IPv4Network(cidr)
    return (f"{iface}\t{hexle(str(net.network_address))}\t{hexle(gateway)}\t{flags:04X}\t0\t0"
            f"\t0\t{hexle(str(net.netmask))}\t0\t0\t0")


ROUTE_HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"


@dataclass
class FakeHost:
    root: Path

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def cpu(self, flags: str) -> None:
        self.write("proc/cpuinfo", "".join(
            f"processor\t: {i}\nvendor_id\t: Fake\nflags\t\t: {flags}\n\n" for i in range(2)))

    def dev_kvm(self, mode: int, *, group: str = "kvm", qemu_in_group: bool = True,
                owner: str = "root") -> Path:
        """/dev/kvm with ``mode``, its group named ``group``; ``kvm`` is always a group."""
        dev = self.write("dev/kvm", "")
        os.chmod(dev, mode)
        st = dev.stat()
        self.write("etc/passwd",
                   f"{owner}:x:{st.st_uid}:{st.st_gid}::/root:/bin/sh\n"
                   f"libvirt-qemu:x:{QEMU_UID}:{QEMU_PRIMARY_GID}:Libvirt Qemu:/:/bin/false\n")
        members = "libvirt-qemu" if qemu_in_group else ""
        groups = [f"{group}:x:{st.st_gid}:{members}", f"libvirt-qemu:x:{QEMU_PRIMARY_GID}:"]
        if group != "kvm":
            groups.append(f"kvm:x:{st.st_gid + 5000}:")
        self.write("etc/group", "\n".join(groups) + "\n")
        return dev

    def nested(self, module: str, value: str) -> None:
        self.write(f"sys/module/{module}/parameters/nested", value + "\n")

    def meminfo(self, available_mib: int) -> None:
        self.write("proc/meminfo", f"MemTotal:       {available_mib * 2048} kB\n"
                                   f"MemFree:        1000 kB\n"
                                   f"MemAvailable:   {available_mib * 1024} kB\n")

    def routes(self, *lines: str) -> None:
        self.write("proc/net/route", "\n".join([ROUTE_HEADER, *lines]) + "\n")


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    h = FakeHost(tmp_path / "root")
    h.cpu("fpu vme vmx sse2")
    h.dev_kvm(0o660)
    h.nested("kvm_intel", "Y")
    h.meminfo(64 * 1024)
    h.routes(route_line("eth0", "0.0.0.0/0", "192.0.2.1", 3),
             route_line("eth0", "192.0.2.0/24"))
    return h


def by_check(findings: list[Finding], check: str) -> list[Finding]:
    return [f for f in findings if f.check == check]


def only(findings: list[Finding], check: str) -> Finding:
    found = by_check(findings, check)
    assert len(found) == 1, found
    return found[0]


# -- libvirt test driver ------------------------------------------------------------------------

LAB_META = ('<metadata><oslab:lab xmlns:oslab="https://oslab.dev/xmlns/lab/1">'
            '<oslab:name>{lab}</oslab:name><oslab:kind>{kind}</oslab:kind>{extra}'
            '</oslab:lab></metadata>')


def net_xml(name: str, address: str, netmask: str = "", prefix: str = "", lab: str = "",
            bridge: str = "") -> str:
    meta = LAB_META.format(lab=lab, kind="network", extra="") if lab else ""
    size = f"netmask='{netmask}'" if netmask else f"prefix='{prefix}'"
    return (f"<network><name>{name}</name>{meta}<bridge name='{bridge or name}'/>"
            f"<ip address='{address}' {size}/></network>")


def dom_xml(name: str, node: str, lab: str, memory_mib: int) -> str:
    meta = LAB_META.format(lab=lab, kind="domain", extra=f"<oslab:node>{node}</oslab:node>")
    return (f"<domain type='test'><name>{name}</name>{meta}"
            f"<memory unit='MiB'>{memory_mib}</memory><os><type>hvm</type></os></domain>")


@pytest.fixture
def test_conn(tmp_path: Path) -> Iterator[Any]:
    """A function that opens the libvirt test driver on a node XML built from parts."""
    opened: list[Any] = []

    def open_with(*parts: str) -> Any:
        path = tmp_path / f"libvirt-{len(opened)}.xml"
        path.write_text("<node>" + "".join(parts) + "</node>")
        conn = libvirt.open(f"test://{path}")
        opened.append(conn)
        return conn

    yield open_with
    for conn in opened:
        conn.close()


# -- kvm or qemu --------------------------------------------------------------------------------


def test_kvm_when_all_hold(host: FakeHost) -> None:
    choice, findings = kvm.choose_virt_type(host.root)
    assert choice.virt_type == "kvm"
    assert any("vmx" in r for r in choice.reasons)
    assert only(findings, "virt-type").severity is Severity.OK
    assert only(findings, "nested").severity is Severity.OK


def test_no_vmx_picks_qemu(host: FakeHost) -> None:
    host.cpu("fpu vme sse2 hypervisor")
    choice, findings = kvm.choose_virt_type(host.root)
    assert choice.virt_type == "qemu"
    warn = only(findings, "virt-type")
    assert warn.severity is Severity.WARN
    assert "neither vmx nor svm" in warn.message
    assert warn.hint is not None and "nested" in warn.hint  # we are a VM: fix the outer host
    nested = only(findings, "nested")
    assert "nested qemu emulation" in nested.message


def test_no_vmx_on_bare_metal_hints_firmware(host: FakeHost) -> None:
    host.cpu("fpu vme sse2")
    _, findings = kvm.choose_virt_type(host.root)
    hint = only(findings, "virt-type").hint
    assert hint is not None and "VT-x/AMD-V" in hint and "firmware" in hint


def test_svm_uses_kvm_amd_and_warns_without_nested(host: FakeHost) -> None:
    host.cpu("fpu svm sse2")
    host.nested("kvm_amd", "0")
    choice, findings = kvm.choose_virt_type(host.root)
    assert choice.virt_type == "kvm"
    assert any("AMD-V" in r for r in choice.reasons)
    nested = only(findings, "nested")
    assert nested.severity is Severity.WARN
    assert nested.hint is not None and "options kvm_amd nested=1" in nested.hint
    assert "/etc/modprobe.d" in nested.hint


def test_vmx_nested_off(host: FakeHost) -> None:
    host.nested("kvm_intel", "N")
    _, findings = kvm.choose_virt_type(host.root)
    nested = only(findings, "nested")
    assert nested.severity is Severity.WARN
    assert nested.hint is not None and "options kvm_intel nested=1" in nested.hint


def test_dev_kvm_root_only_picks_qemu(host: FakeHost) -> None:
    """The CI machine: /dev/kvm crw------- root:root."""
    host.dev_kvm(0o600, group="root", qemu_in_group=False)
    choice, findings = kvm.choose_virt_type(host.root)
    assert choice.virt_type == "qemu"
    warn = only(findings, "virt-type")
    assert "/dev/kvm (rw-------" in warn.message
    assert "libvirt-qemu" in warn.message
    assert warn.hint is not None and "chmod 0660 /dev/kvm; chgrp kvm /dev/kvm" in warn.hint


def test_dev_kvm_group_ok_but_qemu_not_member(host: FakeHost) -> None:
    host.dev_kvm(0o660, group="kvm", qemu_in_group=False)
    host.write("etc/libvirt/qemu.conf", '#user = "nobody"\nuser = "libvirt-qemu"\n'
                                        'group = "libvirt-qemu"\n')
    choice, findings = kvm.choose_virt_type(host.root)
    assert choice.virt_type == "qemu"
    hint = only(findings, "virt-type").hint
    assert hint is not None and "usermod -aG kvm libvirt-qemu" in hint


def test_dev_kvm_world_rw_is_fine(host: FakeHost) -> None:
    host.dev_kvm(0o666, group="root", qemu_in_group=False)
    choice, _ = kvm.choose_virt_type(host.root)
    assert choice.virt_type == "kvm"


def test_qemu_conf_user_owning_the_device(host: FakeHost) -> None:
    host.dev_kvm(0o600, group="root", qemu_in_group=False, owner="qemu")
    host.write("etc/libvirt/qemu.conf", 'user = "qemu"\ngroup = "qemu"\n')
    choice, _ = kvm.choose_virt_type(host.root)
    assert choice.virt_type == "kvm"


def test_dev_kvm_missing(host: FakeHost) -> None:
    (host.root / "dev" / "kvm").unlink()
    choice, findings = kvm.choose_virt_type(host.root)
    assert choice.virt_type == "qemu"
    hint = only(findings, "virt-type").hint
    assert hint is not None and "modprobe kvm_intel" in hint


def test_libvirt_without_kvm_domains_picks_qemu(host: FakeHost) -> None:
    class Conn:  # libvirt's qemu driver on a host whose qemu cannot use /dev/kvm
        def getDomainCapabilities(self, *args: object) -> str:
            raise libvirt.libvirtError("invalid argument: KVM is not supported by "
                                       "'/usr/bin/qemu-system-x86_64' on this host")

    choice, findings = kvm.choose_virt_type(host.root, Conn())
    assert choice.virt_type == "qemu"
    warn = only(findings, "virt-type")
    assert "libvirt does not offer kvm" in warn.message
    assert warn.hint is not None and "virsh domcapabilities --virttype kvm" in warn.hint


def test_libvirt_offering_kvm(host: FakeHost) -> None:
    class Conn:
        def getDomainCapabilities(self, *args: object) -> str:
            assert args == (None, "x86_64", None, "kvm")
            return "<domainCapabilities><domain>kvm</domain></domainCapabilities>"

    choice, _ = kvm.choose_virt_type(host.root, Conn())
    assert choice.virt_type == "kvm"
    assert "libvirt offers kvm domains" in choice.reasons


def test_this_machine_rule() -> None:
    """On the real host the rule must agree with its facts."""
    choice, _ = kvm.choose_virt_type(Path("/"))
    if kvm.cpu_virt_flag(Path("/")) is None:
        assert choice.virt_type == "qemu"


# -- multi-vCPU TCG on a QEMU that races live code patching (issue 21) --------------------------


class QemuConn:
    """What the two calls of ``tcg.qemu_version`` return on a real qemu:///system."""

    def __init__(self, version: int) -> None:
        self.version = version

    def getType(self) -> str:
        return "QEMU"

    def getVersion(self) -> int:
        return self.version


@pytest.mark.parametrize(("virt", "vcpus", "libvirt_version", "severity", "named"), [
    (VirtType.QEMU, (2, 2), 7_002_022, Severity.WARN, "controller, compute1"),  # Debian 12
    (VirtType.QEMU, (1, 2), 7_002_022, Severity.WARN, "compute1"),
    (VirtType.QEMU, (2, 2), 8_000_004, Severity.WARN, "controller, compute1"),
    (VirtType.QEMU, (2, 2), 8_001_000, Severity.OK, None),   # the fix's release
    (VirtType.QEMU, (2, 2), 10_000_002, Severity.OK, None),  # bookworm-backports
    (VirtType.QEMU, (1, 1), 7_002_022, None, None),          # one vCPU each: no race
    (VirtType.KVM, (2, 2), 7_002_022, None, None),           # no TCG
    (VirtType.QEMU, (2, 2), None, None, None),               # QEMU's version unknown
])
def test_multi_vcpu_tcg_on_an_old_qemu_warns(virt: VirtType, vcpus: tuple[int, int],
                                             libvirt_version: int | None,
                                             severity: Severity | None,
                                             named: str | None) -> None:
    spec = make_spec()
    nodes = [replace(n, vcpus=v) for n, v in zip(spec.nodes, vcpus, strict=True)]
    conn = QemuConn(libvirt_version) if libvirt_version is not None else None
    finding = tcg.check_tcg_patching(nodes, virt, tcg.qemu_version(conn))
    if severity is None:
        assert finding is None
        return
    assert finding is not None and finding.severity is severity
    if named is not None:
        assert f"runs {named} with several vCPUs" in finding.message
        assert finding.hint is not None and "bookworm-backports" in finding.hint
        assert "vcpus = 1" in finding.hint


def test_qemu_version_is_none_for_a_driver_that_is_not_qemu(test_conn: Any) -> None:
    assert tcg.qemu_version(test_conn()) is None  # the test driver: type "TEST"
    assert tcg.qemu_version(QemuConn(7_002_022)) == (7, 2)


# -- libvirtd, memory, disk, pool dir -------------------------------------------------------------


def test_libvirtd_unreachable_blocks(host: FakeHost, tmp_path: Path) -> None:
    findings = preflight.run_checks(make_spec(), None, "qemu:///system", host.root,
                                    pool_dir=tmp_path / "pool").findings
    libvirtd = only(findings, "libvirtd")
    assert libvirtd.severity is Severity.BLOCK
    assert "qemu:///system" in libvirtd.message
    assert libvirtd.hint is not None and "libvirt-daemon-system" in libvirtd.hint
    assert preflight.blocking(findings)


def test_all_fine(host: FakeHost, tmp_path: Path, test_conn: Any) -> None:
    host.write("srv/boot.iso", "an ISO")
    checked = preflight.run_checks(make_spec(), test_conn(), "test:///x", host.root,
                                   pool_dir=tmp_path / "pool")
    findings = checked.findings
    # the virt type is chosen once, by the check, and `up` provisions with it
    assert checked.virt == preflight.choose_virt_type(host.root, test_conn())[0]
    assert not preflight.blocking(findings), findings
    for check in ("libvirtd", "memory", "pool-dir", "network-management", "network-provider"):
        assert only(findings, check).severity is Severity.OK
    for f in findings:
        if f.severity is not Severity.OK:
            assert f.hint, f


def test_ram_too_small_blocks(host: FakeHost) -> None:
    host.meminfo(8000)
    finding = resources.check_memory(make_spec(), host.root)
    assert finding.severity is Severity.BLOCK
    assert "10240 MiB" in finding.message and "8000 MiB" in finding.message
    assert finding.hint is not None and "memory_mib" in finding.hint
    assert "2240 MiB" in finding.hint


def test_ram_tight_warns(host: FakeHost) -> None:
    host.meminfo(10300)
    assert resources.check_memory(make_spec(), host.root).severity is Severity.WARN
    host.meminfo(16000)
    assert resources.check_memory(make_spec(), host.root).severity is Severity.OK


def test_running_lab_nodes_are_not_counted_again(host: FakeHost, tmp_path: Path,
                                                 test_conn: Any) -> None:
    host.meminfo(5000)  # enough for compute1 (4096), not for both
    conn = test_conn(dom_xml("oslab-controller", "controller", "oslab", 6144),
                     dom_xml("other-controller", "compute1", "other", 4096))
    assert resources.lab_domains(make_spec(), conn) == {"controller": True}
    findings = preflight.run_checks(make_spec(), conn, "test:///x", host.root,
                                    pool_dir=tmp_path / "pool").findings
    memory = only(findings, "memory")
    assert memory.severity is not Severity.BLOCK
    assert "4096 MiB" in memory.message


def test_meminfo_unreadable_warns(host: FakeHost) -> None:
    (host.root / "proc" / "meminfo").unlink()
    finding = resources.check_memory(make_spec(), host.root)
    assert finding.severity is Severity.WARN and finding.hint


def _statvfs(free_gib: float) -> os.statvfs_result:
    frsize = 4096
    blocks = int(free_gib * (1 << 30)) // frsize
    return os.statvfs_result((frsize, frsize, blocks * 2, blocks, blocks, 0, 0, 0, 0, 255))


@pytest.mark.parametrize(("free_gib", "severity"), [
    (9.0, Severity.BLOCK),    # less than 5 GiB x 2 nodes
    (50.0, Severity.WARN),    # the 100 GiB of thin disks do not fit
    (500.0, Severity.OK),
])
def test_disk(tmp_path: Path, free_gib: float, severity: Severity) -> None:
    asked: list[str] = []

    def fake_statvfs(path: os.PathLike[str] | str) -> os.statvfs_result:
        asked.append(os.fspath(path))
        return _statvfs(free_gib)

    finding = resources.check_disk(make_spec(), tmp_path / "not" / "yet" / "pool",
                                   statvfs=fake_statvfs)
    assert finding.severity is severity
    assert asked == [str(tmp_path)]  # the nearest existing parent
    if severity is not Severity.OK:
        assert finding.hint is not None and "lab.pool_dir" in finding.hint


def test_disk_counts_only_new_nodes_for_the_minimum(tmp_path: Path) -> None:
    def statvfs(path: Path) -> os.statvfs_result:
        return _statvfs(7.0)

    spec = make_spec()
    assert resources.check_disk(spec, tmp_path, statvfs=statvfs).severity is Severity.BLOCK
    defined = ["controller"]
    assert resources.check_disk(spec, tmp_path, defined,
                                statvfs=statvfs).severity is Severity.WARN


def test_pool_dir_writable_or_creatable(tmp_path: Path) -> None:
    (tmp_path / "pool").mkdir()
    assert resources.check_pool_dir(tmp_path / "pool").severity is Severity.OK
    created = resources.check_pool_dir(tmp_path / "new" / "pool")
    assert created.severity is Severity.OK and "will be created" in created.message


def test_pool_dir_not_writable(tmp_path: Path) -> None:
    pool = tmp_path / "pool"
    pool.mkdir()

    def access(p: Path, mode: int) -> bool:
        return False if Path(p) == pool else os.access(p, mode)

    finding = resources.check_pool_dir(pool, access=access)
    assert finding.severity is Severity.BLOCK
    assert "not writable" in finding.message
    assert finding.hint is not None and f"chown $USER {pool}" in finding.hint
    missing = resources.check_pool_dir(pool / "sub", access=access)
    assert missing.severity is Severity.BLOCK
    assert missing.hint is not None and f"install -d -o $USER {pool / 'sub'}" in missing.hint


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through any mode")
def test_pool_dir_not_writable_by_mode(tmp_path: Path) -> None:
    pool = tmp_path / "pool"
    pool.mkdir(mode=0o500)
    try:
        assert resources.check_pool_dir(pool).severity is Severity.BLOCK
    finally:
        pool.chmod(0o700)


def test_pool_dir_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    finding = resources.check_pool_dir(tmp_path / "file" / "pool")
    assert finding.severity is Severity.BLOCK
    assert "not a directory" in finding.message


def test_check_looks_where_up_creates_the_pool(host: FakeHost, test_conn: Any,
                                               tmp_path: Path) -> None:
    """One function (objects.pool_dir) gives the pool directory to `check` and to `up`. The
    spec refuses a pool_dir that is not absolute, ``~/x`` too (see test_bad_inputs)."""
    pool = tmp_path / "lab-pool"
    spec = replace(make_spec(), pool_dir=str(pool))
    assert pool_dir(spec) == pool
    checked = next(f for f in preflight.run_checks(spec, None, "test:///x", host.root).findings
                   if f.check == "pool-dir")
    assert checked.message == f"the pool directory {pool} will be created (in {tmp_path})"
    conn = test_conn()
    provisioner = Provisioner(spec, conn, LabState(spec.name, tmp_path / "state"),
                              Reporter(io.StringIO()), VirtType.QEMU, Bake({}))
    provisioner.ensure_shared()
    assert pool.is_dir()
    assert f"<path>{pool}</path>" in conn.storagePoolLookupByName(spec.name).XMLDesc(0)
    default = make_spec()
    assert pool_dir(default) == Path("/var/lib/libvirt/images/oslab-oslab")


# -- network clashes ----------------------------------------------------------------------------


def _suggested(hint: str, key: str) -> ipaddress.IPv4Network:
    m = re.search(re.escape(key) + r' = "([0-9./]+)"', hint)
    assert m, hint
    return ipaddress.IPv4Network(m.group(1))


def test_host_routes_parsing(host: FakeHost) -> None:
    host.routes(route_line("eth0", "0.0.0.0/0", "192.0.2.1", 3),
                route_line("wg0", "10.0.0.0/16"),
                route_line("down0", "172.16.0.0/12", flags=0))
    routes = network_clashes.host_routes(host.root)
    assert routes == [network_clashes.HostRoute("wg0", ipaddress.IPv4Network("10.0.0.0/16"))]


def test_route_clash_blocks_with_a_free_range(host: FakeHost) -> None:
    host.routes(route_line("eth0", "0.0.0.0/0", "192.0.2.1", 3),
                route_line("wg0", "10.0.0.0/16"),
                route_line("eth1", "10.1.0.0/24"))
    findings = network_clashes.check_networks(make_spec(), None, host.root)
    clash = only(findings, "network-management")
    assert clash.severity is Severity.BLOCK
    assert "10.0.0.0/16 dev wg0" in clash.message
    assert clash.hint is not None and "networks.management.cidr" in clash.hint
    assert "[[nodes]] addresses" in clash.hint
    assert "ip route del 10.0.0.0/16 dev wg0" in clash.hint
    free = _suggested(clash.hint, "networks.management.cidr")
    assert free.prefixlen == 24
    for taken in ("10.0.0.0/16", "10.1.0.0/24", "203.0.113.0/24", "192.0.2.0/24"):
        assert not free.overlaps(ipaddress.IPv4Network(taken))
    assert only(findings, "network-provider").severity is Severity.OK


def test_default_route_is_no_clash(host: FakeHost) -> None:
    host.routes(route_line("eth0", "0.0.0.0/0", "10.0.0.1", 3))
    findings = network_clashes.check_networks(make_spec(), None, host.root)
    assert all(f.severity is Severity.OK for f in findings)


def test_libvirt_default_network_clash(host: FakeHost) -> None:
    conn = libvirt.open("test:///default")  # "default" is 192.168.122.0/24
    try:
        findings = network_clashes.check_networks(make_spec(provider="192.168.122.0/24"), conn,
                                            host.root)
    finally:
        conn.close()
    clash = only(findings, "network-provider")
    assert clash.severity is Severity.BLOCK
    assert "'default'" in clash.message and "192.168.122.0/24" in clash.message
    assert clash.hint is not None
    free = _suggested(clash.hint, "networks.provider.cidr")
    assert not free.overlaps(ipaddress.IPv4Network("192.168.122.0/24"))
    assert not free.overlaps(ipaddress.IPv4Network("10.0.0.0/24"))


def test_libvirt_network_clash_but_not_with_our_own(host: FakeHost, test_conn: Any) -> None:
    conn = test_conn(
        net_xml("oslab-mgmt", "10.0.0.1", netmask="255.255.255.0", lab="oslab"),
        net_xml("oslab-prov", "203.0.113.1", prefix="24", lab="oslab"),
        net_xml("other-mgmt", "10.0.0.1", prefix="16", lab="other"),
        net_xml("plain", "172.20.0.1", prefix="24"),
    )
    # The lab's own bridges carry routes for its ranges: those are no clash either.
    host.routes(route_line("oslab-mgmt", "10.0.0.0/24"), route_line("oslab-prov",
                                                                    "203.0.113.0/24"))
    findings = network_clashes.check_networks(make_spec(), conn, host.root)
    clash = only(findings, "network-management")
    assert clash.severity is Severity.BLOCK
    assert "'other-mgmt'" in clash.message and "10.0.0.0/16" in clash.message
    assert clash.hint is not None and "virsh net-destroy other-mgmt" in clash.hint
    assert only(findings, "network-provider").severity is Severity.OK
    # Another lab with the same networks is not ours: its name decides, not the range.
    other = network_clashes.check_networks(make_spec(name="other"), conn, host.root)
    assert "'oslab-mgmt'" in only(other, "network-management").message


def test_inactive_libvirt_network_clash_warns(host: FakeHost, test_conn: Any) -> None:
    conn = test_conn(net_xml("spare", "203.0.113.1", prefix="25"))
    conn.networkLookupByName("spare").destroy()
    findings = network_clashes.check_networks(make_spec(), conn, host.root)
    clash = only(findings, "network-provider")
    assert clash.severity is Severity.WARN
    assert "inactive libvirt network 'spare'" in clash.message


def test_lab_owner_accepts_unprefixed_name() -> None:
    import xml.etree.ElementTree as ET

    xml = ('<network><name>n</name><metadata><oslab:lab '
           'xmlns:oslab="https://oslab.dev/xmlns/lab/1"><name>oslab</name></oslab:lab>'
           '</metadata></network>')
    assert network_clashes.lab_owner(ET.fromstring(xml)) == "oslab"
    assert network_clashes.lab_owner(ET.fromstring("<network><name>n</name></network>")) is None


def test_blocking() -> None:
    assert not preflight.blocking([Finding("a", Severity.OK, "x"), Finding("b", Severity.WARN,
                                                                           "y", "z")])
    assert preflight.blocking([Finding("a", Severity.BLOCK, "x", "fix")])
