"""`oslab plan`: the SSH targets of a running lab, and the virt types to plan with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oslab import spec as specmod
from oslab.errors import OslabError
from oslab.state import LabState

if TYPE_CHECKING:
    from oslab.cli import Options


def _live_targets(opts: Options, spec: specmod.LabSpec, state: LabState,
                  nodes: list[str]) -> tuple[dict[str, Any], str | None]:
    """SSH targets of ``nodes`` when every one of them runs and answers SSH, else the reason."""
    from oslab.checkpoint import node_targets
    from oslab.ssh import reachable

    try:
        conn = opts.connect()
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
    if live and all(n.name in targets for n in spec.nodes if n.is_compute):
        return content.read_virt_types(spec, targets), "read on each compute node"
    choice, _ = preflight.choose_virt_type()
    return content.host_virt_types(spec, choice.virt_type), "this host's choice"
