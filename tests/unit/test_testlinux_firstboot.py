"""The test guest's first-boot agent (tests/guest/rootfs/usr/libexec/testlinux/firstboot) on the
seed files oslab renders: it runs on a directory standing in for the mounted ``cidata`` seed and
writes under a directory standing in for the node's root, under busybox sh (as in the guest,
with busybox's awk) and under the host's sh."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from oslab import spec_file
from oslab.access.state import LabState
from oslab.images.seed import SeedInput, seed_files
from oslab.spec import LabSpec

LIBEXEC = Path(__file__).resolve().parents[1] / "guest/rootfs/usr/libexec/testlinux"
FIRSTBOOT = LIBEXEC / "firstboot"
SPEC = spec_file.parse(spec_file.default_spec_text().replace(
    'distro = "centos-stream9"', 'distro = "testlinux"'))

NO_BUSYBOX = pytest.mark.skipif(shutil.which("busybox") is None,
                                reason="no busybox (apt-get install busybox-static)")
SHELLS = [pytest.param(["busybox", "sh"], id="busybox-sh", marks=NO_BUSYBOX),
          pytest.param(["sh"], id="sh")]


def render_seed(spec: LabSpec, state: LabState, node: str, dest: Path,
                golden: bool = False) -> dict[str, str]:
    """A Debian node's seed (with an apt source), or a golden base node's (growpart, no apt)."""
    host = state.host_key(node)
    files = seed_files(SeedInput(spec=spec, node=spec.node(node),
                                 authorized_key=state.ssh_key().public,
                                 host_private=host.private_path.read_text(),
                                 host_public=host.public, mirror="http://m.example/debian",
                                 growpart=golden),
                       "" if golden else "trixie")
    dest.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (dest / name).write_text(text)
    return files


@pytest.fixture(params=SHELLS)
def firstboot(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Path, Path], str]:
    shell: list[str] = request.param

    def run(seed: Path, root: Path) -> str:
        out = subprocess.run([*shell, str(FIRSTBOOT), "-r", str(root), "-s", str(seed)],
                             capture_output=True, text=True, timeout=60,
                             env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                  "TMPDIR": str(tmp_path)})
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stderr == ""
        assert all(line.startswith("testlinux-firstboot: ") for line in out.stdout.splitlines())
        return out.stdout

    return run


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_seed_identity_is_applied_once_per_instance(firstboot: Callable[[Path, Path], str],
                                                    tmp_path: Path) -> None:
    state = LabState(SPEC.name, root=tmp_path / "state")
    root = tmp_path / "root"
    (root / "etc/ssh").mkdir(parents=True)
    (root / "etc/ssh/ssh_host_rsa_key").write_text("a key of the golden base\n")
    (root / "etc/machine-id").write_text("")  # generalised, as the golden kickstart leaves it
    files = render_seed(SPEC, state, "controller", tmp_path / "seed1")
    node = SPEC.node("controller")
    host = state.host_key("controller")

    out = firstboot(tmp_path / "seed1", root)
    assert "FAILED" not in out
    assert (root / "etc/hostname").read_text() == "controller\n"
    key = root / "etc/ssh/ssh_host_ed25519_key"
    assert key.read_text() == host.private_path.read_text().strip() + "\n"
    assert Path(f"{key}.pub").read_text() == host.public + "\n"
    assert (mode(key), mode(Path(f"{key}.pub"))) == (0o600, 0o644)
    assert sorted(p.name for p in (root / "etc/ssh").iterdir()) == [
        "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]  # the base's key is gone
    auth = root / "root/.ssh/authorized_keys"
    assert auth.read_text() == state.ssh_key().public + "\n"
    assert (mode(auth.parent), mode(auth)) == (0o700, 0o600)
    # the management NIC with its address; the provider NIC up with none (Open vSwitch's port)
    assert (root / "etc/testlinux/network").read_text() == (
        f"mac={SPEC.mac(node, 0)} mode=static addr={node.address}/24 "
        f"gw={SPEC.management.gateway}\n"
        f"mac={SPEC.mac(node, 1)} mode=none\n")
    assert (root / "etc/resolv.conf").read_text() == f"nameserver {SPEC.management.gateway}\n"
    assert not (root / "etc/apt").exists()  # the seed's apt source does not apply here
    machine_id = (root / "etc/machine-id").read_text()
    assert re.fullmatch(r"[0-9a-f]{32}\n", machine_id)
    instance_id = f"{SPEC.name}-controller-{SPEC.digest()}"
    assert f"instance-id: {instance_id}\n" in files["meta-data"]
    assert (root / "var/lib/cloud/data/instance-id").read_text() == instance_id + "\n"
    assert (root / "var/lib/cloud/instance/sem/config_scripts_user").is_file()
    private_lines = host.private_path.read_text().splitlines()[1:-1]
    assert private_lines and not any(line in out for line in private_lines)
    assert "PRIVATE KEY" not in out and host.public.split()[1] not in out

    # The same instance again (a reboot): nothing is applied, a changed file stays changed.
    (root / "etc/hostname").write_text("changed\n")
    (root / "root/.ssh/authorized_keys").write_text("other\n")
    out = firstboot(tmp_path / "seed1", root)
    assert out == f"testlinux-firstboot: instance {instance_id} is already applied\n"
    assert (root / "etc/hostname").read_text() == "changed\n"
    assert (root / "root/.ssh/authorized_keys").read_text() == "other\n"
    assert (root / "etc/machine-id").read_text() == machine_id

    # A new instance (another seed on the same disk) is applied again; a machine-id stays.
    files = render_seed(SPEC, state, "compute1", tmp_path / "seed2", golden=True)
    assert "/etc/apt" not in files["user-data"] and 'mode: "auto"' in files["user-data"]
    out = firstboot(tmp_path / "seed2", root)
    assert "FAILED" not in out
    compute1 = SPEC.node("compute1")
    assert (root / "etc/hostname").read_text() == "compute1\n"
    assert key.read_text() == state.host_key("compute1").private_path.read_text().strip() + "\n"
    assert key.read_text() != host.private_path.read_text().strip() + "\n"
    assert (root / "root/.ssh/authorized_keys").read_text() == state.ssh_key().public + "\n"
    assert (root / "etc/testlinux/network").read_text().startswith(
        f"mac={SPEC.mac(compute1, 0)} mode=static addr={compute1.address}/24 ")
    assert (root / "etc/machine-id").read_text() == machine_id
    assert (root / "var/lib/cloud/data/instance-id").read_text() == (
        f"{SPEC.name}-compute1-{SPEC.digest()}\n")


def test_a_seed_without_a_host_key_fails_loudly_and_is_not_marked(
        firstboot: Callable[[Path, Path], str], tmp_path: Path) -> None:
    state = LabState(SPEC.name, root=tmp_path / "state")
    files = render_seed(SPEC, state, "controller", tmp_path / "seed")
    user = files["user-data"]
    start, end = user.index("ssh_keys:\n"), user.index("growpart:")
    (tmp_path / "seed/user-data").write_text(user[:start] + user[end:])
    root = tmp_path / "root"
    out = firstboot(tmp_path / "seed", root)
    assert "testlinux-firstboot: FAILED: user-data has no ssh_keys host key" in out
    assert "testlinux-firstboot: FAILED: instance " in out
    assert (root / "etc/hostname").read_text() == "controller\n"  # the rest is applied
    assert not (root / "etc/ssh/ssh_host_ed25519_key").exists()
    assert not (root / "var/lib/cloud").exists()  # not marked: the next boot tries again


def test_a_seed_without_an_instance_id_changes_nothing(firstboot: Callable[[Path, Path], str],
                                                      tmp_path: Path) -> None:
    state = LabState(SPEC.name, root=tmp_path / "state")
    render_seed(SPEC, state, "controller", tmp_path / "seed")
    (tmp_path / "seed/meta-data").write_text("local-hostname: controller\n")
    root = tmp_path / "root"
    root.mkdir()
    out = firstboot(tmp_path / "seed", root)
    assert out.startswith("testlinux-firstboot: FAILED: meta-data has no usable instance-id")
    assert list(root.iterdir()) == []


YAML = """\
#cloud-config
# a comment
a: plain value  # trailing comment
q: "x\\u0027y\\u003cz \\"q\\" \\\\ \\n"
s: 'it''s'
flow: ["1.2.3.4/24", 'b', c]
empty: []
block: |
  one
    two

  three

strip: |-
  no newline
fold: >
  folded
  line

  next
list:
- path: /p
  content: |
    text
- k: v
nested:
  deeper:
    key: value
last:
"""


@pytest.mark.parametrize("awk", [pytest.param(["busybox", "awk"], id="busybox-awk",
                                              marks=NO_BUSYBOX),
                                 pytest.param(["awk"], id="awk")])
def test_cidata_awk_flattens_the_yaml_subset(awk: list[str], tmp_path: Path) -> None:
    (tmp_path / "in.yaml").write_text(YAML)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([*awk, "-v", f"OUT={out}", "-f", str(LIBEXEC / "cidata.awk"),
                    str(tmp_path / "in.yaml")], check=True, env={"LC_ALL": "C"})
    values: dict[str, str] = {}
    for line in (out / "index").read_text().splitlines():
        path, n = line.split("\t")
        values[path] = (out / f"v.{n}").read_text()
    assert values == {
        "a": "plain value",
        "q": 'x\'y<z "q" \\ \n',
        "s": "it's",
        "flow/0": "1.2.3.4/24", "flow/1": "b", "flow/2": "c",
        "block": "one\n  two\n\nthree\n",
        "strip": "no newline",
        "fold": "folded line\nnext\n",
        "list/0/path": "/p", "list/0/content": "text\n",
        "list/1/k": "v",
        "nested/deeper/key": "value",
        "last": "",
    }
    (tmp_path / "bad.yaml").write_text("a: &anchor x\n")
    bad = subprocess.run([*awk, "-v", f"OUT={out}", "-f", str(LIBEXEC / "cidata.awk"),
                          str(tmp_path / "bad.yaml")], capture_output=True, text=True,
                         env={"LC_ALL": "C"})
    assert bad.returncode == 1
    assert bad.stderr == "line 1: anchors, aliases and tags are not supported\n"
