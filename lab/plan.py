"""`oslab plan`: what `up --stage provision` would create or change, decided from libvirt's
state (or for a blank host when libvirt is not reachable), then each node's install steps with
the commands they would run now, read from the running lab's nodes, or planned for blank nodes
when the lab does not run. ``fresh`` plans the install for blank nodes and reads nothing, so it
has no provision plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oslab import spec as specmod
from oslab.access.state import LabState
from oslab.errors import OslabError
from oslab.virt.handles import Connection

if TYPE_CHECKING:
    from oslab.install.planned import Plan
    from oslab.provisioning.decide import ProvisionPlan
    from oslab.up import LabAccess


@dataclass(frozen=True)
class LabPlan:
    spec: specmod.LabSpec
    plan: Plan
    fresh: bool  # blank nodes assumed, by request (--fresh)
    why_not_live: str | None  # why the nodes were not read (None: they were)
    virt_types: dict[str, str]  # per compute node
    virt_types_source: str  # where the virt types come from
    provision: ProvisionPlan | None = None  # None with --fresh: nothing is read
    provision_source: str = ""  # where the provisioning facts come from

    @property
    def live(self) -> bool:
        return self.why_not_live is None


def plan_lab(lab: LabAccess, node: str | None = None, fresh: bool = False,
             virt_type: str | None = None) -> LabPlan:
    """Plan the install of every node (or only ``node``); ``virt_type`` forces every compute
    node's virt type."""
    from oslab import resolve
    from oslab.install import content
    from oslab.install.engine import Engine
    from oslab.report import Reporter

    spec = lab.spec()
    if node is not None:
        spec.node(node)
    state = LabState(spec.name)
    nodes = [node] if node else [n.name for n in spec.nodes]
    targets: dict[str, Any] = {}
    why_not: str | None = "--fresh"
    provision, provision_source = None, ""
    if not fresh:
        try:
            conn = lab.connect()
        except OslabError as exc:
            conn, why_not = None, f"libvirt: {exc.message}"
            provision_source = (f"libvirt is not reachable ({exc.message}), so a blank host "
                                "assumed")
        else:
            targets, why_not = _live_targets(conn, spec, state, nodes)
            provision_source = f"read from libvirt now ({lab.uri})"
        provision = _provision(conn, spec, node)
    live = why_not is None
    virt_types, vt_source = resolve.virt_types(spec, targets if live else {}, forced=virt_type)
    steps = content.lab_steps(spec, state, virt_types, lab.install_content())
    engine = Engine(spec, state, targets, steps, reporter=Reporter(quiet=True))
    result = engine.plan(node=node, fresh=not live)
    return LabPlan(spec, result, fresh, why_not, virt_types, vt_source, provision,
                   provision_source)


def _provision(conn: Connection | None, spec: specmod.LabSpec, node: str | None) -> ProvisionPlan:
    """What `up --stage provision` would do, from libvirt's state (``conn``), or on a blank
    host (``conn`` None); only the shared objects and ``node``'s when a node is given."""
    from oslab.distro import node_os
    from oslab.provisioning.decide import ProvisionFacts, decide, read_facts
    from oslab.virt.lab_objects import LabObjects

    facts = (ProvisionFacts.blank(spec) if conn is None
             else read_facts(LabObjects(conn, spec.name), spec))
    plan = decide(spec, facts, node_os(spec))
    return plan if node is None else plan.only(node)


def _live_targets(conn: Connection, spec: specmod.LabSpec, state: LabState,
                  nodes: list[str]) -> tuple[dict[str, Any], str | None]:
    """SSH targets of ``nodes`` when every one of them runs and answers SSH, else the reason."""
    from oslab.access.ssh import reachable
    from oslab.snapshots.checkpoint import node_targets

    targets = node_targets(conn, spec.name, state)
    missing = [n for n in nodes if n not in targets]
    if missing:
        return {}, f"{', '.join(missing)} not running"
    for n in nodes:
        ok, why = reachable(targets[n])
        if not ok:
            return {}, f"{n} does not answer SSH: {why}"
    return targets, None
