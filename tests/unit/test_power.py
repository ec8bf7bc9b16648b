"""A lab's power (oslab.power): stop, start, suspend and resume decided from facts, and applied.

The decisions are a table: each node's state in, the waves and moves out, or the refusal's words.
The application runs on libvirt's test driver (a scenario file per test) with the lab's domains
defined by oslab's own definitions; the nodes there have no SSH, so a stop presses ACPI's power
button, which the test driver obeys at once. The real nodes are stopped, started, suspended and
resumed by tests/integration/test_lifecycle.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from oslab import spec_file
from oslab.access.state import LabState
from oslab.power.apply import Power, apply_plan, ensure_shared
from oslab.power.decide import (
    NodeFact,
    PowerError,
    plan_resume,
    plan_start,
    plan_stop,
    plan_suspend,
    read_facts,
    unreachable,
)
from oslab.virt.definitions import PoolDef, domain_def
from oslab.virt.lab_objects import DomainState, LabObjects

S = DomainState
SPEC = spec_file.load_default()  # lab "oslab": controller and compute1


def facts(*states: tuple[str, str, DomainState]) -> tuple[NodeFact, ...]:
    return tuple(NodeFact(node, f"lab-{node}", role, "10.0.0.1", state)
                 for node, role, state in states)


LAB = facts(("ctl", "controller", S.RUNNING), ("c1", "compute", S.RUNNING),
            ("c2", "compute", S.RUNNING))


def waves(plan: Any) -> list[list[str]]:
    return [[m.line() for m in wave] for wave in plan.waves]


# -- decisions: (plan, facts, nodes asked for) -> waves ----------------------------------------

PLAN_CASES = [
    ("stop-all", plan_stop, LAB, (),
     [["c1: shut down (running)", "c2: shut down (running)"], ["ctl: shut down (running)"]]),
    ("stop-one", plan_stop, LAB, ("c2",), [["c2: shut down (running)"]]),
    ("stop-stopped", plan_stop,
     facts(("ctl", "controller", S.SHUT_OFF), ("c1", "compute", S.PAUSED)), (),
     [["c1: shut down (paused)"], ["ctl: none (shut off already)"]]),
    ("start-all", plan_start,
     facts(("ctl", "controller", S.SHUT_OFF), ("c1", "compute", S.SHUT_OFF),
           ("c2", "compute", S.CRASHED)), (),
     [["ctl: boot (shut off)"], ["c1: boot (shut off)", "c2: boot (crashed)"]]),
    ("start-mixed", plan_start,
     facts(("ctl", "controller", S.RUNNING), ("c1", "compute", S.SAVED),
           ("c2", "compute", S.PAUSED)), (),
     [["ctl: none (running)"],
      ["c1: restore (suspended: its saved memory)", "c2: unpause (paused)"]]),
    ("start-one", plan_start, facts(("ctl", "controller", S.RUNNING),
                                    ("c1", "compute", S.SHUT_OFF)), ("c1",),
     [["c1: boot (shut off)"]]),
    ("suspend", plan_suspend, facts(("ctl", "controller", S.RUNNING),
                                    ("c1", "compute", S.PAUSED), ("c2", "compute", S.SHUT_OFF)),
     (), [["ctl: save (running)", "c1: save (paused)", "c2: none (shut off)"]]),
    ("suspend-again", plan_suspend, facts(("ctl", "controller", S.SAVED)), (),
     [["ctl: none (suspended)"]]),
    ("resume", plan_resume, facts(("ctl", "controller", S.SAVED), ("c1", "compute", S.PAUSED),
                                  ("c2", "compute", S.SHUT_OFF)), (),
     [["ctl: restore (suspended: its saved memory)", "c1: unpause (paused)",
       "c2: none (shut off, nothing saved: `oslab start c2` boots it)"]]),
    ("resume-running", plan_resume, LAB, (),
     [["ctl: none (running)", "c1: none (running)", "c2: none (running)"]]),
]


@pytest.mark.parametrize("case", PLAN_CASES, ids=[c[0] for c in PLAN_CASES])
def test_plans(case: tuple[Any, ...]) -> None:
    _id, plan_fn, given, nodes, expected = case
    plan = plan_fn("lab", given, nodes) if nodes or plan_fn in (plan_stop, plan_start) \
        else plan_fn("lab", given)
    assert waves(plan) == expected


REFUSALS = [
    ("no-nodes", lambda: plan_start("lab", ()), "lab lab has no nodes in libvirt",
     "build it with `oslab up`"),
    ("unknown-node", lambda: plan_stop("lab", LAB, ("c9", "ctl")), "lab lab has no node 'c9'",
     "its nodes: c1, c2, ctl"),
    ("stop-suspended", lambda: plan_stop("lab", facts(("ctl", "controller", S.SAVED))),
     "node ctl is suspended: stopping it would throw away its saved memory",
     "`oslab --lab lab resume`, then stop it"),
    ("start-shutting-down",
     lambda: plan_start("lab", facts(("ctl", "controller", S.SHUTTING_DOWN))),
     "node ctl is shutting down", "wait for it to be shut off"),
    ("suspend-stopped", lambda: plan_suspend("lab", facts(("ctl", "controller", S.SHUT_OFF))),
     "lab lab is stopped: there is no memory to save", "`oslab --lab lab start` boots it"),
    ("suspend-crashed", lambda: plan_suspend("lab", facts(("ctl", "controller", S.CRASHED))),
     "node ctl is crashed: it cannot be suspended", "`oslab stop` then"),
    ("resume-stopped", lambda: plan_resume("lab", facts(("ctl", "controller", S.SHUT_OFF))),
     "lab lab is stopped, not suspended: there is no saved memory to resume",
     "`oslab --lab lab start` boots it"),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c[0] for c in REFUSALS])
def test_refusals(case: tuple[Any, ...]) -> None:
    _id, call, message, hint = case
    with pytest.raises(PowerError) as info:
        call()
    assert info.value.message == message
    assert hint in (info.value.hint or "")


# -- reaching a node over SSH: its domain's state -> wait for it, or the refusal's words ---------

REACH = [
    ("running: wait (it may be booting)", S.RUNNING, None, None),
    ("no state: wait", S.NO_STATE, None, None),
    ("shut off", S.SHUT_OFF, "node c1 is shut off", "`oslab --lab lab start` brings it up"),
    ("crashed", S.CRASHED, "node c1 is crashed", "`oslab --lab lab start` brings it up"),
    ("paused", S.PAUSED, "node c1 is paused", "`oslab --lab lab start` brings it up"),
    ("suspended", S.SAVED, "node c1 is suspended",
     "`oslab --lab lab start` brings it up from its saved memory"),
    ("shutting down", S.SHUTTING_DOWN, "node c1 is shutting down",
     "wait until it is shut off (`oslab status`), then `oslab --lab lab start`"),
    ("asleep", S.PM_SUSPENDED, "node c1 suspended itself (ACPI sleep)",
     "`virsh dompmwakeup lab-c1` wakes it"),
]


@pytest.mark.parametrize("case", REACH, ids=[c[0] for c in REACH])
def test_reach_a_node_by_its_domain_state(case: tuple[Any, ...]) -> None:
    _id, state, message, hint = case
    lab = facts(("ctl", "controller", S.RUNNING), ("c1", "compute", state))
    why = unreachable("lab", "c1", lab)
    if message is None:
        assert why is None
    else:
        assert why is not None and why.message == message and why.hint == hint


def test_reach_a_node_libvirt_does_not_have() -> None:
    why = unreachable("lab", "c9", LAB)
    assert why is not None and why.message == "lab lab has no node c9 in libvirt"
    assert "`oslab up` builds it" in (why.hint or "")


# -- applied on libvirt's test driver ----------------------------------------------------------

SCENARIO = """<node>
  <cpu><mode>1</mode><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads>
  <active>4</active><mhz>2000</mhz><model>x86_64</model></cpu>
  <memory>16777216</memory>
</node>
"""


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[Any]:
    scenario = tmp_path / "scenario.xml"
    scenario.write_text(SCENARIO)
    c = libvirt.open(f"test://{scenario}")
    for node in SPEC.nodes:
        d = domain_def(SPEC, node, virt_type="qemu", console_log=tmp_path / f"{node.name}.log",
                       kernel="", initrd="", iso_label="")
        c.defineXML(d.final().redefinition(c.defineXML(d.xml()).UUIDString(), "final").xml())
    yield c
    c.close()


def states(conn: Any) -> dict[str, str]:
    return {f.node: str(f.state) for f in read_facts(conn, SPEC.name)}


def test_stop_start_suspend_resume_on_the_test_driver(conn: Any, tmp_path: Path) -> None:
    said: list[str] = []
    power = Power(conn, LabState(SPEC.name, root=tmp_path / "state"),
                  lambda who, m: said.append(f"{who}: {m}"), stop_timeout=10)
    assert states(conn) == {"controller": "shut off", "compute1": "shut off"}

    ready: list[list[str]] = []
    done = apply_plan(power, plan_start(SPEC.name, read_facts(conn, SPEC.name)),
                      lambda ms: ready.append([m.node.node for m in ms]))
    assert [d.node for d in done] == ["controller", "compute1"]
    assert ready == [["controller"], ["compute1"]]  # each wave made ready before the next
    assert states(conn) == {"controller": "running", "compute1": "running"}

    apply_plan(power, plan_suspend(SPEC.name, read_facts(conn, SPEC.name)))
    assert states(conn) == {"controller": "suspended", "compute1": "suspended"}
    assert "lab: every node paused" in " ".join(said)

    # the test driver cannot start a domain paused (VIR_DOMAIN_START_PAUSED), which resume
    # needs: tests/integration/test_lifecycle.py resumes real nodes
    conn.lookupByName("oslab-controller").create()
    conn.lookupByName("oslab-compute1").create()
    done = apply_plan(power, plan_stop(SPEC.name, read_facts(conn, SPEC.name), ("compute1",)))
    assert [d.node for d in done] == ["compute1"]
    assert states(conn) == {"controller": "running", "compute1": "shut off"}
    assert "compute1: shutting down (ACPI power button)" in said  # no SSH keys: ACPI


def test_a_stopped_lab_s_inactive_pool_is_started(conn: Any, tmp_path: Path) -> None:
    # (the test driver refuses the INACTIVE flag oslab reads networks with: the integration
    # test starts a real lab's networks)
    LabObjects(conn, SPEC.name).ensure_pool(PoolDef(SPEC.name, tmp_path / "pool"))
    conn.storagePoolLookupByName(SPEC.name).destroy()
    assert ensure_shared(conn, SPEC.name) == [f"pool {SPEC.name}"]
    assert ensure_shared(conn, SPEC.name) == []
