"""What a lab needs to live for weeks, beyond its first build (issue 21's content findings).

Each defect shows only with time, an upgrade or a second node: logs that are never rotated,
identities that a base image shares with every node made from it, an Apache that a package
upgrade breaks, a time zone that never reaches the node. The install content is rendered
for the Debian 13 lab of ``test_debian_content`` and, where EL differs, the default lab.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oslab.access.state import LabState
from oslab.images.nodes import lab_packages
from oslab.install import ops
from oslab.install.facts import ServiceState
from oslab.install.model import StepDef
from tests.unit.test_debian_content import debian_spec, plan

# -- log rotation ------------------------------------------------------------------------------


def rotating(steps: list[StepDef]) -> list[StepDef]:
    return [s for s in steps if "logrotate" in s.packages and "logrotate.timer" in s.services]


@pytest.mark.parametrize("node", ["controller", "compute1"])
def test_every_debian_node_installs_logrotate_and_runs_its_timer(node: str) -> None:
    """The controller's packages pull no logrotate in; a compute node has it (libvirt-daemon
    depends on it), but its base image has the timer disabled with every unit its packages
    enabled. Either way the step installs it and enables and starts the timer."""
    steps = plan()[node]
    assert [s.name for s in rotating(steps)] == ["env.logrotate"]
    step = rotating(steps)[0]
    as_baked = {"logrotate.timer": ServiceState("logrotate.timer", "disabled", "inactive")}
    actions, _ = ops.services(step.services, as_baked, restart=False)
    assert [a.command for a in actions] == ["systemctl enable --now logrotate.timer"]


def test_both_debian_base_images_bake_logrotate(tmp_path: Path) -> None:
    spec = debian_spec()
    packages = lab_packages(spec, LabState(spec.name, root=tmp_path), "qemu")
    assert all("logrotate" in baked for baked in packages.values()), packages
