"""The engine's decisions: from a step and the facts read from a node to the commands to run.

Everything here is a pure function of its inputs (pyinfra's operations): the plan, the run and
the unit tests (tests are data: facts in, commands out) all use the same functions. A step's
parts are decided in the order ``StepDef`` documents: packages, files, databases, guarded
commands, services. Each returns the actions still needed and, for what needs nothing, the
reason ("no change" lines).

Secrets: ``{password:KEY}`` in a ``Guarded`` check or run is replaced by the lab's password
``KEY`` (lab passwords are letters and digits, so they need no shell quoting). ``Secrets.mask``
replaces every lab password with ``***`` wherever text is shown or logged.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import shlex
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from oslab.access.ssh import mask
from oslab.distro import Family
from oslab.errors import OslabError
from oslab.install import debian, facts
from oslab.install.facts import DatabaseState, FileState, ServiceState
from oslab.install.model import Database, FileSpec, Guarded, StepDef

PASSWORD_RE = re.compile(r"\{password:([A-Za-z0-9_.-]+)\}")
DNF = "dnf -y install"
DNF_RETRIES = 3  # transient mirror failures
DNF_TIMEOUT = 1800.0
CHECK_TIMEOUT = 300.0
FILE_TIMEOUT = 120.0
SERVICE_TIMEOUT = 300.0
DATABASE_TIMEOUT = 120.0
TEMP_SUFFIX = ".oslab-new"


class Kind(StrEnum):
    PACKAGES = "packages"
    FILE = "file"
    DATABASE = "database"
    COMMAND = "command"
    SERVICE = "service"


@dataclass(frozen=True)
class Action:
    """One change to make on a node.

    ``command`` and ``stdin`` are the real text (secrets substituted): show them only through
    ``Secrets.mask``. A FILE action with ``upload`` set uploads that file to a temporary name
    next to it, then runs ``command`` (owner, group, mode, rename).
    """

    kind: Kind
    summary: str
    command: str = ""
    stdin: str | None = None
    timeout: float = 300.0
    retries: int = 0
    upload: FileSpec | None = None
    unless: str = ""  # the Guarded check that failed (shown by plans)


class Secrets:
    """Substitutes ``{password:KEY}`` and masks every known secret (thread-safe)."""

    def __init__(self, password: Callable[[str], str], known: Iterable[str] = ()) -> None:
        self._password = password
        self._known = {k for k in known if k}
        self._lock = threading.Lock()

    def password(self, key: str) -> str:
        value = self._password(key)
        with self._lock:
            self._known.add(value)
        return value

    def sub(self, text: str) -> str:
        return PASSWORD_RE.sub(lambda m: self.password(m.group(1)), text)

    @property
    def values(self) -> tuple[str, ...]:
        with self._lock:
            # longest first, so a secret that contains another is masked whole
            return tuple(sorted(self._known, key=lambda s: (-len(s), s)))

    def mask(self, text: str) -> str:
        return mask(text, self.values)


# -- packages ------------------------------------------------------------------------------------


def install_command(packages: Sequence[str], family: Family = Family.EL) -> str:
    """dnf on EL; apt-get on Debian (no recommends, no service starts: oslab.install.debian)."""
    if family is Family.DEBIAN:
        return debian.install_command(packages)
    return DNF + " " + " ".join(shlex.quote(p) for p in packages)


def packages(wanted: Sequence[str], missing: Sequence[str],
             family: Family = Family.EL) -> tuple[list[Action], list[str]]:
    if not wanted:
        return [], []
    if not missing:
        return [], [f"{len(wanted)} package{'s' if len(wanted) != 1 else ''} installed"]
    todo = [p for p in wanted if p in missing]
    retries = debian.APT_RETRIES if family is Family.DEBIAN else DNF_RETRIES
    return [Action(Kind.PACKAGES, "install " + " ".join(todo), install_command(todo, family),
                   timeout=DNF_TIMEOUT, retries=retries)], []


# -- files ---------------------------------------------------------------------------------------


def temp_path(path: str) -> str:
    head, tail = posixpath.split(path)
    return posixpath.join(head, f".{tail}{TEMP_SUFFIX}")


def mkdir_command(path: str) -> str:
    return "mkdir -p " + shlex.quote(posixpath.dirname(path) or "/")


def sha256(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def _attrs(f: FileSpec) -> str:
    return f"{f.mode:04o}, {f.owner}:{f.group}"


def _set_attrs(f: FileSpec, path: str) -> str:
    q = shlex.quote(path)
    return (f"chown {shlex.quote(f.owner)}:{shlex.quote(f.group)} {q} && "
            f"chmod {f.mode:o} {q}")


def finalize_command(f: FileSpec) -> str:
    """Owner, group and mode on the uploaded temporary file, then rename it over ``f.path``;
    the temporary file is removed when that fails."""
    tmp = shlex.quote(temp_path(f.path))
    return (f"{{ {_set_attrs(f, temp_path(f.path))} && mv -f {tmp} {shlex.quote(f.path)}; }} "
            f"|| {{ rc=$?; rm -f {tmp}; exit $rc; }}")


def upload_summary(f: FileSpec) -> str:
    size = len(f.content.encode())
    hidden = ", content hidden" if f.secret else ""
    return f"upload {f.path} ({_attrs(f)}, {size} bytes{hidden})"


def check_file(f: FileSpec) -> None:
    if not f.path.startswith("/") or "\n" in f.path or posixpath.normpath(f.path) != f.path:
        raise OslabError(f"file path {f.path!r} is not a normalized absolute path",
                         hint="the install content must name files by absolute paths")


def files(specs: Sequence[FileSpec], states: Mapping[str, FileState],
          forced: bool = False) -> tuple[list[Action], list[str]]:
    actions: list[Action] = []
    reasons: list[str] = []
    for f in specs:
        check_file(f)
        now = states.get(f.path, facts.ABSENT)
        want_attrs = (f.mode, f.owner, f.group)
        have_attrs = (now.mode, now.owner, now.group)
        if forced or not now.exists or now.sha256 != sha256(f.content):
            why = ("forced by --from" if forced and now.exists and now.sha256 == sha256(f.content)
                   else "absent" if not now.exists else "content differs")
            actions.append(Action(Kind.FILE, f"{upload_summary(f)}: {why}",
                                  finalize_command(f), timeout=FILE_TIMEOUT, upload=f))
        elif have_attrs != want_attrs:
            actions.append(Action(
                Kind.FILE, f"set {f.path} to {_attrs(f)} (now {now.mode:04o}, "
                           f"{now.owner}:{now.group})",
                _set_attrs(f, f.path), timeout=FILE_TIMEOUT))
        else:
            reasons.append(f"{f.path} up to date")
    return actions, reasons


# -- databases -----------------------------------------------------------------------------------


def database_sql(db: Database, password: str) -> str:
    name = facts.check_ident("database", db.name)
    user = facts.check_ident("user", db.user)
    pw = facts.sql_string(password)
    lines = [f"CREATE DATABASE IF NOT EXISTS `{name}`;"]
    for host in facts.DB_HOSTS:
        account = f"{facts.sql_string(user)}@{facts.sql_string(host)}"
        lines += [f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {pw};",
                  f"ALTER USER {account} IDENTIFIED BY {pw};",
                  f"GRANT ALL PRIVILEGES ON `{name}`.* TO {account};"]
    return "\n".join(lines) + "\n"


def databases(dbs: Sequence[Database], states: Mapping[str, DatabaseState], secrets: Secrets,
              forced: bool = False) -> tuple[list[Action], list[str]]:
    actions: list[Action] = []
    reasons: list[str] = []
    for db in dbs:
        now = states.get(db.name, facts.NO_DATABASE)
        if now.complete and not forced:
            reasons.append(f"database {db.name} with user {db.user} and grants")
            continue
        why = "forced by --from" if now.complete else "missing " + ", ".join(now.missing())
        actions.append(Action(
            Kind.DATABASE, f"database {db.name}, user {db.user}@localhost and @%, "
                           f"all privileges: {why}",
            facts.MYSQL, stdin=database_sql(db, secrets.password(db.password_key)),
            timeout=DATABASE_TIMEOUT))
    return actions, reasons


def database_fact(db: Database, secrets: Secrets) -> facts.Fact[DatabaseState]:
    return facts.database_state(db.name, db.user, secrets.password(db.password_key))


# -- guarded commands ----------------------------------------------------------------------------


def shell_text(text: str, env_file: str, secrets: Secrets) -> str:
    """``text`` with its passwords substituted, after sourcing ``env_file`` when set."""
    body = secrets.sub(text.strip("\n"))
    if not env_file:
        return body
    return f". {shlex.quote(env_file)} && {{\n{body}\n}}"


SCRIPT_SHELL = "sh -s"  # POSIX, as every Guarded text is (the test guest has no bash)


def shell_run(text: str, env_file: str, secrets: Secrets) -> tuple[str, str | None]:
    """(command, stdin) that run ``text``. A text holding a password goes to ``sh -s`` on
    stdin, so no password is on a command line on the node (``ps`` shows ``sh -s``); its
    commands get /dev/null as stdin unless they take the password there themselves (a
    here-document, ``printf ... | cmd``), and an environment assignment stays in the shell."""
    body = shell_text(text, env_file, secrets)
    if not PASSWORD_RE.search(text):
        return body, None
    return SCRIPT_SHELL, "{\n" + body + "\n} </dev/null\n"


def shown_command(command: str, stdin: str | None) -> str:
    """What a person should see of ``command``: the script itself when it ran as ``sh -s``."""
    if command == SCRIPT_SHELL and stdin:
        return stdin.removeprefix("{\n").removesuffix("\n} </dev/null\n")
    return command


def check_fact(g: Guarded, secrets: Secrets) -> facts.Fact[bool]:
    """Whether ``g``'s check passes. Its ``undecided`` exit code is a ``FactError``: the run
    fails the step with its hint (``StepRunner.read``), a plan counts it as not done."""
    command, stdin = shell_run(g.check, g.env_file, secrets)
    unsure = g.undecided
    return facts.command_succeeds(f"check of {g.description!r}", command,
                                  timeout=min(float(g.timeout), CHECK_TIMEOUT), stdin=stdin,
                                  undecided=unsure.exit_code if unsure else None,
                                  hint=unsure.hint if unsure else "")


def command(g: Guarded, check_passes: bool, secrets: Secrets,
            forced: bool = False) -> tuple[list[Action], list[str]]:
    if check_passes and not forced:
        return [], [f"done: {g.description}"]
    why = "forced by --from" if forced else "check fails"
    command, stdin = shell_run(g.run, g.env_file, secrets)
    return [Action(Kind.COMMAND, f"run: {g.description} ({why})", command, stdin=stdin,
                   timeout=float(g.timeout),
                   retries=g.retries, unless="" if forced else
                   shell_text(g.check, g.env_file, secrets))], []


# -- services ------------------------------------------------------------------------------------


def services(names: Sequence[str], states: Mapping[str, ServiceState],
             restart: bool) -> tuple[list[Action], list[str]]:
    actions: list[Action] = []
    reasons: list[str] = []
    for name in names:
        now = states.get(name, facts.blank_service(name))
        q = shlex.quote(name)
        if restart:
            cmd = f"systemctl restart {q}"
            if not now.enabled:
                cmd = f"systemctl enable {q} && {cmd}"
            summary = f"service {name}: {'enable and ' if not now.enabled else ''}restart " \
                      "(a file of this step changed)"
        elif not now.enabled and not now.active:
            cmd, summary = f"systemctl enable --now {q}", f"service {name}: enable and start"
        elif not now.enabled:
            cmd, summary = f"systemctl enable {q}", f"service {name}: enable ({now.enabled_state})"
        elif not now.active:
            cmd, summary = f"systemctl start {q}", f"service {name}: start ({now.active_state})"
        else:
            reasons.append(f"service {name} enabled and active")
            continue
        actions.append(Action(Kind.SERVICE, summary, cmd, timeout=SERVICE_TIMEOUT))
    return actions, reasons


# -- a whole step from facts read at once (plans, tests) ----------------------------------------


@dataclass(frozen=True)
class StepFacts:
    """Every fact a step depends on, read at one moment (a plan reads them all up front)."""

    missing: tuple[str, ...] = ()
    files: Mapping[str, FileState] = field(default_factory=dict)
    databases: Mapping[str, DatabaseState] = field(default_factory=dict)
    checks: tuple[bool, ...] = ()  # per Guarded, in order: its check passes
    services: Mapping[str, ServiceState] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # facts that could not be read (assumed not done)


def blank_facts(step: StepDef) -> StepFacts:
    """What a blank node looks like: nothing installed, written, created or running."""
    return StepFacts(
        missing=step.packages,
        files={f.path: facts.ABSENT for f in step.files},
        databases={d.name: facts.NO_DATABASE for d in step.databases},
        checks=tuple(False for _ in step.commands),
        services={s: facts.blank_service(s) for s in step.services},
    )


def decide_step(step: StepDef, have: StepFacts, secrets: Secrets, forced: bool = False,
                family: Family = Family.EL) -> tuple[list[Action], list[str]]:
    """The actions the step needs given ``have``, and the reasons for what needs nothing."""
    out: list[Action] = []
    why: list[str] = []
    for acts, reasons in (
        packages(step.packages, have.missing, family),
        files(step.files, have.files, forced),
        databases(step.databases, have.databases, secrets, forced),
    ):
        out += acts
        why += reasons
    file_changed = any(a.kind is Kind.FILE for a in out)
    for g, passes in zip(step.commands, have.checks, strict=True):
        acts, reasons = command(g, passes, secrets, forced)
        out += acts
        why += reasons
    acts, reasons = services(step.services, have.services, restart=forced or file_changed)
    return out + acts, why + reasons
