"""Kickstart rendering, validation, the OEMDRV ISO and SHA-512 crypt.

The golden file for the default controller is regenerated with ``OSLAB_REGEN_GOLDEN=1``.
"""

from __future__ import annotations

import io
import os
import random
import re
import shutil
import stat
import string
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pycdlib
import pytest
from pykickstart.constants import AUTOPART_TYPE_PLAIN, KS_SCRIPT_POST, KS_SHUTDOWN
from pykickstart.parser import KickstartParser
from pykickstart.version import RHEL9, makeVersion

from oslab.access.state import LabState
from oslab.errors import SpecError
from oslab.kickstart.render import (
    MARKER_PATH,
    KickstartInput,
    marker_fields,
    oemdrv_iso,
    parse_marker,
    render,
    render_validated,
    sha512_crypt,
    validate,
    verify_sha512_crypt,
)
from oslab.spec import LabSpec, Node
from oslab.spec_file import default_spec_text, load_default, parse

GOLDEN_DIR = Path(__file__).parent / "golden" / "kickstart"
ROOT_PASSWORD = "Cl3ar-Text-Root-Pw"

TESTLINUX_TOML = """
[lab]
name = "tl"
distro = "testlinux"
timezone = "Europe/Berlin"

[iso]
path = "/nonexistent.iso"

[networks.management]
cidr = "192.168.50.0/24"

[networks.provider]
cidr = "192.168.51.0/24"
mode = "isolated"

[[nodes]]
name = "ctl"
role = "controller"
address = "192.168.50.10"
memory_mib = 512
vcpus = 1
disk_gib = 2
extra_disks_gib = [1, 1]

[[nodes]]
name = "cmp1"
role = "compute"
address = "192.168.50.21"
memory_mib = 512
vcpus = 1
disk_gib = 2

[[nodes]]
name = "cmp2"
role = "compute"
address = "192.168.50.22"
memory_mib = 512
vcpus = 1
disk_gib = 2
"""

# Fixed inputs for the golden file: not keys, but shaped like them (base64 of a notice).
FAKE_SSH_PUB = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9zbGFiLXRlc3QtZml4dHVyZS1ub3QtYS1rZXk "
                "oslab-test")
FAKE_HOST_PUB = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9zbGFiLWhvc3Qta2V5LWZpeHR1cmUtbm90LWEta2V5 "
                 "root@controller")
FAKE_HOST_PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3NsYWIgdGVzdCBmaXh0dXJlOiB0aGlzIGlzIG5vdCBhIHByaXZhdGUga2V5LCBqdXN0IGl0cyBzaGFwZS4K\n"
    "b3NsYWIgdGVzdCBmaXh0dXJlOiB0aGlzIGlzIG5vdCBhIHByaXZhdGUga2V5LCBqdXN0IGl0cyBzaGFwZS4K\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
FAKE_HASH_SALT = "oslabgoldensalt"


# -- helpers ------------------------------------------------------------------------------------


def _inputs(spec: LabSpec, node: Node, state_root: Path) -> KickstartInput:
    """Real keys, made the way the provisioner makes them (oslab.access.state)."""
    state = LabState(spec.name, root=state_root)
    host = state.host_key(node.name)
    return KickstartInput(
        spec=spec,
        node=node,
        ssh_public_key=state.ssh_key().public,
        host_private_key_pem=host.private_path.read_text(),
        host_public_key=host.public,
        root_password_hash=sha512_crypt(ROOT_PASSWORD),
    )


def _golden_inputs() -> KickstartInput:
    spec = load_default()
    return KickstartInput(
        spec=spec,
        node=spec.controller,
        ssh_public_key=FAKE_SSH_PUB,
        host_private_key_pem=FAKE_HOST_PEM,
        host_public_key=FAKE_HOST_PUB,
        root_password_hash=sha512_crypt("golden", FAKE_HASH_SALT),
    )


def _parse(text: str) -> Any:
    handler = makeVersion(RHEL9)
    KickstartParser(handler).readKickstartFromString(text)
    return handler


def _post_scripts(text: str) -> list[Any]:
    return [s for s in _parse(text).scripts if s.type == KS_SCRIPT_POST]


def _heredoc(text: str, target: str) -> list[str]:
    """The lines written by ``cat > target <<'DELIM'`` in the kickstart's %post."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(rf"^\s*cat > {re.escape(target)} <<'(\w+)'$", line)
        if m:
            end = lines.index(m.group(1), i + 1)
            return lines[i + 1:end]
    raise AssertionError(f"no heredoc writes {target}")


def _command_lines(text: str) -> list[str]:
    """The kickstart's command section: lines before the first section, without comments."""
    out = []
    for line in text.splitlines():
        if line.startswith("%"):
            break
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line)
    return out


@pytest.fixture(scope="module")
def default_spec() -> LabSpec:
    return load_default()


@pytest.fixture(scope="module")
def testlinux_spec() -> LabSpec:
    return parse(TESTLINUX_TOML, source="<testlinux>")


# -- rendering and validation -------------------------------------------------------------------


@pytest.mark.parametrize("node_name", ["controller", "compute1"])
def test_default_lab_renders_and_validates(default_spec: LabSpec, node_name: str,
                                           tmp_path: Path) -> None:
    node = default_spec.node(node_name)
    text = render_validated(_inputs(default_spec, node, tmp_path))
    handler = _parse(text)
    assert handler.url.url == "http://mirror.stream.centos.org/9-stream/BaseOS/x86_64/os/"
    assert [(r.name, r.baseurl) for r in handler.repo.repoList] == [
        ("AppStream", "http://mirror.stream.centos.org/9-stream/AppStream/x86_64/os/")]
    assert "@^minimal-environment" in str(handler.packages)
    assert {"chrony", "openssh-server", "python3", "tar"} <= set(handler.packages.packageList)
    assert handler.reboot.action == KS_SHUTDOWN and "poweroff" in _command_lines(text)
    assert handler.selinux.selinux == 1  # SELINUX_ENFORCING
    assert handler.firewall.enabled is False
    assert handler.services.enabled == ["sshd", "chronyd"]
    assert f"for node {node_name} ({node.role.value}) of oslab lab oslab" in text


def test_every_default_node_is_rendered(default_spec: LabSpec, tmp_path: Path) -> None:
    texts = {n.name: render(_inputs(default_spec, n, tmp_path)) for n in default_spec.nodes}
    for text in texts.values():
        validate(text)
    assert len(set(texts.values())) == len(default_spec.nodes)


@pytest.mark.parametrize("node_name", ["ctl", "cmp1", "cmp2"])
def test_testlinux_renders_and_validates(testlinux_spec: LabSpec, node_name: str,
                                         tmp_path: Path) -> None:
    node = testlinux_spec.node(node_name)
    text = render_validated(_inputs(testlinux_spec, node, tmp_path))
    handler = _parse(text)
    assert handler.url.url is None
    assert not handler.repo.repoList
    assert "%packages" not in text
    assert handler.ignoredisk.onlyuse == ["vda"]
    assert handler.rootpw.isCrypted
    assert [k.username for k in handler.sshkey.sshUserList] == ["root"]
    assert handler.reboot.action == KS_SHUTDOWN and "poweroff" in _command_lines(text)
    assert "timezone Europe/Berlin --utc" in text


def test_post_is_the_same_for_both_distros(default_spec: LabSpec, tmp_path: Path) -> None:
    toml = default_spec_text().replace('distro = "centos-stream9"', 'distro = "testlinux"')
    tl_spec = parse(toml)
    assert tl_spec.distro == "testlinux"
    cs = _inputs(default_spec, default_spec.controller, tmp_path)
    tl = KickstartInput(tl_spec, tl_spec.controller, cs.ssh_public_key, cs.host_private_key_pem,
                        cs.host_public_key, cs.root_password_hash)

    def post(inp: KickstartInput) -> str:
        script = _post_scripts(render(inp))[0].script
        return "\n".join(line for line in script.splitlines()
                         if not line.startswith(("OSLAB_DISTRO=", "OSLAB_SPEC_DIGEST=")))

    assert post(cs) == post(tl)
    assert "OSLAB_DISTRO=testlinux" in _post_scripts(render(tl))[0].script


def test_network_by_mac(default_spec: LabSpec, tmp_path: Path) -> None:
    for node in default_spec.nodes:
        handler = _parse(render(_inputs(default_spec, node, tmp_path)))
        mgmt, provider = handler.network.network
        assert mgmt.device == default_spec.mac(node, 0)
        assert (mgmt.bootProto, mgmt.ip, mgmt.netmask) == ("static", str(node.address),
                                                           "255.255.255.0")
        assert mgmt.gateway == mgmt.nameserver == "10.0.0.1"
        assert mgmt.hostname == node.name
        assert mgmt.activate and mgmt.onboot
        assert provider.device == default_spec.mac(node, 1)
        assert provider.noipv4 and provider.noipv6 and provider.onboot
        assert not provider.ip


def test_only_the_system_disk_is_touched(default_spec: LabSpec, tmp_path: Path) -> None:
    controller = default_spec.controller
    assert controller.extra_disks_gib, "the default controller has Cinder's extra disk"
    text = render(_inputs(default_spec, controller, tmp_path))
    handler = _parse(text)
    assert handler.ignoredisk.onlyuse == ["vda"]
    assert handler.clearpart.drives == ["vda"]
    assert handler.bootloader.bootDrive == "vda"
    assert handler.autopart.autopart and handler.autopart.type == AUTOPART_TYPE_PLAIN
    assert handler.autopart.nohome
    assert not any("vdb" in line for line in _command_lines(text))
    assert "# The extra disks (vdb) stay untouched" in text


def test_timesource_by_role(default_spec: LabSpec, tmp_path: Path) -> None:
    ctl = _parse(render(_inputs(default_spec, default_spec.controller, tmp_path)))
    cmp = _parse(render(_inputs(default_spec, default_spec.node("compute1"), tmp_path)))
    assert [(t.ntp_pool, t.ntp_server) for t in ctl.timesource.dataList()] == [
        ("2.centos.pool.ntp.org", "")]
    assert [(t.ntp_pool, t.ntp_server) for t in cmp.timesource.dataList()] == [
        ("", str(default_spec.controller.address))]


def test_etc_hosts_lists_every_node(testlinux_spec: LabSpec, tmp_path: Path) -> None:
    for node in testlinux_spec.nodes:
        text = render(_inputs(testlinux_spec, node, tmp_path))
        entries = [line.split() for line in _heredoc(text, "/etc/hosts")
                   if line and not line.startswith("#")]
        assert entries[0][:2] == ["127.0.0.1", "localhost"]
        assert entries[1][:2] == ["::1", "localhost"]
        assert entries[2:] == [[str(n.address), n.name] for n in testlinux_spec.nodes]
        # the classic trap: the node's own name must not resolve to a loopback address
        assert all(node.name not in e for e in entries[:2])


def test_keys_and_password_hash(default_spec: LabSpec, tmp_path: Path) -> None:
    node = default_spec.node("compute1")
    inp = _inputs(default_spec, node, tmp_path)
    text = render(inp)
    assert f'sshkey --username=root "{inp.ssh_public_key}"' in text.splitlines()
    assert _heredoc(text, "/etc/ssh/ssh_host_ed25519_key") == \
        inp.host_private_key_pem.strip().splitlines()
    assert _heredoc(text, "/etc/ssh/ssh_host_ed25519_key.pub") == [inp.host_public_key]
    assert inp.host_public_key.startswith("ssh-ed25519 ")
    handler = _parse(text)
    assert handler.rootpw.isCrypted
    assert handler.rootpw.password == inp.root_password_hash
    assert handler.rootpw.password.startswith("$6$")
    assert verify_sha512_crypt(ROOT_PASSWORD, handler.rootpw.password)
    assert ROOT_PASSWORD not in text


def test_marker(default_spec: LabSpec, tmp_path: Path) -> None:
    node = default_spec.node("compute1")
    text = render(_inputs(default_spec, node, tmp_path))
    fields = parse_marker("\n".join(_heredoc(text, MARKER_PATH)))
    assert fields == marker_fields(default_spec, node)
    assert fields == {"OSLAB_LAB": "oslab", "OSLAB_NODE": "compute1", "OSLAB_ROLE": "compute",
                      "OSLAB_DISTRO": "centos-stream9",
                      "OSLAB_SPEC_DIGEST": default_spec.digest()}
    script = _post_scripts(text)[0].script.rstrip().splitlines()
    # the marker is written last: a node without it did not finish its %post
    assert script[-3:] == ["OSLAB_RELEASE", f"chmod 0644 {MARKER_PATH}",
                           'echo "oslab: %post done"']


@pytest.mark.parametrize("spec_name", ["default", "testlinux"])
def test_post_passes_sh_checks(spec_name: str, default_spec: LabSpec, testlinux_spec: LabSpec,
                               tmp_path: Path) -> None:
    spec = default_spec if spec_name == "default" else testlinux_spec
    scripts = _post_scripts(render(_inputs(spec, spec.controller, tmp_path)))
    assert len(scripts) == 1
    post = scripts[0]
    assert post.interp == "/bin/sh"
    assert post.logfile == "/root/oslab-ks-post.log"
    assert post.inChroot
    path = tmp_path / "post.sh"
    path.write_text(post.script)
    bash = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert bash.returncode == 0, bash.stderr
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    res = subprocess.run([shellcheck, "-s", "sh", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("shell", ["sh", "busybox"])
@pytest.mark.parametrize("flavour", ["testlinux", "centos"])
def test_post_runs_in_a_scratch_root(default_spec: LabSpec, tmp_path: Path, flavour: str,
                                     shell: str) -> None:
    """Run the %post with /etc moved under a scratch directory and a PATH of our choosing.

    "testlinux": no systemctl, no restorecon, no sshd_config.d. "centos": fake
    systemctl and restorecon that only record their arguments, and an sshd_config.d.
    Nothing outside tmp_path is touched: /etc is rewritten and PATH holds only our links.
    """
    inp = _inputs(default_spec, default_spec.controller, tmp_path / "state")
    script = _post_scripts(render(inp))[0].script
    root = tmp_path / "root"
    (root / "etc" / "ssh").mkdir(parents=True)
    (root / "etc" / "ssh" / "ssh_host_rsa_key").write_text("old")
    moved = re.sub(r"(?<![\w/.])/etc/", f"{root}/etc/", script)
    assert moved.count("/etc/") == moved.count(f"{root}/etc/"), "a path escaped the rewrite"
    moved = moved.replace("chown 0:0 ", ": chown 0:0 ")  # the test does not run as root
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("cat", "rm", "chmod", "mkdir"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    calls = tmp_path / "calls"
    if flavour == "centos":
        (root / "etc" / "ssh" / "sshd_config.d").mkdir()
        for fake in ("systemctl", "restorecon"):
            (bin_dir / fake).write_text(f'#!/bin/sh\necho "{fake} $*" >> "{calls}"\n')
            (bin_dir / fake).chmod(0o755)
    found_shell = shutil.which(shell)
    if found_shell is None:
        pytest.skip(f"{shell} is not installed (testlinux runs the %post with busybox sh)")
    argv = [found_shell, "sh", "-c", moved] if shell == "busybox" else [found_shell, "-c", moved]
    res = subprocess.run(argv, capture_output=True, text=True,
                         env={"PATH": str(bin_dir)}, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.rstrip().endswith("oslab: %post done")
    etc = root / "etc"
    assert not (etc / "ssh" / "ssh_host_rsa_key").exists()
    key = etc / "ssh" / "ssh_host_ed25519_key"
    assert key.read_text() == inp.host_private_key_pem.strip() + "\n"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (etc / "ssh" / "ssh_host_ed25519_key.pub").read_text() == inp.host_public_key + "\n"
    assert "10.0.0.31   compute1\n" in (etc / "hosts").read_text()
    assert stat.S_IMODE((etc / "hosts").stat().st_mode) == 0o644
    marker = parse_marker((etc / "oslab-release").read_text())
    assert marker == marker_fields(default_spec, default_spec.controller)
    dropin = etc / "ssh" / "sshd_config.d" / "01-oslab-hostkey.conf"
    if flavour == "centos":
        assert f"HostKey {etc}/ssh/ssh_host_ed25519_key" in dropin.read_text()
        recorded = calls.read_text().splitlines()
        assert recorded[0] == "systemctl mask sshd-keygen@rsa.service sshd-keygen@ecdsa.service"
        assert recorded[1].startswith(f"restorecon -F {etc}/hosts ")
    else:
        assert not dropin.exists() and not calls.exists()


BAD_LINES = [
    ("network --device=", "netwrok --device=", "Unknown command: netwrok"),
    ("network --device=", "network --bootproto=none --device=", "invalid choice: 'none'"),
    ("selinux --enforcing", "auth --useshadow", "KickstartDeprecationWarning"),
    ("text", "install", "install has been removed"),
    ("%post --interpreter", "%post --bogus --interpreter", "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize(("old", "new", "problem"), BAD_LINES)
def test_validate_names_the_bad_line(default_spec: LabSpec, tmp_path: Path, old: str, new: str,
                                     problem: str) -> None:
    text = render(_inputs(default_spec, default_spec.controller, tmp_path))
    lines = text.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(old))
    lines[index] = new + lines[index][len(old):]
    broken = "".join(lines)
    with pytest.raises(SpecError) as info:
        validate(broken, "controller/ks.cfg")
    message = str(info.value)
    assert f"controller/ks.cfg: line {index + 1}: " in message
    assert problem in message
    assert lines[index].rstrip("\n") in message


def test_validate_unterminated_section(default_spec: LabSpec, tmp_path: Path) -> None:
    text = render(_inputs(default_spec, default_spec.controller, tmp_path))
    validate(text)
    unterminated = text.rstrip().removesuffix("%end") + "\n"
    with pytest.raises(SpecError, match=r"does not end with %end"):
        validate(unterminated)


def test_bad_inputs_are_refused(default_spec: LabSpec, tmp_path: Path) -> None:
    good = _inputs(default_spec, default_spec.controller, tmp_path)
    render(good)
    with pytest.raises(ValueError, match="ssh_public_key"):
        render(replace(good, ssh_public_key='ssh-ed25519 AAAA x"y'))
    with pytest.raises(ValueError, match="host_private_key_pem"):
        pem = good.host_private_key_pem.replace("\n", "\nOSLAB_HOSTS\n", 1)
        render(replace(good, host_private_key_pem=pem))
    with pytest.raises(ValueError, match="host_private_key_pem"):
        render(replace(good, host_private_key_pem=good.ssh_public_key))
    with pytest.raises(ValueError, match="host_public_key"):
        render(replace(good, host_public_key=good.host_public_key.replace("ssh-ed25519",
                                                                          "ssh-rsa")))
    with pytest.raises(ValueError, match="root_password_hash"):
        render(replace(good, root_password_hash=ROOT_PASSWORD))
    with pytest.raises(ValueError, match="not a node of lab"):
        render(replace(good, node=parse(TESTLINUX_TOML).controller))
    with pytest.raises(ValueError, match="ssh_public_key"):
        render(replace(good, ssh_public_key=good.ssh_public_key + "\n%pre\nreboot"))
    for tz in ("UTC\\n%pre", "UTC\\n", "UTC --isUtc"):
        with pytest.raises(SpecError, match=r"lab\.timezone: .* is not a time zone"):
            parse(default_spec_text().replace('timezone = "UTC"', f'timezone = "{tz}"'))
        # and the renderer refuses it too, should a spec be built without the parser
        bad_tz = replace(good.spec, timezone=tz.replace("\\n", "\n"))
        with pytest.raises(SpecError, match=r"lab\.timezone"):
            render(replace(good, spec=bad_tz, node=bad_tz.controller))
    # a trailing newline on a public key (read from a .pub file) is harmless
    text = render(replace(good, ssh_public_key=good.ssh_public_key + "\n"))
    assert f'sshkey --username=root "{good.ssh_public_key}"' in text.splitlines()


# -- golden -------------------------------------------------------------------------------------


def test_default_controller_golden() -> None:
    text = render(_golden_inputs())
    validate(text)
    golden = GOLDEN_DIR / "default-controller.ks.cfg"
    if os.environ.get("OSLAB_REGEN_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), "golden file missing: run with OSLAB_REGEN_GOLDEN=1"
    assert text == golden.read_text(), (
        f"the rendered kickstart differs from {golden}; if the change is intended, "
        "run the tests with OSLAB_REGEN_GOLDEN=1 and review the diff")


# -- the OEMDRV ISO -----------------------------------------------------------------------------


def _read_iso_file(iso: Any, **where: str) -> bytes:
    buf = io.BytesIO()
    iso.get_file_from_iso_fp(buf, **where)
    return buf.getvalue()


def test_oemdrv_iso_round_trip(default_spec: LabSpec, tmp_path: Path) -> None:
    text = render(_inputs(default_spec, default_spec.controller, tmp_path / "state"))
    dest = tmp_path / "controller-oemdrv.iso"
    assert oemdrv_iso(text, dest) == dest
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    iso = pycdlib.PyCdlib()
    iso.open(str(dest))
    try:
        assert iso.pvd.volume_identifier.decode().rstrip() == "OEMDRV"
        assert iso.has_rock_ridge() and iso.has_joliet()
        data = text.encode()
        assert _read_iso_file(iso, rr_path="/ks.cfg") == data
        assert _read_iso_file(iso, iso_path="/KS.CFG;1") == data
        assert _read_iso_file(iso, joliet_path="/ks.cfg") == data
    finally:
        iso.close()


def test_oemdrv_iso_replaces_an_old_one(tmp_path: Path) -> None:
    dest = tmp_path / "oemdrv.iso"
    oemdrv_iso("text\n", dest)
    oemdrv_iso("text\npoweroff\n", dest)
    iso = pycdlib.PyCdlib()
    iso.open(str(dest))
    try:
        assert _read_iso_file(iso, rr_path="/ks.cfg") == b"text\npoweroff\n"
    finally:
        iso.close()


# -- SHA-512 crypt ------------------------------------------------------------------------------

# From Ulrich Drepper, "Unix crypt using SHA-256 and SHA-512" (the SHA-512 test vectors).
DREPPER_VECTORS = [
    ("$6$saltstring", "Hello world!",
     "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"),
    ("$6$rounds=10000$saltstringsaltstring", "Hello world!",
     "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."),
    ("$6$rounds=5000$toolongsaltstring", "This is just a test",
     "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"),
    ("$6$rounds=1400$anotherlongsaltstring",
     "a very much longer text to encrypt.  This one even stretches over morethan one line.",
     "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"),
    ("$6$rounds=77777$short", "we have a short salt string but not a short password",
     "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0"),
    ("$6$rounds=123456$asaltof16chars..", "a short string",
     "$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1"),
    ("$6$rounds=10$roundstoolow", "the minimum number is still observed",
     "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."),
]


@pytest.mark.parametrize(("salt", "password", "expected"), DREPPER_VECTORS)
def test_sha512_crypt_drepper_vectors(salt: str, password: str, expected: str) -> None:
    assert sha512_crypt(password, salt) == expected
    assert verify_sha512_crypt(password, expected)
    assert not verify_sha512_crypt(password + "x", expected)


def test_sha512_crypt_matches_openssl() -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    rng = random.Random(20261101)
    alphabet = string.ascii_letters + string.digits + "./"
    for length in (0, 1, 15, 16, 63, 64, 65, 130):
        password = "".join(rng.choice(string.ascii_letters + string.punctuation + " ")
                           for _ in range(length)) or "x"
        salt = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 17)))
        out = subprocess.run([openssl, "passwd", "-6", "-salt", salt, "-stdin"],
                             input=password + "\n", capture_output=True, text=True, check=True)
        assert sha512_crypt(password, salt) == out.stdout.strip(), (password, salt)


def test_sha512_crypt_random_salt() -> None:
    a, b = sha512_crypt(ROOT_PASSWORD), sha512_crypt(ROOT_PASSWORD)
    assert a != b
    for h in (a, b):
        assert re.fullmatch(r"\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}", h)
        assert verify_sha512_crypt(ROOT_PASSWORD, h)
        assert ROOT_PASSWORD not in h


def test_sha512_crypt_unicode_and_bad_salt() -> None:
    h = sha512_crypt("pässwörd€", "abc")
    assert h.startswith("$6$abc$") and verify_sha512_crypt("pässwörd€", h)
    assert not verify_sha512_crypt("passwort", h)
    with pytest.raises(ValueError):
        sha512_crypt("x", "bad:salt")
