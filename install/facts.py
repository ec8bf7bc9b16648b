"""Facts: what a node has now, read by one shell command and parsed from its output.

A fact is a command plus a parser (pyinfra's model). The parsers are pure functions of the
command's stdout, stderr and exit code, so they are tested from recorded output
(tests/unit/test_facts.py). The engine reads facts before it decides what to run; nothing about
a node's progress is kept on the host.

Conventions the commands rely on:

* **packages** are queried with ``rpm -q --whatprovides`` (EL) so that a name that is only a
  provide of an installed package counts as installed (``dnf install`` would do nothing for
  it); on Debian ``dpkg-query`` lists every package with its status and its ``Provides``, and
  a name counts when an installed package has it or provides it;
* **databases** are read with ``mysql -N -B`` as root through MariaDB's unix socket: on CentOS
  Stream 9 (MariaDB >= 10.4) ``root@localhost`` authenticates by ``unix_socket``, so no root
  password exists or is needed. The SQL (which holds the user's password, to compare hashes)
  goes on stdin, never on the command line;
* **services** are read with ``systemctl is-enabled`` and ``systemctl is-active``; what
  ``oslab verify`` needs of a unit (whether systemd gave it up) with ``systemctl show``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from oslab.distro import Family
from oslab.errors import OslabError
from oslab.spec import VirtType

T = TypeVar("T")

SHA256_RE = re.compile(r"[0-9a-f]{64}")
IDENT_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
DB_HOSTS = ("localhost", "%")
# ``systemctl is-enabled`` answers that need no ``systemctl enable``.
ENABLED_STATES = frozenset({"enabled", "static", "alias", "indirect", "generated"})
ACTIVE_STATES = frozenset({"active", "reloading"})


class FactError(OslabError):
    """A fact's command gave output its parser cannot read."""


@dataclass(frozen=True)
class Fact(Generic[T]):
    """One command that reads something from a node, and the parser of its output.

    ``stdin`` is fed to the command (it may hold secrets; it is never logged).
    """

    what: str
    command: str
    parser: Callable[[str, str, int], T]
    stdin: str | None = None
    timeout: float = 120.0

    def parse(self, stdout: str, stderr: str = "", returncode: int = 0) -> T:
        return self.parser(stdout, stderr, returncode)


def _fail(what: str, stdout: str, stderr: str, rc: int) -> FactError:
    tail = (stderr.strip() or stdout.strip()).splitlines()[-3:]
    return FactError(f"cannot read {what} (exit code {rc}): " + (" / ".join(tail) or "no output"))


# -- packages ----------------------------------------------------------------------------------

_NOT_INSTALLED = (re.compile(r"^package (\S+) is not installed$"),
                  re.compile(r"^no package provides (\S+)$"))


def packages_missing(names: Sequence[str],
                     family: Family = Family.EL) -> Fact[tuple[str, ...]]:
    """Which of ``names`` no installed package provides (in the order given)."""
    if family is Family.DEBIAN:
        return _dpkg_missing(names)
    wanted = tuple(names)
    command = "rpm -q --whatprovides " + " ".join(shlex.quote(n) for n in wanted)

    def parse(out: str, err: str, rc: int) -> tuple[str, ...]:
        missing: set[str] = set()
        for line in out.splitlines():
            for pattern in _NOT_INSTALLED:
                m = pattern.match(line.strip())
                if m:
                    missing.add(m.group(1))
        if rc != 0 and not missing:
            raise _fail("the installed packages", out, err, rc)
        return tuple(n for n in wanted if n in missing)

    return Fact("packages " + " ".join(wanted), command, parse)


DPKG_QUERY = "dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Provides}\\n'"


def _dpkg_missing(names: Sequence[str]) -> Fact[tuple[str, ...]]:
    """Every package dpkg knows, one ``status|name|provides`` line each. Installed means the
    second letter of the status is ``i`` (``ii``, ``hi``): a half-configured or unpacked
    package (``iU``, ``iF``, after an interrupted install) still counts as missing."""
    wanted = tuple(names)

    def parse(out: str, err: str, rc: int) -> tuple[str, ...]:
        have: set[str] = set()
        rows = 0
        for line in out.splitlines():
            parts = line.split("|")
            if len(parts) != 3 or len(parts[0]) < 2:
                continue
            rows += 1
            if parts[0][1] != "i":
                continue
            have.add(parts[1].strip())
            for item in parts[2].split(","):
                name = item.strip().split(" ")[0].split(":")[0]
                if name:
                    have.add(name)
        if rc != 0 or not rows:
            raise _fail("the installed packages", out, err, rc)
        return tuple(n for n in wanted if n not in have)

    return Fact("packages " + " ".join(wanted), DPKG_QUERY, parse)


# -- files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileState:
    exists: bool
    sha256: str = ""
    mode: int = 0
    owner: str = ""
    group: str = ""


ABSENT = FileState(exists=False)


def file_state(path: str) -> Fact[FileState]:
    """sha256, mode, owner and group of ``path`` in one command; ``exists=False`` when absent."""
    q = shlex.quote(path)
    command = (f"if [ -e {q} ]; then sha256sum {q}; stat -c '%a %U %G' {q}; "
               f"else echo absent; fi")

    def parse(out: str, err: str, rc: int) -> FileState:
        lines = [line for line in out.splitlines() if line.strip()]
        if rc == 0 and lines == ["absent"]:
            return ABSENT
        if rc != 0 or len(lines) != 2:
            raise _fail(f"file {path}", out, err, rc)
        digest = lines[0].split()[0].lstrip("\\")
        fields = lines[1].split()
        if not SHA256_RE.fullmatch(digest) or len(fields) != 3:
            raise _fail(f"file {path}", out, err, rc)
        try:
            mode = int(fields[0], 8)
        except ValueError:
            raise _fail(f"file {path}", out, err, rc) from None
        return FileState(True, digest, mode, fields[1], fields[2])

    return Fact(f"file {path}", command, parse)


def file_text(path: str, limit: int) -> Fact[str]:
    """The first ``limit`` bytes of ``path`` as text."""
    return Fact(f"text of {path}", f"head -c {limit} {shlex.quote(path)}",
                lambda out, _err, _rc: out)


# -- services ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceState:
    name: str
    enabled_state: str  # what `systemctl is-enabled` printed; "not-found" when nothing
    active_state: str  # what `systemctl is-active` printed; "unknown" when nothing

    @property
    def enabled(self) -> bool:
        return self.enabled_state in ENABLED_STATES

    @property
    def active(self) -> bool:
        return self.active_state in ACTIVE_STATES


def blank_service(name: str) -> ServiceState:
    return ServiceState(name, "not-found", "inactive")


def service_states(names: Sequence[str]) -> Fact[dict[str, ServiceState]]:
    """``systemctl is-enabled`` and ``is-active`` of each unit, one ``name|enabled|active`` line
    per unit."""
    wanted = tuple(names)
    command = ("for u in " + " ".join(shlex.quote(n) for n in wanted) + "; do "
               "printf '%s|%s|%s\\n' \"$u\" \"$(systemctl is-enabled \"$u\" 2>/dev/null)\" "
               "\"$(systemctl is-active \"$u\" 2>/dev/null)\"; done")

    def parse(out: str, err: str, rc: int) -> dict[str, ServiceState]:
        found: dict[str, ServiceState] = {}
        for line in out.splitlines():
            parts = line.split("|")
            if len(parts) != 3 or parts[0] not in wanted:
                continue
            name, enabled, active = (p.strip() for p in parts)
            # is-enabled may print more than one line (aliases); the first one is the state
            found[name] = ServiceState(name, enabled.split()[0] if enabled else "not-found",
                                       active or "unknown")
        if rc != 0 or set(found) != set(wanted):
            raise _fail("the services " + ", ".join(wanted), out, err, rc)
        return found

    return Fact("services " + " ".join(wanted), command, parse)


@dataclass(frozen=True)
class UnitState:
    """What ``systemctl show`` says of one unit (``oslab verify``'s services rows)."""

    unit: str  # as asked
    load: str  # LoadState: loaded, not-found, masked, ...
    active: str  # ActiveState: active, activating, deactivating, reloading, inactive, failed
    sub: str  # SubState: running, start, auto-restart (a restart pending), dead, failed, ...
    result: str  # Result: success, exit-code, signal, timeout, core-dump, start-limit-hit, ...

    @property
    def failed(self) -> bool:
        """systemd gave it up: it will not start again by itself (a unit whose ``Restart=``
        will start it again is ``activating``, sub-state ``auto-restart``, meanwhile)."""
        return self.active == "failed"


UNIT_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "Result")


def unit_states(units: Sequence[str]) -> Fact[dict[str, UnitState]]:
    """``systemctl show`` of each of ``units``: one block of ``Property=value`` lines per unit,
    in the order asked, the blocks parted by an empty line. A unit the node does not have is
    shown too (``LoadState=not-found``, ``ActiveState=inactive``)."""
    wanted = tuple(units)
    command = ("systemctl show " + " ".join(f"-p {p}" for p in UNIT_PROPERTIES) + " -- "
               + " ".join(shlex.quote(u) for u in wanted))

    def parse(out: str, err: str, rc: int) -> dict[str, UnitState]:
        blocks = [dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
                  for block in re.split(r"\n\s*\n", out.strip()) if block.strip()]
        if rc != 0 or len(blocks) != len(wanted) or not all("ActiveState" in b for b in blocks):
            raise _fail("the units " + ", ".join(wanted), out, err, rc)
        return {u: UnitState(u, b.get("LoadState", ""), b["ActiveState"], b.get("SubState", ""),
                             b.get("Result", "")) for u, b in zip(wanted, blocks, strict=True)}

    return Fact("units " + " ".join(wanted), command, parse, timeout=60.0)


# -- databases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseState:
    exists: bool
    users: frozenset[str] = frozenset()  # hosts where the user exists
    password_ok: frozenset[str] = frozenset()  # hosts where its password is the lab's
    grants: frozenset[str] = frozenset()  # hosts with all privileges on the database

    @property
    def complete(self) -> bool:
        want = frozenset(DB_HOSTS)
        return self.exists and want <= self.password_ok and want <= self.grants

    def missing(self) -> list[str]:
        out = [] if self.exists else ["database"]
        for host in DB_HOSTS:
            if host not in self.users:
                out.append(f"user @{host}")
            elif host not in self.password_ok:
                out.append(f"password @{host}")
            if host not in self.grants:
                out.append(f"grant @{host}")
        return out


NO_DATABASE = DatabaseState(exists=False)


def sql_string(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def check_ident(kind: str, value: str) -> str:
    if not IDENT_RE.fullmatch(value):
        raise OslabError(f"invalid MariaDB {kind} name {value!r}",
                         hint="the install content must use letters, digits and '_' only")
    return value


MYSQL = "mysql -N -B"
_PRIVS = ("Select", "Insert", "Update", "Delete", "Create", "Drop", "Alter", "Index")


def database_state(name: str, user: str, password: str) -> Fact[DatabaseState]:
    """Whether database ``name`` exists, and user ``user`` exists at localhost and '%' with the
    lab's password and all privileges on it. Read as root through the unix socket."""
    check_ident("database", name)
    check_ident("user", user)
    hosts = ", ".join(sql_string(h) for h in DB_HOSTS)
    privs = " AND ".join(f"{p}_priv = 'Y'" for p in _PRIVS)
    sql = (
        f"SELECT CONCAT('db ', COUNT(*)) FROM information_schema.SCHEMATA "
        f"WHERE SCHEMA_NAME = {sql_string(name)};\n"
        f"SELECT CONCAT('user ', Host, ' ', IF(Password = PASSWORD({sql_string(password)}), "
        f"'ok', 'differs')) FROM mysql.user WHERE User = {sql_string(user)} "
        f"AND Host IN ({hosts});\n"
        f"SELECT CONCAT('grant ', Host) FROM mysql.db WHERE User = {sql_string(user)} "
        f"AND Db = {sql_string(name)} AND {privs};\n"
    )

    def parse(out: str, err: str, rc: int) -> DatabaseState:
        if rc != 0:
            raise _fail(f"database {name}", out, err, rc)
        exists = False
        users: set[str] = set()
        ok: set[str] = set()
        grants: set[str] = set()
        for line in out.splitlines():
            kind, _, rest = line.strip().partition(" ")
            if kind == "db":
                exists = rest.strip() not in ("", "0")
            elif kind == "user":
                host, _, verdict = rest.rpartition(" ")
                users.add(host)
                if verdict == "ok":
                    ok.add(host)
            elif kind == "grant":
                grants.add(rest.strip())
        return DatabaseState(exists, frozenset(users), frozenset(ok), frozenset(grants))

    return Fact(f"database {name}", MYSQL, parse, stdin=sql)


# -- guarded commands and virt type -------------------------------------------------------------


def command_succeeds(what: str, command: str, timeout: float = 120.0,
                     stdin: str | None = None, undecided: int | None = None,
                     hint: str = "") -> Fact[bool]:
    """Whether ``command`` (fed ``stdin``) exits 0 (a Guarded's check). The exit code
    ``undecided`` means the command could not tell: a ``FactError`` whose message is ``hint``."""

    def parse(out: str, err: str, rc: int) -> bool:
        if undecided is not None and rc == undecided:
            raise FactError(hint or f"{what} could not tell (exit code {rc})")
        return rc == 0

    return Fact(what, command, parse, timeout=timeout, stdin=stdin)


def virt_type() -> Fact[VirtType]:
    """The node's own rule for nova's ``[libvirt] virt_type``: kvm or qemu.

    The install guide's rule is ``vmx``/``svm`` in ``/proc/cpuinfo``; oslab also wants the
    ``/dev/kvm`` device, without which libvirt cannot start a kvm domain (a node whose CPU
    lists the flag but whose kvm module did not load gets qemu, not instances that never start).
    """
    def parse(out: str, err: str, rc: int) -> VirtType:
        words = out.split()
        if rc != 0 or len(words) != 2 or not words[0].isdigit() or words[1] not in KVM_DEVICE:
            raise _fail("the CPU flags and /dev/kvm", out, err, rc)
        kvm = int(words[0]) > 0 and KVM_DEVICE[words[1]]
        return VirtType.KVM if kvm else VirtType.QEMU

    return Fact("virt type", VIRT_TYPE_PROBE, parse, timeout=30)


# "<count of vmx/svm lines> <dev-kvm|no-dev-kvm>"; grep's exit 1 (no line) is not a failure
VIRT_TYPE_PROBE = ("n=$(grep -cE 'vmx|svm' /proc/cpuinfo) || [ \"$n\" = 0 ] || exit 2; "
                   "if [ -c /dev/kvm ]; then echo \"$n dev-kvm\"; else echo \"$n no-dev-kvm\"; fi")
KVM_DEVICE = {"dev-kvm": True, "no-dev-kvm": False}
