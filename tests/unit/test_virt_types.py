"""Which ``virt_type`` each compute node's nova gets: the node's own vmx/svm answer, but only
when this host runs the nodes with kvm (TCG's emulated CPU may list svm: seen on a real
Debian 13 compute node, which then chose kvm)."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import pytest

from oslab import spec_file
from oslab.access.ssh import Result, Target
from oslab.install import content, facts


class AnsweringNode:
    """A node connection that answers the virt-type probe with ``answer``."""

    def __init__(self, name: str, answer: str, asked: list[str]) -> None:
        self.name, self.answer, self.asked = name, answer, asked

    def run(self, command: str, *, timeout: float, stdin: str | None = None,
            secrets: Any = (), log: IO[str] | None = None) -> Result:
        assert command == facts.VIRT_TYPE_PROBE
        self.asked.append(self.name)
        return Result(command, 0, self.answer, "")

    def put(self, path: str, data: bytes, *, timeout: float) -> None:
        raise AssertionError("no upload")

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("host", "answer", "want", "asks"), [
    ("kvm", "4 dev-kvm\n", "kvm", True),
    ("kvm", "0 no-dev-kvm\n", "qemu", True),
    ("kvm", "2 no-dev-kvm\n", "qemu", True),
    # under qemu the node is not asked: its emulated CPU's svm is no promise of kvm
    ("qemu", "2 dev-kvm\n", "qemu", False),
])
def test_read_virt_types(host: str, answer: str, want: str, asks: bool) -> None:
    spec = spec_file.parse(spec_file.default_spec_text())
    targets = {n.name: Target(n.name, n.address, "ssh-ed25519 AAAA", Path("/nonexistent"))
               for n in spec.nodes}
    asked: list[str] = []
    got = content.read_virt_types(spec, targets, host,
                                  connect=lambda t: AnsweringNode(t.name, answer, asked))
    computes = [n.name for n in spec.nodes if n.is_compute]
    assert got == dict.fromkeys(computes, want)
    assert asked == (computes if asks else [])


# resolve.virt_types: the one rule that `up`'s install stage, `plan` and `render` share
@pytest.mark.parametrize(("forced", "host", "reachable", "want", "source"), [
    ("kvm", "qemu", False, "kvm", "--virt-type"),
    ("qemu", "kvm", True, "qemu", "--virt-type"),
    (None, "qemu", True, "qemu", "this host runs the nodes under qemu"),
    (None, "kvm", False, "kvm", "this host's choice"),
])
def test_resolved_virt_types(forced: str | None, host: str, reachable: bool, want: str,
                             source: str) -> None:
    from oslab import resolve

    spec = spec_file.load_default()
    # an address that must not be dialled: no case here reads the nodes
    targets = {n.name: Target(n.name, "192.0.2.1", "ssh-ed25519 AAAA", Path("/nonexistent"))
               for n in spec.nodes} if reachable else {}
    got, said = resolve.virt_types(spec, targets, host, forced)
    assert got == {n.name: want for n in spec.nodes if n.is_compute} and got
    assert said == source
