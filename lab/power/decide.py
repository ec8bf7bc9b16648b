"""`oslab stop`, `start`, `suspend` and `resume` decided from facts.

The provisioner's shape for a lab's power: :func:`read_facts` reads each node's domain state from
libvirt, and the ``plan_*`` functions are pure, from those facts to one move per node, in waves:
the nodes of one wave act together, and a wave starts when the one before it has finished. A lab
in a state where the command makes no sense is refused here, with a hint, before anything moves.

The order suits the cloud: ``stop`` takes the compute nodes down first (their agents report down
to a controller that still runs), then the controllers; ``start`` boots the controllers first
and waits for them, so the compute nodes boot into a control plane that answers and the boot
storm of one wave does not starve the other of CPU. ``suspend`` and ``resume`` act on every node
in one wave: the lab's memory is one moment, as a snapshot's is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from oslab.errors import OslabError
from oslab.virt.handles import Connection
from oslab.virt.lab_objects import DomainState, LabObjects


class PowerError(OslabError):
    """The lab is in no state for the power command asked for."""


class Act(StrEnum):
    SHUTDOWN = "shut down"  # cleanly from inside, bounded; past the bound, powered off hard
    BOOT = "boot"
    RESTORE = "restore"  # from its saved memory, paused until its wave resumes together
    UNPAUSE = "unpause"  # paused: run again
    SAVE = "save"  # paused with its wave, then its memory saved to disk; shut off
    NONE = "none"


@dataclass(frozen=True)
class NodeFact:
    node: str
    domain: str
    role: str
    address: str
    state: DomainState


@dataclass(frozen=True)
class Move:
    node: NodeFact
    act: Act
    reason: str

    def line(self) -> str:
        return f"{self.node.node}: {self.act} ({self.reason})"


@dataclass(frozen=True)
class PowerPlan:
    command: str  # stop, start, suspend or resume
    lab: str
    waves: tuple[tuple[Move, ...], ...]

    @property
    def moves(self) -> tuple[Move, ...]:
        return tuple(m for wave in self.waves for m in wave)

    @property
    def changes(self) -> tuple[Move, ...]:
        return tuple(m for m in self.moves if m.act is not Act.NONE)


def read_facts(conn: Connection, lab: str) -> tuple[NodeFact, ...]:
    """Every node of ``lab`` with its domain's state, from libvirt."""
    return tuple(NodeFact(d.meta.node, d.name, d.meta.role, d.meta.address, d.state)
                 for d in LabObjects(conn, lab).domains())


def select(lab: str, facts: Sequence[NodeFact], names: Sequence[str]) -> tuple[NodeFact, ...]:
    """The nodes named (all when none is), refusing a name the lab has no node of."""
    if not facts:
        raise PowerError(f"lab {lab} has no nodes in libvirt",
                         hint="build it with `oslab up`, or name another lab with --lab "
                              "(`oslab status` shows what libvirt has)")
    known = {f.node for f in facts}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PowerError(f"lab {lab} has no node {', '.join(map(repr, unknown))}",
                         hint="its nodes: " + ", ".join(sorted(known)))
    return tuple(f for f in facts if not names or f.node in names)


def _controllers_first(moves: Sequence[Move], reverse: bool = False) -> tuple[tuple[Move, ...],
                                                                           ...]:
    first = tuple(m for m in moves if m.node.role == "controller")
    rest = tuple(m for m in moves if m.node.role != "controller")
    waves = (rest, first) if reverse else (first, rest)
    return tuple(w for w in waves if w)




def plan_stop(lab: str, facts: Sequence[NodeFact], names: Sequence[str] = ()) -> PowerPlan:
    moves = []
    for f in select(lab, facts, names):
        if f.state is DomainState.SAVED:
            raise PowerError(f"node {f.node} is suspended: stopping it would throw away its "
                             "saved memory", hint=f"`oslab --lab {lab} resume`, then stop it")
        if f.state is DomainState.SHUT_OFF:
            moves.append(Move(f, Act.NONE, "shut off already"))
        else:
            moves.append(Move(f, Act.SHUTDOWN, str(f.state)))
    return PowerPlan("stop", lab, _controllers_first(moves, reverse=True))


def plan_start(lab: str, facts: Sequence[NodeFact], names: Sequence[str] = ()) -> PowerPlan:
    moves = []
    for f in select(lab, facts, names):
        if f.state is DomainState.SHUTTING_DOWN:
            raise PowerError(f"node {f.node} is shutting down",
                             hint="wait for it to be shut off (`oslab status`), then start it")
        act = {DomainState.SHUT_OFF: Act.BOOT, DomainState.CRASHED: Act.BOOT,
               DomainState.SAVED: Act.RESTORE, DomainState.PAUSED: Act.UNPAUSE,
               }.get(f.state, Act.NONE)
        reason = "suspended: its saved memory" if act is Act.RESTORE else str(f.state)
        moves.append(Move(f, act, reason))
    return PowerPlan("start", lab, _controllers_first(moves))


def plan_suspend(lab: str, facts: Sequence[NodeFact]) -> PowerPlan:
    nodes = select(lab, facts, ())
    moves = []
    for f in nodes:
        if f.state in (DomainState.RUNNING, DomainState.PAUSED):
            moves.append(Move(f, Act.SAVE, str(f.state)))
        elif f.state in (DomainState.SAVED, DomainState.SHUT_OFF):
            moves.append(Move(f, Act.NONE, str(f.state)))
        else:
            raise PowerError(f"node {f.node} is {f.state}: it cannot be suspended",
                             hint="`oslab status` shows the nodes; `oslab stop` then "
                                  "`oslab start` brings it back to a known state")
    if not any(m.act is Act.SAVE for m in moves) and not any(
            f.state is DomainState.SAVED for f in nodes):
        raise PowerError(f"lab {lab} is stopped: there is no memory to save",
                         hint=f"`oslab --lab {lab} start` boots it")
    return PowerPlan("suspend", lab, (tuple(moves),))


def plan_resume(lab: str, facts: Sequence[NodeFact]) -> PowerPlan:
    nodes = select(lab, facts, ())
    moves = []
    for f in nodes:
        if f.state is DomainState.SAVED:
            moves.append(Move(f, Act.RESTORE, "suspended: its saved memory"))
        elif f.state is DomainState.PAUSED:
            moves.append(Move(f, Act.UNPAUSE, "paused"))
        elif f.state is DomainState.SHUT_OFF:
            moves.append(Move(f, Act.NONE, f"shut off, nothing saved: `oslab start {f.node}` "
                                           "boots it"))
        else:
            moves.append(Move(f, Act.NONE, str(f.state)))
    if not any(m.act is not Act.NONE for m in moves) and any(
            f.state is DomainState.SHUT_OFF for f in nodes):
        raise PowerError(f"lab {lab} is stopped, not suspended: there is no saved memory to "
                         "resume", hint=f"`oslab --lab {lab} start` boots it")
    return PowerPlan("resume", lab, (tuple(moves),))


def unreachable(lab: str, node: str, facts: Sequence[NodeFact]) -> PowerError | None:
    """Why ``node`` of ``lab`` cannot answer SSH now, from its domain's state in ``facts``;
    None when its domain runs (it may still be booting, so its SSH is worth waiting for)."""
    fact = next((f for f in facts if f.node == node), None)
    if fact is None:
        return PowerError(f"lab {lab} has no node {node} in libvirt",
                          hint="`oslab up` builds it; `oslab status` shows what libvirt has")
    if fact.state in (DomainState.RUNNING, DomainState.NO_STATE):
        return None
    if fact.state is DomainState.SHUTTING_DOWN:
        return PowerError(f"node {node} is shutting down",
                          hint=f"wait until it is shut off (`oslab status`), then `oslab --lab "
                               f"{lab} start`")
    if fact.state is DomainState.PM_SUSPENDED:
        return PowerError(f"node {node} suspended itself (ACPI sleep)",
                          hint=f"`virsh dompmwakeup {fact.domain}` wakes it")
    how = " from its saved memory" if fact.state is DomainState.SAVED else ""
    return PowerError(f"node {node} is {fact.state}",
                      hint=f"`oslab --lab {lab} start` brings it up{how}")
