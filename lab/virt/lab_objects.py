"""libvirt operations on one lab's objects, with ownership checks.

Domains and networks are the lab's when their ``<metadata>`` says so. Storage pools carry no
metadata in libvirt 9.0, so the lab's pool is the one named after the lab whose directory holds
oslab's marker file; its volumes belong to it. An object with the lab's name but without that
proof is refused, never reused or deleted.
"""

from __future__ import annotations

import contextlib
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import libvirt

from oslab.errors import HostError, OslabError, OwnershipError
from oslab.files import read_small, write_atomic
from oslab.networks import NetworkDef
from oslab.virt.definitions import POOL_MARKER, PoolDef, VolumeDef
from oslab.virt.handles import Connection, Domain, Pool, Volume
from oslab.virt.metadata import LabMeta

INACTIVE = libvirt.VIR_DOMAIN_XML_INACTIVE


class DomainState(StrEnum):
    """A domain's state as oslab names it (libvirt's "blocked" is running)."""

    NO_STATE = "no state"
    RUNNING = "running"
    PAUSED = "paused"
    SHUTTING_DOWN = "shutting down"
    SHUT_OFF = "shut off"
    CRASHED = "crashed"
    PM_SUSPENDED = "pm-suspended"  # the guest suspended itself (ACPI S3)
    SAVED = "suspended"  # shut off with its memory saved to disk (`oslab suspend`)


STATE_NAMES = {
    libvirt.VIR_DOMAIN_NOSTATE: DomainState.NO_STATE,
    libvirt.VIR_DOMAIN_RUNNING: DomainState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: DomainState.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: DomainState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: DomainState.SHUTTING_DOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: DomainState.SHUT_OFF,
    libvirt.VIR_DOMAIN_CRASHED: DomainState.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: DomainState.PM_SUSPENDED,
}

# Hints for the libvirt errors a user or the host can cause; the rest get the generic one.
_HINTS = {
    libvirt.VIR_ERR_SYSTEM_ERROR: "is libvirtd still running? (`systemctl status libvirtd`)",
    libvirt.VIR_ERR_RPC: "libvirtd closed the connection; is it still running? "
                         "(`systemctl status libvirtd`)",
    libvirt.VIR_ERR_NO_CONNECT: "is libvirtd running? (`systemctl status libvirtd`)",
    libvirt.VIR_ERR_OPERATION_INVALID: "the object changed under oslab; `oslab status` shows "
                                       "where the lab is, then rerun",
    libvirt.VIR_ERR_OPERATION_FAILED: "`oslab check` looks for what the host lacks",
    libvirt.VIR_ERR_AUTH_FAILED: "run as root or as a member of the 'libvirt' group",
    libvirt.VIR_ERR_ACCESS_DENIED: "run as root or as a member of the 'libvirt' group",
}
_GENERIC_HINT = "`oslab status` shows the lab's objects; rerun the command to continue"


class VirtError(HostError):
    """A libvirt call failed: what oslab was doing, and libvirt's own message."""


def virt_error(exc: libvirt.libvirtError, doing: str) -> VirtError:
    return VirtError(f"libvirt failed while {doing}: {exc.get_error_message() or exc}",
                     hint=_HINTS.get(exc.get_error_code(), _GENERIC_HINT))


@contextlib.contextmanager
def libvirt_calls(doing: str) -> Iterator[None]:
    """Turn a ``libvirtError`` raised inside into a ``VirtError`` saying what oslab was doing.
    Works as a ``with`` block and as a decorator."""
    try:
        yield
    except libvirt.libvirtError as exc:
        raise virt_error(exc, doing) from exc


def connect(uri: str) -> Any:
    if not uri:
        raise HostError("the libvirt URI is empty",
                        hint="give --uri a URI such as qemu:///system, or leave --uri out")
    # libvirt's default error printer would repeat every error on stderr: quiet it.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise HostError(
            f"cannot connect to libvirt at {uri}: {exc.get_error_message()}",
            hint="install libvirt-daemon-system and qemu-system-x86, start libvirtd "
                 "(and virtlogd), and run as root or as a member of the 'libvirt' group",
        ) from exc


def _no_such(exc: libvirt.libvirtError) -> bool:
    return exc.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_NETWORK,
                                    libvirt.VIR_ERR_NO_STORAGE_POOL,
                                    libvirt.VIR_ERR_NO_STORAGE_VOL)


@dataclass(frozen=True)
class DomainInfo:
    name: str
    meta: LabMeta
    state: DomainState
    virt_type: str


class LabObjects:
    """Find, create and remove the libvirt objects of lab ``lab`` through ``conn``."""

    def __init__(self, conn: Connection, lab: str) -> None:
        self.conn = conn
        self.lab = lab

    # -- lookups ----------------------------------------------------------------------------

    def _lookup(self, fn: Callable[[str], Any], name: str) -> Any | None:
        try:
            return fn(name)
        except libvirt.libvirtError as exc:
            if _no_such(exc):
                return None
            raise

    @libvirt_calls("looking up a domain")
    def domain(self, name: str) -> Any | None:
        """The domain ``name`` if it is this lab's; None if absent; refused if foreign."""
        dom = self._lookup(self.conn.lookupByName, name)
        if dom is not None:
            self._check_owner(f"domain {name}", dom.XMLDesc(INACTIVE))
        return dom

    @libvirt_calls("looking up a network")
    def network(self, name: str) -> Any | None:
        net = self._lookup(self.conn.networkLookupByName, name)
        if net is not None:
            self._check_owner(f"network {name}",
                              net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE))
        return net

    @libvirt_calls("looking up the lab's storage pool")
    def pool(self) -> Any | None:
        pool = self._lookup(self.conn.storagePoolLookupByName, self.lab)
        if pool is None:
            return None
        path = pool_path(pool)
        if not _marker_ok(path, self.lab):
            raise OwnershipError(
                f"storage pool {self.lab} exists but oslab did not make it for lab {self.lab} "
                f"(no {POOL_MARKER} marker in {path})",
                hint="rename the lab (lab.name in the spec) or remove that pool yourself "
                     f"(virsh pool-destroy {self.lab}; virsh pool-undefine {self.lab})")
        return pool

    def _check_owner(self, what: str, xml: str) -> LabMeta:
        meta = LabMeta.from_object_xml(xml)
        if meta is None or meta.lab != self.lab:
            owner = "no oslab metadata" if meta is None else f"the metadata of lab {meta.lab!r}"
            raise OwnershipError(
                f"{what} exists with {owner}, so it is not lab {self.lab!r}'s",
                hint="oslab never reuses or deletes an object it did not make: rename the lab "
                     "(lab.name in the spec) or remove that object yourself")
        return meta

    @libvirt_calls("listing domains")
    def domains(self) -> list[DomainInfo]:
        """Every domain carrying this lab's metadata, sorted by name."""
        found = []
        for dom in self.conn.listAllDomains(0):
            meta = LabMeta.from_object_xml(dom.XMLDesc(INACTIVE))
            if meta is not None and meta.lab == self.lab:
                found.append(self.info(dom, meta))
        return sorted(found, key=lambda d: d.name)

    @libvirt_calls("reading a domain")
    def info(self, dom: Domain, meta: LabMeta | None = None) -> DomainInfo:
        xml = dom.XMLDesc(INACTIVE)
        meta = meta or LabMeta.from_object_xml(xml)
        assert meta is not None
        virt_type = ET.fromstring(xml).get("type", "?")
        return DomainInfo(dom.name(), meta, state_name(dom), virt_type)

    @libvirt_calls("listing networks")
    def networks(self) -> list[tuple[str, LabMeta, bool]]:
        found = []
        for net in self.conn.listAllNetworks(0):
            meta = LabMeta.from_object_xml(net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE))
            if meta is not None and meta.lab == self.lab:
                found.append((net.name(), meta, bool(net.isActive())))
        return sorted(found)

    @libvirt_calls("listing volumes")
    def volumes(self) -> list[tuple[str, int, int]]:
        """(name, capacity, allocation) of every volume in the lab's pool."""
        pool = self.pool()
        if pool is None or not pool.isActive():
            return []
        pool.refresh(0)
        out = []
        for vol in pool.listAllVolumes(0):
            if vol.name() == POOL_MARKER:
                continue
            _type, capacity, allocation = vol.info()
            out.append((vol.name(), capacity, allocation))
        return sorted(out)

    # -- creation (idempotent) ----------------------------------------------------------------

    @libvirt_calls("creating a network")
    def ensure_network(self, net_def: NetworkDef) -> bool:
        """Define, start and autostart the network; True when something was created."""
        net = self.network(net_def.name)
        created = False
        if net is None:
            net = self.conn.networkDefineXML(net_def.xml())
            created = True
        if not net.isActive():
            try:
                net.create()
            except libvirt.libvirtError as exc:
                raise HostError(f"cannot start network {net_def.name}: "
                                f"{exc.get_error_message()}",
                                hint="run `oslab check` to look for an address clash") from exc
            created = True
        net.setAutostart(1)
        return created

    @libvirt_calls("creating the storage pool")
    def ensure_pool(self, pool_def: PoolDef) -> bool:
        pool = self.pool()
        created = False
        if pool is None:
            path = pool_def.path
            if path.exists() and any(path.iterdir()) and not _marker_ok(path, self.lab):
                raise OwnershipError(
                    f"pool directory {path} exists and is not empty, and oslab did not make it",
                    hint="set lab.pool_dir in the spec to a new directory")
            path.mkdir(parents=True, exist_ok=True)
            _write_marker(path, self.lab)
            pool = self.conn.storagePoolDefineXML(pool_def.xml(), 0)
            created = True
        if not pool.isActive():
            pool.create(0)
            created = True
        pool.setAutostart(1)
        return created

    @libvirt_calls("looking up a volume")
    def volume(self, name: str) -> Any | None:
        pool = self.pool()
        if pool is None:
            return None
        return self._lookup(pool.storageVolLookupByName, name)

    @libvirt_calls("creating a volume")
    def ensure_volume(self, vol_def: VolumeDef) -> bool:
        pool = self.pool()
        assert pool is not None, "ensure_pool first"
        if self._lookup(pool.storageVolLookupByName, vol_def.name) is not None:
            return False
        pool.createXML(vol_def.xml(), 0)
        return True

    @libvirt_calls("uploading a volume")
    def upload(self, name: str, source: Path, *, replace: bool = False) -> Any:
        """Copy ``source`` into the pool as raw volume ``name`` through a libvirt stream."""
        pool = self.pool()
        assert pool is not None, "ensure_pool first"
        return upload_volume(self.conn, pool, name, source, replace=replace)

    # -- removal ------------------------------------------------------------------------------

    @libvirt_calls("removing a domain")
    def remove_domain(self, name: str) -> None:
        dom = self.domain(name)
        if dom is None:
            return
        if dom.isActive():
            dom.destroy()
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                          | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
                          | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)

    @libvirt_calls("removing a network")
    def remove_network(self, name: str) -> None:
        net = self.network(name)
        if net is None:
            return
        if net.isActive():
            net.destroy()
        net.undefine()

    @libvirt_calls("removing the storage pool")
    def remove_pool(self) -> list[str]:
        """Delete the lab's volumes and pool; returns what was left because it is not ours."""
        pool = self.pool()
        if pool is None:
            return []
        path = pool_path(pool)
        if not pool.isActive():
            pool.create(0)
        pool.refresh(0)
        for vol in pool.listAllVolumes(0):
            vol.delete(0)
        pool.destroy()
        leftovers = []
        if path.exists():
            (path / POOL_MARKER).unlink(missing_ok=True)
            leftovers = [str(p) for p in path.iterdir()]
            if not leftovers:
                path.rmdir()
        pool.undefine()
        return leftovers


def upload_volume(conn: Connection, pool: Pool, name: str, source: Path, *,
                  replace: bool = False) -> Any:
    """Copy ``source`` into ``pool`` as volume ``name`` through a libvirt stream (so a remote
    libvirt works too); kept when a volume of that size is there and ``replace`` is False."""
    size = source.stat().st_size
    vol = _lookup_volume(pool, name)
    if vol is not None and not replace and vol.info()[1] == size:
        return vol
    if vol is not None:
        vol.delete(0)
    part = f"{name}.part"
    stale = _lookup_volume(pool, part)
    if stale is not None:
        stale.delete(0)
    tmp = pool.createXML(VolumeDef(part, size, "raw").xml(), 0)
    stream_into(conn, tmp, source)
    # libvirt has no rename: a complete upload is what lands under the final name.
    final = pool.createXMLFrom(VolumeDef(name, size, "raw").xml(), tmp, 0)
    tmp.delete(0)
    return final


def stream_into(conn: Connection, vol: Volume, source: Path) -> None:
    """Write the bytes of ``source`` into volume ``vol`` through a libvirt stream."""
    stream = conn.newStream(0)
    vol.upload(stream, 0, source.stat().st_size, 0)
    with source.open("rb") as f:
        stream.sendAll(lambda _s, n, fh: fh.read(n), f)
    stream.finish()


def _lookup_volume(pool: Pool, name: str) -> Any | None:
    try:
        return pool.storageVolLookupByName(name)
    except libvirt.libvirtError as exc:
        if _no_such(exc):
            return None
        raise


@libvirt_calls("reading a domain's state")
def state_name(dom: Domain) -> DomainState:
    state, _reason = dom.state()
    if state == libvirt.VIR_DOMAIN_SHUTOFF and dom.hasManagedSaveImage(0):
        return DomainState.SAVED  # the next start restores its memory
    return STATE_NAMES.get(state, DomainState.NO_STATE)  # a state newer than this libvirt


def pool_path(pool: Pool) -> Path:
    return Path(ET.fromstring(pool.XMLDesc(0)).findtext("target/path") or "/nonexistent")


MAX_MARKER_BYTES = 4096


def read_marker(directory: Path) -> Any:
    """The JSON of oslab's marker in a pool's ``directory``; None when none reads as JSON.
    Only a small regular file is read: a FIFO there would never answer."""
    try:
        return json.loads(read_small(directory / POOL_MARKER, MAX_MARKER_BYTES, "pool marker",
                                     ""))
    except (OslabError, ValueError, RecursionError):
        return None


def _marker_ok(path: Path, lab: str) -> bool:
    data = read_marker(path)
    return isinstance(data, dict) and data.get("lab") == lab


def _write_marker(path: Path, lab: str) -> None:
    write_atomic(path / POOL_MARKER, json.dumps({"lab": lab, "made_by": "oslab"}) + "\n")


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 1.0,
             on_tick: Callable[[float], None] | None = None) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; True when it held."""
    start = time.monotonic()
    while True:
        if predicate():
            return True
        elapsed = time.monotonic() - start
        if elapsed >= timeout:
            return False
        if on_tick is not None:
            on_tick(elapsed)
        time.sleep(min(interval, max(0.05, timeout - elapsed)))


def iter_lab_names(conn: Connection) -> Iterator[str]:
    """Every lab that has a domain, network or pool in this libvirt."""
    with libvirt_calls("listing labs"):
        seen: set[str] = set()
        for dom in conn.listAllDomains(0):
            meta = LabMeta.from_object_xml(dom.XMLDesc(INACTIVE))
            if meta is not None and meta.lab not in seen:
                seen.add(meta.lab)
                yield meta.lab
        for net in conn.listAllNetworks(0):
            meta = LabMeta.from_object_xml(net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE))
            if meta is not None and meta.lab not in seen:
                seen.add(meta.lab)
                yield meta.lab
        for pool in conn.listAllStoragePools(0):
            if pool.name() not in seen and _marker_ok(pool_path(pool), pool.name()):
                seen.add(pool.name())
                yield pool.name()
