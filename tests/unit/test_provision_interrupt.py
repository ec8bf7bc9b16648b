"""Ctrl-C during `oslab up` while the nodes boot: the nodes' threads stop at their next poll,
so the process ends at once instead of when the slowest node's wait runs out."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import libvirt
import pytest

from oslab import spec_file
from oslab.access.state import LabState
from oslab.errors import ProvisionError
from oslab.images.nodes import Bake
from oslab.provisioning.provisioner import Provisioner
from oslab.report import Reporter
from oslab.spec import Node, VirtType


def test_ctrl_c_stops_every_node_wait(tmp_path: Path) -> None:
    spec = spec_file.parse(spec_file.default_spec_text())
    conn = libvirt.open("test:///default")
    provisioner = Provisioner(spec, conn, LabState(spec.name, tmp_path / "state"),
                              Reporter(io.StringIO()), VirtType.QEMU, Bake({}))
    first = spec.nodes[0]
    stopped: list[str] = []
    waiting = threading.Barrier(len(spec.nodes))

    def one(node: Node) -> object:
        waiting.wait(5)
        if node is first:
            raise KeyboardInterrupt  # what the main thread gets from Ctrl-C
        tick = provisioner.ticker(node.name, "waiting for SSH")
        try:
            for _ in range(600):  # a wait of 30 s or more unless stopped
                tick(0.0, "not yet")
                time.sleep(0.05)
        except ProvisionError as exc:
            stopped.append(exc.message)
            raise
        raise AssertionError("the wait was not stopped")

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        provisioner.every_node(one, start)
    assert time.monotonic() - start < 5
    assert stopped == [f"{n.name}: interrupted while waiting for SSH"
                       for n in spec.nodes if n is not first]
