"""A save's archive, with real files and the real zstd: a round trip keeps every byte, the
modes and the disks' chains (bases moved into the save, rebased there); an export refuses a
damaged save and an existing file; an import refuses every archive a save cannot be (cut
short, tampered, foreign, links, paths that leave the save, duplicates), and after any refusal
or ^C nothing of it is left in the saves root."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import stat
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from oslab.errors import CommandError, OslabError
from oslab.saves.archive import (
    ExportResult,
    check_member,
    export,
    for_archive,
    import_archive,
    parse_manifest,
    relocate,
)

NAME = "lab1"
DISK = "disks/controller/root.qcow2"
UNCHAINED = "disks/controller/data.qcow2"
Entry = tuple[str, bytes | tuple[bytes, str]]  # (member name, data | (tar type, link target))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@dataclass
class Save:
    dir: Path
    base: Path  # outside the save: the disk DISK is chained to it
    files: dict[str, bytes]
    manifest: dict[str, Any]


def make_save(tmp_path: Path, base_sha: bool = True) -> Save:
    """A save of a few files (the disk incompressible, so that half the archive is half of
    it), a base outside it, one volume chained to that base and one chained to nothing."""
    rng = random.Random(7)
    base = tmp_path / "host" / "images" / "base.qcow2"
    base.parent.mkdir(parents=True)
    base.write_bytes(rng.randbytes(200_000))
    files = {"nodes/controller.json": b'{"name": "controller"}\n',
             DISK: rng.randbytes(300_000), UNCHAINED: b"\0" * 70_000,
             "state/secrets.env": b"ADMIN_PASSWORD=s3cret\n",
             "state/hostkeys/ssh_host_ed25519_key": b"-----BEGIN OPENSSH PRIVATE KEY-----\n"}
    save = tmp_path / "saves" / NAME
    for rel, data in files.items():
        (save / rel).parent.mkdir(parents=True, exist_ok=True)
        (save / rel).write_bytes(data)
        (save / rel).chmod(0o600)
    manifest: dict[str, Any] = {
        "format": 1, "name": NAME, "lab": "lab1", "created": "2025-01-01T00:00:00Z",
        "files": {rel: sha(data) for rel, data in files.items()},
        "bases": [{"path": str(base), "file": ""}],
        "nodes": [{"name": "controller", "volumes": [
            {"name": "root.qcow2", "file": DISK, "backing": str(base)},
            {"name": "data.qcow2", "file": UNCHAINED, "backing": ""}]}]}
    # as `oslab save` writes it: "" for a base whose sha256 the export works out
    manifest["bases"][0]["sha256"] = sha(base.read_bytes()) if base_sha else ""
    (save / "manifest.json").write_text(json.dumps(manifest))
    return Save(save, base, files, manifest)


def write_tar_zst(path: Path, entries: list[Entry]) -> Path:
    """A tar.zst of ``entries``: bytes make a regular file, (type, target) a link or another
    kind of member."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if isinstance(data, bytes):
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type, info.linkname = data
                tar.addfile(info)
    path.write_bytes(subprocess.run(["zstd", "-q", "-c"], input=buf.getvalue(),
                                    capture_output=True, check=True).stdout)
    return path


def entries_of(save: Save) -> list[Entry]:
    """The members of a valid archive of ``save`` (its base left outside)."""
    return [(f"{NAME}/manifest.json", json.dumps(save.manifest).encode()),
            *((f"{NAME}/{rel}", data) for rel, data in save.files.items())]


class Rebases:
    def __init__(self) -> None:
        self.calls: list[tuple[Path, Path]] = []

    def __call__(self, disk: Path, base: Path) -> None:
        assert disk.is_file()  # in staging, before the rename
        self.calls.append((disk, base))


# -- the round trip --------------------------------------------------------------------------

@pytest.mark.parametrize("base_sha", [True, False], ids=["base-sha-known", "base-sha-computed"])
def test_round_trip_keeps_bytes_modes_and_chains(tmp_path: Path, base_sha: bool) -> None:
    save = make_save(tmp_path, base_sha)
    out, said = tmp_path / "out" / "lab1.tar.zst", list[str]()
    out.parent.mkdir()
    result = export(save.dir, out, said.append)
    assert isinstance(result, ExportResult) and result.path == out
    assert result.bytes == out.stat().st_size > 0 and mode(out) == 0o600
    assert os.listdir(out.parent) == [out.name]
    assert any(DISK in line and "0.3 MiB" in line for line in said)
    assert any("bases/base.qcow2" in line for line in said) and str(out) in said[-1]
    assert not any("s3cret" in line for line in said)

    root, rebase = tmp_path / "other-host" / "saves", Rebases()
    root.mkdir(parents=True)
    imported = import_archive(out, root, said.append, rebase)
    final = root / NAME
    assert (imported.name, imported.path) == (NAME, final) and os.listdir(root) == [NAME]
    for rel, data in save.files.items():
        assert (final / rel).read_bytes() == data and mode(final / rel) == 0o600
    assert (final / "bases/base.qcow2").read_bytes() == save.base.read_bytes()
    assert mode(final) == mode(final / "bases") == mode(final / "state/hostkeys") == 0o711
    assert imported.bytes == sum(map(len, save.files.values())) + save.base.stat().st_size

    manifest = json.loads((final / "manifest.json").read_text())
    assert mode(final / "manifest.json") == 0o600
    # "origin": where the saved domains' XML names it, for the restore to rewrite
    assert manifest["bases"] == [{"path": str(final / "bases/base.qcow2"),
                                  "file": "bases/base.qcow2", "origin": str(save.base),
                                  "sha256": sha(save.base.read_bytes())}]
    assert manifest["files"] == {**save.manifest["files"],
                                 "bases/base.qcow2": sha(save.base.read_bytes())}
    root_vol, data_vol = manifest["nodes"][0]["volumes"]
    assert root_vol["backing"] == str(final / "bases/base.qcow2")
    assert data_vol["backing"] == ""
    [(disk, base)] = rebase.calls
    staging = disk.relative_to(root).parts[0]
    assert staging.startswith(f".import-{NAME}-") and disk == root / staging / DISK
    assert base == final / "bases/base.qcow2"


# -- export refusals -------------------------------------------------------------------------

def test_export_refuses_an_existing_file(tmp_path: Path) -> None:
    save = make_save(tmp_path)
    out = tmp_path / "lab1.tar.zst"
    out.write_bytes(b"keep")
    with pytest.raises(OslabError, match="already exists") as err:
        export(save.dir, out, lambda _: None)
    assert err.value.hint == "choose another name or remove it" and out.read_bytes() == b"keep"


@pytest.mark.parametrize("damage, message", [
    (lambda s: (s.dir / DISK).write_bytes(b"changed"), "root.qcow2 does not match its sha256"),
    (lambda s: (s.dir / "state/secrets.env").unlink(), "secrets.env cannot be read"),
    (lambda s: s.base.write_bytes(b"rebuilt"), "base.qcow2 does not match its sha256"),
    (lambda s: s.base.unlink(), "its base .* cannot be read"),
], ids=["file-changed", "file-missing", "base-changed", "base-missing"])
def test_export_of_a_damaged_save_leaves_nothing(tmp_path: Path, damage: Any,
                                                 message: str) -> None:
    save = make_save(tmp_path)
    damage(save)
    out = tmp_path / "out" / "lab1.tar.zst"
    out.parent.mkdir()
    with pytest.raises(OslabError, match=f"the save {NAME} is damaged: .*{message}"):
        export(save.dir, out, lambda _: None)
    assert os.listdir(out.parent) == []


def test_export_without_zstd_says_what_to_install(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    save = make_save(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(OslabError, match="zstd command is not installed") as err:
        export(save.dir, tmp_path / "out.tar.zst", lambda _: None)
    assert err.value.hint == "install the zstd package (apt install zstd)"
    assert sorted(os.listdir(tmp_path)) == ["host", "saves"]


def test_export_interrupted_leaves_nothing(tmp_path: Path) -> None:
    save = make_save(tmp_path)

    def interrupt(_: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export(save.dir, tmp_path / "out.tar.zst", interrupt)
    assert sorted(os.listdir(tmp_path)) == ["host", "saves"]


# -- import refusals -------------------------------------------------------------------------

def _dup(e: list[Entry]) -> list[Entry]:
    return [*e, e[2]]


def _tamper(e: list[Entry]) -> list[Entry]:
    return [*e[:2], (e[2][0], b"tampered"), *e[3:]]


def _rename(e: list[Entry]) -> list[Entry]:
    return [("other/manifest.json", e[0][1]), *(("other/" + n.split("/", 1)[1], d)
                                                for n, d in e[1:])]


EVIL: list[tuple[str, Any, str]] = [  # id, entries → entries, what the refusal says
    ("dotdot", lambda e: [*e, (f"{NAME}/../evil", b"x")], "not a plain path under lab1/"),
    ("dotdot-inside", lambda e: [*e, (f"{NAME}/state/../../x", b"x")], "not a plain path"),
    ("absolute", lambda e: [*e, ("/tmp/evil", b"x")], "not a plain path under lab1/"),
    ("symlink", lambda e: [*e, (f"{NAME}/state/link", (tarfile.SYMTYPE, "/etc/shadow"))],
     "not a regular file"),
    ("hardlink", lambda e: [*e, (f"{NAME}/state/hard", (tarfile.LNKTYPE, "/etc/shadow"))],
     "not a regular file"),
    ("device", lambda e: [*e, (f"{NAME}/state/dev", (tarfile.CHRTYPE, ""))], "not a regular"),
    ("fifo", lambda e: [*e, (f"{NAME}/state/fifo", (tarfile.FIFOTYPE, ""))], "not a regular"),
    ("not-listed", lambda e: [*e, (f"{NAME}/state/extra", b"x")], "not in its manifest"),
    ("duplicate", _dup, "comes twice"),
    ("tampered", _tamper, "is damaged: .* does not match its sha256"),
    ("missing", lambda e: e[:-1], r"is truncated: 1 files missing"),
    ("no-manifest", lambda e: e[1:], "not an oslab save archive: its first member is not"),
    ("manifest-later", lambda e: [*e[1:], e[0]], "not an oslab save archive"),
    ("other-name", _rename, "not an oslab save archive: its manifest names lab1"),
    ("manifest-not-json", lambda e: [(e[0][0], b"\xff{"), *e[1:]], "manifest is not JSON"),
    ("manifest-format-2", lambda e: [(e[0][0], e[0][1].replace(b'"format": 1', b'"format": 2')),
                                     *e[1:]], "not a format-1 manifest"),
    ("manifest-too-big", lambda e: [(e[0][0], b" " * (4 << 20) + b"{}"), *e[1:]],
     "at most 4 MiB"),
    ("foreign", lambda e: [("photos/a.jpg", b"jpeg"), ("photos/b.jpg", b"jpeg")],
     "not an oslab save archive"),
    ("empty", lambda e: [], "not an oslab save archive"),
]


def assert_nothing_left(root: Path, expected: list[str] | None = None) -> None:
    assert sorted(os.listdir(root)) == (expected or [])


def test_a_hand_built_archive_imports(tmp_path: Path) -> None:
    """The helper's archives are sound, so each refusal below is the change it makes."""
    save, root = make_save(tmp_path), tmp_path / "root"
    root.mkdir()
    archive = write_tar_zst(tmp_path / "a.tar.zst", entries_of(save))
    import_archive(archive, root, lambda _: None, Rebases())
    assert (root / NAME / DISK).read_bytes() == save.files[DISK]


@pytest.mark.parametrize("change, message", [c[1:] for c in EVIL], ids=[c[0] for c in EVIL])
def test_import_refuses(tmp_path: Path, change: Any, message: str) -> None:
    save, root = make_save(tmp_path), tmp_path / "root"
    root.mkdir()
    archive = write_tar_zst(tmp_path / "a.tar.zst", change(entries_of(save)))
    rebase = Rebases()
    with pytest.raises(OslabError, match=message):
        import_archive(archive, root, lambda _: None, rebase)
    assert_nothing_left(root)
    assert rebase.calls == []


@pytest.mark.parametrize("content", [b"", b"not zstd at all", b"\x28\xb5\x2f\xfd" + b"\0" * 40],
                         ids=["empty-file", "text", "bad-zstd-frame"])
def test_import_refuses_what_is_not_zstd(tmp_path: Path, content: bytes) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "a.tar.zst").write_bytes(content)
    with pytest.raises(OslabError, match="not an oslab save archive"):
        import_archive(tmp_path / "a.tar.zst", root, lambda _: None, Rebases())
    assert_nothing_left(root)


@pytest.mark.parametrize("keep", [0.5, 0.9], ids=["half", "most"])
def test_import_refuses_a_truncated_archive(tmp_path: Path, keep: float) -> None:
    save, root = make_save(tmp_path), tmp_path / "root"
    root.mkdir()
    out = tmp_path / "lab1.tar.zst"
    export(save.dir, out, lambda _: None)
    data = out.read_bytes()
    out.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(OslabError, match=r"lab1.tar.zst is truncated: [1-9]\d* files missing"):
        import_archive(out, root, lambda _: None, Rebases())
    assert_nothing_left(root)


def test_import_refuses_a_broken_zstd_end(tmp_path: Path) -> None:
    """Every file comes out, then what is not zstd: zstd's own exit status says so."""
    save, root = make_save(tmp_path), tmp_path / "root"
    root.mkdir()
    out = tmp_path / "lab1.tar.zst"
    export(save.dir, out, lambda _: None)
    out.write_bytes(out.read_bytes() + b"not a zstd frame")
    with pytest.raises(CommandError, match=r"reading .*lab1\.tar\.zst: command failed"):
        import_archive(out, root, lambda _: None, Rebases())
    assert_nothing_left(root)


def test_import_refuses_an_existing_save(tmp_path: Path) -> None:
    save, root = make_save(tmp_path), tmp_path / "root"
    (root / NAME).mkdir(parents=True)
    (root / NAME / "mine").write_text("keep")
    archive = write_tar_zst(tmp_path / "a.tar.zst", entries_of(save))
    with pytest.raises(OslabError, match="already exists") as err:
        import_archive(archive, root, lambda _: None, Rebases())
    assert err.value.hint == f"delete it first: oslab saved --delete {NAME}"
    assert_nothing_left(root, [NAME])
    assert os.listdir(root / NAME) == ["mine"]


@pytest.mark.parametrize("stop_in", ["say", "rebase"])
def test_import_interrupted_leaves_nothing(tmp_path: Path, stop_in: str) -> None:
    save, root = make_save(tmp_path), tmp_path / "root"
    root.mkdir()
    out = tmp_path / "lab1.tar.zst"
    export(save.dir, out, lambda _: None)

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_archive(out, root, interrupt if stop_in == "say" else lambda _: None,
                       interrupt if stop_in == "rebase" else Rebases())
    assert_nothing_left(root)


def test_import_refuses_what_is_not_a_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError, match=r"not a regular file: .*fifo"):  # for the CLI boundary
        import_archive(tmp_path / "fifo", tmp_path, lambda _: None, Rebases())


# -- the pure parts --------------------------------------------------------------------------

def member(name: str, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


FILES = {"nodes/a.json": "0" * 64, "disks/a/root.qcow2": "1" * 64}


@pytest.mark.parametrize("name, kind, seen, expected", [
    ("lab1/nodes/a.json", tarfile.REGTYPE, set(), "nodes/a.json"),
    ("lab1/disks/a", tarfile.DIRTYPE, set(), "disks/a"),
    ("lab1/", tarfile.DIRTYPE, set(), ""),
    ("lab1/nodes/a.json", tarfile.REGTYPE, {"nodes/a.json"}, "comes twice"),
    ("lab1/nodes/b.json", tarfile.REGTYPE, set(), "not in its manifest"),
    ("lab2/nodes/a.json", tarfile.REGTYPE, set(), "not a plain path under lab1/"),
    ("lab1/nodes/../nodes/a.json", tarfile.REGTYPE, set(), "not a plain path"),
    ("lab1//nodes/a.json", tarfile.REGTYPE, set(), "not a plain path"),
    ("lab1/./nodes/a.json", tarfile.REGTYPE, set(), "not a plain path"),
    ("/lab1/nodes/a.json", tarfile.REGTYPE, set(), "not a plain path"),
    ("lab1/..", tarfile.DIRTYPE, set(), "not a plain path"),
    ("lab1", tarfile.REGTYPE, set(), "not a plain path"),
    ("lab1/nodes/a.json", tarfile.SYMTYPE, set(), "not a regular file"),
    ("lab1/nodes/a.json", tarfile.LNKTYPE, set(), "not a regular file"),
    ("lab1/nodes/a.json", tarfile.BLKTYPE, set(), "not a regular file"),
    ("lab1/nodes/a.json", tarfile.FIFOTYPE, set(), "not a regular file"),
])
def test_check_member(name: str, kind: bytes, seen: set[str], expected: str) -> None:
    before = set(seen)
    if " " not in expected:  # a path, not a refusal
        assert check_member(member(name, kind), NAME, FILES, seen) == expected
        assert seen == before | ({expected} if kind == tarfile.REGTYPE else set())
    else:
        with pytest.raises(ValueError, match=expected):
            check_member(member(name, kind), NAME, FILES, seen)
        assert seen == before


GOOD: dict[str, Any] = {"format": 1, "name": NAME, "files": FILES,
        "bases": [{"path": "/var/lib/base.qcow2", "file": ""}]}


@pytest.mark.parametrize("change, message", [
    ({"format": 2}, "format-1"), ({"format": True}, "format-1"), ({"format": "1"}, "format-1"),
    ({"name": "../x"}, "valid name"), ({"name": "-x"}, "valid name"), ({"name": 1}, "valid name"),
    ({"name": "x" * 65}, "valid name"),
    ({"files": {"../x": "0" * 64}}, "files or bases"),
    ({"files": {"/x": "0" * 64}}, "files or bases"),
    ({"files": {"manifest.json": "0" * 64}}, "files or bases"),
    ({"files": {"x": "not a sha"}}, "files or bases"),
    ({"files": []}, "files or bases"),
    ({"bases": [{"path": "relative", "file": ""}]}, "files or bases"),
    ({"bases": [{"path": "/b", "file": "not/listed"}]}, "files or bases"),
    ({"bases": [{"path": "/b", "file": "", "sha256": "short"}]}, "files or bases"),
    ({"bases": {}}, "files or bases"),
])
def test_parse_manifest_refuses(change: dict[str, Any], message: str) -> None:
    assert parse_manifest(json.dumps(GOOD).encode())["name"] == NAME
    with pytest.raises(ValueError, match=message):
        parse_manifest(json.dumps({**GOOD, **change}).encode())


def test_for_archive_and_relocate_describe_the_moved_bases(tmp_path: Path) -> None:
    one, two = tmp_path / "host" / "one.qcow2", tmp_path / "other" / "two.qcow2"
    for path in (one, two):
        path.parent.mkdir()
        path.write_bytes(path.name.encode())
    files = {**FILES, "bases/inside.qcow2": "3" * 64}
    manifest: dict[str, Any] = {
        **GOOD, "files": files,
        "bases": [{"path": str(one), "file": "", "sha256": "2" * 64},
                  {"path": str(two), "file": ""}, {"path": str(one), "file": ""},
                  {"path": "/old/inside.qcow2", "file": "bases/inside.qcow2"}],
        "nodes": {"a": {"volumes": [{"file": "disks/a/root.qcow2", "backing": str(one)},
                                    {"file": "nodes/a.json", "backing": "/old/inside.qcow2"},
                                    {"file": "nodes/a.json", "backing": "/elsewhere"}]}}}
    archived, carried = for_archive(manifest)
    assert carried == [(one, "bases/one.qcow2", "2" * 64),  # as the manifest says: not read
                       (two, "bases/two.qcow2", sha(b"two.qcow2"))]
    assert archived["bases"] == [
        {"path": str(one), "file": "bases/one.qcow2", "sha256": "2" * 64},
        {"path": str(two), "file": "bases/two.qcow2", "sha256": sha(b"two.qcow2")},
        {"path": str(one), "file": "bases/one.qcow2", "sha256": "2" * 64},
        {"path": "/old/inside.qcow2", "file": "bases/inside.qcow2"}]
    assert archived["files"] == {**files, "bases/one.qcow2": "2" * 64,
                                 "bases/two.qcow2": sha(b"two.qcow2")}
    assert manifest["bases"][1] == {"path": str(two), "file": ""} and archived["files"] != files

    final, pairs = relocate(archived, tmp_path / NAME)
    new = tmp_path / NAME / "bases"
    assert pairs == [("disks/a/root.qcow2", new / "one.qcow2"),
                     ("nodes/a.json", new / "inside.qcow2")]
    assert [b["path"] for b in final["bases"]] == [str(new / "one.qcow2"), str(new / "two.qcow2"),
                                                   str(new / "one.qcow2"),
                                                   str(new / "inside.qcow2")]
    assert [v["backing"] for v in final["nodes"]["a"]["volumes"]] == [
        str(new / "one.qcow2"), str(new / "inside.qcow2"), "/elsewhere"]
    assert archived["bases"][0]["path"] == str(one)  # a copy
    archived["nodes"]["a"]["volumes"][0]["file"] = "../../etc/passwd"
    with pytest.raises(ValueError, match="is not in the save"):
        relocate(archived, tmp_path / NAME)


@pytest.mark.parametrize("bases, message", [
    ([{"path": "/x/nodes", "file": ""}, {"path": "/y/nodes", "file": ""}],
     "base .*/y/nodes cannot be bases/nodes in the archive"),
    ([{"path": "/x/inside.qcow2", "file": ""}], "cannot be bases/inside.qcow2 in the archive"),
    ([{"path": "/x/..", "file": ""}], r"cannot be bases/\.\. in the archive"),
    ([{"path": "/nonexistent/b.qcow2", "file": ""}], "b.qcow2 cannot be read"),
], ids=["same-name", "taken", "dotdot", "missing"])
def test_for_archive_refuses(tmp_path: Path, bases: list[dict[str, str]], message: str) -> None:
    for name in ("/x/nodes", "/y/nodes"):
        (tmp_path / name[1:]).parent.mkdir(exist_ok=True)
        (tmp_path / name[1:]).write_text("base")
    bases = [{**b, "path": str(tmp_path) + b["path"]} for b in bases]
    manifest = {**GOOD, "files": {"bases/inside.qcow2": "3" * 64}, "bases": bases}
    with pytest.raises(OslabError, match=f"the save {NAME} is damaged: .*{message}"):
        for_archive(manifest)


def test_export_refuses_a_save_whose_disks_lean_on_another_save(tmp_path: Path) -> None:
    """A lab made from a save, saved again: its disks are overlays on the first save's, which
    are overlays on a cached base; the archive would carry one level only."""
    save = make_save(tmp_path)
    other = tmp_path / "saves" / "first" / "disks" / "root.qcow2"
    manifest = json.loads((save.dir / "manifest.json").read_text())
    manifest["bases"] = [{"path": str(other), "file": "", "sha256": ""}]
    (save.dir / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "lab1.tar.zst"
    with pytest.raises(OslabError, match="overlays on another save's") as err:
        export(save.dir, out, lambda _: None)
    assert "export that save instead" in (err.value.hint or "") and not out.exists()
