"""`oslab exercise`: runs one break-and-fix exercise (``oslab.install.exercise``) on a lab.

``start`` reads the files the fault edits (so a lab that is not as oslab built it is refused
before anything changes), takes the lab-wide snapshot ``exercise-NAME``, then writes the
faulty files and runs the fault's commands; the exercise in progress is kept in the lab's
state directory (``exercise.json``: its name, the hints used, whether it was solved).
``check`` runs the exercise's checks: lint of its files, its probes, then its verify groups.
``giveup`` and ``reset`` revert to the snapshot and delete it.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from oslab.access.ssh import Session, mask
from oslab.access.state import LabState
from oslab.errors import OslabError
from oslab.files import read_small_if_any, write_atomic
from oslab.install.exercise import (
    Exercise,
    ExerciseError,
    Plan,
    Result,
    apply_edits,
    checks,
    find,
    refusal,
)
from oslab.install.exercises import CATALOG
from oslab.install.verify.results import Status
from oslab.spec import LabSpec

PROGRESS = "exercise.json"
COMMAND_TIMEOUT = 900.0  # a restart of a service under TCG (nova-compute: minutes)


def by_node(files: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """(node, path) pairs as each node's paths, in order: what ``lint.read_files`` reads."""
    out: dict[str, list[str]] = {}
    for node, path in files:
        out.setdefault(node, []).append(path)
    return out


def snapshot_name(name: str) -> str:
    """The lab-wide snapshot taken before exercise ``name``."""
    return f"exercise-{name}"


@dataclass
class Progress:
    name: str
    started: str
    hints: int = 0
    solved: bool = False

    @classmethod
    def load(cls, state: LabState) -> Progress | None:
        raw = read_small_if_any(state.dir / PROGRESS, 64 * 1024, "the exercise in progress",
                                hint=f"remove {state.dir / PROGRESS} if it is damaged")
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return cls(str(data["name"]), str(data["started"]), int(data["hints"]),
                       bool(data["solved"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise OslabError(f"{state.dir / PROGRESS} is damaged: {exc}",
                             hint="remove it; `oslab snapshot --list` shows the exercise's "
                                  "snapshot, which `oslab revert` returns to") from exc

    def save(self, state: LabState) -> None:
        write_atomic(state.dir / PROGRESS, json.dumps(asdict(self), indent=2) + "\n", 0o600)

    @staticmethod
    def clear(state: LabState) -> None:
        (state.dir / PROGRESS).unlink(missing_ok=True)


def current(state: LabState) -> tuple[Progress, Exercise]:
    progress = Progress.load(state)
    if progress is None:
        raise ExerciseError("no exercise is in progress on this lab",
                            hint="`oslab exercise list`, then `oslab exercise start NAME`")
    return progress, find(CATALOG, progress.name)


class Runner:
    """An exercise's changes and checks on the nodes of one lab."""

    def __init__(self, spec: LabSpec, state: LabState, say: Callable[[str], None]) -> None:
        self.spec = spec
        self.state = state
        self.say = say
        self.secrets = state.known_passwords()

    def _session(self, node: str) -> Session:
        return Session(self.state.spec_target(self.spec.node(node)), connect_timeout=60.0)

    def prepared(self, plan: Plan) -> dict[tuple[str, str], str]:
        """The edited text of each file the plan edits; an error, before anything changes,
        when a file is missing or not as the exercise expects."""
        from oslab.install.lint import read_files

        files, missing = read_files(self.spec, self.state,
                                    by_node((e.node, e.path) for e in plan.edits))
        if missing:
            node, path = missing[0]
            raise ExerciseError(f"{node}:{path} is not there: its service is not installed",
                                hint="`oslab up` installs the whole lab first")
        return apply_edits(files, plan.edits)

    def apply(self, plan: Plan, texts: dict[tuple[str, str], str]) -> None:
        """Write the edited files (in place: their owner and mode stay), then run the plan's
        commands, each on its node, in order."""
        for node in plan.nodes():
            with self._session(node) as session:
                for (n, path), text in texts.items():
                    if n == node:
                        self._check(session.run(f"cat > {shlex.quote(path)}", stdin=text,
                                                timeout=120.0, secrets=self.secrets),
                                    node, f"write {path}")
                for run in plan.runs:
                    if run.node == node:
                        self.say(f"{node}: {run.command}")
                        self._check(session.run(run.command, timeout=COMMAND_TIMEOUT,
                                                secrets=self.secrets), node, run.command)

    def _check(self, result: Any, node: str, what: str) -> None:
        if not result.ok:
            tail = mask((result.stderr or result.stdout).strip(), self.secrets)[-300:]
            raise ExerciseError(f"{node}: {what} failed (exit {result.returncode}): {tail}",
                                hint=f"look at the node (`oslab ssh {node}`)")

    def change(self, plan: Plan) -> None:
        self.apply(plan, self.prepared(plan))

    def check(self, exercise: Exercise) -> list[Result]:
        """Lint of the exercise's files, its probes, then its verify groups, in that order
        (the quick ones first; verify only when they pass)."""
        from oslab.install import verify as verifymod
        from oslab.install.lint import lint, read_files, try_logins

        wanted = checks(exercise, self.spec)
        results: list[Result] = []
        if wanted.lint:
            files, missing = read_files(self.spec, self.state, by_node(wanted.lint))
            found = [f for f in lint(self.spec, files, lambda t: mask(t, self.secrets),
                                     lambda tried: try_logins(self.spec, self.state, tried))
                     if f.severity == "error"]
            for node, path in wanted.lint:
                mine = [f for f in found if (f.node, f.path) == (node, path)]
                details = (f"{node}:{path} is not there" if (node, path) in missing
                           else "; ".join(str(f) for f in mine[:3]))
                results.append(Result(f"lint {node}:{path}", not details, details))
        for probe in wanted.probes:
            with self._session(probe.node) as session:
                got = session.run(probe.check, timeout=float(probe.timeout),
                                  secrets=self.secrets)
            lines = mask(got.stderr or got.stdout, self.secrets).strip().splitlines()
            said = lines[-1].strip()[-200:] if lines else ""  # an error's last line says it
            results.append(Result(f"{probe.node}: {probe.holds}", got.ok,
                                  "" if got.ok else f"exit {got.returncode}: {said}".strip()))
        if wanted.verify and not all(r.ok for r in results):
            # verify waits minutes for a service that is down to report up: not while a
            # quick check already says it is not solved
            results.append(Result(f"verify: {', '.join(wanted.verify)}", False,
                                  "not run while the checks above fail", skipped=True))
        elif wanted.verify:
            report = verifymod.verify_lab(self.spec, self.state, say=self.say,
                                          only=wanted.verify)
            results.extend(Result(f"verify: {row.name}", row.status is not Status.FAIL,
                                  row.details if row.status is Status.FAIL else "")
                           for row in report.rows)
        return results


def started_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def refuse(exercise: Exercise, spec: LabSpec) -> None:
    why = refusal(exercise, spec)
    if why is not None:
        raise ExerciseError(why, hint="`oslab exercise list` shows the ones for this lab")
