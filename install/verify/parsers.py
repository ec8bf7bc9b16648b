"""The parsers of client output: pure functions from a command's output to a ``Verdict``
(or the fields a check needs), tested from recorded client output; :func:`explain` turns a
failed ``openstack`` command into a failure that says what to look at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from oslab.access.ssh import Result
from oslab.install.services.layer import Layer
from oslab.install.verify.checklist import EXPECTED_SERVICES, INTERFACES
from oslab.install.verify.results import CheckFailed, Verdict


def load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        first = text.strip().splitlines()[0] if text.strip() else "(no output)"
        raise CheckFailed(f"{what}: not JSON: {first[:200]}",
                          "run the command on the controller and read its output") from exc


def json_rows(text: str, what: str) -> list[dict[str, Any]]:
    data = load_json(text, what)
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise CheckFailed(f"{what}: expected a JSON list of rows")
    return data


def _journal(binaries: list[str], layer: Layer) -> str:
    """``journalctl -u UNIT ...`` for the units that run ``binaries`` on ``layer``'s distros."""
    return "journalctl " + " ".join(f"-u {layer.unit_of(b)}" for b in dict.fromkeys(binaries))


def parse_compute_services(text: str, layer: Layer) -> Verdict:
    """``openstack compute service list -f json``: every service enabled and up, and at least
    a conductor, a scheduler and one nova-compute. ``layer``, the lab's distro family, names
    the units in the hint (as do the other parsers' ``layer``)."""
    rows = json_rows(text, "compute service list")
    down = [f"{r.get('Binary')} on {r.get('Host')} is {r.get('State')}"
            for r in rows if r.get("State") != "up" and r.get("Status") == "enabled"]
    have = {str(r.get("Binary")) for r in rows}
    missing = [b for b in ("nova-conductor", "nova-scheduler", "nova-compute") if b not in have]
    if down or missing:
        parts = down + [f"no {b} registered" for b in missing]
        not_up = [r for r in rows if r.get("State") != "up"]
        hosts = sorted({str(r.get("Host")) for r in not_up})
        binaries = [str(r.get("Binary")) for r in not_up] + missing
        return Verdict(False, "; ".join(parts),
                       f"{_journal(binaries, layer)} on {', '.join(hosts) or 'the node'}; "
                       "/var/log/nova/*.log; is RabbitMQ up and are the clocks in step?")
    computes = sorted(str(r.get("Host")) for r in rows if r.get("Binary") == "nova-compute")
    return Verdict(True, f"{len(rows)} up; nova-compute on {', '.join(computes)}")


def parse_network_agents(text: str) -> Verdict:
    """``openstack network agent list -f json``: every agent alive (``Alive`` is a boolean
    in machine-readable output, ``:-)`` only in the table) and administratively up."""
    rows = json_rows(text, "network agent list")
    if not rows:
        return Verdict(False, "no network agents registered",
                       "are neutron-openvswitch-agent, -dhcp-agent, -l3-agent and "
                       "-metadata-agent running on the controller?")
    dead = [f"{r.get('Agent Type')} on {r.get('Host')}" for r in rows
            if r.get("Alive") not in (True, ":-)")]
    off = [f"{r.get('Agent Type')} on {r.get('Host')}" for r in rows
           if r.get("State") in (False, "DOWN")]
    if dead or off:
        parts = ([f"not alive: {', '.join(dead)}"] if dead else []) + \
                ([f"admin down: {', '.join(off)}"] if off else [])
        binaries = sorted({str(r.get("Binary")) for r in rows if r.get("Alive") is not True})
        return Verdict(False, "; ".join(parts),
                       f"journalctl -u {' -u '.join(binaries) or 'neutron-*'} on the named host; "
                       "/var/log/neutron/; RabbitMQ and clock skew")
    return Verdict(True, f"{len(rows)} agents alive")


def parse_volume_services(text: str, layer: Layer) -> Verdict:
    """``openstack volume service list -f json``: cinder-scheduler and cinder-volume up."""
    rows = json_rows(text, "volume service list")
    down = [f"{r.get('Binary')} on {r.get('Host')} is {r.get('State')}"
            for r in rows if r.get("State") != "up" and r.get("Status") == "enabled"]
    have = {str(r.get("Binary")) for r in rows}
    missing = [b for b in ("cinder-scheduler", "cinder-volume") if b not in have]
    if down or missing:
        return Verdict(False, "; ".join(down + [f"no {b} registered" for b in missing]),
                       f"{_journal(['cinder-volume', 'cinder-scheduler'], layer)}; "
                       "/var/log/cinder/volume.log; does the LVM volume group cinder-volumes "
                       "exist (vgs)?")
    return Verdict(True, f"{len(rows)} up")


_UPGRADE_RESULT = re.compile(r"^\|\s*Result:\s*(\w+)", re.M)
_UPGRADE_CHECK = re.compile(r"^\|\s*Check:\s*(.*?)\s*\|\s*$", re.M)


def parse_upgrade_check(text: str, returncode: int, command: str = "upgrade check") -> Verdict:
    """``nova-status`` / ``placement-status upgrade check`` (oslo.upgradecheck's table; its
    exit code is 0 success, 1 warning, 2 failure, 255 error)."""
    checks = _UPGRADE_CHECK.findall(text)
    results = _UPGRADE_RESULT.findall(text)
    pairs = list(zip(checks, results, strict=False))
    bad = [f"{c}: {r}" for c, r in pairs if r.lower() != "success"]
    if returncode in (0, 1) and results:
        note = f"{len(results)} checks" + (f"; warnings: {', '.join(bad)}" if bad else "")
        return Verdict(True, note)
    if returncode == 2 or bad:
        return Verdict(False, "; ".join(bad) or f"{command} reported a failure",
                       f"run `{command}` on the controller and read the Details lines")
    last = text.strip().splitlines()[-1] if text.strip() else "(no output)"
    return Verdict(False, f"{command} exited {returncode}: {last[:200]}",
                   "check the service's config file and its database connection")


def parse_catalog(text: str, expected: Mapping[str, str] = EXPECTED_SERVICES) -> Verdict:
    """``openstack catalog list -f json``: each expected service type with a public, internal
    and admin endpoint."""
    rows = json_rows(text, "catalog list")
    found: dict[str, set[str]] = {}
    for r in rows:
        kinds = found.setdefault(str(r.get("Type")), set())
        for ep in r.get("Endpoints") or []:
            if isinstance(ep, dict):
                kinds.add(str(ep.get("interface")))
    return _catalog_verdict(found, expected)


def parse_endpoints(text: str, expected: Mapping[str, str] = EXPECTED_SERVICES) -> Verdict:
    """``openstack endpoint list -f json``: the same, from the endpoint rows (enabled ones)."""
    rows = json_rows(text, "endpoint list")
    found: dict[str, set[str]] = {}
    for r in rows:
        if r.get("Enabled") is False:
            continue
        found.setdefault(str(r.get("Service Type")), set()).add(str(r.get("Interface")))
    return _catalog_verdict(found, expected)


def _catalog_verdict(found: Mapping[str, set[str]], expected: Mapping[str, str]) -> Verdict:
    problems: list[str] = []
    for kind, service in expected.items():
        if kind not in found:
            problems.append(f"{kind} ({service}) is missing")
            continue
        lacking = [i for i in INTERFACES if i not in found[kind]]
        if lacking:
            problems.append(f"{kind} ({service}) has no {'/'.join(lacking)} endpoint")
    if problems:
        names = sorted({expected[k] for k in expected if any(p.startswith(k + " ")
                                                             for p in problems)})
        return Verdict(False, "; ".join(problems),
                       "register it: openstack service create / openstack endpoint create "
                       f"(the install step for {', '.join(names)})")
    return Verdict(True, f"{len(expected)} services with {'/'.join(INTERFACES)} endpoints")


def parse_token(text: str) -> Verdict:
    """``openstack token issue -f json``: a token for a project."""
    data = load_json(text, "token issue")
    if isinstance(data, dict) and data.get("id") and data.get("project_id"):
        return Verdict(True, f"token for project {data['project_id']}, expires "
                             f"{data.get('expires', '?')}")
    return Verdict(False, "token issue returned no token", "run `openstack token issue`")


def field_of(text: str, key: str, what: str) -> Any:
    """One field of an ``openstack ... show/create -f json`` object."""
    data = load_json(text, what)
    if not isinstance(data, dict) or key not in data:
        raise CheckFailed(f"{what}: no {key!r} in the output")
    return data[key]


@dataclass(frozen=True)
class ServerState:
    status: str
    fault: str
    host: str
    addresses: dict[str, list[str]]

    @property
    def fixed_ips(self) -> list[str]:
        return [a for addrs in self.addresses.values() for a in addrs]


def parse_server(text: str) -> ServerState:
    """``openstack server show -f json``: status, fault (only on ERROR), host, addresses."""
    data = load_json(text, "server show")
    if not isinstance(data, dict):
        raise CheckFailed("server show: expected a JSON object")
    fault = data.get("fault") or ""
    if isinstance(fault, dict):
        fault = f"{fault.get('code', '')} {fault.get('message', '')}".strip()
    addresses = data.get("addresses") or {}
    if isinstance(addresses, str):  # older clients: "net=1.2.3.4, ..."
        parsed: dict[str, list[str]] = {}
        for part in addresses.split(";"):
            name, _, ips = part.strip().partition("=")
            parsed[name] = [ip.strip() for ip in ips.split(",") if ip.strip()]
        addresses = parsed
    return ServerState(status=str(data.get("status", "")), fault=str(fault),
                       host=str(data.get("OS-EXT-SRV-ATTR:host") or ""),
                       addresses={str(k): [str(a) for a in v] for k, v in addresses.items()})


def parse_volume_attachment(text: str, server_id: str) -> str | None:
    """``openstack volume show -f json``: the device of the attachment to ``server_id``."""
    for att in field_of(text, "attachments", "volume show") or []:
        if isinstance(att, dict) and att.get("server_id") == server_id:
            return str(att.get("device") or "")
    return None


_LOGIN = re.compile(r"^\S+ login:\s*$", re.M)
_HOST_KEYS = re.compile(r"-----BEGIN SSH HOST KEY KEYS-----\r?\n(.*?)\r?\n"
                        r"-----END SSH HOST KEY KEYS-----", re.S)


def parse_console(text: str) -> Verdict:
    """``openstack console log show``: cirros reached its login prompt."""
    if _LOGIN.search(text):
        return Verdict(True, "login prompt on the console")
    tail = [line for line in text.replace("\r", "").splitlines() if line.strip()][-3:]
    seen = ("last lines: " + " | ".join(tail)) if tail else "the console log is empty"
    return Verdict(False, f"no login prompt on the console; {seen}",
                   "read `openstack console log show oslab-verify-vm`; under qemu (no KVM) "
                   "cirros takes a few minutes to boot")


def console_host_keys(text: str) -> list[str]:
    """The host keys cirros prints between ``BEGIN/END SSH HOST KEY KEYS`` (newest block),
    preferred type first (ed25519, ecdsa, rsa)."""
    blocks = _HOST_KEYS.findall(text)
    if not blocks:
        return []
    keys = [line.strip() for line in blocks[-1].splitlines()
            if line.strip().startswith(("ssh-", "ecdsa-"))]
    order = {"ssh-ed25519": 0, "ecdsa-sha2-nistp256": 1, "ssh-rsa": 2}
    return sorted(keys, key=lambda k: order.get(k.split()[0], 9))


def parse_partitions(text: str, device: str) -> Verdict:
    """``cat /proc/partitions`` in the instance: the attached disk is there."""
    name = device.rsplit("/", 1)[-1] or "vdb"
    names = [line.split()[-1] for line in text.splitlines()[2:] if len(line.split()) == 4]
    if name in names:
        return Verdict(True, f"{device or name} seen inside the instance")
    return Verdict(False, f"{name} not in /proc/partitions (has: {', '.join(names)})",
                   "look at /var/log/nova/nova-compute.log on the compute node and "
                   "/var/log/cinder/volume.log (iSCSI target, LVM) on the controller")


def parse_dashboard(status: int, body: str, layer: Layer) -> Verdict:
    """The dashboard's answer: Horizon's login page (a form posting username and password)."""
    if status == 0:
        return Verdict(False, f"nothing answers: {body}",
                       f"systemctl status {layer.unit('web')[0]} on the controller; is port 80 "
                       "open?")
    if status != 200:
        return Verdict(False, f"HTTP {status}",
                       f"{layer.path('web-log')} on the controller (Horizon's WSGIApplication"
                       "Group, ALLOWED_HOSTS, WEBROOT)")
    if 'name="username"' in body and 'name="password"' in body:
        return Verdict(True, "login page")
    return Verdict(False, "HTTP 200 but no login form in the page",
                   f"{layer.path('horizon-settings')} (WEBROOT, OPENSTACK_HOST)")


def explain(result: Result, what: str, layer: Layer) -> CheckFailed:
    """Turn a failed ``openstack`` command into a failure that says what to look at."""
    err = (result.stderr or result.stdout).strip()
    last = err.splitlines()[-1] if err else f"exit code {result.returncode}"
    if "(HTTP 401)" in err or "requires authentication" in err:
        return CheckFailed(f"{what}: authentication failed: {last}",
                           "the openrc's OS_USERNAME/OS_PASSWORD/OS_PROJECT_NAME do not match "
                           "keystone: compare `oslab openrc admin --print` with the keystone "
                           "bootstrap; /var/log/keystone/keystone.log")
    m = re.search(r"Unable to establish connection to (\S+?):? ", err)
    if m and "/auth/tokens" not in m.group(1):
        return CheckFailed(f"{what}: cannot reach {m.group(1)}",
                           "is that service running on the controller (systemctl status; its "
                           "log under /var/log/), and is its catalog endpoint right?")
    if m or "Failed to discover" in err:
        return CheckFailed(f"{what}: cannot reach keystone: {last}",
                           f"is keystone running on the controller (systemctl status "
                           f"{layer.unit('keystone')[0]}), and is OS_AUTH_URL in the openrc "
                           "right?")
    m = re.search(r"(public|internal|admin) endpoint for (\S+) service(?: in \S+ region)? "
                  r"not found", err)
    if m:
        return CheckFailed(f"{what}: {m.group(0)}",
                           f"the {m.group(2)} service is not in the catalog: "
                           "`openstack catalog list`; rerun its install step")
    if "command not found" in err:
        return CheckFailed(f"{what}: {last}", "install python3-openstackclient on the node")
    if result.returncode == -1 or "timed out" in err:
        return CheckFailed(f"{what}: {last}", "the service may be hung; see its log")
    return CheckFailed(f"{what}: {last}", "run the command on the controller with --debug")
