"""`oslab up --stage provision`, `status`, `ssh` and `destroy` on a real libvirtd with qemu.

The nodes are the testlinux guest: a real ISO read by pycdlib, a real kickstart on an OEMDRV
disk, an install boot that powers off, a boot from disk, and SSH with the pinned host key.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import libvirt
import pytest

from oslab.virt.metadata import LabMeta
from tests.conftest import URI

pytestmark = pytest.mark.integration


def libvirt_names(lab: str) -> dict[str, list[str]]:
    """Everything in libvirt whose name starts with the lab's name."""
    conn = libvirt.open(URI)
    try:
        return {
            "domains": sorted(d.name() for d in conn.listAllDomains(0)
                              if d.name().startswith(lab + "-")),
            "networks": sorted(n.name() for n in conn.listAllNetworks(0)
                               if n.name().startswith(lab + "-")),
            "pools": sorted(p.name() for p in conn.listAllStoragePools(0)
                            if p.name() == lab),
        }
    finally:
        conn.close()


def assert_nothing_left(lab: Any) -> None:
    assert libvirt_names(lab.name) == {"domains": [], "networks": [], "pools": []}
    assert not (lab.home / "state" / "oslab" / lab.name).exists()


def test_up_status_ssh_rerun_destroy(make_lab: Any) -> None:
    lab = make_lab(nodes=2)
    first = lab.run("up", "--stage", "provision")
    assert "provisioned in" in first.stdout

    status = lab.status()
    nodes = {n["node"]: n for n in status["nodes"]}  # type: ignore[attr-defined]
    assert set(nodes) == {"ctl", "cmp1"}
    for name, node in nodes.items():
        assert node["state"] == "running", node
        assert node["ssh"] == "ok", node
        assert node["phase"] == "final"
        assert node["address"] == lab.addresses[name]
        assert node["virt_type"] in ("kvm", "qemu")
    assert {n["kind"] for n in status["networks"]} == {"management", "provider"}  # type: ignore[attr-defined]
    vols = {v["name"] for v in status["volumes"]}  # type: ignore[attr-defined]
    assert {"ctl-system.qcow2", "cmp1-system.qcow2", "installer.iso"} <= vols

    # `oslab ssh NODE -- COMMAND` runs the command there and returns its exit code
    out = lab.run("ssh", "cmp1", "--", "hostname")
    assert out.stdout.strip() == "cmp1"
    # the kickstart's `bootloader --append` reached the installed system's boot (NODE_KERNEL_ARGS)
    cmdline = lab.run("ssh", "cmp1", "--", "cat /proc/cmdline").stdout.split()
    assert {"console=ttyS0,115200n8", "no_timer_check", "panic=10"} <= set(cmdline), cmdline
    hosts = lab.run("ssh", "ctl", "--", "cat /etc/hosts").stdout
    entries = [line.split() for line in hosts.splitlines()]
    assert [lab.addresses["cmp1"], "cmp1"] in entries and [lab.addresses["ctl"], "ctl"] in entries
    failing = lab.run("ssh", "ctl", "--", "exit 7", check=False)
    assert failing.returncode == 7

    # a rerun on a built lab changes nothing
    again = lab.run("up", "--stage", "provision")
    assert "no changes" in again.stdout, again.stdout + again.stderr

    # destroy --dry-run lists and keeps; destroy removes everything
    dry = lab.run("destroy", "--dry-run")
    assert f"domain {lab.name}-ctl" in dry.stdout
    assert libvirt_names(lab.name)["domains"] == [f"{lab.name}-cmp1", f"{lab.name}-ctl"]
    lab.run("destroy", "--yes")
    assert_nothing_left(lab)
    # safe to run twice
    assert "nothing to remove" in lab.run("destroy", "--yes").stdout


def _phase(lab: str, node: str) -> str:
    conn = libvirt.open(URI)
    try:
        dom = conn.lookupByName(f"{lab}-{node}")
        meta = LabMeta.from_object_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        return meta.phase if meta else ""
    except libvirt.libvirtError:
        return ""
    finally:
        conn.close()


def test_kill_9_during_up_then_up_completes(make_lab: Any) -> None:
    lab = make_lab(nodes=2)
    proc = lab.popen("up", "--stage", "provision")
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and _phase(lab.name, "ctl") != "installing":
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.2)
        assert _phase(lab.name, "ctl") == "installing"
    finally:
        proc.kill()  # SIGKILL: no cleanup handlers run
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    done = lab.run("up", "--stage", "provision")
    assert "provisioned in" in done.stdout
    status = lab.status()
    assert [n["ssh"] for n in status["nodes"]] == ["ok", "ok"]  # type: ignore[attr-defined]
    assert libvirt_names(lab.name)["domains"] == [f"{lab.name}-cmp1", f"{lab.name}-ctl"]
    assert len(status["networks"]) == 2  # type: ignore[arg-type]
    lab.run("destroy", "--yes")
    assert_nothing_left(lab)


FOREIGN_DOMAIN = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64' machine='q35'>hvm</type></os></domain>"""
FOREIGN_NET = """<network><name>{name}</name><bridge name='{bridge}'/>
<ip address='{ip}' netmask='255.255.255.0'/></network>"""


def test_foreign_objects_survive_and_are_refused(make_lab: Any) -> None:
    lab = make_lab(nodes=1)
    conn = libvirt.open(URI)
    foreign = []
    try:
        # not the lab's, but named like it: up refuses to reuse it
        clash = conn.networkDefineXML(FOREIGN_NET.format(
            name=f"{lab.name}-mgmt", bridge=f"{lab.name}-x0", ip="172.31.250.1"))
        foreign.append(clash)
        refused = lab.run("up", "--stage", "provision", check=False)
        assert refused.returncode != 0
        assert f"network {lab.name}-mgmt exists with no oslab metadata" in refused.stderr
        assert "hint:" in refused.stderr
        clash.undefine()
        foreign.remove(clash)

        other_dom = conn.defineXML(FOREIGN_DOMAIN.format(name=f"{lab.name}x-other"))
        other_net = conn.networkDefineXML(FOREIGN_NET.format(
            name=f"{lab.name}x-net", bridge=f"{lab.name}-x1", ip="172.31.251.1"))
        foreign += [other_dom, other_net]
        lab.run("up", "--stage", "provision")
        lab.run("destroy", "--yes")
        assert_nothing_left(lab)
        assert conn.lookupByName(f"{lab.name}x-other").name() == f"{lab.name}x-other"
        assert conn.networkLookupByName(f"{lab.name}x-net").name() == f"{lab.name}x-net"
    finally:
        for obj in foreign:
            obj.undefine()
        conn.close()


def test_cidr_clash_with_libvirt_network_and_host_route(make_lab: Any) -> None:
    lab = make_lab(nodes=1)
    spec = lab.spec_path.read_text()
    mgmt = spec.split('[networks.management]\ncidr = "')[1].split('"')[0]
    base = mgmt.rsplit(".", 2)[0]  # "10.N"
    conn = libvirt.open(URI)
    net = conn.networkDefineXML(FOREIGN_NET.format(
        name="clash-net-x", bridge="clashbr0", ip=f"{base}.0.1"))
    net.create()  # an active clash blocks; an inactive one is only a warning
    try:
        out = lab.run("check", check=False)
        assert out.returncode != 0
        assert "clash-net-x" in out.stdout
        assert "networks.management.cidr" in out.stdout
        up = lab.run("up", "--stage", "provision", check=False)
        assert up.returncode != 0 and "clash-net-x" in up.stderr
    finally:
        net.destroy()
        net.undefine()
        conn.close()
    # a host route inside the test namespace clashes with the provider range
    subprocess.run(["ip", "link", "add", "oslabclash0", "type", "veth", "peer", "name",
                    "oslabclash1"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{base}.1.200/24", "dev", "oslabclash0"],
                       check=True)
        subprocess.run(["ip", "link", "set", "oslabclash0", "up"], check=True)
        out = lab.run("check", check=False)
        assert out.returncode != 0
        assert f"{base}.1.0/24" in out.stdout
        assert "route" in out.stdout
    finally:
        subprocess.run(["ip", "link", "del", "oslabclash0"], check=False)
    assert libvirt_names(lab.name)["domains"] == []


def test_bad_spec_is_one_clear_error(make_lab: Any) -> None:
    lab = make_lab(nodes=2)
    text = lab.spec_path.read_text()
    lab.spec_path.write_text(text.replace('name = "cmp1"', 'name = "ctl"'))
    out = lab.run("up", check=False)
    assert out.returncode == 2
    assert "duplicate node name 'ctl'" in out.stderr
    assert "Traceback" not in out.stderr
    assert libvirt_names(lab.name)["networks"] == []
