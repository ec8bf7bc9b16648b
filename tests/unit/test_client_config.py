"""`oslab ssh-config` and `oslab inventory` as the real clients read them: OpenSSH's `ssh -G`
(which parses a config and connects nowhere) and ansible-core's `ansible-inventory`."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from oslab.access.client_config import (
    FORMATS,
    LabAccess,
    NodeAccess,
    group_name,
    inventory,
    ssh_config,
)
from oslab.access.inventory import write_known_hosts
from oslab.access.ssh import Target
from oslab.access.state import LabState
from oslab.errors import OslabError
from oslab.power.decide import NodeFact, select
from oslab.virt.lab_objects import DomainState

ANSIBLE_INVENTORY = Path(sys.executable).with_name("ansible-inventory")

LABS = [
    # lab name, nodes, a directory name for the state (spaces and % are a user's to choose)
    ("oslab", (NodeAccess("controller", "controller", "10.0.0.11"),
               NodeAccess("compute1", "compute", "10.0.0.31")), "state"),
    # every character a lab name and a node name may have
    ("a-9", (NodeAccess("c0-z9", "controller", "192.168.7.2"),
             NodeAccess("x", "compute", "192.168.7.3"),
             NodeAccess("compute-12", "compute", "192.168.7.4")), "my state 100%"),
    ("z", (NodeAccess("only", "controller", "172.16.0.5"),), "st%d"),
]


def access(tmp_path: Path, lab: str, nodes: tuple[NodeAccess, ...], folder: str) -> LabAccess:
    state = tmp_path / folder
    state.mkdir()
    return LabAccess(lab, nodes, state / "id_ed25519", state / "known_hosts")


def ssh_settings(config: Path, host: str) -> dict[str, str]:
    out = subprocess.run(["ssh", "-G", "-F", str(config), host], capture_output=True, text=True,
                         check=True, stdin=subprocess.DEVNULL).stdout
    return {k: v for k, _, v in (line.partition(" ") for line in out.splitlines())}


@pytest.mark.parametrize(("lab", "nodes", "folder"), LABS, ids=[lab[0] for lab in LABS])
def test_ssh_config_as_openssh_reads_it(tmp_path: Path, lab: str,
                                        nodes: tuple[NodeAccess, ...], folder: str) -> None:
    acc = access(tmp_path, lab, nodes, folder)
    config = tmp_path / "ssh_config"
    config.write_text(ssh_config(acc))
    for node in nodes:
        got = ssh_settings(config, node.node)
        assert got["hostname"] == node.address
        assert got["user"] == "root"
        assert got["stricthostkeychecking"] == "true"  # never learns a key
        assert got["identitiesonly"] == "yes"
        # the path as written, % and spaces and all, once ssh has expanded its %-tokens
        assert got["userknownhostsfile"] == str(acc.known_hosts)
        assert got["globalknownhostsfile"] == "/dev/null"
    assert ssh_settings(config, "not-a-node")["hostname"] == "not-a-node"  # no catch-all


def test_ssh_config_refuses_a_path_it_cannot_quote(tmp_path: Path) -> None:
    acc = access(tmp_path, "oslab", LABS[0][1], 'a"b')
    with pytest.raises(OslabError) as err:
        ssh_config(acc)
    assert "cannot stand in an ssh_config file" in err.value.message
    assert err.value.hint and "XDG_STATE_HOME" in err.value.hint


def ansible_inventory(source: str, *, pipe: bool = False) -> dict[str, object]:
    """What ansible-core makes of ``source``: from a file, or through a pipe as
    `-i <(oslab inventory)` gives it."""
    env = dict(os.environ, ANSIBLE_INVENTORY_UNPARSED_FAILED="1",
               ANSIBLE_PYTHON_INTERPRETER="auto_silent")
    if pipe:
        cmd = ["bash", "-c", '"$0" -i <(cat "$1") --list', str(ANSIBLE_INVENTORY), source]
    else:
        cmd = [str(ANSIBLE_INVENTORY), "-i", source, "--list"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    data: dict[str, object] = json.loads(out.stdout)
    return data


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("lab", "nodes", "folder"), LABS, ids=[lab[0] for lab in LABS])
def test_inventory_as_ansible_reads_it(tmp_path: Path, lab: str, nodes: tuple[NodeAccess, ...],
                                       folder: str, fmt: str) -> None:
    acc = access(tmp_path, lab, nodes, folder)
    path = tmp_path / f"inventory.{fmt}"
    path.write_text(inventory(acc, fmt))
    # ini only from a file: Ansible's YAML plugin reads a pipe first and leaves nothing
    for pipe in (False, True) if fmt != "ini" else (False,):
        got = ansible_inventory(str(path), pipe=pipe)
        group = group_name(lab)
        assert group in got["all"]["children"]  # type: ignore[index]
        roles = {n.role for n in nodes}
        assert sorted(got[group]["children"]) == sorted(roles)  # type: ignore[index]
        for role in roles:
            assert got[role]["hosts"] == [n.node for n in nodes if n.role == role]  # type: ignore[index]
        hostvars = got["_meta"]["hostvars"]  # type: ignore[index]
        for n in nodes:
            hv = hostvars[n.node]
            assert hv["ansible_host"] == n.address and hv["ansible_user"] == "root"
            assert hv["ansible_ssh_private_key_file"] == str(acc.key_path)
            # the ssh options survive Ansible's own split of them (shlex), path and all
            args = shlex.split(hv["ansible_ssh_common_args"])
            assert f"UserKnownHostsFile={acc.known_hosts}" in args
            assert "StrictHostKeyChecking=yes" in args


def test_group_names_are_what_ansible_accepts() -> None:
    assert group_name("a-9") == "oslab_a_9"
    assert group_name("oslab") == "oslab_oslab"


def test_the_nodes_are_chosen_as_stop_and_start_choose_them() -> None:
    """ssh-config NODE... takes the nodes as the lifecycle commands do (power.decide.select):
    in the lab's order, an unknown name refused with the lab's nodes."""
    facts = [NodeFact(n.node, f"a-9-{n.node}", n.role, n.address, DomainState.RUNNING)
             for n in LABS[1][1]]
    assert [f.node for f in select("a-9", facts, ("x", "c0-z9"))] == ["c0-z9", "x"]
    assert [f.node for f in select("a-9", facts, ())] == ["c0-z9", "x", "compute-12"]
    with pytest.raises(OslabError) as err:
        select("a-9", facts, ("x", "nope"))
    assert err.value.message == "lab a-9 has no node 'nope'"
    assert err.value.hint == "its nodes: c0-z9, compute-12, x"


def _target(name: str, address: str, key: str) -> Target:
    return Target(name, address, f"ssh-ed25519 {key} root@{name}", Path("/k"))


def test_known_hosts_keeps_the_other_nodes_lines(tmp_path: Path) -> None:
    state = LabState("oslab", root=tmp_path).ensure()
    path = write_known_hosts(state, [_target("a", "10.0.0.11", "AAAA1"),
                                     _target("b", "10.0.0.31", "BBBB1")])
    write_known_hosts(state, [_target("b", "10.0.0.31", "BBBB2")])  # `oslab ssh b`
    assert path.read_text() == "10.0.0.11 ssh-ed25519 AAAA1\n10.0.0.31 ssh-ed25519 BBBB2\n"


def test_known_hosts_that_is_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    state = LabState("oslab", root=tmp_path).ensure()
    os.mkfifo(state.dir / "known_hosts")
    with pytest.raises(OslabError) as err:
        write_known_hosts(state, [_target("a", "10.0.0.11", "AAAA1")])
    assert "is not a regular file" in err.value.message
