"""`oslab verify`: prove the cloud works, one reported row per check.

A check is a command run on the controller (``. /root/admin-openrc && openstack ... -f json``)
plus a *parser*: a pure function from the command's output to a :class:`Verdict` (passed, what
was seen, what to look at). The parsers are tested from recorded client output. The
:class:`Verifier` composes the checks in order: service health (compute services, network
agents, volume services, ``nova-status``/``placement-status upgrade check``, the catalog and its
endpoints, a token for admin and demo), the cirros image, the networks, an instance reached by
ping and SSH with its console log, a volume seen inside the instance, and the dashboard. Each
check becomes a :class:`Row` (name, result, seconds, details, and on failure what to look at).

Every resource a check creates is written to a ledger (also kept in the lab's state dir, so a
run that died is cleaned up by the next one); without ``keep`` the ledger is torn down at the
end, newest first, so dependants go before what they depend on.

The nodes are reached through ``oslab.ssh.NodeConn``, so tests can pass a local runner;
:func:`verify_lab` wires the real lab (SSH with pinned host keys).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from oslab.errors import OslabError
from oslab.files import write_atomic
from oslab.install import instance_image, openrc
from oslab.install.instance_image import CIRROS, InstanceImage
from oslab.spec import LabSpec, Node, Scope
from oslab.ssh import NodeConn, Result
from oslab.state import LabState

# -- what is checked ------------------------------------------------------------------------------

# The image (cirros by default, or a local one with its manifest) is chosen by
# oslab.install.instance_image.choose; the checks take what they need from the choice.

# service type -> the service that registers it (for messages)
EXPECTED_SERVICES: dict[str, str] = {
    "identity": "keystone", "image": "glance", "placement": "placement",
    "compute": "nova", "network": "neutron", "volumev3": "cinder",
}
INTERFACES = ("public", "internal", "admin")
PHYSNET = "provider"
PREFIX = "oslab-verify"
TAG = PREFIX
SELF_SERVICE_CANDIDATES = ("172.16.1.0/24", "172.16.2.0/24", "192.168.111.0/24")
REMOTE_TMP = "/var/tmp"


class Status(StrEnum):
    PASS = "pass"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True)
class Verdict:
    """What a parser concluded from one command's output."""

    ok: bool
    details: str
    hint: str = ""


@dataclass(frozen=True)
class Row:
    name: str
    status: Status
    seconds: float
    details: str = ""
    hint: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # resources left in place (--keep)

    @property
    def ok(self) -> bool:
        return all(r.status is not Status.FAIL for r in self.rows)

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.status is Status.FAIL]

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.rows)


class CheckFailed(Exception):
    """A check failed: ``details`` says what was seen, ``hint`` what to look at."""

    def __init__(self, details: str, hint: str = "") -> None:
        super().__init__(details)
        self.details = details
        self.hint = hint


# -- how nodes are reached ------------------------------------------------------------------------


class LocalRunner:
    """A ``NodeConn`` that runs commands with bash on this machine (the host side, and tests).
    A command that outlives ``timeout`` raises OslabError."""

    name = "localhost"

    def __init__(self, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.env = dict(env) if env is not None else None
        self.cwd = cwd

    def run(self, command: str, *, timeout: float, stdin: str | None = None,
            secrets: Sequence[str] = (), log: IO[str] | None = None) -> Result:
        from oslab.ssh import mask
        try:
            proc = subprocess.run(["bash", "-c", command], input=stdin, capture_output=True,
                                  text=True, timeout=timeout, env=self.env, cwd=self.cwd,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise OslabError(f"timed out after {timeout:.0f}s: {mask(command, secrets)}") from exc
        result = Result(mask(command, secrets), proc.returncode, proc.stdout,
                        mask(proc.stderr, secrets))
        if log is not None:  # as oslab.ssh.Session logs a command
            log.write(f"$ {result.command}\n"
                      + "".join(mask(line, secrets) + "\n" for line in result.stdout.splitlines())
                      + "".join(f"! {line}\n" for line in result.stderr.splitlines())
                      + f"# exit {result.returncode}\n")
        return result

    def put(self, path: str, data: bytes, *, timeout: float) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch(mode=0o600)
        p.write_bytes(data)

    def close(self) -> None:
        pass


HttpGet = Callable[[str, float], tuple[int, str]]
GuestConnect = Callable[[str, str], NodeConn]  # (address, pinned host key line) -> runner


def http_get(url: str, timeout: float) -> tuple[int, str]:
    """(HTTP status, body) of a GET; (0, reason) when nothing answers."""
    req = urllib.request.Request(url, headers={"User-Agent": "oslab-verify"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read(1 << 20).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        with contextlib.closing(exc):
            return exc.code, exc.read(1 << 16).decode(errors="replace")
    except OSError as exc:
        return 0, str(getattr(exc, "reason", exc))


# -- parsers (pure: output in, verdict out) -------------------------------------------------------


def load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        first = text.strip().splitlines()[0] if text.strip() else "(no output)"
        raise CheckFailed(f"{what}: not JSON: {first[:200]}",
                          "run the command on the controller and read its output") from exc


def _rows(text: str, what: str) -> list[dict[str, Any]]:
    data = load_json(text, what)
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise CheckFailed(f"{what}: expected a JSON list of rows")
    return data


def parse_compute_services(text: str) -> Verdict:
    """``openstack compute service list -f json``: every service enabled and up, and at least
    a conductor, a scheduler and one nova-compute."""
    rows = _rows(text, "compute service list")
    down = [f"{r.get('Binary')} on {r.get('Host')} is {r.get('State')}"
            for r in rows if r.get("State") != "up" and r.get("Status") == "enabled"]
    have = {str(r.get("Binary")) for r in rows}
    missing = [b for b in ("nova-conductor", "nova-scheduler", "nova-compute") if b not in have]
    if down or missing:
        parts = down + [f"no {b} registered" for b in missing]
        hosts = sorted({str(r.get("Host")) for r in rows if r.get("State") != "up"})
        return Verdict(False, "; ".join(parts),
                       "journalctl -u openstack-nova-compute (or -conductor, -scheduler) on "
                       f"{', '.join(hosts) or 'the node'}; /var/log/nova/*.log; is RabbitMQ up "
                       "and are the clocks in step?")
    computes = sorted(str(r.get("Host")) for r in rows if r.get("Binary") == "nova-compute")
    return Verdict(True, f"{len(rows)} up; nova-compute on {', '.join(computes)}")


def parse_network_agents(text: str) -> Verdict:
    """``openstack network agent list -f json``: every agent alive (``Alive`` is a boolean
    in machine-readable output, ``:-)`` only in the table) and administratively up."""
    rows = _rows(text, "network agent list")
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


def parse_volume_services(text: str) -> Verdict:
    """``openstack volume service list -f json``: cinder-scheduler and cinder-volume up."""
    rows = _rows(text, "volume service list")
    down = [f"{r.get('Binary')} on {r.get('Host')} is {r.get('State')}"
            for r in rows if r.get("State") != "up" and r.get("Status") == "enabled"]
    have = {str(r.get("Binary")) for r in rows}
    missing = [b for b in ("cinder-scheduler", "cinder-volume") if b not in have]
    if down or missing:
        return Verdict(False, "; ".join(down + [f"no {b} registered" for b in missing]),
                       "journalctl -u openstack-cinder-volume -u openstack-cinder-scheduler; "
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
    rows = _rows(text, "catalog list")
    found: dict[str, set[str]] = {}
    for r in rows:
        kinds = found.setdefault(str(r.get("Type")), set())
        for ep in r.get("Endpoints") or []:
            if isinstance(ep, dict):
                kinds.add(str(ep.get("interface")))
    return _catalog_verdict(found, expected)


def parse_endpoints(text: str, expected: Mapping[str, str] = EXPECTED_SERVICES) -> Verdict:
    """``openstack endpoint list -f json``: the same, from the endpoint rows (enabled ones)."""
    rows = _rows(text, "endpoint list")
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


def parse_dashboard(status: int, body: str) -> Verdict:
    """The dashboard's answer: Horizon's login page (a form posting username and password)."""
    if status == 0:
        return Verdict(False, f"nothing answers: {body}",
                       "systemctl status httpd on the controller; is port 80 open?")
    if status != 200:
        return Verdict(False, f"HTTP {status}",
                       "/var/log/httpd/error_log on the controller (Horizon's WSGIApplication"
                       "Group, ALLOWED_HOSTS, WEBROOT)")
    if 'name="username"' in body and 'name="password"' in body:
        return Verdict(True, "login page")
    return Verdict(False, "HTTP 200 but no login form in the page",
                   "/etc/openstack-dashboard/local_settings (WEBROOT, OPENSTACK_HOST)")


def explain(result: Result, what: str) -> CheckFailed:
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
                           "is httpd running on the controller (systemctl status httpd), and "
                           "is OS_AUTH_URL in the openrc right?")
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


# -- pure helpers for the network layout ---------------------------------------------------------


def allocation_pool(cidr: ipaddress.IPv4Network,
                    gateway: ipaddress.IPv4Address) -> tuple[ipaddress.IPv4Address,
                                                             ipaddress.IPv4Address]:
    """Floating IPs: the upper half of the provider range (the install guide's .101-.250 on a
    /24 is the same idea), never the gateway (the host's side of the bridge)."""
    first = cidr.network_address + 1
    last = cidr.broadcast_address - 1
    start = max(first + (int(last) - int(first)) // 2, gateway + 1)
    if not start <= last:
        raise OslabError(f"the provider network {cidr} has no room for floating IPs",
                         hint="use a /28 or larger provider network")
    return start, last


def self_service_cidr(spec: LabSpec) -> ipaddress.IPv4Network:
    """The self-service subnet: the first candidate that overlaps no lab network."""
    for text in SELF_SERVICE_CANDIDATES:
        net = ipaddress.IPv4Network(text)
        if not any(net.overlaps(n.cidr) for n in spec.networks):
            return net
    raise OslabError("no free range for the self-service test network",
                     hint="the lab's networks overlap every candidate: "
                          + ", ".join(SELF_SERVICE_CANDIDATES))


def osc(who: str, args: str, openrc_dir: str = openrc.REMOTE_DIR) -> str:
    """The shell command for ``openstack ARGS`` as ``who`` (admin or demo)."""
    return f". {openrc_dir}/{openrc.credentials(who).filename} && openstack {args}"


# -- the ledger of created resources -------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    """A resource the verification made; ``delete`` (openstack arguments) removes it."""

    kind: str
    ref: str  # ID (or name)
    who: str
    delete: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "ref": self.ref, "who": self.who, "delete": self.delete}


class Ledger:
    """Resources in creation order; persisted to ``path`` (if given) after every change."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.items: list[Created] = []

    @classmethod
    def load(cls, path: Path) -> list[Created]:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return []
        return [Created(**item) for item in data if isinstance(item, dict)]

    def add(self, item: Created) -> None:
        self.items.append(item)
        self._save()

    def remove(self, item: Created) -> None:
        self.items.remove(item)
        self._save()

    def teardown_order(self) -> list[Created]:
        return list(reversed(self.items))

    def _save(self) -> None:
        if self.path is None:
            return
        if not self.items:
            self.path.unlink(missing_ok=True)
            return
        write_atomic(self.path, json.dumps([i.as_dict() for i in self.items], indent=1) + "\n")


# -- the verifier ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeouts:
    command: float = 180.0
    image_active: float = 300.0
    server_active: float = 600.0
    boot: float = 900.0  # login prompt on the console (qemu without KVM is slow)
    reach: float = 180.0  # ping and SSH after the login prompt
    volume: float = 180.0
    delete: float = 300.0
    poll: float = 5.0


@dataclass
class Lab:
    """What the verifier needs of a lab; :func:`verify_lab` builds it for a real one."""

    spec: LabSpec
    controller: NodeConn
    computes: Mapping[str, NodeConn]  # compute node name -> runner (for nova-compute's log)
    host: NodeConn  # the host side of the provider network (ping)
    guest: GuestConnect  # SSH into the instance as the image's user with the lab key
    image: Callable[[], Path]  # the image file on the host (cirros downloaded once, verified)
    public_key: str  # the lab's SSH public key, for the keypair
    instance: InstanceImage = CIRROS  # what the image is: its label, user, format, minimums
    secrets: Sequence[str] = ()
    http: HttpGet = http_get
    openrc_dir: str = openrc.REMOTE_DIR
    ledger_path: Path | None = None
    expected: Mapping[str, str] = field(default_factory=lambda: dict(EXPECTED_SERVICES))
    timeouts: Timeouts = field(default_factory=Timeouts)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    say: Callable[[str], None] = lambda _line: None


# The checks in the order they run; ``Verifier.run(only=...)`` runs a subset.
GROUPS = ("identity", "catalog", "services", "image", "network", "instance", "volume",
          "dashboard")
# What a lab of each scope installs, so what its verification checks and expects in the catalog.
SCOPE_GROUPS: dict[Scope, tuple[str, ...]] = {Scope.ALL: GROUPS,
                                               Scope.IDENTITY: ("identity", "catalog")}
SCOPE_SERVICES: dict[Scope, tuple[str, ...]] = {Scope.ALL: tuple(EXPECTED_SERVICES),
                                                 Scope.IDENTITY: ("identity",)}


def expected_services(scope: Scope) -> dict[str, str]:
    """The catalog's service types (and their service names) a lab of ``scope`` must have."""
    return {kind: EXPECTED_SERVICES[kind] for kind in SCOPE_SERVICES[scope]}


class Verifier:
    """Runs the checks against a :class:`Lab` and records a :class:`Report`."""

    def __init__(self, lab: Lab, keep: bool = False) -> None:
        self.lab = lab
        self.keep = keep
        self.report = Report()
        self.ledger = Ledger(lab.ledger_path)
        self.t = lab.timeouts
        self.ids: dict[str, str] = {}
        self.failed_groups: set[str] = set()
        self._guest: NodeConn | None = None

    # -- plumbing --

    def sh(self, command: str, timeout: float | None = None,
           node: NodeConn | None = None) -> Result:
        runner = node if node is not None else self.lab.controller
        try:
            return runner.run(command, timeout=timeout or self.t.command,
                              secrets=self.lab.secrets)
        except OslabError as exc:
            return Result(command, -1, "", exc.message)

    def openstack(self, args: str, who: str = openrc.ADMIN, what: str = "",
                  timeout: float | None = None) -> str:
        """Run ``openstack ARGS`` as ``who``; its stdout, or CheckFailed explaining why not."""
        result = self.sh(osc(who, args, self.lab.openrc_dir), timeout)
        if not result.ok:
            raise explain(result, what or f"openstack {args.split(' -f ')[0]}")
        return result.stdout

    def wait(self, what: str, timeout: float, probe: Callable[[], bool]) -> bool:
        """Call ``probe`` until it returns True or ``timeout`` passes (bounded poll)."""
        deadline = self.lab.clock() + timeout
        while True:
            if probe():
                return True
            if self.lab.clock() >= deadline:
                return False
            self.lab.sleep(self.t.poll)

    @contextlib.contextmanager
    def row(self, name: str, group: str) -> Iterator[list[str]]:
        """Time one check; ``details`` (a list the body appends to) becomes the row's text.
        A CheckFailed makes the row FAIL and marks the group failed."""
        details: list[str] = []
        start = self.lab.clock()
        self.lab.say(f"verify: {name} ...")
        try:
            yield details
        except CheckFailed as exc:
            self._add(Row(name, Status.FAIL, self.lab.clock() - start, exc.details, exc.hint))
            self.failed_groups.add(group)
        except OslabError as exc:
            self._add(Row(name, Status.FAIL, self.lab.clock() - start, exc.message,
                          exc.hint or ""))
            self.failed_groups.add(group)
        else:
            self._add(Row(name, Status.PASS, self.lab.clock() - start, "; ".join(details)))

    def _add(self, row: Row) -> None:
        self.report.rows.append(row)
        self.lab.say(f"verify: {row.name}: {row.status.value} ({row.seconds:.1f}s)"
                     + (f" {row.details}" if row.details else ""))

    def skip(self, name: str, why: str) -> None:
        self._add(Row(name, Status.SKIP, 0.0, why))

    def needs(self, name: str, group: str, *required: str) -> bool:
        failed = [g for g in required if g in self.failed_groups]
        if failed:
            self.skip(name, f"needs {', '.join(failed)}")
            self.failed_groups.add(group)
            return False
        return True

    def create(self, kind: str, args: str, who: str, delete: str, what: str = "") -> str:
        """``openstack ARGS -f json`` that creates a resource; record it; return its id."""
        out = self.openstack(f"{args} -f json", who, what or f"create {kind}")
        ref = str(field_of(out, "id", f"create {kind}"))
        self.ledger.add(Created(kind, ref, who, delete.format(id=ref)))
        return ref

    def record(self, kind: str, ref: str, who: str, delete: str) -> None:
        self.ledger.add(Created(kind, ref, who, delete))

    # -- the run --

    def run(self, only: Sequence[str] = GROUPS) -> Report:
        unknown = [g for g in only if g not in GROUPS]
        if unknown:
            raise OslabError(f"unknown check group(s): {', '.join(unknown)}",
                             hint="choose from: " + ", ".join(GROUPS))
        checks: dict[str, Callable[[], None]] = {
            "identity": self.check_identity, "catalog": self.check_catalog,
            "services": self.check_services, "image": self.check_image,
            "network": self.check_network, "instance": self.check_instance,
            "volume": self.check_volume, "dashboard": self.check_dashboard,
        }
        self.sweep()
        try:
            for group in GROUPS:
                if group in only:
                    checks[group]()
        finally:
            self.finish()
        return self.report

    def sweep(self) -> None:
        """Remove what an earlier run left behind (it died, or ran with --keep)."""
        path = self.lab.ledger_path
        old = Ledger.load(path) if path is not None and path.exists() else []
        if not old:
            return
        start = self.lab.clock()
        left = self.teardown(list(reversed(old)))
        if path is not None:
            path.unlink(missing_ok=True)
        if left:
            self._add(Row("cleanup of an earlier run", Status.FAIL, self.lab.clock() - start,
                          "could not delete: " + ", ".join(left),
                          "delete them by hand (openstack ... delete), then rerun"))
        else:
            self._add(Row("cleanup of an earlier run", Status.PASS, self.lab.clock() - start,
                          f"{len(old)} resources removed"))

    def teardown(self, items: Sequence[Created]) -> list[str]:
        """Delete ``items`` in the given order; a resource already gone counts as deleted.
        Returns what could not be deleted."""
        left: list[str] = []
        for item in items:
            result = self.sh(osc(item.who, item.delete, self.lab.openrc_dir), self.t.delete)
            gone = result.ok or re.search(r"No \S+ found|not found|could not be found|404|"
                                          r"does not exist|No .* exists", result.stderr, re.I)
            if not gone:
                left.append(f"{item.kind} {item.ref}")
        return left

    def finish(self) -> None:
        items = self.ledger.teardown_order()
        if not items:
            return
        if self.keep:
            self.report.kept = [f"{i.kind} {i.ref}" for i in items]
            self.skip("cleanup", f"--keep: {len(items)} resources kept (the next "
                                 "`oslab verify` removes them first)")
            return
        start = self.lab.clock()
        left = self.teardown(items)
        for item in items:
            if f"{item.kind} {item.ref}" not in left:
                self.ledger.remove(item)
        if left:
            self._add(Row("cleanup", Status.FAIL, self.lab.clock() - start,
                          "could not delete: " + ", ".join(left),
                          "they stay listed in the lab's state dir; the next `oslab verify` "
                          "tries again"))
        else:
            self._add(Row("cleanup", Status.PASS, self.lab.clock() - start,
                          f"{len(items)} resources removed"))

    # -- 1. service health --

    def check_identity(self) -> None:
        for who in (openrc.ADMIN, openrc.DEMO):
            with self.row(f"identity: {who} token", "identity") as d:
                d.append(parse_token(self.openstack("token issue -f json", who,
                                                    f"{who}: token issue")).details)

    def check_catalog(self) -> None:
        if not self.needs("catalog", "catalog", "identity"):
            return
        self.simple("catalog", "catalog", "catalog list -f json",
                    lambda t: parse_catalog(t, self.lab.expected))
        self.simple("endpoints", "catalog", "endpoint list -f json",
                    lambda t: parse_endpoints(t, self.lab.expected))

    def check_services(self) -> None:
        g = "services"
        if not self.needs("services", g, "identity"):
            return
        self.simple("compute services", g, "compute service list -f json",
                    parse_compute_services)
        self.simple("network agents", g, "network agent list -f json", parse_network_agents)
        self.simple("volume services", g, "volume service list -f json", parse_volume_services)
        for command in ("nova-status upgrade check", "placement-status upgrade check"):
            with self.row(command, g) as d:
                result = self.sh(command)
                verdict = parse_upgrade_check(result.stdout, result.returncode, command)
                if not verdict.ok:
                    raise CheckFailed(verdict.details, verdict.hint)
                d.append(verdict.details)

    def simple(self, name: str, group: str, args: str,
               parse: Callable[[str], Verdict]) -> None:
        with self.row(name, group) as d:
            verdict = parse(self.openstack(args, openrc.ADMIN, name))
            if not verdict.ok:
                raise CheckFailed(verdict.details, verdict.hint)
            d.append(verdict.details)

    # -- 2. image --

    def check_image(self) -> None:
        spec = self.lab.instance
        name = f"image: {spec.label} active"
        if not self.needs(name, "image", "identity"):
            return
        with self.row(name, "image") as d:
            local = self.lab.image()
            glance_name = spec.glance_name(PREFIX)
            remote = f"{REMOTE_TMP}/{glance_name}.img"
            data = local.read_bytes()
            have = self.sh(f"sha256sum {remote} 2>/dev/null")
            if not have.stdout.startswith(hashlib.sha256(data).hexdigest()):
                self.lab.controller.put(remote, data, timeout=self.t.command)
                d.append("uploaded")
            image = self.create("image", instance_image.create_args(spec, remote, glance_name),
                                openrc.ADMIN, "image delete {id}")
            self.ids["image"] = image
            status = [""]

            def active() -> bool:
                status[0] = str(field_of(self.openstack(f"image show {image} -f json"),
                                         "status", "image show"))
                if status[0] in ("killed", "deleted"):
                    raise CheckFailed(f"the image went {status[0]}",
                                      "/var/log/glance/api.log on the controller "
                                      "(filesystem_store_datadir, disk space)")
                return status[0] == "active"

            if not self.wait("image", self.t.image_active, active):
                raise CheckFailed(f"image still {status[0]} after {self.t.image_active:.0f}s",
                                  "/var/log/glance/api.log on the controller")
            self.sh(f"rm -f {remote}")
            d.append(f"{glance_name} {image} active")

    # -- 3. network --

    def check_network(self) -> None:
        g = "network"
        if not self.needs("network: provider and self-service", g, "identity"):
            return
        spec = self.lab.spec
        with self.row("network: provider (flat, physnet provider)", g) as d:
            rows = _rows(self.openstack(
                f"network list --provider-physical-network {PHYSNET} -f json"),
                "network list")
            if rows:
                self.ids["provider"] = str(rows[0]["ID"])
                d.append(f"using {rows[0].get('Name')} {rows[0]['ID']}")
            else:
                self.ids["provider"] = self.create(
                    "network", f"network create --share --external --provider-physical-network "
                    f"{PHYSNET} --provider-network-type flat {PREFIX}-provider",
                    openrc.ADMIN, "network delete {id}")
                start, end = allocation_pool(spec.provider.cidr, spec.provider.gateway)
                self.create("subnet", f"subnet create --network {self.ids['provider']} "
                            f"--subnet-range {spec.provider.cidr} "
                            f"--gateway {spec.provider.gateway} "
                            f"--allocation-pool start={start},end={end} "
                            f"--dns-nameserver {spec.provider.gateway} {PREFIX}-provider",
                            openrc.ADMIN, "subnet delete {id}")
                d.append(f"created on {spec.provider.cidr}, gateway {spec.provider.gateway}, "
                         f"floating IPs {start}-{end}")
        if g in self.failed_groups:
            return
        with self.row("network: self-service, router, security group, keypair", g) as d:
            demo = openrc.DEMO
            cidr = self_service_cidr(spec)
            net = self.create("network", f"network create {PREFIX}-selfservice", demo,
                              "network delete {id}")
            self.ids["selfservice"] = net
            subnet = self.create("subnet", f"subnet create --network {net} --subnet-range "
                                 f"{cidr} --gateway {cidr.network_address + 1} "
                                 f"--dns-nameserver {spec.provider.gateway} "
                                 f"{PREFIX}-selfservice", demo, "subnet delete {id}")
            router = self.create("router", f"router create {PREFIX}-router", demo,
                                 "router delete {id}")
            self.ids["router"] = router
            self.openstack(f"router set --external-gateway {self.ids['provider']} {router}",
                           demo, "router set --external-gateway")
            self.record("router gateway", router, demo, f"router unset --external-gateway "
                                                         f"{router}")
            self.openstack(f"router add subnet {router} {subnet}", demo, "router add subnet")
            self.record("router interface", subnet, demo,
                        f"router remove subnet {router} {subnet}")
            sg = self.create("security group", f"security group create {PREFIX}-sg", demo,
                             "security group delete {id}")
            self.ids["sg"] = sg
            self.openstack(f"security group rule create --proto icmp {sg} -f json", demo,
                           "security group rule (ICMP)")
            self.openstack(f"security group rule create --proto tcp --dst-port 22 {sg} -f json",
                           demo, "security group rule (SSH)")
            pub = f"{REMOTE_TMP}/{PREFIX}-key.pub"
            self.lab.controller.put(pub, (self.lab.public_key.strip() + "\n").encode(),
                                    timeout=self.t.command)
            out = self.openstack(f"keypair create --public-key {pub} {PREFIX}-key -f json",
                                 demo, "keypair create")
            self.record("keypair", f"{PREFIX}-key", demo, f"keypair delete {PREFIX}-key")
            self.sh(f"rm -f {pub}")
            d.append(f"{cidr} routed to the provider network; ICMP+SSH allowed; keypair "
                     f"{field_of(out, 'fingerprint', 'keypair create')}")

    # -- 4. instance --

    def check_instance(self) -> None:
        g = "instance"
        label = self.lab.instance.label
        if not self.needs(f"instance: boot {label}", g, "image", "network"):
            return
        demo = openrc.DEMO
        with self.row(f"instance: boot {label}", g) as d:
            flavor = self.ensure_flavor()
            server = self.create(
                "server", f"server create --flavor {flavor} --image {self.ids['image']} "
                f"--nic net-id={self.ids['selfservice']} --security-group {self.ids['sg']} "
                f"--key-name {PREFIX}-key {PREFIX}-vm", demo, "server delete --wait {id}")
            self.ids["server"] = server
            state = [ServerState("", "", "", {})]

            def settled() -> bool:
                state[0] = parse_server(self.openstack(f"server show {server} -f json"))
                return state[0].status in ("ACTIVE", "ERROR")

            done = self.wait("server", self.t.server_active, settled)
            if state[0].status != "ACTIVE":
                what = (f"server {state[0].status}: {state[0].fault}" if done else
                        f"server still {state[0].status} after {self.t.server_active:.0f}s")
                raise CheckFailed(what + self.compute_log(state[0].host),
                                  "the fault above; /var/log/nova/nova-compute.log on the "
                                  "compute node, nova-scheduler.log and nova-conductor.log on "
                                  "the controller")
            self.ids["fixed_ip"] = state[0].fixed_ips[0] if state[0].fixed_ips else ""
            d.append(f"ACTIVE on {state[0].host or '?'} at {self.ids['fixed_ip']}")
        if g in self.failed_groups:
            return
        with self.row("instance: console login prompt", g) as d:
            log = [""]

            def prompt() -> bool:
                log[0] = self.openstack(f"console log show {server}", demo, "console log show")
                return parse_console(log[0]).ok

            if not self.wait("console", self.t.boot, prompt):
                verdict = parse_console(log[0])
                raise CheckFailed(verdict.details, verdict.hint)
            keys = console_host_keys(log[0])
            self.ids["host_key"] = keys[0] if keys else ""
            d.append("login prompt" + (f"; host key {keys[0].split()[0]} pinned" if keys
                                       else "; no host keys printed"))
        with self.row("instance: floating IP, ping, SSH", g) as d:
            out = self.openstack(f"floating ip create --description {TAG} --tag {TAG} "
                                 f"{self.ids['provider']} -f json", demo, "floating ip create")
            fip = str(field_of(out, "floating_ip_address", "floating ip create"))
            self.record("floating ip", str(field_of(out, "id", "floating ip create")), demo,
                        f"floating ip delete {field_of(out, 'id', 'floating ip create')}")
            self.ids["fip"] = fip
            self.openstack(f"server add floating ip {server} {fip}", demo,
                           "server add floating ip")
            if not self.wait("ping", self.t.reach, lambda: self.sh(
                    f"ping -c 1 -W 2 {fip}", 30, self.lab.host).ok):
                raise CheckFailed(f"no answer to ping {fip} from the host"
                                  + self.router_ping(), "the provider bridge on the host, the "
                                  "router's gateway (openstack router show), the L3 agent's "
                                  "log /var/log/neutron/l3-agent.log")
            d.append(f"{fip} answers ping")
            if not self.ids.get("host_key"):
                raise CheckFailed(f"{label} printed no SSH host key on its console",
                                  "read `openstack console log show`; SSH is not tried without "
                                  "a host key to pin")
            result = self.guest_run("cat /proc/partitions", self.t.reach)
            if not result.ok:
                user = self.lab.instance.user
                raise CheckFailed(f"SSH to {user}@{fip}: {result.stderr.strip()[:200]}",
                                  "the keypair (openstack keypair show), the security group "
                                  "rule for port 22, the metadata agent (the instance fetches the "
                                  "key from it)")
            self.ids["partitions"] = result.stdout
            d.append(f"SSH as {self.lab.instance.user} with the lab key")

    def guest_run(self, command: str, timeout: float) -> Result:
        """Run ``command`` in the instance over SSH (cirros, the lab key, the host key from
        its console pinned), retrying the connection until ``timeout``."""
        last = [Result(command, -1, "", "not tried")]

        def attempt() -> bool:
            try:
                if self._guest is None:
                    self._guest = self.lab.guest(self.ids["fip"], self.ids["host_key"])
                last[0] = self._guest.run(command, timeout=60.0, secrets=self.lab.secrets)
            except OslabError as exc:
                self._guest = None
                last[0] = Result(command, -1, "", exc.message)
            return last[0].ok

        self.wait("ssh", timeout, attempt)
        return last[0]

    def ensure_flavor(self) -> str:
        flavor, ram, disk = self.lab.instance.flavor()
        exists = self.sh(osc(openrc.ADMIN, f"flavor show {flavor} -f json",
                             self.lab.openrc_dir))
        if not exists.ok:
            self.openstack(f"flavor create --vcpus 1 --ram {ram} --disk {disk} {flavor} -f json",
                           openrc.ADMIN, "flavor create")
            self.record("flavor", flavor, openrc.ADMIN, f"flavor delete {flavor}")
        return flavor

    def compute_log(self, host: str) -> str:
        nodes = {host: self.lab.computes[host]} if host in self.lab.computes else \
            dict(self.lab.computes)
        parts = []
        for name, runner in nodes.items():
            out = self.sh("tail -n 15 /var/log/nova/nova-compute.log", 30, runner)
            text = out.stdout.strip() or out.stderr.strip()
            parts.append(f"\nnova-compute.log on {name}:\n" + "\n".join(
                "  | " + line for line in text.splitlines()))
        return "".join(parts)

    def router_ping(self) -> str:
        fixed = self.ids.get("fixed_ip", "")
        router = self.ids.get("router", "")
        if not (fixed and router):
            return ""
        inside = self.sh(f"ip netns exec qrouter-{router} ping -c 2 -W 2 {fixed}", 30)
        return ("; from the router's namespace on the controller the instance answers, so the "
                "provider side (floating IP, gateway, host bridge) is at fault" if inside.ok
                else "; it does not answer inside the router's namespace either (DHCP, the "
                     "instance's network, the OVS agent)")

    # -- 5. volume --

    def check_volume(self) -> None:
        g = "volume"
        if not self.needs("volume: attach, see, detach", g, "instance"):
            return
        demo = openrc.DEMO
        server = self.ids["server"]
        with self.row("volume: attach, see, detach", g) as d:
            vol = self.create("volume", f"volume create --size 1 {PREFIX}-vol", demo,
                              "volume delete {id}")
            self.wait_volume(vol, "available")
            self.openstack(f"server add volume {server} {vol}", demo, "server add volume")
            self.record("attachment", vol, demo, f"server remove volume {server} {vol}")
            self.wait_volume(vol, "in-use")
            device = parse_volume_attachment(
                self.openstack(f"volume show {vol} -f json", demo), server) or "/dev/vdb"
            seen = [Verdict(False, "not tried")]

            def inside() -> bool:
                seen[0] = parse_partitions(self.guest_run("cat /proc/partitions", 60).stdout,
                                           device)
                return seen[0].ok

            if not self.wait("partitions", self.t.volume, inside):
                raise CheckFailed(seen[0].details, seen[0].hint)
            d.append(seen[0].details)
            self.openstack(f"server remove volume {server} {vol}", demo, "server remove volume")
            self.ledger.remove(next(i for i in self.ledger.items if i.kind == "attachment"))
            self.wait_volume(vol, "available")
            d.append("detached")

    def wait_volume(self, vol: str, want: str) -> None:
        status = [""]

        def ready() -> bool:
            status[0] = str(field_of(self.openstack(f"volume show {vol} -f json",
                                                    openrc.DEMO), "status", "volume show"))
            if status[0].startswith("error"):
                raise CheckFailed(f"volume {status[0]}", "/var/log/cinder/volume.log on the "
                                  "controller; vgs cinder-volumes; targetcli ls")
            return status[0] == want

        if not self.wait("volume", self.t.volume, ready):
            raise CheckFailed(f"volume still {status[0]} (want {want}) after "
                              f"{self.t.volume:.0f}s", "/var/log/cinder/volume.log; "
                              "/var/log/nova/nova-compute.log on the compute node")

    # -- 6. dashboard --

    def check_dashboard(self) -> None:
        url = dashboard_url(self.lab.spec)
        with self.row("dashboard", "dashboard") as d:
            verdict = parse_dashboard(*self.lab.http(url, 30.0))
            if not verdict.ok:
                raise CheckFailed(f"{url}: {verdict.details}", verdict.hint)
            d.append(f"{url}: {verdict.details}")


def dashboard_url(spec: LabSpec) -> str:
    return f"http://{spec.controller.address}/dashboard/"


# -- rendering ------------------------------------------------------------------------------------


def render_table(report: Report) -> str:
    """The verification table: one row per check; a failure says what to look at."""
    name_w = max([len("check")] + [len(r.name) for r in report.rows])
    lines = [f"{'check':<{name_w}}  {'result':<6}  {'time':>7}  details"]
    indent = " " * (name_w + 2 + 6 + 2 + 7 + 2)
    for r in report.rows:
        first, *rest = (r.details or "").splitlines() or [""]
        lines.append(f"{r.name:<{name_w}}  {r.status.value:<6}  {r.seconds:>6.1f}s  {first}"
                     .rstrip())
        lines.extend(indent + line for line in rest)
        if r.status is Status.FAIL and r.hint:
            lines.append(f"{indent}look at: {r.hint}")
    passed = sum(r.status is Status.PASS for r in report.rows)
    failed = len(report.failed)
    skipped = sum(r.status is Status.SKIP for r in report.rows)
    lines.append(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")
                 + f" in {report.seconds:.0f}s")
    if report.kept:
        lines.append("kept (--keep): " + ", ".join(report.kept))
    return "\n".join(lines)


def render_summary(spec: LabSpec, report: Report | None, stages: Mapping[str, float],
                   key_path: Path | None = None) -> str:
    """What `oslab up` prints at the end: nodes, dashboard, credentials, SSH, the verification
    table and the time per stage. Never a password: it says how to get one."""
    lines = [f"lab {spec.name}: OpenStack {spec.release}"]
    lines.append("nodes:")
    for n in spec.nodes:
        lines.append(f"  {n.name:<12} {n.role.value:<10} {n.address!s:<15} "
                     f"oslab ssh {n.name}")
    lines.append(f"dashboard:       {dashboard_url(spec)}  (domain Default, user admin or demo)")
    lines.append("admin password:  oslab openrc admin --print")
    lines.append("openrc files:    oslab openrc admin  /  oslab openrc demo  (path; "
                 ". it, then `openstack server list`)")
    ssh = f"oslab ssh {spec.controller.name}"
    if key_path is not None:
        ssh += f"   or   ssh -i {key_path} root@{spec.controller.address}"
    lines.append(f"ssh:             {ssh}")
    if report is not None:
        lines.append("verification:")
        lines.extend("  " + line for line in render_table(report).splitlines())
    if stages:
        lines.append("time per stage:")
        lines.extend(f"  {stage:<10} {seconds:>7.0f}s" for stage, seconds in stages.items())
        lines.append(f"  {'total':<10} {sum(stages.values()):>7.0f}s")
    return "\n".join(lines)


# -- the real lab ---------------------------------------------------------------------------------


def verify_lab(spec: LabSpec, state: LabState, *, keep: bool = False,
               say: Callable[[str], None] = lambda _line: None,
               timeouts: Timeouts | None = None,
               image: InstanceImage | None = None) -> Report:
    """Verify a running lab: SSH to its nodes (pinned host keys), write the openrc files
    (state dir and /root on the controller), run every check, clean up unless ``keep``.
    ``image`` is the instance image to boot (default: the spec's ``[verify] image``, else
    cirros)."""
    from oslab.ssh import HostKeyMismatch, Session, Target
    from oslab.state import cache_root

    chosen = image if image is not None else instance_image.choose(None, spec)

    key = state.ssh_key()
    sessions: list[Session] = []

    def connect(node: Node) -> Session:
        session = Session(state.node_target(node))
        sessions.append(session)
        return session

    def guest(address: str, host_key: str) -> NodeConn:
        try:
            session = Session(Target(f"{PREFIX}-vm", address, host_key, key.private_path,
                                     user=chosen.user), connect_timeout=20.0)
        except HostKeyMismatch as exc:
            raise OslabError(f"{address}: the host key differs from the one on the console"
                             ) from exc
        sessions.append(session)
        return session

    try:
        controller = connect(spec.controller)
        computes = {n.name: connect(n) for n in spec.nodes if n.is_compute}
        openrc.write_all(spec, state, controller)
        images = cache_root() / "images"
        lab = Lab(spec=spec, controller=controller, computes=computes, host=LocalRunner(),
                  guest=guest, image=lambda: instance_image.fetch(chosen, images),
                  public_key=key.public, instance=chosen,
                  secrets=tuple(state.known_passwords()),
                  ledger_path=state.dir / "verify-resources.json",
                  timeouts=timeouts or Timeouts(), say=say,
                  expected=expected_services(spec.scope))
        return Verifier(lab, keep=keep).run(only=SCOPE_GROUPS[spec.scope])
    finally:
        for s in sessions:
            with contextlib.suppress(Exception):
                s.close()
