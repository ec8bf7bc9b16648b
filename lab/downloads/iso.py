"""The installer ISO: read its volume label and copy its boot files out.

The volume label and the kernel and initrd are read with pycdlib, through the Rock Ridge
name, then the Joliet name, then the plain ISO9660 name; files are streamed, never read
whole into memory. Fetching the ISO is :mod:`oslab.downloads.download`.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from oslab.errors import OslabError


@dataclass(frozen=True)
class InstallerMedia:
    """The installer as the pool holds it for a kickstart boot: its kernel's and initrd's
    volume paths, and the ISO's volume label (the installer finds its stage 2 by it)."""

    kernel: str
    initrd: str
    label: str


# -- reading the ISO ----------------------------------------------------------------------------

@contextlib.contextmanager
def _opened(iso: Path) -> Iterator[pycdlib.PyCdlib]:
    cd = pycdlib.PyCdlib()
    try:
        cd.open(str(iso))
    except OSError as exc:
        raise OslabError(f"cannot read the ISO {iso}: {exc.strerror or exc}",
                         hint="check iso.path in the lab TOML") from exc
    except PyCdlibException as exc:
        raise OslabError(f"{iso} is not a readable ISO 9660 image: {exc}",
                         hint="delete it and fetch it again, or point iso.path at a CentOS "
                              "Stream 9 boot or DVD ISO") from exc
    try:
        yield cd
    finally:
        cd.close()


def read_label(iso: Path) -> str:
    """The primary volume descriptor's volume identifier, e.g. CentOS-Stream-9-BaseOS-x86_64."""
    with _opened(iso) as cd:
        raw: bytes = cd.pvd.volume_identifier
    return raw.decode("ascii", errors="replace").rstrip(" \x00").strip()


def extract_boot_files(iso: Path, kernel_path: str, initrd_path: str,
                       dest_dir: Path) -> tuple[Path, Path]:
    """Copy the installer kernel and initrd out of ``iso`` into ``dest_dir``."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    with _opened(iso) as cd:
        kernel = _extract(cd, iso, kernel_path, dest_dir)
        initrd = _extract(cd, iso, initrd_path, dest_dir)
    return kernel, initrd


def _extract(cd: pycdlib.PyCdlib, iso: Path, path: str, dest_dir: Path) -> Path:
    location = find_file(cd, path)
    if location is None:
        raise OslabError(f"{iso} has no file {path}",
                         hint="is this a CentOS Stream 9 boot or DVD ISO? Point iso.path or "
                              "iso.url in the lab TOML at one")
    dest = dest_dir / PurePosixPath(path).name
    tmp = dest.with_name(dest.name + ".part")
    try:
        with tmp.open("wb") as out:
            cd.get_file_from_iso_fp(out, **location)
        os.replace(tmp, dest)
    except (OSError, PyCdlibException) as exc:
        tmp.unlink(missing_ok=True)
        raise OslabError(f"cannot extract {path} from {iso}: {exc}",
                         hint=f"check the free space in {dest_dir}, and that the ISO is whole "
                              "(delete it and fetch it again)") from exc
    return dest


def find_file(cd: pycdlib.PyCdlib, path: str) -> dict[str, str] | None:
    """How pycdlib finds ``path``: ``{"rr_path": ...}``, ``{"joliet_path": ...}`` or
    ``{"iso_path": ...}``; None when the ISO has no such file."""
    clean = str(PurePosixPath("/", path))
    candidates: list[dict[str, str]] = []
    if cd.has_rock_ridge():
        candidates.append({"rr_path": clean})
    if cd.has_joliet():
        candidates.append({"joliet_path": clean})
    for location in candidates:
        if _exists(cd, location):
            return location
    iso_path = _iso9660_path(cd, clean)
    return {"iso_path": iso_path} if iso_path else None


def _exists(cd: pycdlib.PyCdlib, location: dict[str, str]) -> bool:
    try:
        record = cd.get_record(**location)
    except PyCdlibException:
        return False
    return not record.is_dir()


def _iso9660_key(name: str) -> str:
    """Compare ISO9660 names as mkisofs makes them: upper case, no ``;1``, no trailing dot,
    characters outside d-characters as ``_``."""
    base = name.split(";", 1)[0].rstrip(".").upper()
    return re.sub(r"[^A-Z0-9_.]", "_", base)


def _iso9660_path(cd: pycdlib.PyCdlib, path: str) -> str | None:
    """Walk the plain ISO9660 tree for ``path`` (e.g. ``/IMAGES/PXEBOOT/VMLINUZ.;1``)."""
    current = "/"
    parts = PurePosixPath(path).parts[1:]
    for i, part in enumerate(parts):
        want = _iso9660_key(part)
        found = None
        try:
            children = list(cd.list_children(iso_path=current))
        except PyCdlibException:
            return None
        for child in children:
            if child is None or child.is_dot() or child.is_dotdot():
                continue
            ident = child.file_identifier().decode("ascii", errors="replace")
            last = i == len(parts) - 1
            if _iso9660_key(ident) == want and child.is_dir() != last:
                found = ident
                break
        if found is None:
            return None
        current = current.rstrip("/") + "/" + found
    return current


__all__ = ["extract_boot_files", "read_label"]
