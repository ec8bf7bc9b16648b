"""The base-image cache as libvirt and the host hold it: list, decide what to prune, prune.

A base is known by its key (``<distro>-<role>-<hash>``): its volumes in the ``oslab-images``
pool and its directory in the host cache (``<cache>/debian/images/<hash>``). Who uses it is
read from libvirt every time, never from oslab's own records: the backing store of every
volume in every active pool on that libvirtd, and the kernel, initrd and disks (with their
backing chains) of every domain, so labs oslab did not list, and foreign pools, count too.

Pruning is decided by a pure function (:func:`prune_plan`) from those facts and the keys whose
build lock is held; :func:`prune` then removes each chosen base under its build lock, after
reading the uses again.
"""

from __future__ import annotations

import errno
import fcntl
import json
import re
import shutil
import stat
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt

from oslab.errors import OslabError
from oslab.files import open_append, read_small
from oslab.images.build import lock_path, use_path
from oslab.images.common import LOCK_HINT, Say
from oslab.images.pool import ImageCache
from oslab.virt.handles import Connection, Pool, Volume
from oslab.virt.lab_objects import libvirt_calls, read_marker
from oslab.virt.metadata import LabMeta

VOLUME = re.compile(r"^(?P<name>(?P<distro>.+)-(?P<role>[a-z]+)-(?P<key>[0-9a-f]{16}))"
                    r"\.(?:qcow2|vmlinuz|initrd|json)$")
HOST_DIR = re.compile(r"^[0-9a-f]{16}$")
DISTRO = re.compile(r"[a-z0-9][a-z0-9.-]{0,31}")
ROLE = re.compile(r"[a-z]{1,32}")
MAX_HOST_MANIFEST = 4 << 20  # a manifest holds the image's inputs: some KiB of text


@dataclass(frozen=True)
class Base:
    """One cached base, from the cache pool, the host cache directory, or both."""

    name: str  # <distro>-<role>-<hash>
    key: str
    distro: str
    role: str
    volumes: tuple[str, ...] = ()  # volume names in the cache pool
    paths: tuple[str, ...] = ()  # every file of it a guest could use
    host_dir: str = ""  # "" when only the pool holds it
    pool_bytes: int = 0
    host_bytes: int = 0
    built: float = 0.0  # seconds since the epoch

    def as_dict(self, users: list[str], now: float) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "distro": self.distro, "role": self.role,
                "volumes": list(self.volumes), "host_dir": self.host_dir or None,
                "pool_bytes": self.pool_bytes, "host_bytes": self.host_bytes,
                "built": self.built, "age_s": round(now - self.built), "used_by": users}


@dataclass(frozen=True)
class Use:
    """A libvirt object that reads ``path``: a volume backed by it, or a domain."""

    path: str
    by: str  # the lab (its pool's marker, its node's metadata), else "pool:<name>" or
    # "domain:<name>"


@dataclass(frozen=True)
class Decision:
    base: Base
    remove: bool
    reason: str


# -- facts -----------------------------------------------------------------------------------

def _pool_volume(vol: Volume) -> tuple[str, int, float]:
    root = ET.fromstring(vol.XMLDesc(0))
    mtime = root.findtext("target/timestamps/mtime") or "0"
    return vol.path(), int(root.findtext("allocation") or 0), float(mtime)


def pool_bases(cache: ImageCache) -> list[Base]:
    """The bases in the cache pool, from its volume names."""
    pool = cache.pool()
    if pool is None or not pool.isActive():
        return []
    pool.refresh(0)
    found: dict[str, Base] = {}
    for name in sorted(pool.listVolumes()):
        match = VOLUME.match(name)
        if match is None:
            continue
        path, allocation, mtime = _pool_volume(pool.storageVolLookupByName(name))
        old = found.get(match["name"]) or Base(match["name"], match["key"], match["distro"],
                                               match["role"])
        found[old.name] = Base(old.name, old.key, old.distro, old.role, (*old.volumes, name),
                               (*old.paths, path), pool_bytes=old.pool_bytes + allocation,
                               built=max(old.built, mtime))
    return list(found.values())


def host_bases(images: Path, say: Say) -> list[Base]:
    """The finished bases in the host cache directory (those with a manifest). An entry that
    is a symbolic link is not oslab's: it is never followed, only reported (``say``)."""
    found = []
    for path in sorted(images.iterdir()) if images.is_dir() else []:
        if not HOST_DIR.match(path.name):
            continue
        if path.is_symlink():
            say(f"skipped {path}: a symbolic link, not a base oslab built; left in place")
            continue
        manifest = path / "manifest.json"
        if not manifest.is_file():
            continue
        data = _host_manifest(path, manifest)
        files = [f for f in path.rglob("*") if f.is_file()]
        found.append(Base(data.name, path.name, data.distro, data.role,
                          paths=tuple(str(f) for f in files), host_dir=str(path),
                          host_bytes=sum(f.stat().st_size for f in files),
                          built=data.built or manifest.stat().st_mtime))
    return found


@dataclass(frozen=True)
class _HostManifest:
    name: str
    distro: str
    role: str
    built: float  # 0: not recorded


def _host_manifest(path: Path, manifest: Path) -> _HostManifest:
    """A host base's manifest, as build.py writes it; anything else is damaged."""
    hint = f"remove {path} (the next `oslab up` builds it again)"
    raw = read_small(manifest, MAX_HOST_MANIFEST, "the base image manifest", hint)
    try:
        data = json.loads(raw)
        name, inputs = data["name"], data["inputs"]
        distro, role, built = inputs["distro"], inputs["role"], data.get("built_at") or 0
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise OslabError(f"the base image manifest {manifest} cannot be read: {exc}",
                         hint=hint) from exc
    if not (isinstance(distro, str) and DISTRO.fullmatch(distro) and isinstance(role, str)
            and ROLE.fullmatch(role) and name == f"{distro}-{role}-{path.name}"):
        raise OslabError(f"the base image manifest {manifest} cannot be read: its name, distro "
                         f"and role do not name the base in {path.name}", hint=hint)
    if (isinstance(built, bool) or not isinstance(built, int | float)
            or not 0 <= built < float("inf")):
        raise OslabError(f"the base image manifest {manifest} cannot be read: built_at "
                         f"{json.dumps(built)[:60]} is not a time in seconds since the epoch",
                         hint=hint)
    return _HostManifest(name, distro, role, float(built))


def merge(in_pool: list[Base], on_host: list[Base]) -> list[Base]:
    """One Base per name, from the pool's and the host's views; sorted by name."""
    by_name = {b.name: b for b in in_pool}
    for h in on_host:
        p = by_name.get(h.name)
        by_name[h.name] = h if p is None else Base(
            h.name, h.key, h.distro, h.role, p.volumes, (*p.paths, *h.paths), h.host_dir,
            p.pool_bytes, h.host_bytes, h.built)
    return [by_name[n] for n in sorted(by_name)]


def _pool_label(pool: Pool) -> str:
    path = ET.fromstring(pool.XMLDesc(0)).findtext("target/path") or ""
    marker = read_marker(Path(path)) if path else None
    if isinstance(marker, dict) and isinstance(marker.get("lab"), str):
        return str(marker["lab"])
    return f"pool:{pool.name()}"


def _domain_paths(xml: str) -> set[str]:
    root = ET.fromstring(xml)
    paths = {root.findtext("os/kernel") or "", root.findtext("os/initrd") or ""}
    for source in root.iter("source"):
        paths.add(source.get("file") or "")
    return paths - {""}


def uses(conn: Connection) -> list[Use]:
    """Every volume backed by a file and every file a domain reads, on this libvirtd. An
    inactive pool cannot be read, so a prune refuses to guess what it holds."""
    found: list[Use] = []
    inactive = []
    for pool in conn.listAllStoragePools(0):
        if not pool.isActive():
            inactive.append(pool.name())
            continue
        with _unless_gone():
            pool.refresh(0)
            label = _pool_label(pool)
            for vol in pool.listAllVolumes(0):
                with _unless_gone():
                    backing = ET.fromstring(vol.XMLDesc(0)).findtext("backingStore/path")
                    if backing:
                        found.append(Use(backing, label))
    if inactive:
        raise OslabError(
            f"storage pools {', '.join(sorted(inactive))} are inactive: their volumes may be "
            "overlays on a cached base, and libvirt cannot list them",
            hint="start them (virsh pool-start NAME) or undefine the ones you no longer need, "
                 "then rerun")
    for dom in conn.listAllDomains(0):
        with _unless_gone():
            xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            paths = _domain_paths(xml)
            if dom.isActive():
                paths |= _domain_paths(dom.XMLDesc(0))
            meta = LabMeta.from_object_xml(xml)  # a lab's node counts as its lab
            label = meta.lab if meta is not None and meta.lab else f"domain:{dom.name()}"
            found += [Use(p, label) for p in sorted(paths)]
    return found + save_uses()


def save_uses() -> list[Use]:
    """The bases each save's disks are overlays on: a prune keeps them while the save lives."""
    from oslab.saves import store

    saves, _problems = store.list_saves(store.saves_root())
    return [Use(base, f"save:{s.name}") for s in saves for base in s.bases]


GONE = (libvirt.VIR_ERR_NO_STORAGE_POOL, libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_ERR_NO_DOMAIN)


@contextmanager
def _unless_gone() -> Iterator[None]:
    """Skip an object removed while it is read (another lab's destroy): it uses nothing."""
    try:
        yield
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in GONE:
            raise


def table(bases: list[Base], found: list[Use], now: float) -> list[str]:
    """`oslab images`: one line per base."""
    lines = [f"{'BASE':<44} {'POOL MB':>8} {'HOST MB':>8} {'AGE':>6}  USED BY"]
    for b in bases:
        lines.append(f"{b.name:<44} {b.pool_bytes / 1e6:>8.0f} {b.host_bytes / 1e6:>8.0f} "
                     f"{age(now - b.built):>6}  {', '.join(users(b, found)) or '-'}")
    return lines


def age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{max(seconds, 0):.0f}s"


@libvirt_calls("reading the base images and their users")
def gather(conn: Connection, images: Path, cache: ImageCache | None = None,
           say: Say = lambda _line: None) -> tuple[list[Base], list[Use]]:
    """The bases and their uses; ``say`` hears of the cache entries that were skipped."""
    cache = cache or ImageCache(conn)
    return merge(pool_bases(cache), host_bases(images, say)), uses(conn)


@contextmanager
def try_lock(path: Path) -> Iterator[bool]:
    """Hold the lock on ``path`` if nobody does; yields whether it is held. A missing lock
    file means no build ever ran here: nothing to wait for."""
    if not path.exists():
        yield True
        return
    with open_append(path, "the lock file", LOCK_HINT) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def both_locks(images: Path, key: str) -> Iterator[bool]:
    """Hold the build lock and the use lock of ``key``; yields False if another process
    holds either (an `oslab up` builds the image, or makes overlays on it)."""
    with try_lock(lock_path(images, key)) as built, try_lock(use_path(images, key)) as used:
        yield built and used


def busy_keys(images: Path, bases: list[Base]) -> frozenset[str]:
    """The keys of ``bases`` that an `oslab up` builds or is about to use now."""
    busy = set()
    for base in bases:
        with both_locks(images, base.key) as free:
            if not free:
                busy.add(base.key)
    return frozenset(busy)


# -- decisions -------------------------------------------------------------------------------

def users(base: Base, found: list[Use]) -> list[str]:
    """Who uses ``base``: the labs (and foreign pools or domains), sorted, once each."""
    paths = set(base.paths)
    return sorted({u.by for u in found if u.path in paths})


def prune_plan(bases: list[Base], found: list[Use], busy: frozenset[str],
               keep_newest: bool = True) -> list[Decision]:
    """For each base: remove it or keep it, and why. A base in use or being built is always
    kept; unless ``keep_newest`` is off, so is the newest base of each (distro, role), which
    the next `oslab up` of an unchanged lab would otherwise build again."""
    newest: dict[tuple[str, str], Base] = {}
    for b in bases:
        best = newest.get((b.distro, b.role))
        if best is None or (b.built, b.name) > (best.built, best.name):
            newest[(b.distro, b.role)] = b
    out = []
    for b in bases:
        who = users(b, found)
        if who:
            out.append(Decision(b, False, "used by " + ", ".join(who)))
        elif b.key in busy:
            out.append(Decision(b, False, "an `oslab up` builds or uses it now (its lock is "
                                          "held)"))
        elif keep_newest and newest[(b.distro, b.role)] is b:
            out.append(Decision(b, False, f"the newest {b.distro} image for role {b.role} "
                                          "(--all removes it too)"))
        else:
            out.append(Decision(b, True, "unused"))
    return out


# -- action ----------------------------------------------------------------------------------

def remove_base(cache: ImageCache, base: Base) -> None:
    """The manifests go first: what is left of an interrupted removal is an interrupted upload
    or build, which the next `oslab up` redoes."""
    pool = cache.pool()
    if pool is not None and pool.isActive():
        for name in sorted(base.volumes, key=lambda n: not n.endswith(".json")):
            pool.storageVolLookupByName(name).delete(0)
    if base.host_dir:
        path = Path(base.host_dir)
        doomed = path.with_name(f"{path.name}.removing")
        path.rename(doomed)
        shutil.rmtree(doomed)


def _own_directory(path: Path) -> bool:
    """``path`` is a directory itself, not a link to one (nor anything else)."""
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


@libvirt_calls("removing unused base images")
def prune(conn: Connection, images: Path, plan: list[Decision], say: Say,
          cache: ImageCache | None = None) -> list[str]:
    """Remove what ``plan`` says to, each base under its build lock and only if libvirt
    still shows no use of it; the names removed."""
    cache = cache or ImageCache(conn)
    removed = []
    for d in plan:
        if not d.remove:
            continue
        with both_locks(images, d.base.key) as free:
            if not free:
                say(f"kept {d.base.name}: an `oslab up` builds or uses it now")
                continue
            who = users(d.base, uses(conn))
            if who:
                say(f"kept {d.base.name}: used meanwhile by {', '.join(who)}")
                continue
            if d.base.host_dir and not _own_directory(Path(d.base.host_dir)):
                say(f"kept {d.base.name}: {d.base.host_dir} is no longer a directory (a "
                    "symbolic link?); left in place")
                continue
            remove_base(cache, d.base)
        removed.append(d.base.name)
    return removed
