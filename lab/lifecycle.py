"""`oslab stop`, `start`, `suspend` and `resume`: a lab's life after its build.

Each command reads the nodes' states from libvirt, decides (``oslab.power.decide``), applies the
plan wave by wave (``oslab.power.apply``), and for ``start`` and ``resume`` waits after each wave
until its nodes are ready: SSH with the pinned host key, then a clock put right (restored
memory brings its old clock back) or a boot that systemd says has finished. Last, on a lab whose
OpenStack is installed and whose spec is at hand, it waits until every service reports up:
verify's own services rows, their listings asked over the APIs' REST from this host
(``oslab.install.verify.api``). Like ``up``, it neither parses options nor prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from oslab.access.ssh import Session
from oslab.access.state import LabState
from oslab.errors import OslabError
from oslab.power.apply import Done, Power, apply_plan, ensure_shared
from oslab.power.decide import (
    Act,
    Move,
    PowerPlan,
    plan_resume,
    plan_start,
    plan_stop,
    plan_suspend,
    read_facts,
)
from oslab.power.reach import await_ssh
from oslab.report import Reporter
from oslab.spec import LabSpec, Scope
from oslab.virt.handles import Connection
from oslab.virt.lab_objects import libvirt_calls

if TYPE_CHECKING:
    from oslab.install.verify import Report

BOOT_TIMEOUT_S = 1800.0  # without a spec: a TCG node in its boot storm (the spec's may differ)


@dataclass(frozen=True)
class Ready:
    node: str
    ssh_s: float  # from the start of the command until SSH answered
    boot_s: float  # until its boot had finished (systemd), or its clock was put right
    note: str = ""


@dataclass
class PowerOutcome:
    plan: PowerPlan
    done: list[Done] = field(default_factory=list)
    ready: list[Ready] = field(default_factory=list)
    started: list[str] = field(default_factory=list)  # networks and pools started
    services: Report | None = None  # verify's service rows, when they were waited for
    services_note: str = ""  # why the services were not waited for
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.services is None or self.services.ok


DOING = {"stop": "stopping", "start": "starting", "suspend": "suspending",
         "resume": "resuming"}


def _reporter(state: LabState, nodes: Sequence[str]) -> Reporter:
    logs = {n: state.log_path(n) for n in nodes} if state.owned else {}
    return Reporter(logs=logs)


class Lifecycle:
    """The four commands on lab ``lab`` through ``conn``; ``spec`` (when it is this lab's) gives
    the boot timeout and lets ``start``/``resume`` wait for the OpenStack services."""

    def __init__(self, conn: Connection, lab: str, state: LabState, spec: LabSpec | None = None,
                 stop_timeout: float | None = None) -> None:
        self.conn = conn
        self.lab = lab
        self.state = state
        self.spec = spec
        self.facts = read_facts(conn, lab)
        self.reporter = _reporter(state, [f.node for f in self.facts])
        self.power = Power(conn, state, self.say,
                           **({"stop_timeout": stop_timeout} if stop_timeout else {}))
        self.start_time = time.monotonic()

    def say(self, who: str, message: str) -> None:
        if who == "lab":
            self.reporter.lab(message)
        else:
            self.reporter.node(who, message)

    def _apply(self, plan: PowerPlan,
               ready: Callable[[Sequence[Move]], list[Ready]] | None = None) -> PowerOutcome:
        out = PowerOutcome(plan)
        if not plan.changes:
            out.seconds = time.monotonic() - self.start_time
            return out
        self.say("lab", f"{plan.command} lab {self.lab}: " + "; ".join(
            "wave " + str(i + 1) + ": " + ", ".join(m.line() for m in w)
            for i, w in enumerate(plan.waves)))
        with libvirt_calls(f"{DOING[plan.command]} lab {self.lab}"):
            if plan.command in ("start", "resume"):
                out.started = ensure_shared(self.conn, self.lab)
                for what in out.started:
                    self.say("lab", f"started {what}")
            after = (lambda ms: out.ready.extend(ready(ms))) if ready else None
            out.done = apply_plan(self.power, plan, after)
        out.seconds = time.monotonic() - self.start_time
        return out

    # -- the commands ---------------------------------------------------------------------------

    def stop(self, nodes: Sequence[str] = ()) -> PowerOutcome:
        return self._apply(plan_stop(self.lab, self.facts, nodes))

    def suspend(self) -> PowerOutcome:
        return self._apply(plan_suspend(self.lab, self.facts))

    def start(self, nodes: Sequence[str] = (), wait_services: bool = True) -> PowerOutcome:
        out = self._apply(plan_start(self.lab, self.facts, nodes), self.ready)
        return self._services(out, wait_services)

    def resume(self, wait_services: bool = True) -> PowerOutcome:
        out = self._apply(plan_resume(self.lab, self.facts), self.ready)
        return self._services(out, wait_services)

    # -- readiness ------------------------------------------------------------------------------

    def boot_timeout(self) -> float:
        return float(self.spec.boot_timeout_s) if self.spec else BOOT_TIMEOUT_S

    def ready(self, moves: Sequence[Move]) -> list[Ready]:
        """Every node of a wave at once: SSH, then its clock (restored memory) or its boot."""
        with ThreadPoolExecutor(max_workers=max(1, len(moves))) as pool:
            results = list(pool.map(self._ready_one, moves))
        failed = [r for r in results if isinstance(r, OslabError)]
        if failed:
            raise OslabError("; ".join(f.message for f in failed),
                             hint=failed[0].hint or "`oslab status` shows the nodes")
        return [r for r in results if isinstance(r, Ready)]

    def _ready_one(self, move: Move) -> Ready | OslabError:
        from oslab.install.boot import await_boot
        from oslab.snapshots.checkpoint import set_clock

        node = move.node.node
        target = self.state.target(node, move.node.address)
        if target is None:
            return OslabError(f"{node}: no SSH keys in {self.state.dir}",
                              hint="they are made by `oslab up` on this host; name the lab "
                                   "it was built as with --lab")

        def say(message: str) -> None:
            self.say(node, message)

        try:
            await_ssh(self.lab, target, self.boot_timeout(), say,
                      lambda: read_facts(self.conn, self.lab))
        except OslabError as exc:
            return exc
        ssh_s = time.monotonic() - self.start_time
        say(f"SSH answers after {ssh_s:.0f}s")
        note = ""
        try:
            with Session(target, connect_timeout=60.0) as s:
                if move.act in (Act.RESTORE, Act.UNPAUSE):
                    note = f"clock was {set_clock(s):.0f}s off, now set"
                    say(note)
                else:
                    await_boot(s, say, "going on")
        except OslabError as exc:
            return OslabError(f"{node}: {exc.message}", hint=exc.hint)
        return Ready(node, ssh_s, time.monotonic() - self.start_time, note)

    def _services(self, out: PowerOutcome, wait: bool) -> PowerOutcome:
        """Wait until every OpenStack service of the lab reports up (verify's service rows)."""
        if not out.plan.changes:
            out.services_note = "nothing was started"
        elif not wait:
            out.services_note = "not waited for (--no-wait)"
        elif self.spec is None:
            out.services_note = ("not waited for: give the lab's spec with -f to wait for its "
                                 "OpenStack services")
        elif not self._installed():
            out.services_note = "not waited for: OpenStack is not installed on this lab"
        if out.services_note:
            return out
        assert self.spec is not None
        from oslab.install import verify as verifymod

        # a whole cloud: its services' own APIs, asked from this host (no client to load on a
        # controller still in its boot storm); Keystone alone: its token, by the client
        whole = self.spec.scope is Scope.ALL
        self.say("lab", "waiting for every OpenStack service to report up (" + (
            "their APIs, asked from this host" if whole else "the identity checks of "
            "`oslab verify`") + ")")
        out.services = verifymod.verify_lab(self.spec, self.state, say=self.reporter.lab,
                                            only=("services",) if whole else ("identity",),
                                            via_api=whole)
        out.seconds = time.monotonic() - self.start_time
        return out

    def _installed(self) -> bool:
        """Whether the install has run on the controller (its done-markers are there)."""
        from oslab.install.markers import DONE_DIR

        assert self.spec is not None
        node = self.spec.controller
        with Session(self.state.spec_target(node), connect_timeout=60.0) as s:
            return s.run(f"test -d {DONE_DIR}", timeout=60).ok


def lifecycle_for(conn: Connection, lab: str, spec: LabSpec | None,
                  stop_timeout: float | None = None) -> Lifecycle:
    """The lab's lifecycle; the spec is used only when it is this lab's."""
    return Lifecycle(conn, lab, LabState(lab), spec if spec and spec.name == lab else None,
                     stop_timeout)
