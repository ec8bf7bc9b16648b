"""`--lab` becomes a path component that `destroy` removes: it is checked while the command
line is parsed, with the same rule as ``lab.name``, and a state directory is removed only when
oslab's marker says oslab made it. Each case runs the real ``oslab`` entry point and asserts
that nothing under the state root changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from oslab.access.state import MARKER, LabState, cache_root, state_root
from oslab.errors import OslabError, OwnershipError, SpecError
from oslab.spec import LAB_NAME_HINT, valid_lab_name


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its content (None for a directory)."""
    out: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        out[str(path.relative_to(root))] = None if path.is_dir() else path.read_bytes()
    return out


@pytest.fixture
def xdg(tmp_path: Path) -> Path:
    """A state home holding another program's data and an oslab lab's state dir."""
    home = tmp_path / "xdg-state"
    (home / "other-program").mkdir(parents=True)
    (home / "other-program" / "data.db").write_text("not oslab's\n")
    LabState("oslab", root=home / "oslab").ensure()
    return home


def oslab(xdg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_STATE_HOME=str(xdg), XDG_CACHE_HOME=str(xdg.parent / "cache"))
    return subprocess.run([sys.executable, "-m", "oslab", *args], env=env, text=True,
                          capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("lab", ["..", "/", "../x", "", ".", "a/b", "oslab\n", "-x", "UPPER",
                                 "waytoolongname"])
@pytest.mark.parametrize("command", [["destroy", "--yes"], ["destroy", "--dry-run"],
                                     ["status"], ["openrc", "admin"], ["snapshot", "--list"]])
def test_bad_lab_refused_before_anything_is_read(xdg: Path, lab: str, command: list[str]) -> None:
    before = tree(xdg)
    # --uri names a host that does not exist: had it been reached, the error would differ
    result = oslab(xdg, "--uri", "qemu+ssh://nonexistent.invalid/system", "--lab", lab, *command)
    assert result.returncode == 2, result
    assert result.stderr.splitlines() == [f"error: --lab {lab!r} is not a valid lab name",
                                          f"hint: {LAB_NAME_HINT}"]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert tree(xdg) == before


def test_bad_lab_after_the_command_is_refused_too(xdg: Path) -> None:
    before = tree(xdg)
    result = oslab(xdg, "destroy", "--yes", "--lab", "..")
    assert result.returncode == 2
    assert result.stderr.startswith("error: --lab '..' is not a valid lab name\n")
    assert tree(xdg) == before


@pytest.mark.parametrize(("name", "ok"), [
    ("oslab", True), ("a", True), ("lab-1", True), ("abcdefghij", True),
    ("abcdefghijk", False), ("..", False), ("", False), ("lab\n", False), ("1lab", False),
    ("lab-", False), ("la/b", False), ("Lab", False),
])
def test_one_rule_for_lab_names(name: str, ok: bool) -> None:
    assert valid_lab_name(name) is ok


@pytest.mark.parametrize("name", ["..", "/", "../x", ""])
def test_lab_state_refuses_a_bad_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(SpecError, match="is not a valid lab name"):
        LabState(name, root=tmp_path)


def test_ensure_marks_the_directory_and_remove_needs_the_mark(tmp_path: Path) -> None:
    state = LabState("lab", root=tmp_path).ensure()
    assert (state.dir / MARKER).is_file()
    assert state.owned
    assert state.remove() is True
    assert not state.dir.exists()
    assert state.remove() is False  # safe twice


def test_remove_refuses_a_directory_oslab_did_not_make(tmp_path: Path) -> None:
    state = LabState("lab", root=tmp_path)
    state.dir.mkdir()
    (state.dir / "precious").write_text("keep me\n")
    assert not state.owned
    with pytest.raises(OwnershipError, match="has no oslab marker"):
        state.remove()
    assert (state.dir / "precious").read_text() == "keep me\n"


def test_remove_refuses_a_link_even_to_a_marked_directory(tmp_path: Path) -> None:
    real = LabState("real", root=tmp_path).ensure()
    link = tmp_path / "lab"
    link.symlink_to(real.dir)
    state = LabState("lab", root=tmp_path)
    assert not state.owned
    with pytest.raises(OwnershipError):
        state.remove()
    assert (real.dir / MARKER).is_file()


def test_destroy_leaves_an_unmarked_state_directory(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg-state"
    legacy = xdg / "oslab" / "old"
    legacy.mkdir(parents=True)
    (legacy / "id_ed25519").write_text("a key oslab did not mark\n")
    empty_host = tmp_path / "empty-host.xml"  # a libvirt test driver with no objects at all
    empty_host.write_text("<node></node>\n")
    result = oslab(xdg, "--uri", f"test://{empty_host}", "--lab", "old", "destroy", "--yes")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "warning: left in place: " in result.stderr and "has no oslab marker" in result.stderr
    assert (legacy / "id_ed25519").is_file()


@pytest.mark.parametrize(("variable", "root"), [("XDG_STATE_HOME", state_root),
                                                 ("XDG_CACHE_HOME", cache_root)])
def test_relative_xdg_directories_are_refused(monkeypatch: pytest.MonkeyPatch, variable: str,
                                              root: object) -> None:
    monkeypatch.setenv(variable, "relative/dir")
    with pytest.raises(OslabError, match=f"{variable}='relative/dir' is a relative path"):
        root()  # type: ignore[operator]


def test_relative_xdg_state_home_from_the_command_line(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_STATE_HOME="rel")
    result = subprocess.run([sys.executable, "-m", "oslab", "--uri", "test:///default",
                             "--lab", "x", "destroy", "--dry-run"], env=env, cwd=tmp_path,
                            text=True, capture_output=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: XDG_STATE_HOME='rel' is a relative path\n")
    assert not (tmp_path / "rel").exists()
