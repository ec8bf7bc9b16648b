"""Waiting for a node's SSH while libvirt says its domain runs (oslab.power.reach).

Real sockets on loopback: the node's address is 127.0.0.1 on a port where nothing listens, so
every SSH attempt is refused at once, as a node's is while it reboots. The domain's state comes
from a list of facts read in turn, as libvirt would answer while the wait goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from oslab.access.ssh import Target, wait_ready
from oslab.access.state import LabState
from oslab.errors import OslabError
from oslab.power.decide import NodeFact, PowerError
from oslab.power.reach import await_ssh
from oslab.virt.lab_objects import DomainState
from tests.unit.test_revert_settle import closed_port


def target(tmp_path: Path) -> Target:
    state = LabState("lab", tmp_path)
    return Target("c1", "127.0.0.1", state.host_key("c1").public,
                  state.ssh_key().private_path, port=closed_port())


def states_in_turn(*states: DomainState) -> tuple[Callable[[], Sequence[NodeFact]], list[int]]:
    """A reader of the lab's facts that answers ``states`` one after the other (then the last
    again), and the count of reads."""
    reads = [0]

    def read() -> Sequence[NodeFact]:
        state = states[min(reads[0], len(states) - 1)]
        reads[0] += 1
        return (NodeFact("c1", "lab-c1", "compute", "127.0.0.1", state),)

    return read, reads


def test_a_node_whose_domain_is_shut_off_is_refused_before_any_attempt(tmp_path: Path) -> None:
    read, reads = states_in_turn(DomainState.SHUT_OFF)
    start = time.monotonic()
    with pytest.raises(PowerError) as info:
        await_ssh("lab", target(tmp_path), 300, lambda _line: None, read)
    assert time.monotonic() - start < 2
    assert info.value.message == "node c1 is shut off"
    assert info.value.hint == "`oslab --lab lab start` brings it up"
    assert reads[0] == 1


def test_the_wait_ends_when_the_domain_stops_running(tmp_path: Path) -> None:
    # running (rebooting) at first, then it powered off instead of coming back
    read, reads = states_in_turn(DomainState.RUNNING, DomainState.RUNNING,
                                 DomainState.SHUT_OFF)
    start = time.monotonic()
    with pytest.raises(PowerError) as info:
        await_ssh("lab", target(tmp_path), 300, lambda _line: None, read)
    assert time.monotonic() - start < 30  # not the 300 s of the bound
    assert info.value.message == "node c1 is shut off"
    assert reads[0] >= 3


def test_a_running_node_that_never_answers_fails_at_the_bound_with_the_reason(
        tmp_path: Path) -> None:
    read, _reads = states_in_turn(DomainState.RUNNING)
    t = target(tmp_path)
    start = time.monotonic()
    with pytest.raises(OslabError) as info:
        await_ssh("lab", t, 5, lambda _line: None, read)
    took = time.monotonic() - start
    assert 5 <= took < 20
    assert info.value.message.startswith("c1: no SSH at 127.0.0.1 after 5s (")
    assert "oslab console c1" in (info.value.hint or "")
    assert not isinstance(info.value, PowerError)


def test_wait_ready_gives_up_when_asked(tmp_path: Path) -> None:
    asked = []

    def give_up() -> str:
        asked.append(1)
        return "its domain is shut off" if len(asked) == 2 else ""

    ok, reason = wait_ready(target(tmp_path), 300, interval=0.1, give_up=give_up)
    assert (ok, reason) == (False, "its domain is shut off")
    assert len(asked) == 2
