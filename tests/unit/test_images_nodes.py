"""Debian nodes from base images: the NoCloud seed (read back with pycdlib), the image-booted
domain and the overlay volume (golden XML, accepted by libvirt's test driver), the customize
hook, and which packages a role bakes."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import libvirt
import pycdlib
import pytest

from oslab import spec as specmod
from oslab import spec_file
from oslab.access.state import LabState
from oslab.distro import NodeOs
from oslab.errors import OslabError
from oslab.images.build import BASE_PACKAGES, ImageInputs, customize_script, fs_size
from oslab.images.nodes import Bake
from oslab.images.seed import SeedInput, seed_files, write_seed
from oslab.install.content import Content
from oslab.install.debian import debconf_selections
from oslab.install.model import InstallContext, StepDef
from oslab.provisioning.provisioner import READY_PROBE
from oslab.resolve import bake
from oslab.spec import Role, VirtType
from oslab.virt.definitions import GIB, PoolDef, VolumeDef, image_domain_def, seed_volume_name
from oslab.virt.metadata import LabMeta
from tests.unit.test_xml import conn, golden

__all__ = ["conn"]  # the test-driver fixture, shared with test_xml

SPEC_TEXT = spec_file.default_spec_text().replace(
    'distro = "centos-stream9"', 'distro = "debian13"')
DEBIAN = spec_file.parse(SPEC_TEXT)
LOCAL = spec_file.parse(SPEC_TEXT + '\n[packages]\nsource = "local"\n')


def read_seed(path: Path) -> dict[str, str]:
    """The seed's files by their Rock Ridge and Joliet names, and its volume label."""
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        out = {}
        for name in ("meta-data", "user-data", "network-config"):
            rr, joliet = io.BytesIO(), io.BytesIO()
            iso.get_file_from_iso_fp(rr, rr_path=f"/{name}")
            iso.get_file_from_iso_fp(joliet, joliet_path=f"/{name}")
            assert rr.getvalue() == joliet.getvalue()
            out[name] = rr.getvalue().decode()
        out["label"] = iso.pvd.volume_identifier.decode().strip()
        return out
    finally:
        iso.close()


def seed_input(spec: specmod.LabSpec, tmp_path: Path, node: str = "controller") -> SeedInput:
    state = LabState(spec.name, root=tmp_path / "state")
    host = state.host_key(node)
    return SeedInput(spec=spec, node=spec.node(node), authorized_key=state.ssh_key().public,
                     host_private=host.private_path.read_text(), host_public=host.public,
                     mirror="http://m.example/debian")


def test_seed_carries_identity_and_is_read_back(tmp_path: Path) -> None:
    seed = seed_input(DEBIAN, tmp_path)
    files = read_seed(write_seed(seed_files(seed, "trixie"), tmp_path / "seed.iso"))
    assert files["label"] == "cidata"
    node = DEBIAN.node("controller")
    assert files["meta-data"] == (f"instance-id: oslab-controller-{DEBIAN.digest()}\n"
                                  "local-hostname: controller\n")
    net = files["network-config"]
    assert f'macaddress: "{DEBIAN.mac(node, 0)}"' in net
    # the provider NIC is brought up with no address: Open vSwitch takes it as a port
    provider = net[net.index("  provider:"):]
    assert f'macaddress: "{DEBIAN.mac(node, 1)}"' in provider
    assert "dhcp4: false" in provider and "addresses" not in provider
    assert 'addresses: ["10.0.0.11/24"]' in net and 'via: "10.0.0.1"' in net
    assert 'addresses: ["10.0.0.1"]' in net
    user = files["user-data"]
    assert user.startswith("#cloud-config\n")
    assert "hostname: controller\n" in user and "manage_etc_hosts: false\n" in user
    assert "ssh_genkeytypes: [ed25519]" in user and "users: []\n" in user
    assert "      - to: \"0.0.0.0/0\"\n" in net
    assert f"      {seed.authorized_key}\n" in user
    assert f'  ed25519_public: "{seed.host_public}"\n' in user
    assert "    -----BEGIN OPENSSH PRIVATE KEY-----\n" in user
    assert "      nameserver 10.0.0.1\n" in user
    # source = mirror: the node's apt source is the mirror, signed by Debian's keyring
    assert "      URIs: http://m.example/debian\n      Suites: trixie\n" in user
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in user


def test_seed_of_a_local_source_points_at_the_gateway(tmp_path: Path) -> None:
    user = seed_files(seed_input(LOCAL, tmp_path, "compute1"), "trixie")["user-data"]
    assert ("      URIs: http://10.0.0.1:8801/\n      Suites: ./\n      Trusted: yes\n"
            in user)
    assert "hostname: compute1\n" in user


def test_image_domain_and_overlay_are_accepted_by_libvirt(conn: libvirt.virConnect,
                                                         tmp_path: Path) -> None:
    node = DEBIAN.node("controller")
    base = "/var/lib/libvirt/images/oslab-images/debian13-controller-0123456789abcdef.qcow2"
    overlay = VolumeDef("controller-system.qcow2", node.disk_gib * GIB, backing=base)
    golden("volume-overlay.xml", overlay.xml())
    d = image_domain_def(DEBIAN, node, virt_type=VirtType.QEMU, console_log=Path("/state/c.log"),
                         kernel="/cache/debian13-controller.vmlinuz",
                         initrd="/cache/debian13-controller.initrd",
                         cmdline="root=LABEL=oslab-root ro console=ttyS0,115200n8 no_timer_check "
                         "panic=10")
    xml = d.xml()
    golden("domain-controller-qemu-image.xml", xml)
    assert "<kernel>/cache/debian13-controller.vmlinuz</kernel>" in xml
    assert "<boot dev" not in xml and "<on_reboot>restart</on_reboot>" in xml
    pool = conn.storagePoolDefineXML(PoolDef("oslab", tmp_path / "pool").xml(), 0)
    pool.create(0)
    for name, fmt in (("controller-system.qcow2", "qcow2"), ("controller-disk1.qcow2", "qcow2"),
                      (seed_volume_name(node), "raw")):
        pool.createXML(VolumeDef(name, 1 << 20, fmt).xml(), 0)
    dom = conn.defineXML(xml)
    back = dom.XMLDesc(0)
    meta = LabMeta.from_object_xml(back)
    assert meta is not None and meta.phase == "final" and meta.node == "controller"
    assert f"volume='{seed_volume_name(node)}'" in back and "device='cdrom'" in back
    assert all(DEBIAN.mac(node, i) in back for i in (0, 1))


def test_customize_hook_bakes_preseeds_and_disables_what_packages_enabled(
        tmp_path: Path) -> None:
    baked = ImageInputs("debian13", "trixie", "controller", "r", ("keystone", "mariadb-server"),
                        "keystone keystone/configure_db boolean false\n",
                        (("/etc/default/nova-consoleproxy", "NOVA_CONSOLE_PROXY_TYPE=novnc\n"),))
    script = customize_script(baked, tmp_path / "p.txt", tmp_path / "files")
    lines = script.splitlines()
    written = lines.index(f'install -D -m 0644 {tmp_path}/files/0 '
                          '"$root"/etc/default/nova-consoleproxy')
    preseed = lines.index(f'chroot "$root" debconf-set-selections < {tmp_path}/p.txt')
    install = next(i for i, line in enumerate(lines) if "apt-get install" in line)
    assert preseed < written < install and "keystone mariadb-server" in lines[install + 1]
    assert lines.index('    chroot "$root" systemctl disable "$unit"') > install
    assert ': > "$root/etc/machine-id"' in lines
    assert 'rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*' in lines
    minimal = customize_script(ImageInputs("debian13", "trixie", "compute", "r"), tmp_path,
                               tmp_path)
    assert "apt-get install" not in minimal and "debconf" not in minimal
    assert "LABEL=oslab-root / ext4" in minimal


def test_image_key_changes_with_what_is_baked() -> None:
    a = ImageInputs("debian13", "trixie", "controller", "r1")
    assert a.key() != ImageInputs("debian13", "trixie", "compute", "r1").key()
    assert a.key() != ImageInputs("debian13", "trixie", "controller", "r2").key()
    assert a.key() != ImageInputs("debian13", "trixie", "controller", "r1", ("x",)).key()
    assert a.key() != ImageInputs("debian13", "trixie", "controller", "r1", (), "q").key()
    assert a.key() != ImageInputs("debian13", "trixie", "controller", "r1", (), "",
                                  (("/etc/x", "y"),)).key()
    assert "openssh-server" in BASE_PACKAGES and "linux-image-cloud-amd64" in BASE_PACKAGES


def test_fs_size_leaves_room() -> None:
    assert fs_size(400 << 20) == (500 + 256) << 20


def test_centos_labs_bake_nothing(tmp_path: Path) -> None:
    spec = spec_file.load_default()
    state = LabState(spec.name, root=tmp_path)
    assert bake(spec, state, "qemu") == Bake({Role.CONTROLLER: (), Role.COMPUTE: ()})


@pytest.mark.parametrize(("files", "ready"), [
    ((), False),                                   # first boot, cloud-init still running
    (("boot-finished",), True),                    # first boot done
    (("sem/config_scripts_user",), True),          # a later boot: final stage not reached yet
    (("sem/config_set_passwords",), False),        # first boot between sshd's two starts
])
def test_ready_probe_of_a_node_booted_from_an_image(tmp_path: Path, files: tuple[str, ...],
                                                     ready: bool) -> None:
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    probe = READY_PROBE[NodeOs.IMAGE].replace("/var/lib/cloud/instance", str(tmp_path))
    assert subprocess.run(["sh", "-c", probe], check=False).returncode == (0 if ready else 1)


def test_a_debian_labs_packages_are_its_roles_install_steps(tmp_path: Path) -> None:
    baked = bake(DEBIAN, LabState(DEBIAN.name, root=tmp_path), "qemu")
    packages = baked.packages
    assert set(packages) == {Role.CONTROLLER, Role.COMPUTE}
    controller, compute = packages[Role.CONTROLLER], packages[Role.COMPUTE]
    assert "keystone" in controller and "keystone" not in compute
    assert "nova-compute" in compute and "nova-compute" not in controller
    assert list(controller) == sorted(set(controller))  # sorted, once each: the image key's
    # the install content's debconf answers, preseeded before the role packages install
    assert baked.preseed == debconf_selections() and "keystone" in baked.preseed


def bad_node(ctx: InstallContext) -> dict[str, list[StepDef]]:
    return {"nope": []}


@pytest.mark.parametrize(("damage", "content", "message", "hint"), [
    # the content cannot make the lab's passwords: its steps cannot be built
    ('{"x": ', None, "passwords.json is damaged", "restore it from a backup"),
    ("", bad_node, "install steps for unknown node(s): nope",
     "this is a bug in the install content"),
], ids=["damaged-passwords", "content-bug"])
def test_a_debian_lab_whose_packages_cannot_be_listed_builds_no_base(
        tmp_path: Path, damage: str, content: Content | None, message: str, hint: str) -> None:
    """Not an empty list, which baked (and cached) bases and a package repository without the
    role's packages: the error goes out with its hint, before any image is built."""
    state = LabState(DEBIAN.name, root=tmp_path)
    if damage:
        state.dir.mkdir(parents=True)
        (state.dir / "passwords.json").write_text(damage)
    with pytest.raises(OslabError) as info:
        bake(DEBIAN, state, "qemu", content)
    assert message in info.value.message
    assert info.value.hint is not None and info.value.hint.startswith(hint)
