"""The install module's contract: steps are data, the engine turns them into commands.

A ``StepDef`` says what a node must have when the step is done: packages installed, files with
exact content/owner/mode, services enabled and running, databases with grants, and commands
guarded by a check. The engine (``oslab.install.engine``) reads the node's facts for each of
these and runs only what is still missing, so a dry run (``oslab plan``), resuming after a
failure and "zero changes on a finished lab" all follow from the same data.

Service content (``oslab.install.services``) is written only in these types.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from oslab.errors import OslabError
from oslab.spec import LabSpec


class Where(StrEnum):
    """Which nodes a step runs on."""

    CONTROLLER = "controller"
    COMPUTE = "compute"
    ALL = "all"


@dataclass(frozen=True)
class FileSpec:
    """A file the installer puts on a node (rendered from a jinja2 template in install/)."""

    path: str  # absolute path on the node
    content: str
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    secret: bool = False  # content holds passwords: never printed, even by `oslab plan`


@dataclass(frozen=True)
class Database:
    """A MariaDB database with one user granted everything on it (from localhost and '%')."""

    name: str
    user: str
    password_key: str  # the name of the lab password (LabState.password(key))


@dataclass(frozen=True)
class Undecided:
    """A check's exit code that means "cannot tell" rather than "not done" (the tool it asks
    timed out or failed), and the hint of the step's failure then: the engine fails the step
    instead of running a command that would act on a guess."""

    exit_code: int
    hint: str


@dataclass(frozen=True)
class Guarded:
    """A command that runs only while ``check`` fails (exit code != 0).

    ``check`` must be cheap and read-only; ``run`` must make ``check`` pass. Both are POSIX
    shell run as root on the node. ``secrets`` name lab passwords used in the text as
    ``{password:KEY}``; the engine substitutes them and masks them in logs and plans.
    ``env_file`` is sourced before both (e.g. "/root/admin-openrc"). ``undecided``, when set,
    names the one exit code of ``check`` that fails the step rather than running ``run``.
    """

    description: str
    check: str
    run: str
    timeout: int = 600
    retries: int = 0  # for transient failures (package mirrors): bounded retries
    env_file: str = ""
    undecided: Undecided | None = None


@dataclass(frozen=True)
class StepDef:
    """One ordered, idempotent install step.

    On each node the step applies to, the engine ensures, in this order: ``packages``
    (``dnf install``), ``files`` (uploaded over SFTP when content, mode or owner differ),
    ``databases``, ``commands`` (each run while its check fails), then ``services`` enabled and
    active, restarted when one of the step's files changed in this run.

    ``after`` names steps (on any node) that must be done before this one starts; steps on the
    same node run in list order, so ``after`` is only needed across nodes.
    """

    name: str  # "keystone.db", unique, dotted: <service>.<part>
    where: Where
    title: str  # one line for the screen
    packages: tuple[str, ...] = ()
    files: tuple[FileSpec, ...] = ()
    databases: tuple[Database, ...] = ()
    commands: tuple[Guarded, ...] = ()
    services: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    checkpoint: str = ""  # take lab-wide snapshot auto-<checkpoint> after this step (installer)
    tags: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class InstallContext:
    """Everything the service content needs to produce each node's steps.

    ``virt_types`` maps each compute node to "kvm" or "qemu", decided on that node by the
    vmx/svm check (the engine reads it from the node before planning; `oslab render` without a
    running lab uses the host's own choice). ``password(key)`` returns the lab's generated
    password ``key`` (created on first use, kept 0600 in the lab's state dir).
    """

    spec: LabSpec
    password: Callable[[str], str]
    virt_types: dict[str, str]


def check_nodes(spec: LabSpec, nodes: Iterable[str]) -> None:
    """Refuse steps for a node the lab does not have (the install content's bug, or a caller's)."""
    names = [n.name for n in spec.nodes]
    unknown = sorted(set(nodes) - set(names))
    if unknown:
        raise OslabError(f"install steps for unknown node(s): {', '.join(unknown)}",
                         hint=f"this is a bug in the install content (or its caller): lab "
                              f"{spec.name} has nodes {', '.join(names)}")
