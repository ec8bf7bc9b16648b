"""A power plan applied to libvirt, one wave at a time, the nodes of a wave in parallel.

A clean shutdown asks the node itself (``poweroff`` over SSH, which systemd and busybox both
have), and ACPI's power button when SSH does not answer; past the bound the node is powered off
hard, with a warning. Saves and restores keep the wave at one moment: every node is paused
before any is saved, and restored nodes stay paused until all of them can run together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import libvirt

from oslab.access.ssh import Session, SSHError
from oslab.access.state import LabState
from oslab.errors import CommandError
from oslab.power.decide import Act, Move, PowerError, PowerPlan
from oslab.virt import at_once
from oslab.virt.handles import Connection, Domain
from oslab.virt.lab_objects import LabObjects, libvirt_calls, wait_for

T = TypeVar("T")
# systemd's and busybox's `poweroff` return once the shutdown is under way (a job queued, a
# signal to init); the session may drop meanwhile, and then ACPI's button is pressed too
POWEROFF = "poweroff"
STOP_TIMEOUT_S = 600.0  # a TCG node stopping its OpenStack units can take minutes


@dataclass(frozen=True)
class Done:
    node: str
    act: Act
    seconds: float
    note: str = ""  # what the user should know: "powered off hard after 600s", ...


def parallel(fn: Callable[[Move], T], moves: Sequence[Move]) -> list[T]:
    """``fn`` on every move at once; every node's error is reported, none is lost."""
    return at_once.every(fn, moves, who=lambda m: m.node.node, doing=lambda m: str(m.act),
                         error=PowerError, hint="`oslab status` shows each node's state; "
                                                "rerun the command to finish")


class Power:
    """Applies power plans to lab ``lab``'s domains; ``say(node, message)`` tells progress."""

    def __init__(self, conn: Connection, state: LabState, say: Callable[[str, str], None],
                 stop_timeout: float = STOP_TIMEOUT_S) -> None:
        self.conn = conn
        self.state = state
        self.say = say
        self.stop_timeout = stop_timeout

    def domain(self, move: Move) -> Any:
        return self.conn.lookupByName(move.node.domain)

    # -- stop -----------------------------------------------------------------------------------

    def shutdown(self, move: Move) -> Done:
        start = time.monotonic()
        dom = self.domain(move)
        if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
            dom.resume()  # a paused node cannot shut itself down
        how = self._ask_poweroff(move, dom)
        self.say(move.node.node, f"shutting down ({how})")
        last = [0.0]

        def tick(elapsed: float) -> None:
            if elapsed - last[0] >= 30:
                last[0] = elapsed
                self.say(move.node.node, f"still shutting down ({elapsed:.0f}s of "
                                         f"{self.stop_timeout:.0f}s)")

        if wait_for(lambda: not dom.isActive(), self.stop_timeout, interval=1.0, on_tick=tick):
            return Done(move.node.node, move.act, time.monotonic() - start)
        dom.destroy()
        note = (f"did not shut down within {self.stop_timeout:.0f}s: powered off hard "
                "(as a power cut would)")
        self.say(move.node.node, f"warning: {note}")
        return Done(move.node.node, move.act, time.monotonic() - start, note)

    def _ask_poweroff(self, move: Move, dom: Domain) -> str:
        target = self.state.target(move.node.node, move.node.address)
        if target is not None:
            try:
                with Session(target, connect_timeout=20.0) as s:
                    s.run(POWEROFF, timeout=30.0, check=True)
                return "poweroff over SSH"
            except (SSHError, CommandError) as exc:
                self.say(move.node.node, f"SSH did not take `poweroff` ({exc.message}); "
                                         "pressing its ACPI power button")
        dom.shutdown()
        return "ACPI power button"

    # -- start ----------------------------------------------------------------------------------

    def boot(self, move: Move) -> Done:
        start = time.monotonic()
        dom = self.domain(move)
        if dom.isActive():  # crashed: libvirt keeps the process; start it afresh
            dom.destroy()
        dom.create()
        self.say(move.node.node, "booting")
        return Done(move.node.node, move.act, time.monotonic() - start)

    def run_together(self, moves: Sequence[Move]) -> list[Done]:
        """Restore and unpause ``moves``: each restored paused, then all of them run at once."""
        start = time.monotonic()

        def restore(move: Move) -> None:
            if move.act is Act.RESTORE:
                self.domain(move).createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
                self.say(move.node.node, f"memory restored in {time.monotonic() - start:.1f}s")

        parallel(restore, moves)
        parallel(lambda m: self.domain(m).resume(), moves)
        end = time.monotonic() - start
        return [Done(m.node.node, m.act, end) for m in moves]

    # -- suspend --------------------------------------------------------------------------------

    def save_together(self, moves: Sequence[Move]) -> list[Done]:
        """Pause every node of ``moves``, then save each one's memory to disk (libvirt's managed
        save: the next start restores it). A failure leaves the others saved: resume fixes it."""
        start = time.monotonic()

        def pause(move: Move) -> None:
            dom = self.domain(move)
            if dom.state()[0] != libvirt.VIR_DOMAIN_PAUSED:
                dom.suspend()

        parallel(pause, moves)
        paused = time.monotonic()
        self.say("lab", f"every node paused in {paused - start:.1f}s; saving their memory")

        def save(move: Move) -> Done:
            self.domain(move).managedSave(libvirt.VIR_DOMAIN_SAVE_RUNNING)
            seconds = time.monotonic() - paused
            self.say(move.node.node, f"memory saved in {seconds:.1f}s")
            return Done(move.node.node, move.act, seconds)

        try:
            return parallel(save, moves)
        except PowerError as exc:
            raise PowerError(f"suspend failed: {exc.message}",
                             hint="the nodes saved so far stay saved; `oslab resume` brings "
                                  "the whole lab back") from exc

    # -- the plan -------------------------------------------------------------------------------

    def wave(self, moves: Sequence[Move]) -> list[Done]:
        """Apply one wave; the moves that change nothing are left out of the result."""
        moving = [m for m in moves if m.act is not Act.NONE]
        by_act: dict[Act, Callable[[Sequence[Move]], list[Done]]] = {
            Act.SHUTDOWN: lambda ms: parallel(self.shutdown, ms),
            Act.BOOT: lambda ms: parallel(self.boot, ms),
            Act.SAVE: self.save_together,
        }
        done: list[Done] = []
        together = [m for m in moving if m.act in (Act.RESTORE, Act.UNPAUSE)]
        if together:
            done += self.run_together(together)
        for act, apply in by_act.items():
            ms = [m for m in moving if m.act is act]
            if ms:
                done += apply(ms)
        return done


@libvirt_calls("starting the lab's networks and pool")
def ensure_shared(conn: Connection, lab: str) -> list[str]:
    """Start the lab's networks and pool where they are inactive (a host that booted without
    autostart, a libvirtd restarted without its state); what was started."""
    objs = LabObjects(conn, lab)
    started = []
    for name, _meta, active in objs.networks():
        net = objs.network(name)
        if not active and net is not None:
            net.create()
            started.append(f"network {name}")
    pool = objs.pool()
    if pool is not None and not pool.isActive():
        pool.create(0)
        started.append(f"pool {lab}")
    return started


def apply_plan(power: Power, plan: PowerPlan,
               after_wave: Callable[[Sequence[Move]], None] | None = None) -> list[Done]:
    """Every wave in order; ``after_wave`` (readiness) runs after each wave that moved."""
    done: list[Done] = []
    for wave in plan.waves:
        moved = power.wave(wave)
        done += moved
        if moved and after_wave is not None:
            after_wave([m for m in wave if m.act is not Act.NONE])
    return done
