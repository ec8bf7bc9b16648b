"""`oslab save NAME`: one consistent, lab-wide state of a lab, written into the saves root.

The snapshot's rule keeps it one moment: every node that runs is paused, then each one's memory
is saved to a state file (``virDomainSaveFlags``, which stops it), then each is restored paused
from that file at once, so the window in which a node's memory lives only in the save is the
save itself. The disks are copied while every node is paused (``qemu-img convert -U``; a paused
node writes nothing): a disk that is an overlay on a cached base stays one, holding only its own
clusters; any other disk is flattened. Internal snapshots (the checkpoints) are left behind.
Last, the nodes run again together with their clocks put right; a suspended lab is suspended
again. Everything is written under a ``.partial-`` name and renamed into place when complete.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import libvirt

from oslab.access.state import VERIFY_LEDGER, LabState
from oslab.files import set_mode
from oslab.images import common
from oslab.saves import store
from oslab.saves.store import SaveError
from oslab.spec import LabSpec
from oslab.virt import at_once
from oslab.virt.handles import Connection, Domain
from oslab.virt.lab_objects import INACTIVE, DomainInfo, DomainState, LabObjects

Say = Callable[[str], None]
SAVEABLE = (DomainState.RUNNING, DomainState.PAUSED, DomainState.SHUT_OFF, DomainState.SAVED)
MIB = 1 << 20
T = TypeVar("T")


def _who(item: object) -> str:
    if isinstance(item, tuple) and isinstance(item[0], DomainInfo):
        return item[0].meta.node
    return str(item)


def parallel_each(fn: Callable[[T], object], items: Sequence[T], doing: str) -> None:
    """``fn`` on every item at once; every item is tried, and the error names each failure."""
    at_once.every(fn, items, who=_who, doing=lambda _item: doing, error=SaveError,
                  hint="`oslab status` shows the nodes")


@dataclass(frozen=True)
class Saved:
    save: store.Save
    seconds: float
    paused_s: float  # how long the running nodes stood paused
    bytes: int


@dataclass(frozen=True)
class DiskCopy:
    """One disk of a node: where it is, and how the save keeps it."""

    volume: str  # its name in the lab's pool
    source: Path
    format: str  # qcow2 or raw
    backing: str  # the base it stays an overlay on; "" when flattened or raw
    capacity: int
    # the image between it and that base (another save's disk, for a lab made from a save):
    # its clusters are written down into the copy, so that no save needs another
    via: str = ""

    @property
    def file(self) -> str:
        return self.volume


def qemu_img_chain(path: Path) -> list[dict[str, Any]]:
    """`qemu-img info` of ``path`` and of each image below it, the disk first."""
    proc = subprocess.run(["qemu-img", "info", "-U", "--backing-chain", "--output=json",
                           str(path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SaveError(f"qemu-img cannot read {path}: {proc.stderr.strip()[-300:]}",
                        hint="scripts/setup-host.sh installs qemu-utils")
    chain = json.loads(proc.stdout)
    return chain if isinstance(chain, list) else [chain]


def disk_copy(volume: str, path: Path, chain: list[dict[str, Any]]) -> DiskCopy:
    """How to keep one disk: an overlay stays one on the bottom of its chain (a cached base);
    a raw one (a seed) is copied. A lab made from a save has its disks on that save's: saved
    again, they end on the base too (``via``), so that no save needs another (an export
    carries one level; a delete of the first would break the second)."""
    info = chain[0]
    fmt = str(info.get("format", "raw"))
    if fmt != "qcow2" or len(chain) < 2:
        return DiskCopy(volume, path, fmt, "", int(info.get("virtual-size", 0)))
    via = str(chain[1].get("filename", "")) if len(chain) > 2 else ""
    return DiskCopy(volume, path, fmt, str(chain[-1].get("filename", "")),
                    int(info.get("virtual-size", 0)), via)


def copy_argv(disk: DiskCopy, out: Path) -> list[str] | None:
    """The qemu-img command that writes ``disk`` into the save; None: a plain copy will do.
    `convert -B` writes only the clusters of the disk itself, so on its own backing."""
    if disk.format != "qcow2":
        return None
    argv = ["qemu-img", "convert", "-U", "-f", "qcow2", "-O", "qcow2"]
    if disk.backing:
        argv += ["-B", disk.via or disk.backing, "-F", "qcow2"]
    return [*argv, str(disk.source), str(out)]


def rebase_argv(disk: DiskCopy, out: Path) -> list[str] | None:
    """Then, for a disk with ``via``: the copy put on the base, the clusters of ``via`` that
    differ from it written into the copy (a safe rebase)."""
    if not disk.via:
        return None
    return ["qemu-img", "rebase", "-f", "qcow2", "-b", disk.backing, "-F", "qcow2",
            str(out)]


def domain_disks(conn: Connection, xml: str) -> list[tuple[str, Path]]:
    """(volume name, path) of every disk and cdrom of a domain's XML."""
    out = []
    for disk in ET.fromstring(xml).iter("disk"):
        src = disk.find("source")
        if src is None:
            continue
        if src.get("pool") and src.get("volume"):
            vol = conn.storagePoolLookupByName(src.get("pool")).storageVolLookupByName(
                src.get("volume"))
            out.append((str(src.get("volume")), Path(vol.path())))
        elif src.get("file"):
            out.append((Path(str(src.get("file"))).name, Path(str(src.get("file")))))
    return out


def boot_files(xml: str) -> set[str]:
    """The kernel and initrd a node boots directly (a Debian base's, in the cache pool)."""
    root = ET.fromstring(xml)
    return {root.findtext("os/kernel") or "", root.findtext("os/initrd") or ""} - {""}


def refuse_state(lab: str, infos: list[DomainInfo]) -> None:
    odd = [f"{i.meta.node} is {i.state}" for i in infos if i.state not in SAVEABLE]
    if odd:
        raise SaveError(f"lab {lab} cannot be saved now: {'; '.join(odd)}",
                        hint="a save takes running, paused, suspended or shut-off nodes; "
                             f"wait, or `oslab --lab {lab} stop` the node")


def estimate_bytes(spec: LabSpec, infos: list[DomainInfo], disks: list[DiskCopy]) -> int:
    """An upper bound of the save's size: the memory of the nodes that run, and each disk's
    top layer as allocated now."""
    memory = {n.name: n.memory_mib * MIB for n in spec.nodes}
    ram = sum(memory.get(i.meta.node, 0) for i in infos if i.state is not DomainState.SHUT_OFF)
    return ram + sum(d.source.stat().st_blocks * 512 for d in disks)


def copy_state_dir(state: LabState, out: Path) -> None:
    """The lab's keys, host keys and passwords (not its logs), 0600, and verify's ledger of
    what it left in the cloud: the saved cloud holds those resources, so the lab made from the
    save must know them (without it, its verify met its own keypair: "409 already exists")."""
    for rel in ("id_ed25519", "id_ed25519.pub", "passwords.json", VERIFY_LEDGER):
        if (state.dir / rel).is_file():
            shutil.copyfile(state.dir / rel, out / rel)
    (out / "hostkeys").mkdir(mode=0o711)
    for key in sorted((state.dir / "hostkeys").glob("*")):
        if key.is_file():
            shutil.copyfile(key, out / "hostkeys" / key.name)


def private(directory: Path) -> None:
    for path in directory.rglob("*"):
        set_mode(path, 0o711 if path.is_dir() and not path.is_symlink() else 0o600)


class Saver:
    def __init__(self, conn: Connection, spec: LabSpec, spec_text: str, state: LabState,
                 root: Path, say: Say) -> None:
        self.conn = conn
        self.spec = spec
        self.spec_text = spec_text
        self.state = state
        self.root = root
        self.say = say
        self.lab = spec.name

    def _infos(self) -> list[tuple[DomainInfo, Domain]]:
        infos = LabObjects(self.conn, self.lab).domains()
        if not infos:
            raise SaveError(f"lab {self.lab} has no nodes in libvirt",
                            hint="build it with `oslab up`, or name another lab with --lab")
        digest = self.spec.digest()
        other = [i.meta.node for i in infos if i.meta.spec != digest]
        if other:
            raise SaveError(f"nodes {', '.join(other)} of lab {self.lab} were built from "
                            "another spec than the one given",
                            hint="pass the spec the lab was built from with -f: the save "
                                 "keeps it, to rebuild the lab's networks")
        refuse_state(self.lab, infos)
        return [(i, self.conn.lookupByName(i.name)) for i in infos]

    def save(self, name: str, verification: str = "") -> Saved:
        start = time.monotonic()
        store.check_name(name)
        doms = self._infos()  # a lab that cannot be saved leaves no saves root behind
        root = store.ensure_root(self.root)
        if (root / name).exists():
            raise SaveError(f"save {name!r} exists already",
                            hint=f"choose another name, or `oslab saved --delete {name}` first")
        if rescue(self.conn, self.lab, self.state, root, self.say):
            doms = self._infos()  # the nodes brought back run again
        xmls = {i.meta.node: d.XMLDesc(INACTIVE) for i, d in doms}  # read once per node
        disks = {node: [disk_copy(v, p, qemu_img_chain(p))
                        for v, p in domain_disks(self.conn, xml)]
                 for node, xml in xmls.items()}
        need = estimate_bytes(self.spec, [i for i, _d in doms],
                              [d for ds in disks.values() for d in ds])
        free = shutil.disk_usage(root).free
        if free < need * 1.1:
            raise SaveError(f"{root} has {free / 1e9:.1f} GB free; the save needs up to "
                            f"{need / 1e9:.1f} GB", hint=f"free space there, or set "
                                                         f"{store.ROOT_VARIABLE} elsewhere")
        tmp = store.partial_dir(root, name)
        tmp.mkdir(mode=0o711)
        (tmp / "lab").write_text(self.lab)  # whose memory a killed save holds (see rescue)
        try:
            paused_s = self._write(tmp, doms, disks, xmls)
            self._describe(tmp, name, doms, disks, xmls, verification)
            private(tmp)
            os.rename(tmp, root / name)
        except BaseException:
            store.remove_tree(tmp)
            raise
        saved = store.read_save(root, name)
        return Saved(saved, time.monotonic() - start, paused_s, saved.size())

    # -- the moment ---------------------------------------------------------------------------

    def _write(self, tmp: Path, doms: list[tuple[DomainInfo, Domain]],
               disks: dict[str, list[DiskCopy]], xmls: dict[str, str]) -> float:
        (tmp / "nodes").mkdir(mode=0o711)
        for node, xml in xmls.items():
            (tmp / "nodes" / f"{node}.xml").write_text(xml)
        live = [(i, d) for i, d in doms if i.state is not DomainState.SHUT_OFF]
        was = {i.meta.node: i.state for i, _d in doms}
        suspended = [(i, d) for i, d in live if i.state is DomainState.SAVED]
        if suspended:
            self.say("restoring the suspended nodes' memory, paused")
            parallel_each(lambda x: x[1].createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED),
                          suspended, "restoring a suspended node")
        paused_at = time.monotonic()
        parallel_each(lambda x: x[1].suspend() if x[1].state()[0] != libvirt.VIR_DOMAIN_PAUSED
                      else None, live, "pausing a node")
        if live:
            self.say(f"every running node paused: {', '.join(i.meta.node for i, _d in live)}")

        def save_memory(item: tuple[DomainInfo, Domain]) -> None:
            info, dom = item
            t = time.monotonic()
            dom.saveFlags(str(tmp / "nodes" / f"{info.meta.node}.state"), None,
                          libvirt.VIR_DOMAIN_SAVE_PAUSED)
            self.say(f"{info.meta.node}: memory saved in {time.monotonic() - t:.1f}s")

        def restore(item: tuple[DomainInfo, Domain]) -> None:
            state_file = tmp / "nodes" / f"{item[0].meta.node}.state"
            if state_file.exists() and not item[1].isActive():
                self.conn.restoreFlags(str(state_file), None, libvirt.VIR_DOMAIN_SAVE_PAUSED)

        try:
            parallel_each(save_memory, live, "saving a node's memory")
        finally:
            # whatever happened, the nodes whose memory was saved come back (paused)
            parallel_each(restore, live, "restoring a node after its save")
        try:
            self._copy_disks(tmp, disks)
        finally:
            self._after(live, was)
        return time.monotonic() - paused_at

    def _copy_disks(self, tmp: Path, disks: dict[str, list[DiskCopy]]) -> None:
        def copy(node: str) -> None:
            out = tmp / "disks" / node
            out.mkdir(parents=True, mode=0o711)
            for disk in disks[node]:
                t = time.monotonic()
                argv = copy_argv(disk, out / disk.file)
                if argv is None:
                    shutil.copyfile(disk.source, out / disk.file)
                else:
                    common.run(argv, lambda _line: None, f"copying {node}'s disk {disk.volume}",
                               hint="is there room in the saves root?")
                rebase = rebase_argv(disk, out / disk.file)
                if rebase is not None:
                    common.run(rebase, lambda _line: None, f"putting {node}'s disk "
                               f"{disk.volume} on its base", hint="is there room in the saves "
                                                                  "root?")
                size = (out / disk.file).stat().st_size
                how = f"an overlay on {Path(disk.backing).name}" if disk.backing else "whole"
                if disk.via:
                    how += f", with what {disk.via} held"
                self.say(f"{node}: disk {disk.volume} copied ({how}, {size / 1e6:.0f} MB) in "
                         f"{time.monotonic() - t:.1f}s")

        parallel_each(copy, list(disks), "copying a node's disks")

    def _after(self, live: list[tuple[DomainInfo, Domain]],
               was: dict[str, DomainState]) -> None:
        """The lab as it was: the suspended nodes suspended again, the others running together
        with their clocks put right (a paused node too: oslab pauses nodes only for a moment,
        so one found paused is left over from a save or snapshot that was killed)."""
        from oslab.snapshots.checkpoint import node_targets, settle

        again = [(i, d) for i, d in live if was[i.meta.node] is DomainState.SAVED]
        parallel_each(lambda x: x[1].managedSave(libvirt.VIR_DOMAIN_SAVE_RUNNING), again,
                      "suspending a node again")
        run = [(i, d) for i, d in live if was[i.meta.node] is not DomainState.SAVED]
        parallel_each(lambda x: x[1].resume(), run, "resuming a node")
        if run:
            targets = node_targets(self.conn, self.lab, self.state)
            for s in settle({n: t for n, t in targets.items()
                             if n in {i.meta.node for i, _d in run}}):
                self.say(f"{s.node}: runs again, its clock was {s.skew:.0f}s off, now set")

    # -- the description ----------------------------------------------------------------------

    def _describe(self, tmp: Path, name: str, doms: list[tuple[DomainInfo, Domain]],
                  disks: dict[str, list[DiskCopy]], xmls: dict[str, str],
                  verification: str) -> None:
        (tmp / "spec.toml").write_text(self.spec_text)
        (tmp / "state").mkdir(mode=0o711)
        copy_state_dir(self.state, tmp / "state")
        bases = sorted({d.backing for ds in disks.values() for d in ds if d.backing}
                       | {p for xml in xmls.values() for p in boot_files(xml)})
        nodes = []
        for info, _dom in doms:
            node = info.meta.node
            memory = f"nodes/{node}.state"
            nodes.append({
                "node": node, "domain": info.name, "role": info.meta.role,
                "address": info.meta.address,
                "state": "shut off" if info.state is DomainState.SHUT_OFF else "running",
                "memory": memory if (tmp / memory).exists() else "",
                "xml": f"nodes/{node}.xml",
                "volumes": [{"name": d.volume, "file": f"disks/{node}/{d.file}",
                             "format": d.format, "backing": d.backing,
                             "capacity": d.capacity} for d in disks[node]],
                "memory_mib": self.spec.node(node).memory_mib,
                "vcpus": self.spec.node(node).vcpus})
        from importlib.metadata import version
        store.write_manifest(tmp, {
            "format": store.FORMAT, "name": name, "lab": self.lab,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "oslab": version("oslab"), "distro": self.spec.distro,
            "release": self.spec.release, "scope": str(self.spec.scope.value),
            "secrets": store.SECRETS_NOTE, "spec": "spec.toml", "nodes": nodes,
            "bases": [{"path": b, "file": "", "sha256": ""} for b in bases],
            "verification": verification, "files": store.hash_files(tmp)})


def rescue(conn: Connection, lab: str, state: LabState, root: Path, say: Say) -> list[str]:
    """Bring back the nodes of ``lab`` whose memory a killed save holds, then remove the saves
    that did not finish. A save killed between a node's memory save and its restore leaves the
    node shut off with its memory in the save's ``.partial-`` directory only: it is restored
    from there (every such node at once, clocks set), never booted. The nodes brought back."""
    from oslab.snapshots.checkpoint import node_targets, settle

    def owner(partial: Path) -> str:
        return (partial / "lab").read_text().strip() if (partial / "lab").is_file() else ""

    back: list[tuple[str, Domain, Path]] = []
    for stale in store.stale_partials(root):
        if owner(stale) != lab:
            continue
        for memory in sorted(stale.glob("nodes/*.state")):
            name = ET.fromstring(conn.saveImageGetXMLDesc(str(memory), 0)).findtext("name")
            info = next((i for i in LabObjects(conn, lab).domains() if i.name == name), None)
            if info is not None and info.state is DomainState.SHUT_OFF:
                back.append((info.meta.node, conn.lookupByName(name), memory))
    if back:
        say(f"restoring {', '.join(n for n, _d, _m in back)} from the memory a save that was "
            "interrupted holds")
        parallel_each(lambda b: conn.restoreFlags(str(b[2]), None,
                                                  libvirt.VIR_DOMAIN_SAVE_PAUSED),
                      back, "restoring a node's memory")
        parallel_each(lambda b: b[1].resume(), back, "resuming a node")
        targets = node_targets(conn, lab, state)
        settle({n: targets[n] for n, _d, _m in back if n in targets})
    for stale in store.stale_partials(root):
        if owner(stale) not in ("", lab) and any(stale.glob("nodes/*.state")):
            continue  # another lab's memory: its own start or save brings it back
        say(f"removing {stale.name}, left by a save that did not finish")
        store.remove_tree(stale)
    return [n for n, _d, _m in back]
