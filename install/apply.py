"""Apply one step on one node: read a fact, decide, run only what is missing, part by part.

A step's parts go in ``StepDef``'s order, and each part's facts are read just before that part
runs (so a guarded check sees the packages and files the step has just put there). Every
command's output streams, masked, to the node's log; file contents never reach the log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TypeVar

from oslab.access.ssh import NodeConn, Result
from oslab.distro import Family
from oslab.errors import CommandError, OslabError
from oslab.install import confdiff, facts, ops
from oslab.install.facts import Fact, FactError
from oslab.install.model import StepDef
from oslab.install.ops import Action, Kind, Secrets, StepFacts

T = TypeVar("T")
FAILED_TAIL = 15
TIMED_OUT = -1  # the exit code oslab.access.ssh reports for a command that outlived its timeout


class Aborted(Exception):
    """Another node failed: stop before the next command."""


class StepFailed(CommandError):
    """A command of a step failed: the node, the step, the command (masked), its exit code and
    the tail of its output."""

    def __init__(self, node: str, step: str, command: str, returncode: int, output: str,
                 hint: str | None = None) -> None:
        self.node = node
        self.step = step
        super().__init__(command, returncode, output, hint=hint, where=f"{node}: step {step}")


@dataclass
class StepOutcome:
    node: str
    step: str
    commands: int = 0  # changes made (a fact read is not a change)
    seconds: float = 0.0
    done: list[str] = field(default_factory=list)  # summaries of the changes
    reasons: list[str] = field(default_factory=list)  # what needed nothing
    # what the step changed in files someone edited on the node, option by option (confdiff)
    edits: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.commands > 0


class StepRunner:
    """Runs steps on one node through ``conn``; ``stop()`` says another node failed.
    ``family`` picks the package manager (rpm/dnf or dpkg/apt)."""

    def __init__(self, conn: NodeConn, secrets: Secrets, log: IO[str] | None = None,
                 stop: Callable[[], bool] = lambda: False, retry_delay: float = 10.0,
                 family: Family = Family.EL) -> None:
        self.family = family
        self.conn = conn
        self.node = conn.name
        self.secrets = secrets
        self.log = log
        self.stop = stop
        self.retry_delay = retry_delay

    # -- low level ------------------------------------------------------------------------------

    def note(self, text: str) -> None:
        if self.log is not None:
            self.log.write(self.secrets.mask(f"# {text}\n"))
            self.log.flush()

    def _run(self, step: str, command: str, timeout: float, stdin: str | None) -> Result:
        if self.stop():
            raise Aborted
        if command == ops.SCRIPT_SHELL and stdin:  # its script holds a password: log it masked
            self.note(f"{command} with this script on stdin:\n{ops.shown_command(command, stdin)}")
        try:
            return self.conn.run(command, timeout=timeout, stdin=stdin,
                                 secrets=self.secrets.values, log=self.log)
        except CommandError as exc:  # the timeout
            return Result(self.secrets.mask(command), exc.returncode, "", exc.stderr)
        except OslabError as exc:  # the connection broke (oslab.access.ssh.SSHError)
            raise StepFailed(self.node, step, self.secrets.mask(command), -1,
                             f"SSH failed: {exc}",
                             hint="check the node answers (`oslab status`), then rerun") from exc

    def _failed(self, step: str, command: str, result: Result, hint: str | None = None
                ) -> StepFailed:
        output = result.stderr.strip() or result.stdout.strip()
        tail = "\n".join(output.splitlines()[-FAILED_TAIL:])
        return StepFailed(self.node, step, self.secrets.mask(command), result.returncode,
                          self.secrets.mask(tail), hint=hint)

    def read(self, step: str, fact: Fact[T]) -> T:
        result = self._run(step, fact.command, fact.timeout, fact.stdin)
        if result.returncode == TIMED_OUT:
            raise self._failed(step, ops.shown_command(fact.command, fact.stdin), result,
                               hint=f"reading {fact.what} timed out; is the node overloaded?")
        try:
            return fact.parse(result.stdout, result.stderr, result.returncode)
        except FactError as exc:
            raise self._failed(step, ops.shown_command(fact.command, fact.stdin), result,
                               hint=exc.message) from exc

    def execute(self, step: str, action: Action) -> None:
        if action.upload is not None:
            self._upload(step, action)
            return
        attempts = action.retries + 1
        for attempt in range(1, attempts + 1):
            result = self._run(step, action.command, action.timeout, action.stdin)
            if result.ok:
                return
            if attempt == attempts:
                raise self._failed(step, ops.shown_command(action.command, action.stdin), result)
            delay = self.retry_delay * 2 ** (attempt - 1)
            self.note(f"attempt {attempt}/{attempts} failed with exit code "
                      f"{result.returncode}; retrying in {delay:.0f}s")
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                if self.stop():
                    raise Aborted
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def _upload(self, step: str, action: Action) -> None:
        f = action.upload
        assert f is not None
        mkdir = ops.mkdir_command(f.path)
        result = self._run(step, mkdir, action.timeout, None)
        if not result.ok:
            raise self._failed(step, mkdir, result)
        if self.stop():
            raise Aborted
        tmp = ops.temp_path(f.path)
        self.note(f"upload {tmp}: {ops.upload_summary(f).removeprefix('upload ')}")
        try:
            self.conn.put(tmp, f.content.encode(), timeout=action.timeout)
        except OslabError as exc:  # oslab.access.ssh.SSHError
            raise StepFailed(self.node, step, f"sftp put {tmp}", -1, exc.message,
                             hint="is the directory writable and the disk not full?") from exc
        self.execute(step, Action(Kind.FILE, action.summary, action.command,
                                  timeout=action.timeout))

    # -- a step ---------------------------------------------------------------------------------

    def run_step(self, step: StepDef, forced: bool = False) -> StepOutcome:
        """Read each part's facts, then run what is missing; ``forced`` (``--from``) reruns the
        files, databases, guarded commands and service restarts whatever the facts say."""
        start = time.monotonic()
        out = StepOutcome(self.node, step.name)
        self.note(f"step {step.name}: {step.title}" + (" (forced by --from)" if forced else ""))

        def apply(part: tuple[list[Action], list[str]]) -> bool:
            actions, reasons = part
            out.reasons += reasons
            for action in actions:
                self.note(action.summary)
                self.execute(step.name, action)
                out.commands += 1
                out.done.append(action.summary)
            return bool(actions)

        name = step.name
        if step.packages:
            missing = self.read(name, facts.packages_missing(step.packages, self.family))
            apply(ops.packages(step.packages, missing, self.family))
        file_changed = False
        if step.files:
            states = {f.path: self.read(name, facts.file_state(f.path)) for f in step.files}
            part = ops.files(step.files, states, forced)
            before = self._replaced(name, part[0], states)
            file_changed = apply(part)
            for f in step.files:
                if f.path in before:
                    out.edits += confdiff.changes(f.path, before[f.path], f.content,
                                                  self.secrets.mask)
            for line in out.edits:
                self.note(f"changed: {line}")
        if step.databases:
            dbs = {d.name: self.read(name, ops.database_fact(d, self.secrets))
                   for d in step.databases}
            apply(ops.databases(step.databases, dbs, self.secrets, forced))
        for g in step.commands:
            passes = False if forced else self.read(name, ops.check_fact(g, self.secrets))
            apply(ops.command(g, passes, self.secrets, forced))
        if step.services:
            svc = self.read(name, facts.service_states(step.services))
            apply(ops.services(step.services, svc, restart=forced or file_changed))
        out.seconds = time.monotonic() - start
        self.note(f"step {step.name}: " + (f"changed ({out.commands} commands)" if out.changed
                                           else "no change") + f" in {out.seconds:.1f}s")
        return out

    def _replaced(self, step: str, actions: list[Action],
                  states: dict[str, facts.FileState]) -> dict[str, str]:
        """The node's own text of each file the actions replace with other content (someone
        edited it, or wrote it by hand), for the report of what changed; unread if it fails."""
        out = {}
        for action in actions:
            f = action.upload
            if f is None or not states[f.path].exists or states[f.path].sha256 == ops.sha256(
                    f.content):
                continue
            fact = facts.file_text(f.path, confdiff.MAX_READ)
            if self.stop():
                raise Aborted
            try:  # not into the node's log: the text may hold the user's own passwords
                result = self.conn.run(fact.command, timeout=fact.timeout,
                                       secrets=self.secrets.values)
            except OslabError:
                continue
            if result.ok:
                out[f.path] = result.stdout
        return out

    def read_facts(self, step: StepDef) -> StepFacts:
        """Every fact of ``step`` at once, for a plan. A fact that cannot be read (mysql not
        installed yet, say) counts as not done, with a note."""
        notes: list[str] = []

        def get(fact: Fact[T], blank: T) -> T:
            result = self._run(step.name, fact.command, fact.timeout, fact.stdin)
            try:
                if result.returncode == TIMED_OUT:
                    raise FactError(f"reading {fact.what} timed out")
                return fact.parse(result.stdout, result.stderr, result.returncode)
            except FactError as exc:
                notes.append(f"{exc.message}; assuming not done")
                return blank

        blank = ops.blank_facts(step)
        services: dict[str, facts.ServiceState] = {}
        if step.services:
            services = get(facts.service_states(step.services), dict(blank.services))
        return StepFacts(
            missing=get(facts.packages_missing(step.packages, self.family), blank.missing)
            if step.packages else (),
            files={f.path: get(facts.file_state(f.path), facts.ABSENT) for f in step.files},
            databases={d.name: get(ops.database_fact(d, self.secrets), facts.NO_DATABASE)
                       for d in step.databases},
            checks=tuple(get(ops.check_fact(g, self.secrets), False) for g in step.commands),
            services=services,
            notes=tuple(notes),
        )
