"""`oslab plan`: each node's install steps with the commands they would run now, read from
the running lab's nodes, or planned for blank nodes when the lab does not run (or ``fresh``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oslab import spec as specmod
from oslab.errors import OslabError
from oslab.state import LabState

if TYPE_CHECKING:
    from oslab.install.plan import Plan
    from oslab.up import LabAccess


@dataclass(frozen=True)
class LabPlan:
    spec: specmod.LabSpec
    plan: Plan
    fresh: bool  # blank nodes assumed, by request (--fresh)
    why_not_live: str | None  # why the nodes were not read (None: they were)
    virt_types: dict[str, str]  # per compute node
    virt_types_source: str  # where the virt types come from

    @property
    def live(self) -> bool:
        return self.why_not_live is None


def plan_lab(lab: LabAccess, node: str | None = None, fresh: bool = False,
             virt_type: str | None = None) -> LabPlan:
    """Plan the install of every node (or only ``node``); ``virt_type`` forces every compute
    node's virt type."""
    from oslab.install import content
    from oslab.install.engine import Engine
    from oslab.report import Reporter

    content.load_content()
    spec = lab.spec()
    if node is not None:
        spec.node(node)
    state = LabState(spec.name)
    nodes = [node] if node else [n.name for n in spec.nodes]
    targets: dict[str, Any] = {}
    why_not: str | None = "--fresh"
    if not fresh:
        targets, why_not = _live_targets(lab, spec, state, nodes)
    live = why_not is None
    virt_types, vt_source = _virt_types(spec, virt_type, targets, live)
    steps = content.steps_for(spec, state, virt_types)
    engine = Engine(spec, state, targets, steps, reporter=Reporter(quiet=True))
    result = engine.plan(node=node, fresh=not live)
    return LabPlan(spec, result, fresh, why_not, virt_types, vt_source)


def _live_targets(lab: LabAccess, spec: specmod.LabSpec, state: LabState,
                  nodes: list[str]) -> tuple[dict[str, Any], str | None]:
    """SSH targets of ``nodes`` when every one of them runs and answers SSH, else the reason."""
    from oslab.checkpoint import node_targets
    from oslab.ssh import reachable

    try:
        conn = lab.connect()
    except OslabError as exc:
        return {}, f"libvirt: {exc.message}"
    targets = node_targets(conn, spec.name, state)
    missing = [n for n in nodes if n not in targets]
    if missing:
        return {}, f"{', '.join(missing)} not running"
    for n in nodes:
        ok, why = reachable(targets[n])
        if not ok:
            return {}, f"{n} does not answer SSH: {why}"
    return targets, None


def _virt_types(spec: specmod.LabSpec, forced: str | None, targets: dict[str, Any],
                live: bool) -> tuple[dict[str, str], str]:
    from oslab import preflight
    from oslab.install import content

    if forced:
        return content.host_virt_types(spec, forced), "--virt-type"
    choice, _ = preflight.choose_virt_type()
    if choice.virt_type == specmod.VirtType.QEMU:
        return content.host_virt_types(spec, choice.virt_type), \
            "this host runs the nodes under qemu"
    if live and all(n.name in targets for n in spec.nodes if n.is_compute):
        return content.read_virt_types(spec, targets, choice.virt_type), \
            "read on each compute node"
    return content.host_virt_types(spec, choice.virt_type), "this host's choice"
