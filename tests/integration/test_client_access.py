"""The host's own clients on a real 2-node lab of the test guest: OpenSSH's `ssh -F` and
`scp -F` with `oslab ssh-config --path`, and ansible-core with `oslab inventory` through a pipe,
as the README shows them, and a refusal when a node's host key is not the pinned one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Lab

pytestmark = pytest.mark.integration

ANSIBLE = Path(sys.executable).with_name("ansible")


def client(lab: Lab, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``script`` run by bash with ``$OSLAB`` the lab's oslab command (so `<(...)` works)."""
    env = dict(lab.env, OSLAB=" ".join(lab.cmd()))
    return subprocess.run(["bash", "-c", script, "client", *args], capture_output=True,
                          text=True, env=env, timeout=300, stdin=subprocess.DEVNULL)


def test_ssh_and_scp_with_the_printed_config(lab: Lab, tmp_path: Path) -> None:
    out = client(lab, 'ssh -F "$($OSLAB ssh-config --path)" ctl hostname')
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ctl"
    # ssh closes inherited descriptors before it reads -F: a pipe cannot work, a saved file can
    out = client(lab, '$OSLAB ssh-config > "$1" && ssh -F "$1" ctl hostname',
                 str(tmp_path / "saved"))
    assert out.returncode == 0 and out.stdout.strip() == "ctl", out.stderr
    local = tmp_path / "payload"
    local.write_text("from the host\n")
    out = client(lab, 'cfg=$($OSLAB ssh-config --path cmp1) && scp -F "$cfg" "$1" cmp1:/root/ '
                 '&& ssh -F "$cfg" cmp1 cat /root/payload', str(local))
    assert out.returncode == 0, out.stderr
    assert out.stdout == "from the host\n"
    # asked for one node, the config names only that one
    one = lab.run("ssh-config", "cmp1").stdout
    assert "Host cmp1\n" in one and "Host ctl\n" not in one
    refused = lab.run("ssh-config", "nosuch", check=False)
    assert refused.returncode != 0 and "has no node 'nosuch'" in refused.stderr


def test_a_host_key_other_than_the_pinned_one_is_refused(lab: Lab) -> None:
    state = lab.home / "state" / "oslab" / lab.name
    pinned = state / "hostkeys" / "cmp1_ed25519.pub"
    kept = pinned.read_text()
    other = state / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    try:
        pinned.write_text(Path(f"{other}.pub").read_text())
        out = client(lab, 'ssh -F "$($OSLAB ssh-config --path)" cmp1 echo reached')
        assert out.returncode != 0
        assert "reached" not in out.stdout
        assert "Host key verification failed" in out.stderr
    finally:
        pinned.write_text(kept)
        for f in (other, Path(f"{other}.pub")):
            f.unlink()
    again = client(lab, 'ssh -F "$($OSLAB ssh-config --path)" cmp1 echo reached')
    assert again.stdout == "reached\n"


def test_ansible_reaches_every_node_through_the_inventory(lab: Lab) -> None:
    # the test guest has no Python, so Ansible's raw module (ping needs Python on the node)
    env_ansible = f"ANSIBLE_HOME={lab.home}/ansible {ANSIBLE}"
    out = client(lab, f'{env_ansible} -i <($OSLAB inventory) all -m raw -a "hostname" -o')
    assert out.returncode == 0, out.stdout + out.stderr
    lines = sorted(line for line in out.stdout.splitlines() if "CHANGED" in line)
    assert [line.split(" ")[0] for line in lines] == ["cmp1", "ctl"], out.stdout
    out = client(lab, f'{env_ansible} -i <($OSLAB inventory) compute -m raw -a "hostname" -o')
    assert out.returncode == 0 and out.stdout.count("CHANGED") == 1, out.stdout
    assert os.path.isdir(lab.home / "ansible")
