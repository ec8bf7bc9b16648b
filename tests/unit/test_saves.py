"""Saved labs, the parts that decide: names, manifests, the list of saves, how each disk is kept,
which lab states can be saved, and why a save cannot become a lab here."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import libvirt
import pytest

from oslab import spec_file
from oslab.errors import OslabError
from oslab.saves import store
from oslab.saves.restore import refusals, restore_xml
from oslab.saves.save import DiskCopy, copy_argv, disk_copy, refuse_state
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


@pytest.mark.parametrize(("info", "backing", "argv_tail"), [
    # an overlay on a cached base stays one: only its own clusters are written
    ({"format": "qcow2", "full-backing-filename": "/c/base.qcow2", "virtual-size": 9},
     "/c/base.qcow2", ["-B", "/c/base.qcow2", "-F", "qcow2", "/p/v", "/o/v"]),
    # a disk of its own (a kickstarted node) is flattened, its snapshots left behind
    ({"format": "qcow2", "virtual-size": 9}, "", ["-O", "qcow2", "/p/v", "/o/v"]),
    # a raw seed is copied as it is
    ({"format": "raw", "virtual-size": 9}, "", None),
])
def test_how_each_disk_is_kept(info: dict[str, Any], backing: str,
                               argv_tail: list[str] | None) -> None:
    disk = disk_copy("v", Path("/p/v"), info)
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
