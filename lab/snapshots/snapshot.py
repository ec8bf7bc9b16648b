"""Lab-wide snapshots: every node captured at one moment, and reverted together.

A snapshot pauses every running node, takes each node's internal snapshot in parallel
(memory and disks for a running node, disks only for one that is shut off), then resumes them.
It is all or nothing: if one node fails, the snapshots already taken under that name are deleted.

The list is read from libvirt. oslab's bookkeeping (the user's description, each node's state
when the snapshot was taken, the install progress) lives in each snapshot's ``<description>``
as ``oslab:{json}``, so a snapshot without it was made outside oslab.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from xml.sax.saxutils import escape

import libvirt

from oslab.errors import OslabError
from oslab.virt import at_once
from oslab.virt.handles import Connection, Domain
from oslab.virt.lab_objects import INACTIVE, DomainInfo, DomainState, LabObjects, virt_error

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PREFIX = "oslab:"
T = TypeVar("T")


class SnapshotError(OslabError):
    """A lab snapshot could not be taken, reverted or deleted."""


@dataclass(frozen=True)
class NodeSnap:
    node: str
    domain: str
    state: DomainState  # running or shut off when it was taken
    progress: str


@dataclass(frozen=True)
class LabSnapshot:
    name: str
    created: float  # epoch seconds
    description: str
    nodes: tuple[NodeSnap, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name,
                "created": datetime.fromtimestamp(self.created, UTC).isoformat(),
                "description": self.description,
                "nodes": [n.__dict__ for n in self.nodes]}


@dataclass(frozen=True)
class SnapResult:
    name: str
    seconds: float
    paused_seconds: float  # the longest time any node stayed paused
    nodes: tuple[str, ...]
    phases: tuple[tuple[str, float], ...] = ()  # (what, seconds) in the order they ran


def _message(exc: BaseException) -> str:
    if isinstance(exc, libvirt.libvirtError):
        return exc.get_error_message() or str(exc)
    return str(exc)


def encode_description(description: str, node: str, state: str, progress: str) -> str:
    return PREFIX + json.dumps({"description": description, "node": node, "state": state,
                                "progress": progress}, sort_keys=True)


def _captured_running(snapshot_xml: ET.Element) -> bool:
    """Whether the node ran when the snapshot was taken (oslab takes them paused)."""
    return snapshot_xml.findtext("state") in ("running", "paused")


def decode_description(text: str) -> dict[str, str] | None:
    if not text.startswith(PREFIX):
        return None
    try:
        data = json.loads(text[len(PREFIX):])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


# Names oslab's own commands take and replace: the installer's checkpoints (auto-<phase>), and
# the prefixes kept for the commands to come (exercises, saves). A user's snapshot under one
# of them would be deleted and retaken without a word, so users cannot take one.
RESERVED_PREFIXES = ("auto-", "exercise-", "saved-")


def check_name(name: str) -> None:
    if not NAME_RE.fullmatch(name):
        raise SnapshotError(f"{name!r} is not a valid snapshot name",
                            hint="use letters, digits, '.', '_' and '-', starting with a "
                                 "letter or digit, at most 64 characters")


def find_snapshot(dom: Domain, name: str, node: str) -> Any | None:
    """Node ``node``'s (domain ``dom``'s) snapshot ``name``; None when it has none of that name
    (libvirt's VIR_ERR_NO_DOMAIN_SNAPSHOT). Any other libvirt error (the domain undefined
    meanwhile, libvirtd gone) is not "no such snapshot": it is a VirtError saying so."""
    try:
        return dom.snapshotLookupByName(name, 0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
            return None
        raise virt_error(exc, f"looking up snapshot {name!r} of node {node}") from exc


def check_user_name(name: str) -> None:
    """A name a user may take a snapshot under: valid, and not one of oslab's own."""
    check_name(name)
    reserved = next((p for p in RESERVED_PREFIXES if name.startswith(p)), None)
    if reserved is not None:
        raise SnapshotError(f"snapshot names starting with {reserved!r} are oslab's own",
                            hint=f"oslab takes, replaces and deletes {reserved}* snapshots "
                                 "itself (auto-* are `oslab up`'s checkpoints), so yours would "
                                 f"be lost; choose another name, such as my-{name}")


class LabSnapshots:
    def __init__(self, conn: Connection, lab: str,
                 progress: Callable[[DomainInfo], str] | None = None) -> None:
        self.conn = conn
        self.lab = lab
        self.objs = LabObjects(conn, lab)
        self.progress = progress or (lambda d: d.meta.phase)

    def _domains(self) -> list[tuple[DomainInfo, Any]]:
        infos = self.objs.domains()
        if not infos:
            raise SnapshotError(f"lab {self.lab} has no nodes in libvirt",
                                hint="build it with `oslab up`, or name another lab with --lab")
        return [(i, self.conn.lookupByName(i.name)) for i in infos]

    # -- guards ---------------------------------------------------------------------------------

    def _guard(self, doms: list[tuple[DomainInfo, Any]], name: str) -> None:
        for info, dom in doms:
            root = ET.fromstring(dom.XMLDesc(INACTIVE))
            loader = root.find("os/loader")
            if root.find("os").get("firmware") == "efi" or (  # type: ignore[union-attr]
                    loader is not None and loader.get("type") == "pflash"):
                raise SnapshotError(
                    f"node {info.meta.node} boots with UEFI/pflash firmware; internal "
                    "snapshots need BIOS guests on this libvirt",
                    hint="rebuild the node as a BIOS guest (oslab's default)")
            if dom.hasManagedSaveImage(0):
                raise SnapshotError(f"node {info.meta.node} is suspended (its memory is saved "
                                    "to disk)", hint="`oslab resume` brings the lab back; "
                                                     "then take the snapshot")
            for snap in dom.listAllSnapshots(0):
                sx = ET.fromstring(snap.getXMLDesc(0))
                external = sx.find("memory[@snapshot='external']") is not None or \
                    sx.find("disks/disk[@snapshot='external']") is not None
                if external:
                    raise SnapshotError(
                        f"node {info.meta.node} has an external snapshot {snap.getName()!r} "
                        "made outside oslab; oslab takes and reverts internal snapshots only",
                        hint=f"remove it first (virsh snapshot-delete {info.name} "
                             f"{snap.getName()} --metadata) and merge its overlay")
                if snap.getName() == name:
                    raise SnapshotError(f"snapshot {name!r} exists already on node "
                                        f"{info.meta.node}",
                                        hint=f"choose another name, or `oslab snapshot --delete "
                                             f"{name}` first")

    # -- take -------------------------------------------------------------------------------------

    def take(self, name: str, description: str = "") -> SnapResult:
        """Take the user's snapshot ``name`` (never one of oslab's reserved names)."""
        check_user_name(name)
        return self._take(name, description)

    def take_reserved(self, name: str, description: str = "") -> SnapResult:
        """Take one of oslab's own snapshots (a checkpoint): ``name`` has a reserved prefix."""
        check_name(name)
        if not name.startswith(RESERVED_PREFIXES):
            raise ValueError(f"{name!r} is not one of oslab's reserved snapshot names")
        return self._take(name, description)

    def _take(self, name: str, description: str) -> SnapResult:
        start = time.monotonic()
        doms = self._domains()
        self._guard(doms, name)
        running = [(i, d) for i, d in doms if d.isActive()]
        progress = {i.name: self.progress(i) for i, _d in doms}
        paused_at: dict[str, float] = {}

        def pause(item: tuple[DomainInfo, Any]) -> None:
            item[1].suspend()
            paused_at[item[0].name] = time.monotonic()

        failures = [(i, e) for (i, _d), e in at_once.each(pause, running)
                    if isinstance(e, BaseException)]

        def snap(item: tuple[DomainInfo, Any]) -> None:
            info, dom = item
            state = DomainState.RUNNING if info.name in paused_at else DomainState.SHUT_OFF
            desc = encode_description(description, info.meta.node, state, progress[info.name])
            xml = (f"<domainsnapshot><name>{escape(name)}</name>"
                   f"<description>{escape(desc)}</description></domainsnapshot>")
            dom.snapshotCreateXML(xml, 0)

        if not failures:
            failures = [(i, e) for (i, _d), e in at_once.each(snap, doms)
                        if isinstance(e, BaseException)]
        resumed = at_once.each(lambda item: item[1].resume(), [x for x in running
                                                            if x[0].name in paused_at])
        end = time.monotonic()
        paused = max((end - t for t in paused_at.values()), default=0.0)
        if failures:
            for _info, dom in doms:
                with contextlib.suppress(libvirt.libvirtError):  # none under that name
                    dom.snapshotLookupByName(name, 0).delete(0)
            info, exc = failures[0]
            raise SnapshotError(
                f"snapshot {name!r} failed on node {info.meta.node}: {_message(exc)}; "
                "no node keeps a snapshot of that name and every node runs again",
                hint="see `oslab status`; internal snapshots need qcow2 disks on BIOS guests")
        stuck = [i.meta.node for (i, _d), e in resumed if isinstance(e, BaseException)]
        if stuck:
            raise SnapshotError(f"snapshot {name!r} taken, but nodes {stuck} did not resume",
                                hint="resume them with `virsh resume`")
        return SnapResult(name, end - start, paused, tuple(i.meta.node for i, _d in doms))

    # -- list / delete ------------------------------------------------------------------------

    def snapshots(self) -> list[LabSnapshot]:
        by_name: dict[str, list[tuple[float, dict[str, str], NodeSnap]]] = {}
        for info, dom in self._domains():
            for snap in dom.listAllSnapshots(0):
                sx = ET.fromstring(snap.getXMLDesc(0))
                data = decode_description(sx.findtext("description") or "")
                if data is None:
                    continue  # not oslab's
                created = float(sx.findtext("creationTime") or 0)
                state = (DomainState.RUNNING if _captured_running(sx)
                         else DomainState.SHUT_OFF)
                node = NodeSnap(info.meta.node, info.name, state, data.get("progress", ""))
                by_name.setdefault(snap.getName(), []).append((created, data, node))
        out = []
        for name, entries in by_name.items():
            out.append(LabSnapshot(name, min(c for c, _d, _n in entries),
                                   entries[0][1].get("description", ""),
                                   tuple(sorted((n for _c, _d, n in entries),
                                                key=lambda n: n.node))))
        return sorted(out, key=lambda s: s.created)

    def delete(self, name: str) -> list[str]:
        """Delete ``name`` from every node that has it; the nodes it was deleted from."""
        doms = self._domains()
        found = [(info, find_snapshot(dom, name, info.meta.node)) for info, dom in doms]
        holders = [(info, snap) for info, snap in found if snap is not None]
        if not holders:
            raise SnapshotError(f"lab {self.lab} has no snapshot {name!r}",
                                hint="`oslab snapshot --list` shows the snapshots")
        errors = [(i, e) for (i, _s), e in at_once.each(lambda h: h[1].delete(0), holders)
                  if isinstance(e, BaseException)]
        if errors:
            info, exc = errors[0]
            raise SnapshotError(f"deleting {name!r} failed on {info.meta.node}: "
                                f"{_message(exc)}")
        return [i.meta.node for i, _s in holders]

    # -- revert -------------------------------------------------------------------------------

    def revert(self, name: str) -> SnapResult:
        """Return every node to ``name``; running nodes are resumed together at the end."""
        start = time.monotonic()
        doms = self._domains()
        snaps = []  # (info, domain, snapshot, whether the node ran when it was taken)
        missing = []
        for info, dom in doms:
            snap = find_snapshot(dom, name, info.meta.node)
            if snap is None:
                missing.append(info.meta.node)
                continue
            sx = ET.fromstring(snap.getXMLDesc(0))
            if decode_description(sx.findtext("description") or "") is None:
                raise SnapshotError(f"snapshot {name!r} on {info.meta.node} was made outside "
                                    "oslab", hint="revert it with virsh if you made it")
            snaps.append((info, dom, snap, _captured_running(sx)))
        if missing:
            raise SnapshotError(
                f"snapshot {name!r} is missing on node(s) {', '.join(missing)}; no node was "
                "touched", hint="`oslab snapshot --list` shows which snapshots are complete")

        def revert_one(item: tuple[DomainInfo, Any, Any, bool]) -> None:
            _info, dom, snap, running = item
            if dom.hasManagedSaveImage(0):  # saved memory of a later moment: obsolete now
                dom.managedSaveRemove(0)
            flags = libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED if running else 0
            dom.revertToSnapshot(snap, flags | libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_FORCE)

        checked = time.monotonic()
        errors = [(i[0], e) for i, e in at_once.each(revert_one, snaps)
                  if isinstance(e, BaseException)]
        if errors:
            info, exc = errors[0]
            raise SnapshotError(f"revert to {name!r} failed on {info.meta.node}: "
                                f"{_message(exc)}",
                                hint="the other nodes were reverted; fix it and revert again")
        to_resume = [(i, d) for i, d, _s, running in snaps if running]
        reverted = time.monotonic()
        resumed = at_once.each(lambda item: item[1].resume(), to_resume)
        end = time.monotonic()
        stuck = [i.meta.node for (i, _d), e in resumed if isinstance(e, BaseException)]
        if stuck:
            raise SnapshotError(f"reverted to {name!r}, but nodes {stuck} did not resume",
                                hint="resume them with `virsh resume`")
        return SnapResult(name, end - start, end - reverted,
                          tuple(i.meta.node for i, _d in to_resume),
                          (("check", checked - start), ("revert paused", reverted - checked),
                           ("resume", end - reverted)))
