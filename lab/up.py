"""`oslab up`: its stages, from the install step named by ``--from`` to the install itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oslab import spec as specmod
from oslab.state import LabState

if TYPE_CHECKING:
    from oslab.checkpoint import Checkpoints
    from oslab.install.engine import RunResult

STAGES = ("provision", "install", "verify", "all")


def _check_step(spec: specmod.LabSpec, name: str) -> None:
    """Refuse ``--from NAME`` when no install step has that name (the names do not depend on
    the virt type, nor on the passwords, so neither is read or made here)."""
    from oslab.install import content
    from oslab.install.graph import forced_from
    from oslab.install.model import InstallContext

    ctx = InstallContext(spec=spec, password=lambda _name: "x",
                         virt_types=content.host_virt_types(spec, "qemu"))
    forced_from(content.load_content().steps_for(ctx), name)


def _install(spec: specmod.LabSpec, state: LabState, reporter: Any, from_step: str | None,
             checkpoints: Checkpoints) -> RunResult:
    """The install stage: the content's steps on every node, by the engine."""
    from oslab.install import content
    from oslab.install.engine import Engine
    from oslab.provision import ssh_target

    targets = {n.name: ssh_target(spec, state, n) for n in spec.nodes}
    virt_types = content.read_virt_types(spec, targets)
    steps = content.steps_for(spec, state, virt_types)
    engine = Engine(spec, state, targets, steps, reporter=reporter,
                    checkpoints=checkpoints if checkpoints.enabled else None)
    return engine.run(from_step=from_step)
