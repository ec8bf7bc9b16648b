"""Where saves live, and what a save is on disk: its directory, its manifest, the list of saves.

A save is the directory ``<root>/<NAME>/`` (root: ``/var/lib/libvirt/images/oslab-saves``, or
``$OSLAB_SAVES_DIR``) under a root with oslab's marker. It lives beside the image cache, not in
the home directory: its disks back the overlays of the labs made from it, so qemu must reach
them. Directories are 0711 (qemu passes through, nobody lists), files 0600 (libvirt hands qemu
the disks it needs). ``manifest.json`` is written last: a directory without it, or one whose
name starts with '.', is a save being written (or killed while written), never a save.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oslab.access.state import path_variable
from oslab.errors import OslabError
from oslab.files import read_small, set_mode, write_atomic

FORMAT = 1
ROOT_VARIABLE = "OSLAB_SAVES_DIR"
DEFAULT_ROOT = Path("/var/lib/libvirt/images/oslab-saves")
MARKER = ".oslab-saves"
MANIFEST = "manifest.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_MANIFEST = 4 << 20
SECRETS_NOTE = ("this save holds the lab's secrets: its passwords, its SSH keys and the memory "
                "of its nodes; keep it and its exports private")
PARTIAL_PREFIX = ".partial-"


class SaveError(OslabError):
    """A save could not be made, listed, removed or restored."""


def saves_root() -> Path:
    return path_variable(ROOT_VARIABLE, DEFAULT_ROOT)


def check_name(name: str) -> None:
    if not NAME_RE.fullmatch(name):
        raise SaveError(f"{name!r} is not a valid save name",
                        hint="use letters, digits, '.', '_' and '-', starting with a letter or "
                             "digit, at most 64 characters")


def ensure_root(root: Path) -> Path:
    """Make the root (0711, with oslab's marker); refuse a directory oslab did not make."""
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise SaveError(f"{root} is not a directory", hint="move it away; oslab makes it")
    if root.is_dir() and not (root / MARKER).is_file() and any(root.iterdir()):
        raise SaveError(f"{root} exists without oslab's marker {MARKER}",
                        hint=f"it is not oslab's; set {ROOT_VARIABLE} to another directory")
    root.mkdir(parents=True, exist_ok=True, mode=0o711)
    set_mode(root, 0o711)
    if not (root / MARKER).is_file():
        write_atomic(root / MARKER, "oslab's saved labs\n")
    return root


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class SavedNode:
    node: str
    domain: str
    role: str
    address: str
    state: str  # "running" or "shut off" when it was saved ("suspended" ones were running)
    memory: str  # relative path of its memory state; "" when it did not run
    xml: str  # relative path of its inactive domain XML
    volumes: tuple[dict[str, Any], ...]  # name, file, format, backing, capacity


@dataclass(frozen=True)
class Save:
    name: str
    path: Path
    manifest: dict[str, Any]

    @property
    def lab(self) -> str:
        return str(self.manifest["lab"])

    @property
    def nodes(self) -> tuple[SavedNode, ...]:
        return tuple(SavedNode(n["node"], n["domain"], n["role"], n["address"], n["state"],
                               n["memory"], n["xml"], tuple(n["volumes"]))
                     for n in self.manifest["nodes"])

    @property
    def bases(self) -> list[str]:
        return [str(b["path"]) for b in self.manifest.get("bases", [])]

    def size(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        return {"name": self.name, "lab": m["lab"], "created": m["created"],
                "distro": m["distro"], "release": m["release"], "scope": m.get("scope", ""),
                "nodes": [{"node": n.node, "state": n.state,
                           "memory": bool(n.memory)} for n in self.nodes],
                "bytes": self.size(), "path": str(self.path), "bases": self.bases,
                "verified": bool(m.get("verification"))}


def leaning_on(save: Save, others: list[Save]) -> list[str]:
    """The saves among ``others`` whose disks are overlays on ``save``'s (a lab made from
    ``save``, saved again): deleting ``save`` would break them."""
    inside = f"{save.path}/"
    return [o.name for o in others if o.path != save.path
            and any(b.startswith(inside) for b in o.bases)]


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    """A format-1 manifest, or a SaveError saying what is wrong with it."""
    hint = "it was not written by this oslab; `oslab saved --delete NAME` removes it"
    try:
        m = json.loads(data)
    except ValueError as exc:
        raise SaveError(f"{where} is not JSON: {exc}", hint=hint) from exc
    if not isinstance(m, dict):
        raise SaveError(f"{where} is not a manifest", hint=hint)
    if m.get("format") != FORMAT:
        raise SaveError(f"{where} has format {m.get('format')!r}; this oslab reads format "
                        f"{FORMAT}", hint="use the oslab version that made the save")
    for key, typ in (("name", str), ("lab", str), ("nodes", list), ("files", dict),
                     ("distro", str), ("release", str), ("created", str)):
        if not isinstance(m.get(key), typ):
            raise SaveError(f"{where}: {key!r} is missing or not a {typ.__name__}", hint=hint)
    return m


def read_save(root: Path, name: str) -> Save:
    check_name(name)
    path = root / name
    manifest = path / MANIFEST
    if not manifest.is_file():
        raise SaveError(f"there is no save {name!r} in {root}",
                        hint="`oslab saved` lists the saves")
    m = parse_manifest(read_small(manifest, MAX_MANIFEST, "a save's manifest",
                                  "remove the save"), str(manifest))
    if m["name"] != name:
        raise SaveError(f"{manifest} names save {m['name']!r}, not {name!r}",
                        hint="a save's directory is its name; rename it back")
    return Save(name, path, m)


def list_saves(root: Path) -> tuple[list[Save], list[str]]:
    """The saves under ``root``, oldest first, and a line for each directory that is not one."""
    saves: list[Save] = []
    problems: list[str] = []
    if not root.is_dir():
        return saves, problems
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        try:
            saves.append(read_save(root, entry.name))
        except (SaveError, OslabError) as exc:
            problems.append(f"{entry}: {exc.message}")
    return sorted(saves, key=lambda s: (s.manifest["created"], s.name)), problems


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    write_atomic(directory / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n",
                 mode=0o600)


def hash_files(directory: Path) -> dict[str, str]:
    """The sha256 of every file under ``directory`` but the manifest, by relative path."""
    return {str(p.relative_to(directory)): sha256_file(p)
            for p in sorted(directory.rglob("*")) if p.is_file() and p.name != MANIFEST}


def partial_dir(root: Path, name: str) -> Path:
    return root / f"{PARTIAL_PREFIX}{name}-{os.getpid()}"


def stale_partials(root: Path) -> list[Path]:
    """Directories of saves whose writer is gone (killed, or the host rebooted)."""
    out: list[Path] = []
    if not root.is_dir():
        return out
    for entry in root.iterdir():
        if not entry.name.startswith(PARTIAL_PREFIX):
            continue
        pid = entry.name.rsplit("-", 1)[-1]
        if not (pid.isdigit() and Path(f"/proc/{pid}").exists()):
            out.append(entry)
    return out


def remove_tree(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)


def delete(root: Path, name: str) -> Save:
    save = read_save(root, name)
    # renamed away first: a delete that is interrupted leaves a partial, never half a save
    doomed = root / f"{PARTIAL_PREFIX}{name}-deleted-{time.time_ns()}"
    os.rename(save.path, doomed)
    remove_tree(doomed)
    return save
