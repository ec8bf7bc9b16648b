"""The one atomic-write helper: the mode is right from the first byte, no link is followed,
a failed write leaves the old file, and no temporary file is left behind."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from oslab.errors import OslabError
from oslab.files import (
    atomic_file,
    open_append,
    read_small,
    read_tail,
    write_atomic,
    write_private,
)
from oslab.images.common import locked
from oslab.report import Reporter, tail


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_private_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_private(tmp_path / "secret", "pw")
        write_atomic(tmp_path / "public", "x", 0o644)
    finally:
        os.umask(old)
    assert mode(tmp_path / "secret") == 0o600
    assert mode(tmp_path / "public") == 0o644
    assert (tmp_path / "secret").read_text() == "pw"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["public", "secret"]


def test_a_link_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    victim.chmod(0o644)
    link = tmp_path / "out"
    link.symlink_to(victim)
    write_private(link, "secret")
    assert victim.read_text() == "keep\n" and mode(victim) == 0o644
    assert not link.is_symlink() and link.read_text() == "secret" and mode(link) == 0o600


def test_a_linked_directory_below_base_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "node").symlink_to(elsewhere)  # planted by another user of a shared --out
    with pytest.raises(OslabError, match="a directory on the way is a symbolic link"):
        write_atomic(out / "node" / "etc" / "nova.conf", "secret", 0o600, base=out)
    assert list(elsewhere.iterdir()) == []


def test_directories_below_base_are_made(tmp_path: Path) -> None:
    write_atomic(tmp_path / "a" / "b" / "c.conf", "x", 0o640, base=tmp_path)
    assert (tmp_path / "a" / "b" / "c.conf").read_text() == "x"
    assert mode(tmp_path / "a" / "b" / "c.conf") == 0o640


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "passwords.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target, 0o600) as out:
        out.write(b"half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["passwords.json"]


def test_a_missing_directory_is_an_oslab_error(tmp_path: Path) -> None:
    with pytest.raises(OslabError, match=r"^cannot write .*/nowhere/x: No such file"):
        write_private(tmp_path / "nowhere" / "x", "pw")


def test_only_files_py_opens_files_for_writing_with_os_open() -> None:
    root = Path(__file__).resolve().parents[2]
    users = sorted(str(p.relative_to(root)) for folder in ("lab", "install", "kickstart")
                   for p in (root / folder).rglob("*.py")
                   if "O_CREAT" in p.read_text() or "os.chmod(" in p.read_text())
    assert users == ["lab/files.py"]


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _link(p: Path) -> None:
    (p.parent / "target").write_text("not oslab's\n")
    p.symlink_to(p.parent / "target")


def _dev_null(p: Path) -> None:
    p.symlink_to("/dev/null")


# (what stands at a log's or lock's path, the error's message after "<what> <path>")
NOT_APPENDABLE = [
    (_fifo, "is not a regular file"),  # opening it to write would wait for a reader
    (_link, "is not a regular file"),  # never followed
    (_dev_null, "is not a regular file"),
    (Path.mkdir, ""),
]


@pytest.mark.parametrize(("make", "problem"), NOT_APPENDABLE,
                         ids=["fifo", "link", "device", "directory"])
def test_open_append_takes_a_regular_file_only(tmp_path: Path, make: object,
                                               problem: str) -> None:
    path = tmp_path / "node.log"
    make(path)  # type: ignore[operator]
    with pytest.raises(OslabError) as err:
        open_append(path, "the log", "remove it")
    assert err.value.message.startswith(f"the log {path} {problem}" if problem else
                                        f"cannot open the log {path}: ")
    assert err.value.hint == "remove it"
    if make is _link:
        assert (tmp_path / "target").read_text() == "not oslab's\n"


def test_open_append_appends(tmp_path: Path) -> None:
    path = tmp_path / "node.log"
    for line in ("one\n", "two\n"):
        with open_append(path, "the log", "") as f:
            f.write(line)
    assert path.read_text() == "one\ntwo\n"


def test_a_fifo_log_or_lock_is_an_error_not_a_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "n.log")
    with pytest.raises(OslabError, match=r"n\.log is not a regular file"):
        Reporter(stream=io.StringIO(), logs={"n": tmp_path / "n.log"}).node("n", "x")
    os.mkfifo(tmp_path / "k.lock")
    with pytest.raises(OslabError, match=r"k\.lock is not a regular file"), \
            locked(tmp_path / "k.lock"):
        pass


def test_read_small_reads_a_regular_file_only(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 10)
    assert read_small(tmp_path / "f", 10, "the file", "") == b"x" * 10
    with pytest.raises(OslabError, match=r"^the file .*/f is larger than 0 KiB$"):
        read_small(tmp_path / "f", 9, "the file", "")
    os.mkfifo(tmp_path / "p")
    with pytest.raises(OslabError, match=r"^the file .*/p is not a regular file$"):
        read_small(tmp_path / "p", 10, "the file", "")


def test_read_tail_reads_the_end_of_a_long_file_only(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    with log.open("wb") as f:
        f.truncate(1 << 30)  # a sparse GiB: the tail is read, never the whole
        f.seek(0, os.SEEK_END)
        f.write(b"booting\r\n" * 10000 + b"login: \n")
    assert read_tail(log, 17, "console log") == b"booting\r\nlogin: \n"
    assert tail(log).splitlines() == ["  | booting"] * 24 + ["  | login: "]
    os.mkfifo(tmp_path / "fifo.log")
    assert tail(tmp_path / "fifo.log") == f"(console log {tmp_path}/fifo.log is not a regular file)"
    assert tail(tmp_path / "none.log") == (f"(cannot read console log {tmp_path}/none.log: No "
                                          "such file or directory)")
