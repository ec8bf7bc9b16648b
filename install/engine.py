"""The install engine: ordered, idempotent steps on every node, in parallel across nodes.

``Engine.plan`` says what each step would run now; ``Engine.run`` runs it. Both read the facts
from the nodes (``oslab.install.facts``), so nothing about progress is kept on the host: after a
failure or a ``kill -9`` a rerun continues from the first step that is not done, and a rerun on
a finished lab changes nothing.

Order and parallelism: one thread per node runs that node's steps in list order; a step waits
for every instance of each step named in its ``after`` (see ``oslab.install.graph``).
A failure stops the run: the other nodes finish the command they are running and stop, and
``run`` raises the failure (``StepFailed``: node, step, masked command, exit code, output tail).

Checkpoints: when a step with ``checkpoint`` set has finished on every node that runs it, and
something changed in this run since the previous checkpoint, the engine lets every node finish
its current step, holds them at that step boundary, calls ``checkpoints.take(name, ...)`` (the
CLI passes ``oslab.snapshots.checkpoint.Checkpoints``), then lets them go on. So a snapshot never
catches a command half-way. A later failure's hint includes ``checkpoints.hint()``.

``run(from_step=NAME)`` reruns NAME and every step after it fully: the instances of NAME, the
steps after them on their nodes, and (transitively) every step that waits for one of those
through ``after``. A forced step uploads all its files, runs its database SQL, runs every
guarded command without its check, and enables and restarts its services; its packages are
still installed only when missing. Steps before it are applied as usual (facts decide).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from oslab.access import ssh
from oslab.access.ssh import NodeConn, Target
from oslab.access.state import LabState
from oslab.distro import distro_for
from oslab.errors import OslabError
from oslab.files import open_append
from oslab.install import graph, ops
from oslab.install.apply import Aborted, StepFailed, StepOutcome, StepRunner
from oslab.install.boot import await_boot
from oslab.install.model import StepDef, check_nodes
from oslab.install.planned import NodePlan, Plan, planned_step
from oslab.report import LOG_HINT, Reporter
from oslab.spec import LabSpec

__all__ = ["CheckpointSink", "Engine", "NodeRun", "RunResult", "StepFailed", "StepOutcome"]


class CheckpointSink(Protocol):
    """What the engine needs of ``oslab.snapshots.checkpoint.Checkpoints``."""

    def take(self, phase: str, description: str = "") -> object: ...

    def hint(self) -> str | None: ...


@dataclass
class NodeRun:
    node: str
    steps: list[StepOutcome] = field(default_factory=list)

    @property
    def changed_steps(self) -> int:
        return sum(1 for s in self.steps if s.changed)

    @property
    def commands(self) -> int:
        return sum(s.commands for s in self.steps)


@dataclass
class RunResult:
    nodes: list[NodeRun]
    seconds: float
    checkpoints: list[str] = field(default_factory=list)

    @property
    def change_count(self) -> int:
        """Commands that changed something, on every node (0 on a finished lab)."""
        return sum(n.commands for n in self.nodes)

    @property
    def changed_steps(self) -> int:
        return sum(n.changed_steps for n in self.nodes)


class _Schedule:
    """Shared state of one run, guarded by one condition variable."""

    def __init__(self, steps: Mapping[str, Sequence[StepDef]], checkpoints: bool) -> None:
        self.checkpoints = checkpoints
        self.cond = threading.Condition()
        self.nodes_of = graph.where(steps)
        self.done: dict[str, set[str]] = {name: set() for name in self.nodes_of}
        self.busy: dict[str, bool] = dict.fromkeys(steps, False)
        self.failures: list[OslabError] = []
        self.crash: BaseException | None = None
        self.aborted = False
        self.holding = 0  # checkpoints pending or being taken: no new step may start
        self.snapshotting = threading.Lock()  # one checkpoint at a time
        self.changed_since_checkpoint = False
        # node -> the checkpoint step it finished: it starts nothing more until that step is
        # done on every node that runs it, so the snapshot catches the whole phase
        self.barrier: dict[str, str] = {}

    def stop(self) -> bool:
        return self.aborted

    def fail(self, exc: OslabError) -> None:
        with self.cond:
            self.failures.append(exc)
            self.aborted = True
            self.cond.notify_all()

    def start(self, node: str, step: StepDef) -> bool:
        """Wait until ``step`` may start on ``node``; False when the run is aborted."""
        with self.cond:
            while not self.aborted and (self.holding or self._at_barrier(node) or not all(
                    self.done[d] == self.nodes_of[d] for d in step.after)):
                self.cond.wait()
            if self.aborted:
                return False
            self.busy[node] = True
            return True

    def _at_barrier(self, node: str) -> bool:
        name = self.barrier.get(node)
        return name is not None and self.done[name] != self.nodes_of[name]

    def finish(self, node: str, step: StepDef, changed: bool) -> bool:
        """Record ``step`` done on ``node``; True when a checkpoint is due now."""
        with self.cond:
            self.busy[node] = False
            self.done[step.name].add(node)
            if self.checkpoints and step.checkpoint:
                self.barrier[node] = step.name
            self.changed_since_checkpoint |= changed
            due = (self.checkpoints and bool(step.checkpoint) and self.changed_since_checkpoint
                   and self.done[step.name] == self.nodes_of[step.name])
            if due:
                self.holding += 1
            self.cond.notify_all()
            return due

    def idle(self, node: str) -> None:
        with self.cond:
            self.busy[node] = False
            self.cond.notify_all()

    def hold(self) -> bool:
        """Wait until no node is inside a step; False when the run is aborted."""
        with self.cond:
            while not self.aborted and any(self.busy.values()):
                self.cond.wait()
            self.changed_since_checkpoint = False
            return not self.aborted

    def release(self) -> None:
        with self.cond:
            self.holding -= 1
            self.cond.notify_all()


class Engine:
    """Plans and runs ``steps`` (node name → ordered steps) on the lab's nodes.

    ``targets`` are needed for every node the engine reads or runs on (not for a fresh plan).
    ``connect`` opens a node connection (default: SSH with the pinned host key).
    """

    def __init__(self, spec: LabSpec, state: LabState, targets: Mapping[str, Target],
                 steps: Mapping[str, Sequence[StepDef]], *, reporter: Reporter | None = None,
                 checkpoints: CheckpointSink | None = None,
                 connect: Callable[[Target], NodeConn] = ssh.connect,
                 retry_delay: float = 10.0) -> None:
        check_nodes(spec, steps)
        names = [n.name for n in spec.nodes]
        graph.check(steps)
        self.spec = spec
        self.family = distro_for(spec.distro).family
        self.state = state
        self.targets = dict(targets)
        self.steps = {n: list(steps[n]) for n in names if n in steps}
        self.report = reporter or Reporter(logs={n: state.log_path(n) for n in self.steps})
        self.checkpoints = checkpoints
        self.connect = connect
        self.retry_delay = retry_delay
        self.secrets = ops.Secrets(state.password, state.known_passwords())

    def _target(self, node: str) -> Target:
        if node not in self.targets:
            raise OslabError(f"node {node} has no SSH target (is it running?)",
                             hint="`oslab status` shows the nodes; `oslab up --stage provision` "
                                  "starts them")
        return self.targets[node]

    # -- plan -------------------------------------------------------------------------------------

    def plan(self, node: str | None = None, fresh: bool = False) -> Plan:
        """Each node's steps with the commands they would run now (facts read over SSH), or
        on a blank node (``fresh``, no SSH)."""
        if node is not None and node not in self.steps:
            raise OslabError(f"no install steps for node {node!r}",
                             hint="nodes: " + ", ".join(self.steps))
        nodes = [node] if node is not None else list(self.steps)
        if fresh:
            return Plan(self.spec.name, tuple(self._plan_node(n, None) for n in nodes))
        with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
            plans = list(pool.map(self._plan_live, nodes))
        return Plan(self.spec.name, tuple(plans))

    def _plan_live(self, node: str) -> NodePlan:
        conn = self.connect(self._target(node))
        try:
            with open_append(self.state.log_path(node), "the node's log", LOG_HINT) as log:
                log.write(f"# oslab plan: reading facts ({time.strftime('%F %T')})\n")
                return self._plan_node(node, StepRunner(conn, self.secrets, log,
                                                         family=self.family))
        finally:
            conn.close()

    def _plan_node(self, node: str, runner: StepRunner | None) -> NodePlan:
        out = []
        for step in self.steps[node]:
            have = ops.blank_facts(step) if runner is None else runner.read_facts(step)
            actions, reasons = ops.decide_step(step, have, self.secrets, family=self.family)
            out.append(planned_step(step, actions, reasons, self.secrets, have.notes))
        return NodePlan(node, runner is None, tuple(out))

    # -- run --------------------------------------------------------------------------------------

    def run(self, from_step: str | None = None) -> RunResult:
        start = time.monotonic()
        forced = graph.forced_from(self.steps, from_step) if from_step else set()
        for node in self.steps:
            self._target(node)
        sched = _Schedule(self.steps, checkpoints=self.checkpoints is not None)
        results = {n: NodeRun(n) for n in self.steps}
        taken: list[str] = []
        threads = [threading.Thread(target=self._worker, name=f"oslab-{n}", daemon=True,
                                    args=(n, sched, forced, results[n], taken))
                   for n in self.steps]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        except KeyboardInterrupt:
            sched.fail(OslabError("interrupted"))
            raise
        if sched.crash is not None:
            raise sched.crash
        if sched.failures:
            raise self._failure(sched.failures)
        return RunResult(list(results.values()), time.monotonic() - start, taken)

    def _failure(self, failures: list[OslabError]) -> OslabError:
        first = failures[0]
        hints = [first.hint] if first.hint else []
        for other in failures[1:]:
            hints.append("also failed: " + other.message.splitlines()[0])
        if self.checkpoints is not None and (cp := self.checkpoints.hint()):
            hints.append(cp)
        where = getattr(first, "node", None)
        log = self.state.dir / "logs" / (f"{where}.log" if where else "")
        hints.append(f"the full output is in {log}; fix the cause and rerun `oslab up`: it "
                     "continues from the first step not done")
        first.hint = "\n  ".join(hints)
        return first

    def _worker(self, node: str, sched: _Schedule, forced: set[graph.Instance],
                out: NodeRun, taken: list[str]) -> None:
        say = self.report.node
        try:
            conn = self.connect(self._target(node))
        except OslabError as exc:
            sched.fail(exc)
            return
        try:
            with open_append(self.state.log_path(node), "the node's log", LOG_HINT) as log:
                log.write(f"# oslab install run ({time.strftime('%F %T')})\n")
                await_boot(conn, lambda line: self.report.node(node, line), "installing", log)
                runner = StepRunner(conn, self.secrets, log, stop=sched.stop,
                                    retry_delay=self.retry_delay, family=self.family)
                for step in self.steps[node]:
                    if not sched.start(node, step):
                        return
                    is_forced = (node, step.name) in forced
                    say(node, self.secrets.mask(f"{step.name}: {step.title}"
                                                + (" (forced by --from)" if is_forced else "")))
                    try:
                        outcome = runner.run_step(step, forced=is_forced)
                    finally:
                        sched.idle(node)
                    out.steps.append(outcome)
                    say(node, f"{step.name}: " + (
                        f"changed ({outcome.commands} commands)" if outcome.changed
                        else "no change") + f" in {outcome.seconds:.1f}s")
                    if sched.finish(node, step, outcome.changed):
                        self._checkpoint(step, sched, taken)
        except Aborted:
            return
        except OslabError as exc:
            sched.fail(exc)
        except BaseException as exc:  # a bug: hand it to the main thread, stop the others
            with sched.cond:
                sched.crash = exc
            sched.fail(OslabError(f"{node}: internal error: {exc!r}"))
        finally:
            conn.close()

    def _checkpoint(self, step: StepDef, sched: _Schedule, taken: list[str]) -> None:
        try:
            with sched.snapshotting:
                if not sched.hold() or self.checkpoints is None:
                    return  # aborted meanwhile
                self.report.lab(f"checkpoint {step.checkpoint}: every node has finished "
                                f"{step.name}")
                self.checkpoints.take(step.checkpoint, f"oslab install: after step {step.name}")
                taken.append(step.checkpoint)
        finally:
            sched.release()
