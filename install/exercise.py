"""Break-and-fix exercises (issue 23): the model and its pure decisions.

An :class:`Exercise` is data, like an install step: the fault (edits of files on a node and a
few commands), the symptom the user is shown (a real error they will meet, not its cause),
what decides that it is solved (verify groups, lint of files, probes on a node), three
hints each stronger than the last, and the fix, both as words and as the same kind of
change as the fault. The catalog is ``oslab.install.exercises``; `oslab exercise` runs one
(``oslab.exercising``).

Everything here is pure: the exercise is resolved against a lab's spec (which node, which
path and unit names on its distro), an edit is applied to a file's text, the checks' results
become a verdict. Reading and writing the files on the nodes is the runner's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from oslab.distro import Family, distro_for
from oslab.errors import OslabError
from oslab.install.model import Where
from oslab.install.services.layer import layer_for
from oslab.spec import LabSpec, Scope

UNITS = re.compile(r"\{units:([a-z0-9-]+)\}")


class ExerciseError(OslabError):
    pass


@dataclass(frozen=True)
class FileRef:
    """A file on the controller or the lab's first compute node: an absolute path, or a role
    of the distro layer's paths (``mariadb.cnf``, ``horizon-settings``)."""

    where: Where
    path: str


@dataclass(frozen=True)
class Edit:
    """``old`` (literal text, found exactly once; within ``section`` of an INI file when
    given) becomes ``new``."""

    file: FileRef
    old: str
    new: str
    section: str = ""


@dataclass(frozen=True)
class Run:
    """A POSIX shell command as root on a node, after the edits; ``{units:ROLE}`` is the
    distro layer's systemd units for ROLE (``keystone``: keystone on Debian, httpd on EL),
    ``{controller}`` the controller's name."""

    where: Where
    command: str


@dataclass(frozen=True)
class Change:
    """A fault or its fix: file edits, then commands."""

    edits: tuple[Edit, ...] = ()
    run: tuple[Run, ...] = ()


@dataclass(frozen=True)
class Probe:
    """What must hold on a node for the exercise to be solved: ``check`` exits 0 when it does."""

    where: Where
    holds: str
    check: str
    timeout: int = 300


@dataclass(frozen=True)
class Exercise:
    name: str
    service: str
    task: str  # what the user is asked to do
    symptom: str  # what they see: a real error they will meet, not its cause
    fault: Change
    fix: Change
    fix_text: str  # the fix in words (`oslab exercise giveup` prints it)
    hints: tuple[str, str, str]  # each stronger than the last
    verify: tuple[str, ...] = ()  # verify groups that must pass
    lint: tuple[FileRef, ...] = ()  # files that must lint without an error
    probes: tuple[Probe, ...] = ()
    scope: Scope = Scope.ALL  # the least a lab must install: IDENTITY runs on any lab
    families: tuple[Family, ...] = (Family.EL, Family.DEBIAN)


@dataclass(frozen=True)
class NodeEdit:
    node: str
    path: str
    old: str
    new: str
    section: str = ""


@dataclass(frozen=True)
class NodeRun:
    node: str
    command: str


@dataclass(frozen=True)
class Plan:
    """A change resolved for one lab: which node, which path, which units."""

    edits: tuple[NodeEdit, ...]
    runs: tuple[NodeRun, ...]

    def nodes(self) -> list[str]:
        return list(dict.fromkeys([e.node for e in self.edits] + [r.node for r in self.runs]))


@dataclass(frozen=True)
class NodeProbe:
    node: str
    holds: str
    check: str
    timeout: int


@dataclass(frozen=True)
class Checks:
    verify: tuple[str, ...]
    lint: tuple[tuple[str, str], ...]  # (node, path)
    probes: tuple[NodeProbe, ...]


@dataclass(frozen=True)
class Result:
    """One check's outcome, as `oslab exercise check` lists it."""

    what: str
    ok: bool
    details: str = ""
    skipped: bool = False  # not run (and so not passed)


@dataclass(frozen=True)
class Verdict:
    solved: bool
    failing: tuple[Result, ...] = field(default=())


def find(catalog: Sequence[Exercise], name: str) -> Exercise:
    for exercise in catalog:
        if exercise.name == name:
            return exercise
    close = [e.name for e in catalog if name and (name in e.name or e.service == name)]
    raise ExerciseError(f"no exercise is named {name!r}",
                        hint=("did you mean " + " or ".join(close) + "? " if close else "")
                        + "`oslab exercise list` lists them")


def refusal(exercise: Exercise, spec: LabSpec) -> str | None:
    """Why ``exercise`` cannot run on this lab, or None."""
    family = distro_for(spec.distro).family
    if family not in exercise.families:
        only = " and ".join(f.value for f in exercise.families)
        return (f"exercise {exercise.name} is about {only} nodes; lab {spec.name} runs "
                f"{spec.distro}")
    if exercise.scope is Scope.ALL and spec.scope is not Scope.ALL:
        return (f"exercise {exercise.name} needs the whole cloud ({exercise.service}); lab "
                f"{spec.name} installs {spec.scope.value} only")
    if exercise.scope is Scope.ALL and not any(n.is_compute for n in spec.nodes):
        return f"exercise {exercise.name} needs a compute node; lab {spec.name} has none"
    return None


def node_for(where: Where, spec: LabSpec) -> str:
    if where is Where.CONTROLLER:
        return spec.controller.name
    if where is Where.COMPUTE:
        computes = [n.name for n in spec.nodes if n.is_compute]
        if computes:
            return computes[0]
        raise ExerciseError(f"lab {spec.name} has no compute node",
                            hint="this exercise needs the whole cloud")
    raise ValueError(f"an exercise acts on one node, not {where}")


def path_for(path: str, spec: LabSpec) -> str:
    return path if path.startswith("/") else layer_for(spec.distro).path(path)


def command_for(command: str, spec: LabSpec) -> str:
    """``command`` with ``{units:ROLE}`` the distro's units and ``{controller}`` the
    controller's name."""
    layer = layer_for(spec.distro)
    command = command.replace("{controller}", spec.controller.name)
    return UNITS.sub(lambda m: " ".join(layer.unit(m.group(1))), command)


def resolve(change: Change, spec: LabSpec) -> Plan:
    edits = tuple(NodeEdit(node_for(e.file.where, spec), path_for(e.file.path, spec), e.old,
                           e.new, e.section) for e in change.edits)
    runs = tuple(NodeRun(node_for(r.where, spec), command_for(r.command, spec))
                 for r in change.run)
    return Plan(edits, runs)


def checks(exercise: Exercise, spec: LabSpec) -> Checks:
    return Checks(
        exercise.verify,
        tuple((node_for(f.where, spec), path_for(f.path, spec)) for f in exercise.lint),
        tuple(NodeProbe(node_for(p.where, spec), p.holds, command_for(p.check, spec), p.timeout)
              for p in exercise.probes))


def _section_span(text: str, section: str) -> tuple[int, int]:
    """Where ``[section]``'s lines are in ``text`` (after its header, up to the next one)."""
    header = re.search(rf"^\[{re.escape(section)}\][ \t]*$", text, re.M)
    if header is None:
        return (-1, -1)
    following = re.compile(r"^\[", re.M).search(text, header.end())
    return (header.end(), following.start() if following else len(text))


def edited(text: str, edit: NodeEdit) -> str:
    """``text`` with ``edit`` made; an error when its ``old`` is not there exactly once (the
    file is not as the exercise expects: someone changed it, or it is not installed yet)."""
    start, end = (0, len(text)) if not edit.section else _section_span(text, edit.section)
    where = f"{edit.node}:{edit.path}" + (f" [{edit.section}]" if edit.section else "")
    count = text.count(edit.old, start, end) if start >= 0 else 0
    if count != 1:
        what = "is not in" if count == 0 else f"is {count} times in"
        raise ExerciseError(f"{edit.old.strip()!r} {what} {where}",
                            hint="the file is not as oslab wrote it: `oslab up` (or `oslab "
                                 "exercise reset`) puts it back, then start again")
    at = text.index(edit.old, start, end)
    return text[:at] + edit.new + text[at + len(edit.old):]


def apply_edits(files: dict[tuple[str, str], str], edits: Iterable[NodeEdit]
                ) -> dict[tuple[str, str], str]:
    """Each file's text after ``edits`` (in order), for the files they touch."""
    out: dict[tuple[str, str], str] = {}
    for e in edits:
        key = (e.node, e.path)
        out[key] = edited(out.get(key, files[key]), e)
    return out


def hint(exercise: Exercise, used: int) -> tuple[str, int]:
    """The next hint and how many are used after it (the last one again when all are)."""
    n = min(used + 1, len(exercise.hints))
    return exercise.hints[n - 1], n


def verdict(results: Sequence[Result]) -> Verdict:
    failing = tuple(r for r in results if not r.ok)
    return Verdict(solved=bool(results) and not failing, failing=failing)
