"""Lab snapshots on libvirt's test driver: a snapshot lookup that fails for another reason than
"no such snapshot" (VIR_ERR_NO_DOMAIN_SNAPSHOT) is a VirtError saying what oslab was doing, in
``delete`` and ``revert`` both, and nothing is deleted or reverted after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from oslab.snapshots.snapshot import LabSnapshots, SnapshotError, find_snapshot
from oslab.virt.lab_objects import DomainInfo, VirtError
from oslab.virt.metadata import LabMeta

LAB = "lab1"
NODES = ("cmp", "ctl")


def domain_xml(node: str) -> str:
    return (f"<domain type='test'><name>{LAB}-{node}</name><memory>65536</memory><metadata>"
            + LabMeta(LAB, "domain", "controller", "d", node).xml()
            + "</metadata><os><type>hvm</type></os></domain>")


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[Any]:
    """A test driver of its own with the lab's two running nodes, each with snapshot s1."""
    scenario = tmp_path / "lab.xml"
    scenario.write_text("<node>" + "".join(domain_xml(n) for n in NODES) + "</node>")
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    c = libvirt.open(f"test://{scenario}")
    LabSnapshots(c, LAB).take("s1")
    yield c
    c.close()


def undefine(conn: Any, node: str) -> None:
    dom = conn.lookupByName(f"{LAB}-{node}")
    dom.destroy()
    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)


class Vanishing(LabSnapshots):
    """Node ``gone`` is undefined (another oslab's `destroy`) after the lab's domains were
    listed, before their snapshots are looked up."""

    gone = "cmp"

    def _domains(self) -> list[tuple[DomainInfo, Any]]:
        doms = super()._domains()
        undefine(self.conn, self.gone)
        return doms


def snapshot_names(conn: Any, node: str) -> list[str]:
    return [s.getName() for s in conn.lookupByName(f"{LAB}-{node}").listAllSnapshots(0)]


def test_find_snapshot_tells_no_such_snapshot_from_other_errors(conn: Any) -> None:
    dom = conn.lookupByName(f"{LAB}-cmp")
    assert find_snapshot(dom, "s1", "cmp").getName() == "s1"
    assert find_snapshot(dom, "s2", "cmp") is None  # VIR_ERR_NO_DOMAIN_SNAPSHOT
    undefine(conn, "cmp")
    with pytest.raises(VirtError) as info:
        find_snapshot(dom, "s1", "cmp")  # VIR_ERR_NO_DOMAIN: not "no such snapshot"
    assert info.value.message.startswith("libvirt failed while looking up snapshot 's1' of "
                                         "node cmp: Domain not found")
    assert info.value.hint


@pytest.mark.parametrize("action", ["delete", "revert"])
def test_a_failed_lookup_is_an_error_not_a_missing_snapshot(conn: Any, action: str) -> None:
    """Before, delete took the vanished node for one without s1 and deleted ctl's alone; revert
    said s1 was missing on cmp."""
    with pytest.raises(VirtError) as info:
        getattr(Vanishing(conn, LAB), action)("s1")
    assert info.value.message.startswith("libvirt failed while looking up snapshot 's1' of "
                                         "node cmp: Domain not found")
    assert snapshot_names(conn, "ctl") == ["s1"]  # nothing was done to the other node


def test_a_snapshot_missing_on_a_node_is_still_said_as_missing(conn: Any) -> None:
    conn.lookupByName(f"{LAB}-cmp").snapshotLookupByName("s1", 0).delete(0)
    with pytest.raises(SnapshotError) as info:
        LabSnapshots(conn, LAB).revert("s1")
    assert info.value.message == "snapshot 's1' is missing on node(s) cmp; no node was touched"
    assert LabSnapshots(conn, LAB).delete("s1") == ["ctl"]
    assert snapshot_names(conn, "ctl") == []
