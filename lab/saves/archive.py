"""A save as one file for another host, with the bases its disks are chained to: zstd compresses
(not code of ours); the import trusts nothing but its manifest's sha256s. Never print content."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oslab.errors import CommandError, OslabError
from oslab.files import new_file, read_small, set_mode, write_atomic

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PLAIN = re.compile(r"(?:(?!\.\.?/)[^/\0]+/)*(?!\.\.?$)[^/\0]+")  # relative, no "", ".", ".."
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_MANIFEST = 4 << 20  # paths and checksums: some KiB of text
FOREIGN_HINT = "import only a file that `oslab` exported from a save (NAME/manifest.json first)"
DAMAGED_HINT = "copy the archive again whole, or export the save again"
Say = Callable[[str], None]
Rebase = Callable[[Path, Path], None]  # (a disk, the new path of its backing file)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    bytes: int  # the archive's size
    seconds: float


@dataclass(frozen=True)
class ImportResult:
    name: str
    path: Path
    bytes: int  # of the files written, uncompressed
    seconds: float


def parse_manifest(raw: bytes) -> dict[str, Any]:
    """``raw`` as a manifest once what export and import rely on is sound, else ValueError."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"its manifest is not JSON ({exc})") from exc
    if not isinstance(data, dict) or type(data.get("format")) is not int or data["format"] != 1 \
            or not isinstance(data.get("name"), str) or not NAME.fullmatch(data["name"]):
        raise ValueError("its manifest is not a format-1 manifest with a valid name")
    files, bases = data.get("files"), data.setdefault("bases", [])
    if not isinstance(files, dict) or not isinstance(bases, list) or not all(
            PLAIN.fullmatch(k) and k != "manifest.json" and SHA256.fullmatch(str(v))
            for k, v in files.items()) or not all(
            isinstance(b, dict) and isinstance(b.get("path"), str) and b["path"][:1] == "/"
            and b.get("file") in ("", *files)
            # a base not carried (a save on its host) has its sha256 worked out by the export
            and (SHA256.fullmatch(str(b.get("sha256", "0" * 64)))
                 or b.get("file") == b.get("sha256") == "")
            for b in bases):
        raise ValueError("its manifest's files or bases are not paths with their sha256")
    return data


def check_member(member: tarfile.TarInfo, name: str, files: dict[str, str], seen: set[str]) -> str:
    """``member``'s path in the save if it is a file in ``files`` and not ``seen``, or a dir."""
    top, _, rel = member.name.partition("/")
    rel, shown = rel.rstrip("/") if member.isdir() else rel, ascii(member.name)[:100]
    if top != name or not (PLAIN.fullmatch(rel) or (member.isdir() and rel == "")):
        raise ValueError(f"{shown} is not a plain path under {name}/")
    if not (member.isreg() or member.isdir()):
        raise ValueError(f"{shown} is not a regular file (tar type {member.type!r})")
    if member.isreg() and rel not in files:
        raise ValueError(f"{shown} is not in its manifest")
    if rel in seen:
        raise ValueError(f"{shown} comes twice")
    seen.update([rel] if member.isreg() else [])
    return rel


def relocate(manifest: dict[str, Any], to: Path) -> tuple[dict[str, Any], list[tuple[str, Path]]]:
    """The manifest once the save is in ``to``; the (disk, its base's new path) to rebase."""
    out: dict[str, Any] = json.loads(json.dumps(manifest))
    moved = {b["path"]: to / b["file"] for b in out["bases"] if b["file"]}
    nodes, pairs = out.get("nodes") or [], []
    for node in nodes.values() if isinstance(nodes, dict) else nodes:
        vols = node.get("volumes") if isinstance(node, dict) else None
        for vol in vols if isinstance(vols, list) else ():
            if new := moved.get(str(vol.get("backing"))) if isinstance(vol, dict) else None:
                if str(vol.get("file")) not in out["files"]:
                    raise ValueError(f"the disk {ascii(vol.get('file'))[:99]} is not in the save")
                pairs.append((str(vol["file"]), new))
                vol["backing"] = str(new)
    for base in out["bases"]:  # "origin": where the saved domains' XML still names it
        base["origin"], base["path"] = base["path"], str(moved.get(base["path"], base["path"]))
    return out, pairs


@contextmanager
def _zstd(args: list[str], where: str, hint: str, stdin: int | None,
          stdout: int | None) -> Iterator[subprocess.Popen[bytes]]:
    """``zstd``, killed on an error, its exit status checked; its messages (kept in a temporary
    file, never a pipe it could fill) go into the error, not onto the terminal before it."""
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(argv := ["zstd", *args], stdin=stdin, stdout=stdout,
                                    stderr=errors)
        except FileNotFoundError as exc:
            raise OslabError("the zstd command is not installed",
                             hint="install the zstd package (apt install zstd)") from exc
        broken = False
        try:
            with proc:  # closes its pipes (past the tar's end, zstd gets EPIPE), waits for it
                yield proc
        except BrokenPipeError:  # zstd stopped reading: it says why
            broken = True
        except BaseException:
            proc.kill()
            raise
        if proc.returncode != 0 or broken:
            errors.seek(0)
            said = errors.read(4096).decode(errors="replace")
            raise CommandError(argv, proc.returncode, said, hint=hint, where=where)


class _Reader(io.FileIO):
    """A regular file (never a FIFO, which would wait for a writer), hashed as it is read."""

    def __init__(self, path: Path) -> None:
        super().__init__(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "r")
        self.sha = hashlib.sha256()
        if not stat.S_ISREG(os.fstat(self.fileno()).st_mode):
            self.close()
            raise OSError(errno.EINVAL, "not a regular file", str(path))

    def read(self, size: int | None = -1, /) -> bytes:
        self.sha.update(data := super().read(size))
        return data


def _damaged(name: str, what: str) -> OslabError:
    return OslabError(f"the save {name} is damaged: {what}",
                      hint="it changed after it was saved: save the lab again")


def for_archive(manifest: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[Path, str, str]]]:
    """The manifest as the archive holds it, describing it exactly (each base outside the save
    carried in ``bases/``, with its sha256), and those bases as (path, file, sha256)."""
    out: dict[str, Any] = json.loads(json.dumps(manifest))
    carried: dict[str, tuple[str, str]] = {}
    for base in (b for b in out["bases"] if b["file"] == ""):
        if (path := base["path"]) not in carried:
            rel = f"bases/{Path(path).name}"
            if rel in out["files"] or not PLAIN.fullmatch(rel):
                raise _damaged(out["name"], f"its base {path} cannot be {rel} in the archive")
            try:
                with _Reader(Path(path)) as f:
                    sha = base.get("sha256") or hashlib.file_digest(f, "sha256").hexdigest()
            except OSError as exc:
                raise _damaged(out["name"], f"its base {path} cannot be read: "
                                            f"{exc.strerror or exc}") from exc
            out["files"][rel], carried[path] = sha, (rel, sha)
        base["file"], base["sha256"] = carried[path]
    return out, [(Path(path), rel, sha) for path, (rel, sha) in carried.items()]


def _add(tar: tarfile.TarFile, member: str, path: Path, sha: str, name: str) -> int:
    """Add ``path`` as ``member`` (mode 0600), checked against ``sha`` as it is read."""
    try:
        with _Reader(path) as f:
            info = tar.gettarinfo(arcname=member, fileobj=f)
            info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
            tar.addfile(info, f)
    except OSError as exc:  # also a file shorter than it was a moment ago
        if isinstance(exc, BrokenPipeError):
            raise
        raise _damaged(name, f"{path} cannot be read: {exc.strerror or exc}") from exc
    if f.sha.hexdigest() != sha:
        raise _damaged(name, f"{path} does not match its sha256 in manifest.json")
    return info.size


def _refuse_existing(path: Path, hint: str) -> None:
    if path.exists() or path.is_symlink():
        raise OslabError(f"{path} already exists", hint=hint)


def export(save_dir: Path, out: Path, say: Say) -> ExportResult:
    """Write the save in ``save_dir`` and its bases to ``out``, a new file (mode 0600)."""
    start, hint = time.monotonic(), f"save the lab again, or remove {save_dir}"
    try:
        manifest = parse_manifest(read_small(save_dir / "manifest.json", MAX_MANIFEST,
                                             "the save manifest", hint))
    except ValueError as exc:
        raise OslabError(f"the save in {save_dir} is damaged: {exc}", hint=hint) from exc
    _refuse_existing(out, "choose another name or remove it")
    other = next((b["path"] for b in manifest["bases"] if b["path"].startswith(
        f"{save_dir.parent}/") and not b["path"].startswith(f"{save_dir}/")), None)
    if other:  # the archive would carry one level of a chain whose bottom it lacks
        raise OslabError(f"save {manifest['name']}'s disks are overlays on another save's "
                         f"({other}): it was made from a lab made from that save",
                         hint="export that save instead, or save a lab built by `oslab up`")
    archived, carried = for_archive(manifest)
    raw = json.dumps(archived, indent=2, sort_keys=True).encode()
    name, total = manifest["name"], len(raw)
    entries = [(save_dir / rel, rel, sha) for rel, sha in sorted(manifest["files"].items())]
    fd, tmp = tempfile.mkstemp(".partial", f".{out.name}.", out.parent)  # mode 0600
    try:
        with _zstd(["-q", "-T0", "-3", "-c"], f"writing {out}", f"check that {out.parent} has "
                   "room for the archive", subprocess.PIPE, fd) as proc:
            assert proc.stdin is not None
            with tarfile.open(fileobj=proc.stdin, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                info = tarfile.TarInfo(f"{name}/manifest.json")
                info.size, info.mtime, info.mode = len(raw), int(time.time()), 0o600
                tar.addfile(info, io.BytesIO(raw))
                for path, rel, sha in entries + carried:
                    total += (size := _add(tar, f"{name}/{rel}", path, sha, name))
                    say(f"  {rel}: {size / 2**20:.1f} MiB")
        os.fsync(fd)
        _refuse_existing(out, "choose another name or remove it")
        os.rename(tmp, out)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)
    say(f"{out}: {total >> 20} MiB of files in {(size := out.stat().st_size) >> 20} MiB")
    return ExportResult(out, size, time.monotonic() - start)


def _unpack(tar: tarfile.TarFile, archive: Path, staging: Path, manifest: dict[str, Any],
            say: Say) -> int:
    """Every member after the manifest, checked, hashed and written: the bytes written."""
    files, seen, done, total = manifest["files"], set[str](), 0, 0
    with suppress(tarfile.ReadError):  # the stream ends inside a member: counted below
        while (member := tar.next()) is not None:
            try:
                rel = check_member(member, manifest["name"], files, seen)
                tarfile.data_filter(member, str(staging))
            except (ValueError, tarfile.FilterError) as exc:
                raise OslabError(f"{archive} holds a member no oslab save has: {exc}",
                                 hint=FOREIGN_HINT) from exc
            if (src := tar.extractfile(member) if member.isreg() else None) is None:
                continue
            for parent in reversed(Path(rel).parents[:-1]):  # a umask only takes bits away
                with suppress(FileExistsError):
                    os.mkdir(staging / parent, 0o711)  # only files came: no link there
            sha, size = hashlib.sha256(), 0
            with new_file(staging / rel) as out:
                while chunk := src.read(1 << 20):
                    sha.update(chunk)
                    size += out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if sha.hexdigest() != files[rel]:
                raise OslabError(f"{archive} is damaged: {rel} does not match its sha256",
                                 hint=DAMAGED_HINT)
            say(f"  {rel}: {size / 2**20:.1f} MiB")
            done, total = done + 1, total + size
    if done < len(files):
        raise OslabError(f"{archive} is truncated: {len(files) - done} files missing",
                         hint=DAMAGED_HINT)
    return total


def import_archive(archive: Path, saves_root: Path, say: Say, rebase: Rebase) -> ImportResult:
    """Read ``archive`` into ``saves_root/NAME``, all checked, and ``rebase`` (``qemu-img rebase
    -u``) each disk onto its base's final path. On any failure (or ^C) nothing of it is left."""
    start, staging, src = time.monotonic(), None, _Reader(archive)
    try:
        with _zstd(["-dcq"], f"reading {archive}", DAMAGED_HINT, src.fileno(),
                   subprocess.PIPE) as proc:
            try:  # its stream is zstd's, closed there
                tar = tarfile.open(fileobj=proc.stdout, mode="r|")  # noqa: SIM115
                first = tar.next()
                if first is None or not first.isreg() or first.size > MAX_MANIFEST or not (
                        first.name.endswith("/manifest.json") and first.name.count("/") == 1):
                    raise ValueError("its first member is not NAME/manifest.json (at most 4 MiB)")
                manifest = parse_manifest(tar.extractfile(first).read())  # type: ignore[union-attr]
                if f"{manifest['name']}/manifest.json" != first.name:
                    raise ValueError(f"its manifest names {manifest['name']}, not {first.name!a}")
                final, pairs = relocate(manifest, target := saves_root / manifest["name"])
            except (tarfile.TarError, ValueError) as exc:
                raise OslabError(f"{archive} is not an oslab save archive: {exc}",
                                 hint=FOREIGN_HINT) from exc
            name = manifest["name"]  # checked once: rename() replaces only an empty directory
            _refuse_existing(target, f"delete it first: oslab saved --delete {name}")
            staging = Path(tempfile.mkdtemp(prefix=f".import-{name}-", dir=saves_root))
            set_mode(staging, 0o711)
            total = _unpack(tar, archive, staging, manifest, say)
        for rel, base in pairs:
            rebase(staging / rel, base)
        write_atomic(staging / "manifest.json", json.dumps(final, indent=2), 0o600)
        os.rename(staging, target)
        staging = None
    finally:
        src.close()
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    say(f"{target}: {len(manifest['files']) + 1} files, {total / 2**20:.1f} MiB")
    return ImportResult(name, target, total, time.monotonic() - start)
