"""The installer's automatic checkpoints on the test guest: after a phase, a lab-wide
snapshot; when a later phase fails, the error names that checkpoint and the revert command,
and `oslab revert` to it brings the lab back to the moment after the phase."""

from __future__ import annotations

import sys
from typing import Any

import libvirt
import pytest

from oslab import spec_file
from oslab.access.state import LabState
from oslab.install.engine import Engine, StepFailed
from oslab.install.model import Guarded, StepDef, Where
from oslab.report import Reporter
from oslab.snapshots.checkpoint import Checkpoints
from tests.conftest import URI, Lab

pytestmark = pytest.mark.integration


def step(name: str, **kw: Any) -> StepDef:
    return StepDef(name=name, where=Where.ALL, title=f"flow {name}", **kw)


def test_failed_phase_names_the_last_checkpoint_and_revert_to_it_works(
        make_lab: Any) -> None:
    lab: Lab = make_lab(nodes=2)
    lab.run("up", "--stage", "provision")
    spec = spec_file.load(lab.spec_path)
    state = LabState(spec.name, root=lab.home / "state" / "oslab")
    conn = libvirt.open(URI)
    said: list[str] = []
    infra = step("flow.infra", checkpoint="infra", commands=(Guarded(
        "infra done", "test -f /root/flow-infra", "echo infra > /root/flow-infra; sync"),))
    broken = step("flow.identity", commands=(Guarded(
        "identity breaks", "test -f /root/flow-identity",
        "echo half > /root/flow-identity; sync; echo 'keystone exploded' >&2; exit 3"),))
    steps = {n: [infra, broken] for n in lab.nodes}
    targets = {n.name: state.spec_target(n) for n in spec.nodes}
    engine = Engine(spec, state, targets, steps,
                    reporter=Reporter(stream=sys.stderr,
                                      logs={n: state.log_path(n) for n in lab.nodes}),
                    checkpoints=Checkpoints(conn, spec.name, say=said.append))
    with pytest.raises(StepFailed) as failed:
        engine.run()
    hint = failed.value.hint or ""
    assert "auto-infra" in hint and f"oslab --lab {spec.name} revert auto-infra" in hint
    assert any("checkpoint auto-infra taken" in line for line in said)
    # the node that failed wrote its half; the failure stops the run, so a node that had not
    # begun flow.identity by then (a slow node, under load) never writes one
    halves = {node: lab.run("ssh", node, "--", "cat /root/flow-identity 2>/dev/null || true"
                            ).stdout.strip() for node in lab.nodes}
    assert set(halves.values()) <= {"half", ""} and "half" in halves.values(), halves

    lab.run("revert", "auto-infra")
    for node in lab.nodes:
        # the state right after the infra phase: its file is there, the failed half is not
        assert lab.run("ssh", node, "--", "cat /root/flow-infra").stdout.strip() == "infra"
        gone = lab.run("ssh", node, "--", "test -e /root/flow-identity", check=False)
        assert gone.returncode == 1
    conn.close()
