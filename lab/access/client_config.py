"""What the user's own tools need to reach the lab's nodes: an OpenSSH config (`oslab
ssh-config`) and an Ansible inventory (`oslab inventory`). Pure: the lab's nodes in, text out.

Both pin each node's host key through the lab's own known_hosts file and never learn one:
``StrictHostKeyChecking yes``.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from oslab.errors import OslabError

FORMATS = ("ini", "yaml", "json")
ROLES = ("controller", "compute")


@dataclass(frozen=True)
class NodeAccess:
    """One node as a client reaches it."""

    node: str
    role: str
    address: str


@dataclass(frozen=True)
class LabAccess:
    lab: str
    nodes: tuple[NodeAccess, ...]
    key_path: Path
    known_hosts: Path


def _ssh_path(path: Path) -> str:
    """``path`` as an ssh_config argument: quoted, and its % doubled (ssh expands %-tokens in
    IdentityFile and UserKnownHostsFile). A path with a double quote or a newline cannot be
    written there at all."""
    text = str(path)
    if '"' in text or "\n" in text:
        raise OslabError(f"the path {text!r} cannot stand in an ssh_config file (it holds a "
                         "double quote or a newline)",
                         hint="set XDG_STATE_HOME to a directory whose path has neither")
    return '"' + text.replace("%", "%%") + '"'


def _pinning(known_hosts: str) -> tuple[tuple[str, str], ...]:
    """The ssh options that offer only the lab's key and pin each node's host key to the lab's
    own known_hosts file, never learning one."""
    return (("IdentitiesOnly", "yes"), ("StrictHostKeyChecking", "yes"),
            ("UserKnownHostsFile", known_hosts), ("GlobalKnownHostsFile", "/dev/null"))


def ssh_config(access: LabAccess) -> str:
    """OpenSSH ``Host`` blocks, one per node, named like the node."""
    options = (("IdentityFile", _ssh_path(access.key_path)),
               *_pinning(_ssh_path(access.known_hosts)), ("CheckHostIP", "no"))
    settings = "".join(f"    {name} {value}\n" for name, value in options)
    return "\n".join(f"# oslab lab {access.lab}, {n.role} node\n"
                     f"Host {n.node}\n"
                     f"    HostName {n.address}\n"
                     "    User root\n" + settings for n in access.nodes)


def group_name(lab: str) -> str:
    """The lab's Ansible group: ``oslab_<lab>``, with the '-' Ansible refuses in a group name
    as '_'."""
    return "oslab_" + lab.replace("-", "_")


def _host_vars(access: LabAccess, node: NodeAccess) -> dict[str, str]:
    common = " ".join(f"-o {shlex.quote(f'{name}={value}')}"
                      for name, value in _pinning(str(access.known_hosts)))
    return {"ansible_host": node.address, "ansible_user": "root",
            "ansible_ssh_private_key_file": str(access.key_path),
            "ansible_ssh_common_args": common}


def _tree(access: LabAccess) -> dict[str, object]:
    """The inventory as Ansible's YAML inventory plugin reads it."""
    children: dict[str, object] = {}
    for role in ROLES:
        hosts = {n.node: _host_vars(access, n) for n in access.nodes if n.role == role}
        if hosts:
            children[role] = {"hosts": hosts}
    return {"all": {"children": {group_name(access.lab): {"children": children}}}}


def _ini_value(value: str) -> str:
    # Ansible's ini inventory splits a host line with shlex: quote what has a space or a quote
    return shlex.quote(value)


def _ini(access: LabAccess) -> str:
    lines: list[str] = []
    roles = [r for r in ROLES if any(n.role == r for n in access.nodes)]
    for role in roles:
        lines.append(f"[{role}]")
        for n in access.nodes:
            if n.role == role:
                pairs = " ".join(f"{k}={_ini_value(v)}" for k, v in _host_vars(access, n).items())
                lines.append(f"{n.node} {pairs}")
        lines.append("")
    lines.append(f"[{group_name(access.lab)}:children]")
    lines.extend(roles)
    return "\n".join(lines) + "\n"


def _yaml(data: object, indent: int = 0) -> list[str]:
    """Block-style YAML of nested dicts of strings; every scalar a JSON string (which YAML reads
    as a double-quoted scalar), so no value is ever read as another type."""
    lines = []
    assert isinstance(data, dict)
    for key, value in data.items():
        pad = "  " * indent
        if isinstance(value, dict):
            lines.append(f"{pad}{json.dumps(key)}:" + (" {}" if not value else ""))
            lines.extend(_yaml(value, indent + 1))
        else:
            lines.append(f"{pad}{json.dumps(key)}: {json.dumps(value)}")
    return lines


def inventory(access: LabAccess, fmt: str) -> str:
    """The lab's Ansible inventory: a group per role, all in ``oslab_<lab>``."""
    if fmt == "ini":
        return _ini(access)
    if fmt == "yaml":
        return "# oslab lab " + access.lab + "\n" + "\n".join(_yaml(_tree(access))) + "\n"
    if fmt == "json":
        return json.dumps(_tree(access), indent=2) + "\n"
    raise OslabError(f"unknown inventory format {fmt!r}", hint="use one of " + ", ".join(FORMATS))
