"""Saved labs, the parts that decide: names, manifests, the list of saves, how each disk is kept,
which lab states can be saved, and why a save cannot become a lab here."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import libvirt
import pytest

from oslab import spec_file
from oslab.access.state import VERIFY_LEDGER, LabState
from oslab.errors import OslabError
from oslab.saves import store
from oslab.saves.restore import refusals, renamed_spec_text, renamed_xml, restore_xml
from oslab.saves.save import (
    DiskCopy,
    copy_argv,
    copy_state_dir,
    disk_copy,
    qemu_img_chain,
    rebase_argv,
    refuse_state,
)
from oslab.saves.store import SaveError
from oslab.virt.lab_objects import DomainInfo, DomainState
from oslab.virt.metadata import LabMeta

SPEC = spec_file.load_default()


def manifest(name: str = "s1", **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"format": 1, "name": name, "lab": "lab1", "nodes": [], "files": {},
                         "distro": "debian13", "release": "epoxy",
                         "created": "2026-12-07T10:00:00+00:00", "bases": []}
    m.update(extra)
    return m


def write_save(root: Path, name: str, m: dict[str, Any] | None = None) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps(m if m is not None else manifest(name)))
    return d


@pytest.mark.parametrize(("name", "ok"), [
    ("s1", True), ("before-risk.2", True), ("a" * 64, True), ("a" * 65, False),
    ("", False), (".hidden", False), ("../up", False), ("a/b", False), ("-x", False),
])
def test_save_names(name: str, ok: bool) -> None:
    if ok:
        store.check_name(name)
    else:
        with pytest.raises(SaveError, match="not a valid save name"):
            store.check_name(name)


@pytest.mark.parametrize(("data", "message"), [
    (b"{", "is not JSON"),
    (b"[]", "is not a manifest"),
    (json.dumps(manifest(format=2)).encode(), "has format 2; this oslab reads format 1"),
    (json.dumps({k: v for k, v in manifest().items() if k != "lab"}).encode(),
     "'lab' is missing"),
    (json.dumps(manifest(nodes={})).encode(), "'nodes' is missing or not a list"),
])
def test_a_manifest_that_is_not_one_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(SaveError, match=message):
        store.parse_manifest(data, "m.json")


def test_the_list_holds_saves_only_and_says_what_else_it_found(tmp_path: Path) -> None:
    write_save(tmp_path, "new", manifest("new", created="2026-12-07T11:00:00+00:00"))
    write_save(tmp_path, "old", manifest("old", created="2026-12-01T11:00:00+00:00"))
    write_save(tmp_path, "wrong", manifest("other"))
    (tmp_path / "half").mkdir()  # a directory without its manifest
    (tmp_path / ".partial-x-1").mkdir()  # a save being written: not listed, not a problem
    saves, problems = store.list_saves(tmp_path)
    assert [s.name for s in saves] == ["old", "new"]
    assert len(problems) == 2
    assert any("names save 'other'" in p for p in problems)
    assert any("there is no save 'half'" in p for p in problems)


def test_stale_partials_are_those_whose_writer_is_gone(tmp_path: Path) -> None:
    mine = tmp_path / f".partial-a-{os.getpid()}"
    gone = tmp_path / ".partial-b-999999999"
    mine.mkdir()
    gone.mkdir()
    assert store.stale_partials(tmp_path) == [gone]


def test_delete_removes_the_save_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    write_save(tmp_path, "s1")
    store.delete(tmp_path, "s1")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SaveError, match="there is no save 's1'"):
        store.delete(tmp_path, "s1")


def test_the_root_is_refused_when_oslab_did_not_make_it(tmp_path: Path) -> None:
    (tmp_path / "theirs").write_text("x")
    with pytest.raises(SaveError, match="without oslab's marker"):
        store.ensure_root(tmp_path)
    fresh = store.ensure_root(tmp_path / "new")
    assert (fresh / store.MARKER).is_file()
    assert oct(fresh.stat().st_mode & 0o777) == oct(0o711)


def test_a_relative_saves_root_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(store.ROOT_VARIABLE, "saves")
    with pytest.raises(OslabError, match="OSLAB_SAVES_DIR='saves' is a relative path"):
        store.saves_root()


OVERLAY = {"format": "qcow2", "virtual-size": 9, "filename": "/p/v"}
BASE = {"format": "qcow2", "filename": "/c/base.qcow2"}


@pytest.mark.parametrize(("chain", "backing", "argv_tail"), [
    # an overlay on a cached base stays one: only its own clusters are written
    ([OVERLAY, BASE], "/c/base.qcow2", ["-B", "/c/base.qcow2", "-F", "qcow2", "/p/v", "/o/v"]),
    # a lab made from a save, saved again: its own clusters first (then the rebase below)
    ([OVERLAY, {"format": "qcow2", "filename": "/s/s1/v"}, BASE], "/c/base.qcow2",
     ["-B", "/s/s1/v", "-F", "qcow2", "/p/v", "/o/v"]),
    # a disk of its own (a kickstarted node) is flattened, its snapshots left behind
    ([OVERLAY], "", ["-O", "qcow2", "/p/v", "/o/v"]),
    # a raw seed is copied as it is
    ([{"format": "raw", "virtual-size": 9}], "", None),
])
def test_how_each_disk_is_kept(chain: list[dict[str, Any]], backing: str,
                               argv_tail: list[str] | None) -> None:
    disk = disk_copy("v", Path("/p/v"), chain)
    assert disk.backing == backing
    argv = copy_argv(disk, Path("/o/v"))
    if argv_tail is None:
        assert argv is None
    else:
        assert argv is not None and argv[:3] == ["qemu-img", "convert", "-U"]
        assert argv[-len(argv_tail):] == argv_tail


def info(node: str, state: DomainState) -> DomainInfo:
    meta = LabMeta(lab="lab1", kind="domain", role="compute", spec="x", node=node,
                   address="10.0.0.31")
    return DomainInfo(f"lab1-{node}", meta, state, "qemu")


@pytest.mark.parametrize(("state", "ok"), [
    (DomainState.RUNNING, True), (DomainState.PAUSED, True), (DomainState.SHUT_OFF, True),
    (DomainState.SAVED, True), (DomainState.SHUTTING_DOWN, False),
    (DomainState.CRASHED, False), (DomainState.PM_SUSPENDED, False),
])
def test_which_states_can_be_saved(state: DomainState, ok: bool) -> None:
    infos = [info("ctl", DomainState.RUNNING), info("cmp1", state)]
    if ok:
        refuse_state("lab1", infos)
    else:
        with pytest.raises(SaveError, match=f"cmp1 is {state}"):
            refuse_state("lab1", infos)


def save_of(tmp_path: Path, bases: list[str], memory: bool = True) -> store.Save:
    node = {"node": "controller", "domain": "lab1-controller", "role": "controller",
            "address": "10.0.0.11", "state": "running",
            "memory": "nodes/controller.state" if memory else "", "xml": "nodes/c.xml",
            "volumes": []}
    m = manifest(lab=SPEC.name, nodes=[node],
                 bases=[{"path": b, "file": "", "sha256": ""} for b in bases])
    return store.Save("s1", write_save(tmp_path, "s1", m), m)


@pytest.mark.parametrize(("exists", "mem", "bases", "cold", "expect"), [
    (False, 64000, [], True, []),
    (True, 64000, [], True, ["exists"]),
    (False, 1000, [], True, ["of memory available"]),
    (False, None, [], True, []),  # no /proc/meminfo figure: libvirt will say
    (False, 64000, ["/nonexistent/base.qcow2"], True, ["base images"]),
    (False, 64000, [], False, ["memory of controller is missing"]),
    (True, 10, ["/nonexistent/b"], False, ["exists", "memory available", "base images",
                                           "is missing"]),
])
def test_why_a_save_cannot_become_a_lab(tmp_path: Path, exists: bool, mem: int | None,
                                        bases: list[str], cold: bool,
                                        expect: list[str]) -> None:
    conn = libvirt.open("test:///default")
    found = refusals(save_of(tmp_path, bases), SPEC, conn, cold, exists, mem)
    assert len(found) == len(expect)
    for err, words in zip(found, expect, strict=True):
        assert words in err.message
        assert err.hint


def test_disk_copy_names_its_file_after_its_volume() -> None:
    d = DiskCopy("ctl-system.qcow2", Path("/p"), "qcow2", "", 1)
    assert d.file == "ctl-system.qcow2"


SAVED_XML = """<domain type="qemu"><name>lab1-ctl</name><metadata>
<oslab:lab xmlns:oslab="https://oslab.dev/xmlns/lab/1"><oslab:node>ctl</oslab:node></oslab:lab>
</metadata><os><kernel>/cache/b.vmlinuz</kernel></os><devices>
<disk type="volume" device="disk"><source pool="lab1" volume="ctl-system.qcow2"/>
<backingStore type="file"><format type="qcow2"/><source file="/cache/b.qcow2"/>
<backingStore/></backingStore><target dev="vda"/></disk>
<disk type="volume" device="disk"><source pool="lab1" volume="ctl-disk1.qcow2"/>
<backingStore/><target dev="vdb"/></disk></devices></domain>"""


@pytest.mark.parametrize(("bases", "kernel"), [
    ([], "/cache/b.vmlinuz"),  # the same host: the bases where they were
    ([{"origin": "/cache/b.vmlinuz", "path": "/saves/s1/bases/b.vmlinuz", "file": "bases/x"}],
     "/saves/s1/bases/b.vmlinuz"),  # imported: the save carries them
])
def test_a_memory_state_is_restored_without_its_recorded_chain(
        tmp_path: Path, bases: list[dict[str, str]], kernel: str) -> None:
    save = save_of(tmp_path, [])
    save.manifest["bases"] = bases
    out = restore_xml(SAVED_XML, save)
    assert "backingStore" not in out  # libvirt reads the new chain from the images
    assert out.count("<disk ") == 2 and 'volume="ctl-disk1.qcow2"' in out
    assert f"<kernel>{kernel}</kernel>" in out
    assert "<oslab:node>ctl</oslab:node>" in out  # oslab's metadata keeps its prefix


@pytest.mark.parametrize(("text", "expect"), [
    ('[lab]\nname = "oslab"\ndistro = "debian13"\n', '[lab]\nname = "lab2"\nmacs_from = "oslab"\n'
                                                     'distro = "debian13"\n'),
    # a lab made from a renamed lab's save keeps the first lab's MACs
    ('[lab]\nname = "oslab"\nmacs_from = "first"\n', '[lab]\nname = "lab2"\nmacs_from = "first"\n'),
    # a node's name is not the lab's
    ('[lab]\nname = "oslab"\n[[nodes]]\nname = "ctl"\n',
     '[lab]\nname = "lab2"\nmacs_from = "oslab"\n[[nodes]]\nname = "ctl"\n'),
])
def test_a_saved_spec_renamed_keeps_its_macs(text: str, expect: str) -> None:
    assert renamed_spec_text(text, "oslab", "lab2") == expect


def test_a_saved_spec_without_a_lab_name_line_is_not_renamed() -> None:
    with pytest.raises(SaveError, match=r"no `name = \.\.\.` line in its \[lab\] table"):
        renamed_spec_text('lab.name = "oslab"\n', "oslab", "lab2")


def renamed_default() -> Any:
    return spec_file.parse(renamed_spec_text(spec_file.default_spec_text(), SPEC.name, "lab2"))


def test_a_renamed_spec_gives_the_nodes_the_saved_labs_macs() -> None:
    new = renamed_default()
    assert new.name == "lab2" and new.macs_from == SPEC.name
    for node in SPEC.nodes:
        assert [new.mac(new.node(node.name), i) for i in (0, 1)] == \
            [SPEC.mac(node, i) for i in (0, 1)]
    assert new.digest() != SPEC.digest()
    assert spec_file.load_default().digest() == SPEC.digest()  # no macs_from: digest as before


GOLDEN_XML = Path(__file__).parent / "golden/xml/domain-controller-qemu-image.xml"


def test_a_saved_domain_renamed_is_the_new_labs_node(tmp_path: Path) -> None:
    saved = GOLDEN_XML.read_text().replace(
        "<title>", "<uuid>8d3b6f0e-3c7a-4f52-9d7e-2f0a5b1c9e11</uuid>\n  <title>", 1)
    new = renamed_default()
    state = LabState("lab2")
    xml = renamed_xml(saved, SPEC, new, state)
    root = ET.fromstring(xml)
    assert root.findtext("name") == "lab2-controller"
    assert root.find("uuid") is None  # libvirt gives the new domain its own
    assert root.findtext("title") == "oslab lab2: controller (controller)"
    meta = LabMeta.from_object_xml(xml)
    assert meta is not None and (meta.lab, meta.spec) == ("lab2", new.digest())
    assert {s.get("pool") for s in root.iter("source") if s.get("pool")} == {"lab2"}
    assert [s.get("network") for s in root.iter("source") if s.get("network")] == \
        ["lab2-mgmt", "lab2-prov"]
    assert [m.get("address") for m in root.iter("mac")] == \
        [SPEC.mac(SPEC.node("controller"), i) for i in (0, 1)]
    assert {log.get("file") for log in root.iter("log")} == \
        {str(state.console_log_path("controller"))}
    conn = libvirt.open("test:///default")
    dom = conn.defineXML(xml)  # libvirt takes it as a domain of its own
    try:
        assert dom.name() == "lab2-controller"
    finally:
        dom.undefine()


def test_a_saved_domain_whose_mac_the_new_lab_would_not_give_is_refused() -> None:
    saved = GOLDEN_XML.read_text().replace(SPEC.mac(SPEC.node("controller"), 1),
                                           "52:54:00:00:00:01")
    with pytest.raises(SaveError, match="NIC 1 in the save does not have the MAC address"):
        renamed_xml(saved, SPEC, renamed_default(), LabState("lab2"))


@pytest.mark.parametrize(("memory", "cold", "saved_lab_exists", "expect"), [
    (True, True, False, []),
    (True, False, False, ["comes back only as lab oslab"]),  # a memory keeps its domain's name
    (False, False, False, []),  # a save of a shut-off lab has no memory to keep a name for
    (True, True, True, ["the lab the save was made from, exists"]),  # nodes keep its addresses
])
def test_why_a_save_cannot_become_a_lab_of_another_name(tmp_path: Path, memory: bool, cold: bool,
                                                         saved_lab_exists: bool,
                                                         expect: list[str]) -> None:
    conn = libvirt.open("test:///default")
    save = save_of(tmp_path, [], memory)
    if memory:
        (save.path / "nodes").mkdir(exist_ok=True)
        (save.path / "nodes/controller.state").write_bytes(b"")
    found = refusals(save, renamed_default(), conn, cold, False, 64000, saved_lab_exists)
    assert [e.message for e in found if not any(w in e.message for w in expect)] == []
    assert len(found) == len(expect) and all(e.hint for e in found)


def test_a_save_carries_the_keys_and_verifys_ledger_not_the_logs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The saved cloud holds what verify left in it: the lab made from the save must know it."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    state = LabState("lab1").ensure()
    for rel in ("id_ed25519", "id_ed25519.pub", "passwords.json", VERIFY_LEDGER,
                "logs/ctl.console.log", "exercise.json", "hostkeys/ctl"):
        (state.dir / rel).write_text(rel)
    out = tmp_path / "out"
    out.mkdir()
    copy_state_dir(state, out)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(
        ["hostkeys/ctl", "id_ed25519", "id_ed25519.pub", "passwords.json", VERIFY_LEDGER])


def test_a_save_another_save_leans_on_is_named(tmp_path: Path) -> None:
    first = store.Save("first", write_save(tmp_path, "first"), manifest("first"))
    leaning = manifest("second", bases=[{"path": f"{first.path}/disks/ctl/ctl-system.qcow2",
                                         "file": "", "sha256": ""}])
    second = store.Save("second", write_save(tmp_path, "second", leaning), leaning)
    # an imported save carries its bases inside itself: that is not another save's
    own = manifest("third", bases=[{"path": f"{tmp_path}/third/bases/b.qcow2",
                                    "file": "bases/b.qcow2", "sha256": "0" * 64}])
    third = store.Save("third", write_save(tmp_path, "third", own), own)
    assert store.leaning_on(first, [first, second, third]) == ["second"]
    assert store.leaning_on(third, [first, second, third]) == []
    assert store.leaning_on(second, [first, second, third]) == []


def test_a_disk_on_another_saves_disk_is_kept_on_the_base_with_all_its_data(
        tmp_path: Path) -> None:
    """With the real qemu-img: base <- another save's disk <- the node's disk. The save's copy
    is an overlay on the base alone and holds what both images above it held (`convert -B
    base` alone would lose the middle's clusters: it copies only the source's own)."""
    base, middle, top, out = (tmp_path / n for n in ("base.qcow2", "mid.qcow2", "top.qcow2",
                                                     "out.qcow2"))
    run = functools.partial(subprocess.run, check=True, capture_output=True)
    run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "8M"])
    run(["qemu-io", "-c", "write -P 0x11 0 64k", str(base)])
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(middle)])
    run(["qemu-io", "-c", "write -P 0x5a 1M 64k", str(middle)])
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(middle), "-F", "qcow2", str(top)])
    run(["qemu-io", "-c", "write -P 0x77 2M 64k", str(top)])
    disk = disk_copy("top.qcow2", top, qemu_img_chain(top))
    assert (disk.backing, disk.via) == (str(base), str(middle))
    for argv in (copy_argv(disk, out), rebase_argv(disk, out)):
        assert argv is not None
        run(argv)
    assert [c["filename"] for c in qemu_img_chain(out)] == [str(out), str(base)]
    for pattern, offset in (("0x11", "0"), ("0x5a", "1M"), ("0x77", "2M")):
        run(["qemu-io", "-c", f"read -P {pattern} {offset} 64k", str(out)])
