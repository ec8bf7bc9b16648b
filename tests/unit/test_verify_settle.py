"""`oslab verify`'s services rows end as soon as systemd on a node says a unit behind them
failed, instead of waiting their whole settle time: the pure decision as a table, then whole
runs against the fake controller of test_verify, with systemd's answers from test_facts."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from oslab import spec_file
from oslab.install import verify
from oslab.install.facts import UnitState
from oslab.install.verify import Status
from oslab.install.verify.results import Verdict
from oslab.install.verify.settle import NodeUnits, give_up
from tests.unit.test_facts import SHOW
from tests.unit.test_verify import FakeCloud, make_lab, rec

DOWN = Verdict(False, "cinder-volume on controller@lvm is down", "journalctl ...")


def unit(name: str, active: str, sub: str = "", result: str = "success") -> UnitState:
    return UnitState(name, "loaded", active, sub, result)


FAILED = unit("cinder-volume", "failed", "failed", "exit-code")
ACTIVATING = unit("cinder-volume", "activating", "auto-restart", "exit-code")
RUNNING = unit("cinder-scheduler", "active", "running")

GIVE_UP = [
    # the listing, systemd's word per node, the row's final verdict (None: wait on)
    (DOWN, {}, None),  # no node could be asked: wait as before
    (DOWN, {"controller": {"cinder-scheduler": RUNNING, "cinder-volume": ACTIVATING}}, None),
    (DOWN, {"controller": {"cinder-volume": unit("cinder-volume", "active", "running")}},
     None),  # running, not reported yet
    (DOWN, {"controller": {"cinder-volume": unit("cinder-volume", "inactive", "dead")}},
     None),  # a node still booting: its start job waits
    (Verdict(True, "2 up"), {"controller": {"cinder-volume": FAILED}}, None),
    (DOWN, {"controller": {"cinder-scheduler": RUNNING, "cinder-volume": FAILED}},
     Verdict(False, "systemd says cinder-volume failed on controller (exit-code): it will not "
                    "start it again by itself, so waiting longer cannot help; cinder-volume on "
                    "controller@lvm is down",
             "`oslab ssh controller -- journalctl -b -u cinder-volume` shows why; once fixed, "
             "`systemctl restart` it there and run `oslab verify --only services`")),
    (DOWN, {"controller": {"a": unit("a", "failed", "failed", "timeout"),
                           "b": unit("b", "failed", "failed")},
            "compute1": {"a": unit("a", "inactive", "dead"), "b": unit("b", "failed")}},
     Verdict(False, "systemd says a failed on controller (timeout), b failed on controller, b "
                    "failed on compute1: it will not start them again by itself, so waiting "
                    "longer cannot help; cinder-volume on controller@lvm is down",
             "`oslab ssh controller -- journalctl -b -u a -u b`; `oslab ssh compute1 -- "
             "journalctl -b -u b` shows why; once fixed, `systemctl restart` them there and run "
             "`oslab verify --only services`")),
]


@pytest.mark.parametrize(("listed", "states", "final"), GIVE_UP,
                         ids=["not-asked", "activating", "not-reported", "inactive", "listed-ok",
                              "failed", "failed-on-two-nodes"])
def test_give_up(listed: Verdict, states: NodeUnits, final: Verdict | None) -> None:
    assert give_up(listed, states) == final


@dataclass
class FailingVolume(FakeCloud):
    """cinder-volume reports down, and systemd on this node says of each unit what
    ``states`` says (else: running)."""

    states: dict[str, tuple[str, str, str]] = field(default_factory=dict)

    def answer(self, c: str) -> tuple[str, int, str]:
        if "volume service list" in c:
            return rec("volume_service_list_down.json"), 0, ""
        if c.startswith("systemctl show "):
            units = c.split(" -- ")[1].split()
            return "\n".join(SHOW.format(unit=u, load="loaded", **dict(zip(
                ("active", "sub", "result"), self.states.get(u, ("active", "running", "success")),
                strict=True))) for u in units), 0, ""
        return super().answer(c)


def run(cloud: FailingVolume, tmp_path: Path, distro: str = "centos-stream9",
        compute: FakeCloud | None = None) -> tuple[verify.Row, list[str], list[str]]:
    spec = spec_file.parse(spec_file.default_spec_text().replace(
        'distro = "centos-stream9"', f'distro = "{distro}"'))
    said: list[str] = []
    lab = replace(make_lab(cloud, tmp_path), spec=spec, say=said.append,
                  computes={"compute1": compute or FakeCloud()})
    report = verify.Verifier(lab).run(only=("services",))
    row = next(r for r in report.rows if r.name == "volume services")
    return row, said, cloud.commands


@pytest.mark.parametrize(("distro", "unit_name"), [("centos-stream9", "openstack-cinder-volume"),
                                                   ("debian13", "cinder-volume")])
def test_a_failed_unit_ends_the_row_at_once(tmp_path: Path, distro: str,
                                            unit_name: str) -> None:
    cloud = FailingVolume(states={unit_name: ("failed", "failed", "exit-code")})
    row, said, commands = run(cloud, tmp_path, distro)
    assert row.status is Status.FAIL
    assert row.details.startswith(f"systemd says {unit_name} failed on controller (exit-code): "
                                  "it will not start it again by itself")
    assert row.details.endswith("; cinder-volume on controller@lvm is down")
    assert row.hint.startswith(f"`oslab ssh controller -- journalctl -b -u {unit_name}` shows "
                               "why")
    assert sum("volume service list" in c for c in commands) == 1  # not 600 s of asking
    assert not any("still waiting" in line for line in said)
    # the lab's own units, asked of systemd on every node
    asked = next(c for c in commands if c.startswith("systemctl show ") and "cinder" in c)
    assert asked.endswith(f" -- {unit_name.replace('volume', 'scheduler')} {unit_name}")


def test_a_unit_failed_on_a_compute_node_ends_the_row_too(tmp_path: Path) -> None:
    compute = FailingVolume(states={"openstack-cinder-volume": ("failed", "failed", "signal")})
    row, _said, _commands = run(FailingVolume(), tmp_path, compute=compute)
    assert row.status is Status.FAIL
    assert row.details.startswith("systemd says openstack-cinder-volume failed on compute1 "
                                  "(signal)")


@pytest.mark.parametrize("state", [("activating", "auto-restart", "exit-code"),
                                   ("activating", "start", "success"),
                                   ("active", "running", "success")])
def test_a_unit_that_may_still_come_up_is_waited_for(tmp_path: Path,
                                                     state: tuple[str, str, str]) -> None:
    cloud = FailingVolume(states={"openstack-cinder-volume": state})
    row, said, commands = run(cloud, tmp_path)
    assert row.status is Status.FAIL
    assert row.details == "cinder-volume on controller@lvm is down"
    assert 290 <= sum("volume service list" in c for c in commands) <= 302  # settle: 300 s
    # the wait says what it waits for, and what the listing says now
    assert said[said.index("verify: volume services ...") + 1] == (
        "verify: still waiting for every volume service to report up (60s of 300s): "
        "cinder-volume on controller@lvm is down")
