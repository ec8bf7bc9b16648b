"""Golden bases (``lab.golden``): the generic kickstart and its cache key, the generalising
%post run in a scratch root, the seed a golden node gets, the spec key and the plan."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from pykickstart.parser import KickstartParser
from pykickstart.version import RHEL9, makeVersion

from oslab.distro import NodeOs, node_os
from oslab.errors import SpecError
from oslab.images.golden import builder_node, golden_inputs, iso_identity
from oslab.images.seed import SeedInput, seed_files
from oslab.kickstart.render import (
    BUILDER,
    CANONICAL_BUILDER,
    builder_kickstart,
    golden_kickstart,
    validate,
)
from oslab.provisioning.decide import ProvisionFacts, decide
from oslab.spec import LabSpec
from oslab.spec_file import default_spec_text, parse

GOLDEN_TOML = default_spec_text().replace("golden = false", "golden = true")


def spec_of(text: str) -> LabSpec:
    return parse(text, source="<test>")


@pytest.fixture(scope="module")
def golden_spec() -> LabSpec:
    return spec_of(GOLDEN_TOML)


def parsed(text: str) -> KickstartParser:
    parser = KickstartParser(makeVersion(RHEL9))
    parser.readKickstartFromString(text)
    return parser


# -- the spec key --------------------------------------------------------------------------


def test_the_default_lab_is_not_golden_and_keeps_its_digest(golden_spec: LabSpec) -> None:
    plain = spec_of(default_spec_text())
    assert not plain.golden and node_os(plain) is NodeOs.KICKSTART
    assert golden_spec.golden and node_os(golden_spec) is NodeOs.GOLDEN
    # a key at its default does not change the digest of labs made before it existed
    assert plain.digest() == spec_of(default_spec_text().replace("golden = false\n", "")).digest()
    assert golden_spec.digest() != plain.digest()


def test_golden_is_refused_for_a_distro_that_boots_images() -> None:
    text = GOLDEN_TOML.replace('distro = "centos-stream9"', 'distro = "debian13"')
    with pytest.raises(SpecError, match=r"lab\.golden.*debian13 nodes always boot a cached base"):
        spec_of(text)


# -- the kickstart ---------------------------------------------------------------------------


@pytest.mark.parametrize("distro", ["centos-stream9", "testlinux"])
def test_the_golden_kickstart_carries_no_identity(distro: str) -> None:
    text = golden_kickstart(distro, "UTC")
    validate(text)
    handler = parsed(text).handler
    assert handler.rootpw.lock
    assert not handler.sshkey.sshUserList
    assert handler.timesource.dataList() == []
    # root last and growing, no swap after it: cloud-init grows it to each node's disk
    assert not handler.autopart.autopart
    assert [p.mountpoint for p in handler.partition.partitions] == ["/boot", "/"]
    assert handler.partition.partitions[-1].grow
    post = handler.scripts[0].script
    for line in (": > /etc/machine-id", "rm -f /etc/ssh/ssh_host_*",
                 "rm -f /root/.ssh/authorized_keys", "rm -rf /var/lib/cloud"):
        assert line in post.splitlines()
    assert "BEGIN OPENSSH PRIVATE KEY" not in text
    assert "OSLAB_GOLDEN=1" in post
    if distro == "centos-stream9":
        assert {"cloud-init", "cloud-utils-growpart"} <= set(handler.packages.packageList)
        assert "rm -f /etc/testlinux/network" not in post
    else:
        assert "%packages" not in text
        assert "rm -f /etc/testlinux/network" in post.splitlines()


def test_the_per_node_kickstart_has_no_cloud_init(tmp_path: Path) -> None:
    from tests.unit.test_kickstart import _inputs

    spec = spec_of(default_spec_text())
    from oslab.kickstart.render import render
    text = render(_inputs(spec, spec.controller, tmp_path))
    assert "cloud-init" not in text and "OSLAB_GOLDEN" not in text


def test_the_builder_kickstart_differs_only_in_the_install_network(golden_spec: LabSpec) -> None:
    node = builder_node(golden_spec, golden_inputs(golden_spec))
    assert node.name == BUILDER and node.extra_disks_gib == ()
    assert node.address == golden_spec.nodes[0].address
    assert node.disk_gib == min(n.disk_gib for n in golden_spec.nodes)
    mine = builder_kickstart(golden_spec, node).splitlines()
    canonical = golden_kickstart(golden_spec.distro, golden_spec.timezone).splitlines()
    differ = [(a, b) for a, b in zip(mine, canonical, strict=True) if a != b]
    assert [a.split()[0] for a, _ in differ] == ["network", "network"]
    assert f"--ip={golden_spec.nodes[0].address}" in differ[0][0]
    assert f"--device={golden_spec.mac(node, 0)}" in differ[0][0]
    assert f"--ip={CANONICAL_BUILDER.address}" in differ[0][1]


# -- the cache key -------------------------------------------------------------------------


def test_labs_that_differ_in_addresses_share_a_base(golden_spec: LabSpec) -> None:
    other = spec_of(GOLDEN_TOML.replace('name = "oslab"', 'name = "other"')
                    .replace("10.0.0.", "10.9.0.").replace("10.9.0.0/24", "10.9.0.0/24"))
    assert other.nodes[0].address != golden_spec.nodes[0].address
    assert golden_inputs(other).key() == golden_inputs(golden_spec).key()


@pytest.mark.parametrize("change", [
    ('timezone = "UTC"', 'timezone = "Europe/Berlin"'),
    ("disk_gib = 40", "disk_gib = 30"),
    ('distro = "centos-stream9"', 'distro = "testlinux"'),
    ("x86_64-boot.iso\"", "x86_64-dvd1.iso\""),
])
def test_what_shapes_the_base_changes_its_key(golden_spec: LabSpec,
                                              change: tuple[str, str]) -> None:
    assert change[0] in GOLDEN_TOML
    other = spec_of(GOLDEN_TOML.replace(*change))
    assert golden_inputs(other).key() != golden_inputs(golden_spec).key()


def test_a_rebuild_stamp_makes_a_new_key(golden_spec: LabSpec) -> None:
    inputs = golden_inputs(golden_spec)
    stamped = replace(inputs, rebuild="20261201T000000.1")
    assert stamped.key() != inputs.key()
    assert re.fullmatch(r"centos-stream9-golden-[0-9a-f]{16}", inputs.name)


def test_a_local_iso_is_known_by_its_content(tmp_path: Path) -> None:
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"one")
    text = GOLDEN_TOML.replace("\nurl = ", f'\npath = "{iso}"\n# url = ').replace(
        "\nsha256_url = ", "\n# sha256_url = ")
    first = iso_identity(spec_of(text))
    iso.write_bytes(b"two")
    assert iso_identity(spec_of(text)) != first
    assert first.startswith("sha256:")


# -- the generalising %post, run in a scratch root ------------------------------------------


@pytest.mark.parametrize("shell", ["sh", "busybox"])
@pytest.mark.parametrize("distro", ["centos-stream9", "testlinux"])
def test_the_post_generalises_a_scratch_root(tmp_path: Path, distro: str, shell: str) -> None:
    post = parsed(golden_kickstart(distro, "UTC")).handler.scripts[0].script
    root = tmp_path / "root"
    seeded = {
        "etc/machine-id": "0123456789abcdef0123456789abcdef\n",
        "etc/ssh/ssh_host_ed25519_key": "old", "etc/ssh/ssh_host_rsa_key.pub": "old",
        "root/.ssh/authorized_keys": "ssh-ed25519 AAAA old",
        "etc/NetworkManager/system-connections/eth0.nmconnection": "[connection]",
        "etc/testlinux/network": "mac=x mode=static",
        "var/lib/cloud/instance/boot-finished": "x", "var/log/messages": "secret log",
        "etc/hostname": "golden",
        "etc/iscsi/initiatorname.iscsi": "InitiatorName=iqn.1994-05.com.redhat:golden\n",
        "var/lib/rabbitmq/.erlang.cookie": "GOLDENCOOKIE",
    }
    for rel, text in seeded.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "etc/ssh/sshd_config.d").mkdir()
    moved = re.sub(r"(?<![\w/.])/(etc|var|root)/", lambda m: f"{root}/{m[1]}/", post)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("cat", "rm", "chmod", "find", "sh"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    calls = tmp_path / "calls"
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "systemctl $*" >> "{calls}"\n')
    (bin_dir / "systemctl").chmod(0o755)
    found_shell = shutil.which(shell)
    if found_shell is None:
        pytest.skip(f"{shell} is not installed")
    argv = [found_shell, "sh", "-c", moved] if shell == "busybox" else [found_shell, "-c", moved]
    res = subprocess.run(argv, capture_output=True, text=True, env={"PATH": str(bin_dir)},
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.rstrip().endswith("oslab: %post done")
    assert (root / "etc/machine-id").read_text() == ""
    for gone in ("etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_rsa_key.pub",
                 "root/.ssh/authorized_keys",
                 "etc/NetworkManager/system-connections/eth0.nmconnection",
                 "var/lib/cloud", "etc/iscsi/initiatorname.iscsi",
                 "var/lib/rabbitmq/.erlang.cookie"):
        assert not (root / gone).exists(), gone
    assert (root / "etc/testlinux/network").exists() == (distro != "testlinux")
    assert (root / "var/log/messages").read_text() == ""
    assert (root / "etc/hostname").read_text() == "localhost\n"
    assert "HostKey" in (root / "etc/ssh/sshd_config.d/01-oslab-hostkey.conf").read_text()
    assert calls.read_text().splitlines() == [
        "systemctl mask sshd-keygen@rsa.service sshd-keygen@ecdsa.service"]
    assert "OSLAB_GOLDEN=1" in (root / "etc/oslab-release").read_text()


# -- the seed and the plan -----------------------------------------------------------------


def test_a_golden_node_seed_grows_its_partition_and_has_no_apt_source(
        golden_spec: LabSpec) -> None:
    seed = SeedInput(spec=golden_spec, node=golden_spec.controller,
                     authorized_key="ssh-ed25519 AAAAC3Nza lab", host_private="PRIVATE",
                     host_public="ssh-ed25519 AAAAC3Nzb host", mirror="", growpart=True)
    user_data = seed_files(seed, "")["user-data"]
    assert 'mode: "auto"' in user_data
    assert "/etc/apt" not in user_data
    debian = seed_files(replace(seed, growpart=False, mirror="http://deb.example/debian"),
                        "trixie")["user-data"]
    assert 'mode: "off"' in debian and "/etc/apt/sources.list.d/oslab.sources" in debian


def test_the_plan_of_a_blank_golden_lab(golden_spec: LabSpec) -> None:
    plan = decide(golden_spec, ProvisionFacts.blank(golden_spec), node_os(golden_spec))
    shared = {d.subject: d for d in plan.shared}
    assert "installed once by the installer" in shared["base images"].reason
    assert not any(s.startswith("installer media") for s in shared)
    ctl = plan.node("controller")
    subjects = [d.subject for d in ctl.decisions]
    assert "volume controller-seed.iso" in subjects
    assert "volume controller-oemdrv.iso" not in subjects
