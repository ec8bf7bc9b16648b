"""Shared fixtures. Integration tests drive the real `oslab` command against a real libvirtd
(qemu:///system) that runs inside the network namespace scripts/test.sh creates; pytest runs
there too, so every packet the tests send stays inside that namespace. That libvirtd has its
own socket, named by the LIBVIRT_DEFAULT_URI the harness (scripts/in-testns.sh) exports, which
`oslab`, virsh and ``URI`` here all use; a libvirtd the user runs is never touched."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
URI = os.environ.get("LIBVIRT_DEFAULT_URI") or "qemu:///system"
TEST_LAB_PREFIX = "tst"
# scripts/in-testns.sh's test libvirtd (one per namespace: OSLAB_TEST_NETNS, default oslab-test)
HARNESS_PIDFILE = Path(f"/run/{os.environ.get('OSLAB_TEST_NETNS') or 'oslab-test'}/libvirtd.pid")


def _netns_of(pid: int | str) -> str:
    out = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True, text=True)
    return out.stdout.strip()


def integration_problem() -> str | None:
    """Why integration tests cannot run here, or None when they can."""
    ns = _netns_of(os.getpid())
    if not ns:
        return "not inside a network namespace: run the suite with scripts/test.sh"
    if "socket=" not in URI:
        return "LIBVIRT_DEFAULT_URI does not name the test libvirtd's socket: run the suite " \
               "with scripts/test.sh (or scripts/in-testns.sh)"
    try:
        pid = HARNESS_PIDFILE.read_text().strip()
    except OSError:
        return f"no test libvirtd ({HARNESS_PIDFILE} is missing): run the suite with " \
               "scripts/test.sh"
    if not Path(f"/proc/{pid}").exists():
        return f"the test libvirtd (pid {pid}) is not running: run the suite with scripts/test.sh"
    if _netns_of(pid) != ns:
        return f"the test libvirtd (pid {pid}) does not run in this network namespace ({ns})"
    if not os.environ.get("OSLAB_TEST_ISO"):
        return "OSLAB_TEST_ISO is not set: scripts/test.sh builds the test guest and sets it"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problem = integration_problem()
    if problem is None:
        return
    if os.environ.get("OSLAB_REQUIRE_INTEGRATION") == "1":
        # scripts/test.sh (and so CI) must never pass by skipping the real tests
        raise pytest.UsageError(f"integration tests cannot run: {problem}")
    skip = pytest.mark.skip(reason=problem)
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


@dataclass
class Lab:
    """One test lab: a spec file in tmp_path, and the `oslab` command with its own state dirs."""

    name: str
    spec_path: Path
    home: Path
    nodes: list[str]
    addresses: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "oslab", "-f", str(self.spec_path), *args]

    def run(self, *args: str, check: bool = True, timeout: float = 1500,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.cmd(*args), capture_output=True, text=True, env=self.env,
                              timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"oslab {' '.join(args)} exited {proc.returncode}\n"
                                 f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def sh(self, node: str, command: str) -> str:
        """``command``'s output on ``node`` (over `oslab ssh`), stripped."""
        return self.run("ssh", node, "--", command).stdout.strip()

    def status(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.run("status", "--json").stdout)
        return data

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.cmd(*args), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=self.env)


_SUBNETS = iter(range(64, 250))


def lab_spec_text(name: str, iso: str, nodes: int, subnet: int, **lab_extra: object) -> str:
    mgmt = ipaddress.IPv4Network(f"10.{subnet}.0.0/24")
    prov = ipaddress.IPv4Network(f"10.{subnet}.1.0/24")
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in lab_extra.items())
    out = textwrap.dedent(f"""\
        [lab]
        name = "{name}"
        distro = "testlinux"
        install_timeout_s = 600
        boot_timeout_s = 300
        {extra}
        [iso]
        path = "{iso}"

        [networks.management]
        cidr = "{mgmt}"

        [networks.provider]
        cidr = "{prov}"
        """)
    for i in range(nodes):
        role = "controller" if i == 0 else "compute"
        out += textwrap.dedent(f"""
            [[nodes]]
            name = "{'ctl' if i == 0 else f'cmp{i}'}"
            role = "{role}"
            address = "{mgmt.network_address + 11 + i}"
            memory_mib = 384
            vcpus = 1
            disk_gib = 2
            """)
    return out


@pytest.fixture(scope="session")
def test_iso() -> str:
    return os.environ["OSLAB_TEST_ISO"]


class LabFactory:
    """Makes test labs under ``root``; ``cleanup()`` destroys every one, pass or fail."""

    def __init__(self, root: Path, iso: str) -> None:
        self.root = root
        self.iso = iso
        self.made: list[Lab] = []

    def __call__(self, nodes: int = 2, **lab_extra: object) -> Lab:
        name = f"{TEST_LAB_PREFIX}{secrets.token_hex(3)}"
        subnet = next(_SUBNETS)
        home = self.root / name
        home.mkdir(parents=True)
        spec_path = home / "lab.toml"
        spec_path.write_text(lab_spec_text(name, self.iso, nodes, subnet, **lab_extra))
        env = dict(os.environ, XDG_STATE_HOME=str(home / "state"),
                   XDG_CACHE_HOME=str(home / "cache"), HOME=str(home))
        names = ["ctl"] + [f"cmp{i}" for i in range(1, nodes)]
        addresses = {n: f"10.{subnet}.0.{11 + i}" for i, n in enumerate(names)}
        lab = Lab(name, spec_path, home, names, addresses, env)
        self.made.append(lab)
        return lab

    def cleanup(self) -> None:
        for lab in self.made:
            subprocess.run(lab.cmd("destroy", "--yes"), env=lab.env, capture_output=True,
                           timeout=300)


@pytest.fixture
def make_lab(tmp_path: Path, test_iso: str) -> Iterator[LabFactory]:
    factory = LabFactory(tmp_path, test_iso)
    yield factory
    factory.cleanup()


@pytest.fixture(scope="module")
def make_module_lab(tmp_path_factory: pytest.TempPathFactory,
                    test_iso: str) -> Iterator[LabFactory]:
    factory = LabFactory(tmp_path_factory.mktemp("labs"), test_iso)
    yield factory
    factory.cleanup()


@pytest.fixture(scope="session", autouse=True)
def sweep_test_labs() -> Iterator[None]:
    """At the end of the run, remove whatever any test lab left behind in libvirt."""
    yield
    if integration_problem() is not None:
        return
    import libvirt

    from oslab.access.inventory import destroy
    from oslab.access.state import LabState
    from oslab.errors import OslabError
    from oslab.virt.lab_objects import iter_lab_names

    conn = libvirt.open(URI)
    for lab in list(iter_lab_names(conn)):
        if lab.startswith(TEST_LAB_PREFIX):
            try:
                destroy(conn, lab, LabState(lab, root=Path("/nonexistent-oslab-test-state")))
            except OslabError as exc:  # report, and go on sweeping the others
                print(f"sweep: could not remove test lab {lab}: {exc}", file=sys.stderr)
