"""A real Keystone of the lab's release on 127.0.0.1, for tests that drive oslab's checks.

``start()`` prepares a Keystone in a temporary directory, the way the installer does on the
controller but with SQLite and without httpd: ``keystone-manage db_sync``, ``fernet_setup``,
``credential_setup``, then the server (``keystone-wsgi-public`` from the venv, on 127.0.0.1
with port 0; its port is read from what it prints), then ``bootstrap`` (admin password,
RegionOne, public/internal/admin endpoints on that port). ``register_lab_services`` and
``create_demo`` add what the lab's install steps add: the service entities with their three
endpoints each, the ``service`` and ``demo`` projects, the demo user with role ``member``.

Only loopback is used: every registered endpoint is on 127.0.0.1 (nothing listens on the
non-keystone ones, so a command that reaches for one gets "connection refused" at once).
The server process is ended by its pid in ``Keystone.stop()`` (the fixture's teardown).

The venv comes from ``tests/keystone/setup.sh`` (cached); set ``OSLAB_KEYSTONE_VENV`` to use
one built earlier (scripts/test.sh builds it before entering the test network namespace).
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import subprocess
import textwrap
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SETUP = HERE / "setup.sh"
REGION = "RegionOne"
START_TIMEOUT = 60.0

# service name, type, endpoint URL: the lab's services, on closed loopback ports
LAB_SERVICES: tuple[tuple[str, str, str], ...] = (
    ("glance", "image", "http://127.0.0.1:9292"),
    ("placement", "placement", "http://127.0.0.1:8778"),
    ("nova", "compute", "http://127.0.0.1:8774/v2.1"),
    ("neutron", "network", "http://127.0.0.1:9696"),
    ("cinderv3", "volumev3", "http://127.0.0.1:8776/v3/%(project_id)s"),
)
INTERFACES = ("public", "internal", "admin")


def keystone_venv() -> Path:
    """The venv with keystone and python-openstackclient (built by setup.sh once)."""
    given = os.environ.get("OSLAB_KEYSTONE_VENV")
    if given:
        return Path(given)
    proc = subprocess.run([str(SETUP)], capture_output=True, text=True, timeout=1800,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{SETUP} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


@dataclass
class Keystone:
    venv: Path
    workdir: Path
    port: int
    admin_password: str
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v3"

    @property
    def config(self) -> Path:
        return self.workdir / "keystone.conf"

    def base_env(self) -> dict[str, str]:
        """This process's environment without OS_* variables, the venv's bin first on PATH."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["PATH"] = f"{self.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        env["OS_KEYSTONE_CONFIG_FILES"] = str(self.config)
        return env

    def admin_env(self) -> dict[str, str]:
        return {**self.base_env(), "OS_AUTH_URL": self.url, "OS_USERNAME": "admin",
                "OS_PASSWORD": self.admin_password, "OS_PROJECT_NAME": "admin",
                "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
                "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": REGION}

    def openstack(self, *args: str, env: Mapping[str, str] | None = None,
                  check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(self.venv / "bin" / "openstack"), *args],
                              capture_output=True, text=True, timeout=120,
                              env=dict(env) if env is not None else self.admin_env(),
                              check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stderr}")
        return proc

    def batch(self, commands: list[str]) -> str:
        """Run several ``openstack`` commands in one client process (one login: fast).

        The client's interactive mode reads them from stdin; it does not stop at a failing
        command, so callers check the result with a listing."""
        proc = subprocess.run([str(self.venv / "bin" / "openstack")],
                              input="\n".join(commands) + "\n", capture_output=True,
                              text=True, timeout=300, env=self.admin_env(), check=False)
        return proc.stdout + proc.stderr

    def manage(self, *args: str) -> None:
        _manage(self.venv, self.config, self.base_env(), *args)

    def stop(self) -> None:
        """End the server by its pid (SIGTERM, then SIGKILL after 10 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _config(workdir: Path) -> str:
    return textwrap.dedent(f"""\
        [DEFAULT]
        log_file = {workdir / 'keystone.log'}
        [database]
        connection = sqlite:///{workdir / 'keystone.db'}
        [fernet_tokens]
        key_repository = {workdir / 'fernet-keys'}
        [credential]
        key_repository = {workdir / 'credential-keys'}
        [token]
        provider = fernet
        """)


def start(workdir: Path, venv: Path | None = None, admin_password: str | None = None
          ) -> Keystone:
    """A bootstrapped Keystone serving on 127.0.0.1 (a free port chosen by the kernel)."""
    venv = venv or keystone_venv()
    workdir.mkdir(parents=True, exist_ok=True)
    for sub in ("fernet-keys", "credential-keys"):
        (workdir / sub).mkdir(mode=0o700, exist_ok=True)
    (workdir / "keystone.conf").write_text(_config(workdir))
    password = admin_password or secrets.token_hex(12)
    out = workdir / "server.out"
    config = workdir / "keystone.conf"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_KEYSTONE_CONFIG_FILES"] = str(config)
    _manage(venv, config, env, "db_sync")
    user, group = _owner()
    _manage(venv, config, env, "fernet_setup", "--keystone-user", user, "--keystone-group", group)
    _manage(venv, config, env, "credential_setup", "--keystone-user", user,
            "--keystone-group", group)
    # keystone-manage and the server are separate SQLite connections (and the server keeps
    # several): in WAL mode a reader's open transaction does not lock out the next writer.
    with sqlite3.connect(workdir / "keystone.db") as db:
        db.execute("PRAGMA journal_mode=WAL")
    with out.open("wb") as stdout, (workdir / "server.err").open("wb") as stderr:
        process = subprocess.Popen(
            [str(venv / "bin" / "keystone-wsgi-public"), "--host", "127.0.0.1", "--port", "0"],
            stdout=stdout, stderr=stderr, env=env, cwd=workdir)
    ks = Keystone(venv, workdir, 0, password, process)
    try:
        ks.port = _wait_port(ks, out)
        ks.manage("bootstrap", "--bootstrap-password", password,
                  "--bootstrap-region-id", REGION, "--bootstrap-admin-url", ks.url,
                  "--bootstrap-internal-url", ks.url, "--bootstrap-public-url", ks.url)
        _wait_answer(ks)
    except BaseException:
        ks.stop()
        raise
    return ks


def _manage(venv: Path, config: Path, env: Mapping[str, str], *args: str) -> None:
    proc = subprocess.run([str(venv / "bin" / "keystone-manage"), "--config-file", str(config),
                           *args], capture_output=True, text=True, timeout=300, env=dict(env),
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"keystone-manage {args[0]} exited {proc.returncode}:\n"
                           f"{proc.stderr[-3000:]}")


def _owner() -> tuple[str, str]:
    import grp
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def _wait_port(ks: Keystone, out: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        m = re.search(r"Available at http://[^:/]+:(\d+)/", out.read_text(errors="replace"))
        if m:
            return int(m.group(1))
        if ks.process.poll() is not None:
            err = (ks.workdir / "server.err").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"keystone-wsgi-public exited {ks.process.returncode}:\n{err}")
        time.sleep(0.2)
    raise RuntimeError(f"keystone-wsgi-public printed no port in {START_TIMEOUT:.0f}s")


def _wait_answer(ks: Keystone) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(ks.url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def register_lab_services(ks: Keystone,
                          services: tuple[tuple[str, str, str], ...] = LAB_SERVICES) -> None:
    """The service entities and public/internal/admin endpoints the lab's steps register."""
    commands: list[str] = []
    for name, kind, url in services:
        commands.append(f"service create --name {name} {kind}")
        commands.extend(f"endpoint create --region {REGION} {kind} {i} {url}"
                        for i in INTERFACES)
    ks.batch(commands)
    have = ks.openstack("endpoint list", "-f", "value", "-c", "Service Type").stdout.split()
    for _, kind, _ in services:
        assert have.count(kind) == len(INTERFACES), f"{kind}: endpoints not registered: {have}"


def create_demo(ks: Keystone, password: str) -> None:
    """The installer's projects: ``service``, and ``demo`` with user demo (role member)."""
    ks.batch([
        # (interactive mode splits on blanks without honouring quotes: one-word values only)
        "project create --domain default --description Service service",
        "project create --domain default --description Demo demo",
        f"user create --domain default --password {password} demo",
        "role add --project demo --user demo member",
    ])
    roles = ks.openstack("role", "assignment", "list", "--user", "demo", "--project", "demo",
                         "--names", "-f", "value", "-c", "Role").stdout.split()
    assert "member" in roles, roles


@pytest.fixture(scope="module")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    """One bootstrapped Keystone per test module, with the lab's services and demo user."""
    ks = start(tmp_path_factory.mktemp("keystone"))
    try:
        register_lab_services(ks)
        yield ks
    finally:
        ks.stop()
