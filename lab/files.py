"""One safe way to write a file: atomically, with its mode set before any byte, and no symlink
followed anywhere an attacker who can write the directory could plant one. And one safe way to
read a small file a user or the host gave (:func:`read_small`, or the end of a long one,
:func:`read_tail`): a regular file only (never a FIFO that would wait for a writer, nor a
device such as /dev/zero), and at most a bound.

The temporary file gets an unpredictable name and is created with ``O_CREAT | O_EXCL |
O_NOFOLLOW`` relative to the directory opened once with ``O_NOFOLLOW``; ``fchmod`` sets its mode
before the data is written (whatever the umask); the data is fsynced, then renamed over the
target inside that same directory. A link at the target is replaced, never followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from oslab.errors import OslabError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _cannot(path: Path, exc: OSError) -> OslabError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        reason = "a directory on the way is a symbolic link or not a directory"
    return OslabError(f"cannot write {path}: {reason}",
                      hint="check that its directory exists, is a directory (not a link) you "
                           "can write, and that the disk is not full")


def _open_dir(directory: Path, base: Path | None) -> int:
    """An fd of ``directory``. With ``base``, every component below ``base`` is opened (and
    made, mode 0755, when missing) one at a time without following a link."""
    if base is None:
        return os.open(directory, _DIR_FLAGS)
    fd = os.open(base, _DIR_FLAGS)
    try:
        for part in directory.relative_to(base).parts:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def atomic_file(path: Path, mode: int, base: Path | None = None) -> Iterator[BinaryIO]:
    """A binary file to write; on a clean exit it replaces ``path`` (mode ``mode``) at once,
    on an error nothing at ``path`` changes. With ``base`` (a directory above ``path``), the
    directories between them are made as needed and none of them may be a link."""
    path = Path(path)
    try:
        dir_fd = _open_dir(path.parent, base)
    except OSError as exc:
        raise _cannot(path, exc) from exc
    try:
        tmp, fd = _create_temp(path, dir_fd)
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb", closefd=False) as out:
                yield out
                out.flush()
                os.fsync(fd)
            os.close(fd)
            fd = -1
            os.rename(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.fsync(dir_fd)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
    except OSError as exc:
        raise _cannot(path, exc) from exc
    finally:
        os.close(dir_fd)


def _create_temp(path: Path, dir_fd: int) -> tuple[str, int]:
    for _ in range(16):
        tmp = f".{path.name}.{secrets.token_hex(8)}.tmp"
        try:
            return tmp, os.open(tmp, _TMP_FLAGS, 0o600, dir_fd=dir_fd)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {path}")


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644,
                 base: Path | None = None) -> None:
    """Write ``data`` to ``path`` atomically with mode ``mode`` (see the module docstring and
    :func:`atomic_file` for ``base``)."""
    with atomic_file(path, mode, base) as out:
        out.write(data.encode() if isinstance(data, str) else data)


@contextlib.contextmanager
def new_file(path: Path, mode: int = 0o600) -> Iterator[BinaryIO]:
    """A file made at ``path``, which must not exist yet (nor be a link), mode ``mode``: for a
    file written in place inside a directory being built (a save, an import's staging)."""
    try:
        fd = os.open(path, _TMP_FLAGS, mode)
    except OSError as exc:
        raise _cannot(path, exc) from exc
    with os.fdopen(fd, "wb") as out:
        yield out


def set_mode(path: Path, mode: int) -> None:
    """chmod ``path``, never through a symbolic link."""
    if path.is_symlink():
        raise OslabError(f"{path} is a symbolic link", hint="oslab made no link there; move it")
    try:
        os.chmod(path, mode)
    except OSError as exc:
        raise _cannot(path, exc) from exc


def write_private(path: Path, data: bytes | str) -> None:
    """``write_atomic`` with mode 0600: for keys, passwords and anything else secret."""
    write_atomic(path, data, 0o600)


@contextlib.contextmanager
def _regular(path: Path, what: str, hint: str, error: type[OslabError]) -> Iterator[BinaryIO]:
    """``path`` open to read, once it is known to be a regular file (a link is followed to
    what it names)."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before it is refused
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}", hint=hint) from exc
    except ValueError as exc:  # a NUL in the path
        raise error(f"cannot read {what} {path!r}: {exc}", hint=hint) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise error(f"{what} {path} is not a regular file", hint=hint)
    with os.fdopen(fd, "rb") as f:
        try:
            yield f
        except OSError as exc:
            raise error(f"cannot read {what} {path}: {exc.strerror or exc}", hint=hint) from exc


def read_small(path: Path, limit: int, what: str, hint: str,
               error: type[OslabError] = OslabError) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes; anything else is one
    ``error`` naming ``what`` (e.g. "lab spec") and the path, with ``hint``. A link is
    followed to what it names, which must be a regular file too."""
    with _regular(path, what, hint, error) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        size = f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"
        raise error(f"{what} {path} is larger than {size}", hint=hint)
    return data


def read_small_if_any(path: Path, limit: int, what: str, hint: str,
                      error: type[OslabError] = OslabError) -> bytes | None:
    """:func:`read_small`, or None when nothing is at ``path``. A link that names nothing is
    something there: an error, like any other file that is not a regular one."""
    if not path.exists() and not path.is_symlink():
        return None
    return read_small(path, limit, what, hint, error)


def read_tail(path: Path, size: int, what: str, hint: str = "") -> bytes:
    """The last ``size`` bytes (at most) of ``path``, a regular file of any length, as
    :func:`read_small` takes it."""
    with _regular(path, what, hint, OslabError) as f:
        f.seek(max(0, os.fstat(f.fileno()).st_size - size))
        return f.read(size)


def open_append(path: Path, what: str, hint: str) -> TextIO:
    """``path`` opened to append text (made, mode 0644, when missing), for a log or a lock: a
    regular file only. A FIFO there is refused at once (opening it to write would wait for a
    reader for ever), as are a device, a directory and a symbolic link (never followed)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ELOOP):  # a FIFO that nobody reads; a link
            raise OslabError(f"{what} {path} is not a regular file", hint=hint) from exc
        raise OslabError(f"cannot open {what} {path}: {exc.strerror or exc}",
                         hint=hint) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OslabError(f"{what} {path} is not a regular file", hint=hint)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "a")
