"""Snapshot and revert as the CLI and the installer use them: after a revert, running nodes get
their clock put right (a memory snapshot brings back a stale clock) and answer SSH before we
return. ``Checkpoints`` takes the installer's automatic ``auto-<phase>`` snapshots."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from oslab.errors import OslabError
from oslab.snapshot import LabSnapshots, SnapResult
from oslab.ssh import Session, Target, wait_ready
from oslab.state import LabState
from oslab.virt import LabObjects

SET_CLOCK = ("date -u -s '{now}' >/dev/null && "
             "{{ command -v chronyc >/dev/null 2>&1 && chronyc -a makestep >/dev/null 2>&1; "
             "command -v hwclock >/dev/null 2>&1 && hwclock -w 2>/dev/null; true; }}")


def node_targets(conn: Any, lab: str, state: LabState) -> dict[str, Target]:
    """SSH targets of the lab's running nodes, from libvirt's metadata and the state dir."""
    out = {}
    for d in LabObjects(conn, lab).domains():
        if d.state != "running":
            continue
        target = state.target(d.meta.node, d.meta.address)
        if target is not None:
            out[d.meta.node] = target
    return out


def settle(targets: dict[str, Target], timeout: float = 300.0) -> dict[str, float]:
    """Wait for SSH on every target, then set its clock to the host's; the clock skew fixed."""
    def one(target: Target) -> float:
        ok, reason = wait_ready(target, timeout, interval=1.0)
        if not ok:
            raise OslabError(f"{target.name} does not answer SSH after the revert ({reason})",
                             hint=f"look at `oslab console {target.name}`")
        with Session(target) as s:
            before = s.run("date -u +%s", timeout=30).stdout.strip()
            now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            s.run(SET_CLOCK.format(now=now), timeout=30, check=True)
        return abs(time.time() - float(before or 0))

    with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
        return dict(zip(targets, pool.map(one, targets.values()), strict=True))


def revert(conn: Any, lab: str, state: LabState, name: str) -> tuple[SnapResult, dict[str, float]]:
    result = LabSnapshots(conn, lab).revert(name)
    skew = settle(node_targets(conn, lab, state))
    return result, skew


@dataclass
class Checkpoints:
    """Automatic lab-wide snapshots after each installer phase; ``enabled=False`` turns them off.

    A rerun replaces an existing ``auto-<phase>`` snapshot. ``last`` names the newest one (read
    from libvirt when enabled, then kept up to date), for error messages that say how to go
    back.
    """

    conn: Any
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
        result = snaps.take(name, description or f"automatic checkpoint after {phase}")
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
