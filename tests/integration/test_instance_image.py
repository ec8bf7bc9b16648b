"""The test instance image (tests/instance/build.sh) boots for real under qemu, the way nova
would boot it: from its disk (syslinux), on an isolated libvirt network whose DHCP (libvirt's
dnsmasq) hands out the route to 169.254.169.254 with option 121, as Neutron's DHCP does. A
small HTTP metadata service on 169.254.169.254 inside the test namespace serves the SSH key.

The instance must print its login prompt and its SSH host key on the serial console (read with
the same parsers `oslab verify` uses), take the key from the metadata service (or, in the second
case, from a config drive on the IDE CD-ROM, with no metadata service at all), answer SSH as
``cirros`` with that key and the host key from the console pinned, and see a disk hot-plugged
the way a Cinder volume is attached. The boot-to-login-prompt and boot-to-SSH times are
printed (run pytest with -s to see them).

The image is built outside the namespace (it fetches the kernel with apt) by scripts/test.sh,
which passes its path in OSLAB_TEST_INSTANCE_IMAGE.
"""

from __future__ import annotations

import http.server
import io
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import libvirt
import paramiko
import pycdlib
import pytest

from oslab.access.ssh import Session, Target
from oslab.errors import OslabError
from oslab.install.verify.parsers import console_host_keys, parse_console, parse_partitions

pytestmark = pytest.mark.integration

# the test libvirtd the harness (scripts/in-testns.sh) names, else the system one
URI = os.environ.get("LIBVIRT_DEFAULT_URI") or "qemu:///system"
REPO = Path(__file__).resolve().parents[2]
XML = jinja2.Environment(loader=jinja2.FileSystemLoader(REPO / "tests" / "instance" / "xml"),
                         undefined=jinja2.StrictUndefined, autoescape=True)
METADATA = "169.254.169.254"
HOSTNAME = "tst-instance"
BOOT_TIMEOUT = 300.0


def instance_image() -> Path:
    path = os.environ.get("OSLAB_TEST_INSTANCE_IMAGE", "")
    if not path:
        why = ("OSLAB_TEST_INSTANCE_IMAGE is not set: scripts/test.sh builds the image "
               "(tests/instance/build.sh) and sets it")
        if os.environ.get("OSLAB_REQUIRE_INTEGRATION") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return Path(path)


class MetadataHandler(http.server.BaseHTTPRequestHandler):
    server: MetadataServer

    def do_GET(self) -> None:
        self.server.requests.append((self.client_address[0], self.path))
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class MetadataServer(http.server.ThreadingHTTPServer):
    """The EC2-style paths the instance reads, served from a dict; every request recorded."""

    def __init__(self, address: str, files: dict[str, str]) -> None:
        self.files = files
        self.requests: list[tuple[str, str]] = []
        super().__init__((address, 80), MetadataHandler)


@dataclass
class World:
    """What one boot test made; ``cleanup`` removes all of it, whatever state it is in."""

    name: str
    workdir: Path
    conn: libvirt.virConnect
    net: ipaddress.IPv4Network
    mac: str
    key_path: Path
    public_key: str
    made: list[str] = field(default_factory=list)
    server: MetadataServer | None = None

    @property
    def address(self) -> str:
        return str(self.net.network_address + 10)

    @property
    def console_log(self) -> Path:
        return self.workdir / "console.log"

    def console(self) -> str:
        try:
            return self.console_log.read_text(errors="replace").replace("\r", "")
        except OSError:
            return ""

    def cleanup(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        for kind in reversed(self.made):
            try:
                if kind == "domain":
                    dom = self.conn.lookupByName(self.name)
                    if dom.isActive():
                        dom.destroy()
                    dom.undefine()
                elif kind == "network":
                    netobj = self.conn.networkLookupByName(self.name)
                    if netobj.isActive():
                        netobj.destroy()
                    netobj.undefine()
            except libvirt.libvirtError as exc:
                print(f"cleanup of {kind} {self.name}: {exc}")
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.conn.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    image = instance_image()
    name = f"tst{secrets.token_hex(3)}-inst"
    workdir = Path("/var/lib/libvirt/images") / name  # qemu cannot reach into /tmp/pytest-*
    net = ipaddress.IPv4Network(f"10.251.{secrets.randbelow(200) + 20}.0/24")
    key_path = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tst-instance",
                    "-f", str(key_path)], check=True)
    w = World(name=name, workdir=workdir, conn=libvirt.open(URI), net=net,
              mac="52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3)),
              key_path=key_path, public_key=(tmp_path / "id_ed25519.pub").read_text().strip())
    try:
        workdir.mkdir()
        shutil.copyfile(image, workdir / "disk.qcow2")
        yield w
    finally:
        w.cleanup()


def start_network(w: World, serve_metadata: bool) -> None:
    gateway = w.net.network_address + 1
    xml = XML.get_template("network.xml.j2").render(
        name=w.name, bridge=w.name.replace("-inst", "i"), gateway=gateway,
        prefix=w.net.prefixlen, dhcp_start=w.net.network_address + 100,
        dhcp_end=w.net.network_address + 200, mac=w.mac, address=w.address,
        metadata=METADATA)
    netobj = w.conn.networkDefineXML(xml)
    w.made.append("network")
    netobj.create()
    if not serve_metadata:
        return
    bridge = netobj.bridgeName()
    # the metadata service's address, on the bridge, in this namespace only; it goes with it
    subprocess.run(["ip", "addr", "add", f"{METADATA}/32", "dev", bridge], check=True)
    w.server = MetadataServer(METADATA, {
        "/latest/meta-data/public-keys/0/openssh-key": w.public_key + "\n",
        "/latest/meta-data/hostname": f"{HOSTNAME}.novalocal",
        "/latest/meta-data/instance-id": "i-00000001",
    })
    threading.Thread(target=w.server.serve_forever, daemon=True).start()


def config_drive(w: World) -> Path:
    """A config drive as nova writes one: iso9660 labelled config-2 with
    openstack/latest/meta_data.json (the keys under public_keys)."""
    meta = json.dumps({"uuid": "00000000-0000-0000-0000-000000000001",
                       "hostname": f"{HOSTNAME}.novalocal", "name": HOSTNAME,
                       "public_keys": {"tst-key": w.public_key + "\n"}}).encode()
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="config-2")
    iso.add_directory("/OPENSTAC", rr_name="openstack", joliet_path="/openstack")
    iso.add_directory("/OPENSTAC/LATEST", rr_name="latest", joliet_path="/openstack/latest")
    iso.add_fp(io.BytesIO(meta), len(meta), "/OPENSTAC/LATEST/META_DAT.JSO;1",
               rr_name="meta_data.json", joliet_path="/openstack/latest/meta_data.json")
    path = w.workdir / "config-2.iso"
    iso.write(str(path))
    iso.close()
    return path


def wait_for(what: str, timeout: float, probe: object, w: World) -> float:
    """Poll ``probe`` (a callable returning bool) until true; seconds it took, or fail with
    the console's tail."""
    assert callable(probe)
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if probe():
            return time.monotonic() - start
        time.sleep(0.5)
    tail = "\n".join(w.console().splitlines()[-25:])
    pytest.fail(f"{what}: not within {timeout:.0f}s; console:\n{tail}")


@pytest.mark.parametrize("source", ["metadata service", "config drive"])
def test_instance_boots_takes_the_key_and_answers_ssh(world: World, source: str) -> None:
    w = world
    start_network(w, serve_metadata=source == "metadata service")
    xml = XML.get_template("domain.xml.j2").render(
        name=w.name, memory_mib=128, disk=w.workdir / "disk.qcow2", mac=w.mac,
        network=w.name, console_log=w.console_log,
        config_drive=config_drive(w) if source == "config drive" else "")
    dom = w.conn.defineXML(xml)
    w.made.append("domain")
    started = time.monotonic()
    dom.create()

    to_prompt = wait_for("login prompt on the console", BOOT_TIMEOUT,
                         lambda: parse_console(w.console()).ok, w)
    console = w.console()
    keys = console_host_keys(console)
    assert keys and keys[0].startswith("ssh-ed25519 "), console[-2000:]
    assert f"{HOSTNAME} login:" in console
    assert f"SSH key from the {source}" in console
    if w.server is not None:
        assert (w.address, "/latest/meta-data/public-keys/0/openssh-key") in w.server.requests

    target = Target(w.name, w.address, keys[0], w.key_path, user="cirros")
    sessions: list[Session] = []

    def ssh() -> bool:
        try:
            sessions.append(Session(target, connect_timeout=10.0))
        except (paramiko.SSHException, OSError, OslabError):
            return False
        return True

    wait_for("SSH as cirros with the key from the metadata service", 120.0, ssh, w)
    to_ssh = time.monotonic() - started
    up = [line for line in console.splitlines() if line.startswith("oslab-instance: ")]
    print(f"\ntest instance ({source}) under qemu TCG: login prompt {to_prompt:.1f}s, "
          f"SSH {to_ssh:.1f}s after the domain started; console:\n  " + "\n  ".join(up))
    session = sessions[-1]
    try:
        who = session.run("id -un; hostname; ip -4 route", timeout=60)
        assert who.ok, who.stderr
        lines = who.stdout.splitlines()
        assert lines[:2] == ["cirros", HOSTNAME]
        assert any(line.startswith(f"{METADATA} via ") for line in lines), who.stdout

        # a disk hot-plugged the way nova attaches a Cinder volume shows up inside
        volume = w.workdir / "volume.raw"
        volume.write_bytes(b"\0" * (8 << 20))
        dom.attachDeviceFlags(XML.get_template("volume.xml.j2").render(path=volume),
                              libvirt.VIR_DOMAIN_AFFECT_LIVE)
        seen: list[str] = []

        def partitions() -> bool:
            seen[:] = [session.run("cat /proc/partitions", timeout=30).stdout]
            return parse_partitions(seen[0], "/dev/vdb").ok

        wait_for("the hot-plugged disk in /proc/partitions", 60.0, partitions, w)
        assert parse_partitions(seen[0], "/dev/vda").ok
    finally:
        for s in sessions:
            s.close()
    assert to_ssh < BOOT_TIMEOUT
