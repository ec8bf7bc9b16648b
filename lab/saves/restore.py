"""`oslab up --from-saved NAME`: a lab made from a save, without a boot.

The lab's networks and pool come from the saved spec, as `up` makes them; each node's disks are
copy-on-write overlays on the save's (seconds, whatever their size), so the save must outlive the
labs made from it (`oslab saved --delete` refuses while one uses it). Each node is defined from
its saved XML and its memory restored paused; the command then resumes every node at once as
`oslab resume` does (clocks put right, the OpenStack services waited for). ``cold`` leaves the
memory out, for a host whose CPU cannot take it: the command boots the saved disks.

libvirt restores a memory state only into a domain of the name and uuid it was saved from
("Target domain name ... does not match source"), so a lab made with its memory keeps the saved
lab's name. With ``cold``, the lab may take another name (``lab``): its networks, pool, domains
and state directory are the new name's, and its nodes keep the saved lab's MAC addresses
(``macs_from`` in its spec), which their disks' network configuration names. The saved lab
must be gone: the nodes keep its addresses too.
"""

from __future__ import annotations

import re
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import libvirt

from oslab import spec_file
from oslab.access.inventory import gather as lab_status
from oslab.access.state import LabState
from oslab.files import set_mode, write_atomic
from oslab.networks import network_def, network_name
from oslab.preflight.findings import Severity
from oslab.preflight.network_clashes import check_networks
from oslab.preflight.resources import mem_available_mib
from oslab.saves import store
from oslab.saves.save import parallel_each
from oslab.saves.store import SaveError
from oslab.spec import LabSpec
from oslab.virt.definitions import PoolDef, VolumeDef, domain_name, pool_dir
from oslab.virt.handles import Connection
from oslab.virt.lab_objects import LabObjects, libvirt_calls
from oslab.virt.metadata import NS, PREFIX

ET.register_namespace(PREFIX, NS)  # oslab's metadata keeps its prefix when written back

Say = Callable[[str], None]
MEMORY_MARGIN_MIB = 512  # the host's own needs beside the restored nodes


@dataclass(frozen=True)
class Restored:
    save: store.Save
    spec: LabSpec
    spec_path: Path  # the saved spec, copied into the lab's state directory
    seconds: float  # the libvirt part: networks, pool, overlays, domains, memory


def saved_spec(save: store.Save) -> LabSpec:
    path = save.path / "spec.toml"
    spec = spec_file.parse(path.read_text(), source=str(path))
    if spec.name != save.lab:
        raise SaveError(f"save {save.name}: its spec names lab {spec.name}, its manifest "
                        f"{save.lab}", hint="the save is damaged; make it again")
    return spec


def renamed_spec_text(text: str, old: str, new: str) -> str:
    """The saved spec's text as lab ``new``: ``[lab] name`` changed, and ``macs_from`` naming
    the lab the nodes' MAC addresses come from (kept when the save's lab already had one)."""
    lines = text.splitlines()
    table = ""
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            table = stripped
        elif table == "[lab]" and re.match(r"name\s*=", stripped):
            lines[i] = f'name = "{new}"'
            if not any(re.match(r"\s*macs_from\s*=", other) for other in lines):
                lines.insert(i + 1, f'macs_from = "{old}"')
            return "\n".join(lines) + "\n"
    raise SaveError("the save's spec has no `name = ...` line in its [lab] table to rename",
                    hint=f"leave --lab out: the lab keeps its saved name {old}")


def renamed_xml(xml: str, old: LabSpec, new: LabSpec, state: LabState) -> str:
    """A saved domain's XML as a node of lab ``new``: its name, title, oslab metadata, pool,
    networks and console log the new lab's, no uuid (libvirt makes one), the same MACs."""
    root = ET.fromstring(xml)
    meta = root.find(f"metadata/{{{NS}}}lab")
    node_el = meta.find(f"{{{NS}}}node") if meta is not None else None
    if meta is None or node_el is None or not node_el.text:
        raise SaveError("a saved domain has no oslab metadata naming its node",
                        hint="the save is damaged; make it again")
    node = new.node(node_el.text)
    _set(root, "name", domain_name(new.name, node.name))
    uuid = root.find("uuid")
    if uuid is not None:
        root.remove(uuid)
    title = root.find("title")
    if title is not None and title.text:
        title.text = title.text.replace(f"oslab {old.name}:", f"oslab {new.name}:", 1)
    _set(meta, f"{{{NS}}}name", new.name)
    _set(meta, f"{{{NS}}}spec", new.digest())
    nets = {network_name(old.name, n.kind): network_name(new.name, n.kind) for n in old.networks}
    for disk in root.iter("disk"):
        for source in disk.findall("source"):
            if source.get("pool") == old.name:
                source.set("pool", new.name)
    for nic, iface in enumerate(root.iter("interface")):
        net, mac = iface.find("source"), iface.find("mac")
        if net is not None and net.get("network") in nets:
            net.set("network", nets[net.get("network", "")])
        if mac is None or mac.get("address") != new.mac(node, nic):
            raise SaveError(f"{node.name}'s NIC {nic} in the save does not have the MAC address "
                            f"lab {new.name} gives it", hint="the save is damaged; make it again")
    for log in root.iter("log"):
        log.set("file", str(state.console_log_path(node.name)))
    return ET.tostring(root, encoding="unicode")


def _set(parent: ET.Element, tag: str, text: str) -> None:
    el = parent.find(tag)
    if el is None:
        raise SaveError(f"a saved domain's XML has no <{tag}>", hint="the save is damaged; "
                                                                     "make it again")
    el.text = text


def refusals(save: store.Save, spec: LabSpec, conn: Connection, cold: bool,
             exists: bool, mem_free_mib: int | None, saved_lab_exists: bool = False
             ) -> list[SaveError]:
    """Why the save cannot become lab ``spec.name`` here; empty when it can."""
    lab = spec.name
    out = []
    if lab != save.lab and not cold and any(n.memory for n in save.nodes):
        out.append(SaveError(f"a saved memory comes back only as lab {save.lab}: libvirt "
                             "restores it into a domain of the name it was saved from",
                             hint=f"leave --lab out, or add --cold to boot the saved disks as "
                                  f"lab {lab}"))
    if exists:
        out.append(SaveError(f"lab {lab} exists", hint=f"`oslab --lab {lab} destroy` it first"
                                                       + (", or choose another --lab with "
                                                          "--cold" if cold else "")))
    if saved_lab_exists:
        out.append(SaveError(f"lab {save.lab}, the lab the save was made from, exists; the "
                             f"nodes of lab {lab} would have its addresses",
                             hint=f"`oslab --lab {save.lab} destroy` it first"))
    for f in check_networks(spec, conn, Path("/")):
        if f.severity is Severity.BLOCK:
            out.append(SaveError(f"the saved lab's networks clash: {f.message}",
                                 hint="destroy the lab that holds that range, or remove the "
                                      "route; a save's addresses are its nodes' own"))
    need = sum(n.memory_mib for n in spec.nodes) + MEMORY_MARGIN_MIB
    if mem_free_mib is not None and mem_free_mib < need:
        out.append(SaveError(f"the host has {mem_free_mib} MiB of memory available; the saved "
                             f"lab needs {need} MiB", hint="stop another lab (`oslab stop`) "
                                                           "or free memory, then rerun"))
    missing = [b for b in save.bases if not Path(b).is_file()]
    if missing:
        out.append(SaveError(f"the base images the save's disks are overlays on are gone: "
                             f"{', '.join(missing)}",
                             hint="import the save's export (`oslab save NAME --export FILE`"
                                  " on the host that has it), which carries them"))
    if not cold:
        gone = [n.node for n in save.nodes if n.memory and not (save.path / n.memory).is_file()]
        if gone:
            out.append(SaveError(f"the memory of {', '.join(gone)} is missing from the save",
                                 hint="--cold boots the saved disks instead"))
    return out


def copy_state(save: store.Save, state: LabState) -> None:
    """The saved lab's keys, host keys and passwords become the new lab's (0600)."""
    state.ensure()
    src = save.path / "state"
    for path in sorted(src.rglob("*")):
        if path.is_file():
            dest = state.dir / path.relative_to(src)
            dest.parent.mkdir(exist_ok=True)
            shutil.copyfile(path, dest)
            set_mode(dest, 0o644 if dest.name.endswith(".pub") else 0o600)


def moved(xml: str, save: store.Save) -> str:
    """``xml`` naming the bases where an import put them (inside the save)."""
    for base in save.manifest.get("bases", []):
        if base.get("origin") and base["origin"] != base["path"]:
            xml = xml.replace(f">{base['origin']}<", f">{base['path']}<")
    return xml


def restore_xml(saved: str, save: store.Save) -> str:
    """The domain XML a memory state is restored with: the bases where an import put them,
    and no backing chain. libvirt would trust the chain the XML records (the node's disk on its
    base, or on nothing), while the restored disk is an overlay on the save's copy of it:
    without the record, libvirt reads the chain from the images."""
    root = ET.fromstring(moved(saved, save))
    for disk in root.iter("disk"):
        for chain in disk.findall("backingStore"):
            disk.remove(chain)
    return ET.tostring(root, encoding="unicode")


class Restorer:
    def __init__(self, conn: Connection, save: store.Save, say: Say, lab: str = "") -> None:
        self.conn = conn
        self.save = save
        self.say = say
        self.saved = saved_spec(save)
        self.lab = lab or save.lab
        self.spec_text = (save.path / "spec.toml").read_text()
        self.spec = self.saved
        if self.lab != save.lab:
            self.spec_text = renamed_spec_text(self.spec_text, save.lab, self.lab)
            self.spec = spec_file.parse(self.spec_text, source=str(save.path / "spec.toml"))
            if self.spec.name != self.lab:
                raise SaveError(f"the save's spec could not be renamed to lab {self.lab}",
                                hint=f"leave --lab out: the lab keeps its saved name "
                                     f"{save.lab}")
        self.state = LabState(self.lab)

    def restore(self, cold: bool = False) -> Restored:
        """The lab's objects, its nodes defined and (unless ``cold``) restored paused."""
        start = time.monotonic()
        st = lab_status(self.conn, self.lab, self.state, probe_ssh=False)
        exists = not st.empty or bool(st.state_dir)
        saved_lab_exists = False
        if self.lab != self.save.lab:
            old = lab_status(self.conn, self.save.lab, LabState(self.save.lab), probe_ssh=False)
            saved_lab_exists = not old.empty
        problems = refusals(self.save, self.spec, self.conn, cold, exists, mem_available_mib(),
                            saved_lab_exists)
        if problems:
            raise SaveError("; ".join(p.message for p in problems), hint=problems[0].hint)
        copy_state(self.save, self.state)
        spec_path = self.state.dir / "spec.toml"
        write_atomic(spec_path, self.spec_text)
        with libvirt_calls(f"making lab {self.lab} from save {self.save.name}"):
            self._objects()
            if not cold:
                self._memory()
        return Restored(self.save, self.spec, spec_path, time.monotonic() - start)

    def _objects(self) -> None:
        objs = LabObjects(self.conn, self.lab)
        for net in self.spec.networks:
            objs.ensure_network(network_def(self.spec, net))
        objs.ensure_pool(PoolDef(self.lab, pool_dir(self.spec)))
        for node in self.save.nodes:
            for vol in node.volumes:
                source = self.save.path / vol["file"]
                if vol["format"] == "qcow2":
                    objs.ensure_volume(VolumeDef(vol["name"], int(vol["capacity"]),
                                                 backing=str(source)))
                else:
                    objs.upload(vol["name"], source)
            xml = moved((self.save.path / node.xml).read_text(), self.save)
            if self.lab != self.save.lab:
                xml = renamed_xml(xml, self.saved, self.spec, self.state)
            self.conn.defineXML(xml)
        self.say(f"lab {self.lab}: networks, pool, overlays on the save's disks and "
                 f"{len(self.save.nodes)} nodes defined")

    def _memory(self) -> None:
        def restore(node: store.SavedNode) -> None:
            t = time.monotonic()
            path = str(self.save.path / node.memory)
            saved = self.conn.saveImageGetXMLDesc(path, libvirt.VIR_DOMAIN_SAVE_IMAGE_XML_SECURE)
            try:
                self.conn.restoreFlags(path, restore_xml(saved, self.save),
                                       libvirt.VIR_DOMAIN_SAVE_PAUSED)
            except libvirt.libvirtError as exc:
                raise SaveError(f"libvirt cannot restore the saved memory: "
                                f"{exc.get_error_message()}",
                                hint=f"a CPU or machine type this host lacks? `oslab --lab "
                                     f"{self.lab} destroy`, then `oslab up --from-saved "
                                     f"{self.save.name} --cold` boots the saved disks") from exc
            self.say(f"{node.node}: memory restored (paused) in {time.monotonic() - t:.1f}s")

        parallel_each(restore, [n for n in self.save.nodes if n.memory], "restoring memory")
