"""Snapshot and revert as the CLI and the installer use them: after a revert, running nodes get
their clock put right (a memory snapshot brings back a stale clock) and answer SSH before we
return. ``Checkpoints`` takes the installer's automatic ``auto-<phase>`` snapshots."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from oslab.access.ssh import SSHError, Target, open_when_ready
from oslab.access.state import LabState
from oslab.errors import OslabError
from oslab.snapshots.snapshot import LabSnapshots, SnapResult
from oslab.virt.handles import Connection
from oslab.virt.lab_objects import DomainState, LabObjects

# One round trip: print the clock as it was, then set it to the host's.
FIX_CLOCK = ("date -u +%s && date -u -s '{now}' >/dev/null && "
             "{{ command -v chronyc >/dev/null 2>&1 && chronyc -a makestep >/dev/null 2>&1; "
             "command -v hwclock >/dev/null 2>&1 && hwclock -w 2>/dev/null; true; }}")


def node_targets(conn: Connection, lab: str, state: LabState) -> dict[str, Target]:
    """SSH targets of the lab's running nodes, from libvirt's metadata and the state dir."""
    out = {}
    for d in LabObjects(conn, lab).domains():
        if d.state != DomainState.RUNNING:
            continue
        target = state.target(d.meta.node, d.meta.address)
        if target is not None:
            out[d.meta.node] = target
    return out


def clock_before(stdout: str) -> float:
    """The node's clock (epoch seconds) as FIX_CLOCK printed it before setting it."""
    first = stdout.strip().splitlines()[0] if stdout.strip() else ""
    if not first.isdigit():
        raise OslabError(f"cannot read the node's clock from {stdout[:80]!r}",
                         hint="the node needs a `date` that prints `date -u +%s`")
    return float(first)


def set_clock(session: Any, timeout: float = 60.0) -> float:
    """Set the node's clock (over ``session``) to the host's; how far off it was, in seconds."""
    now = time.time()
    out = session.run(FIX_CLOCK.format(now=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))),
                      timeout=timeout, check=True)
    return abs(now - clock_before(out.stdout))


@dataclass(frozen=True)
class Settled:
    node: str
    seconds: float  # from the start of settle until SSH answered and the clock was set
    skew: float  # how far the node's clock was off, in seconds


def settle(targets: dict[str, Target], timeout: float = 300.0) -> tuple[Settled, ...]:
    """On every target at once: wait for SSH, then set its clock to the host's, over one
    session. Every node is tried; the error names each one that failed."""
    start = time.monotonic()

    def one(target: Target) -> Settled:
        try:
            with open_when_ready(target, timeout) as s:
                skew = set_clock(s, timeout=30)
        except SSHError as exc:
            raise OslabError(f"{target.name}: setting the clock failed: {exc.message}",
                             hint=exc.hint) from exc
        return Settled(target.name, time.monotonic() - start, skew)

    def guarded(target: Target) -> Settled | OslabError:
        try:
            return one(target)
        except OslabError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
        results = list(pool.map(guarded, targets.values()))
    failed = [r for r in results if isinstance(r, OslabError)]
    if failed:
        raise OslabError("after the revert: " + "; ".join(f.message for f in failed),
                         hint=failed[0].hint or "see `oslab status`")
    return tuple(r for r in results if isinstance(r, Settled))


@dataclass(frozen=True)
class Reverted:
    snap: SnapResult  # the libvirt part: check, revert paused, resume
    settled: tuple[Settled, ...]
    seconds: float  # the whole revert, until every running node answers SSH

    @property
    def phases(self) -> tuple[tuple[str, float], ...]:
        return (*self.snap.phases, ("SSH and clocks", self.seconds - self.snap.seconds))


def revert(conn: Connection, lab: str, state: LabState, name: str) -> Reverted:
    """Return every node to ``name``; then every running node answers SSH, its clock right."""
    start = time.monotonic()
    snap = LabSnapshots(conn, lab).revert(name)
    settled = settle(node_targets(conn, lab, state))
    return Reverted(snap, settled, time.monotonic() - start)


@dataclass
class Checkpoints:
    """Automatic lab-wide snapshots after each installer phase; ``enabled=False`` turns them off.

    A rerun replaces an existing ``auto-<phase>`` snapshot. ``last`` names the newest one (read
    from libvirt when enabled, then kept up to date), for error messages that say how to go
    back.
    """

    conn: Connection
    lab: str
    enabled: bool = True
    say: Callable[[str], None] = print
    last: str | None = None
    taken: list[SnapResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.enabled and self.last is None:
            # an error's hint names the newest checkpoint, even one an earlier run took
            auto = [s.name for s in LabSnapshots(self.conn, self.lab).snapshots()
                    if s.name.startswith("auto-")]
            self.last = auto[-1] if auto else None

    def take(self, phase: str, description: str = "") -> SnapResult | None:
        if not self.enabled:
            return None
        name = f"auto-{phase}"
        snaps = LabSnapshots(self.conn, self.lab)
        if any(s.name == name for s in snaps.snapshots()):
            snaps.delete(name)
        result = snaps.take_reserved(name, description or f"automatic checkpoint after {phase}")
        self.last = name
        self.taken.append(result)
        self.say(f"checkpoint {name} taken in {result.seconds:.1f}s "
                 f"(lab paused {result.paused_seconds:.2f}s)")
        return result

    def hint(self) -> str | None:
        """What to tell the user when a later phase fails."""
        if self.last is None:
            return None
        return (f"the last checkpoint is {self.last}: `oslab --lab {self.lab} revert "
                f"{self.last}` returns the lab to it")
