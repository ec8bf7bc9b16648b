"""Network clashes: the lab's ranges against the host's routes and other libvirt networks."""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt

from oslab.preflight.findings import Finding, Severity, read_text
from oslab.spec import LabSpec, Network
from oslab.virt.handles import Connection
from oslab.virt.metadata import NS as LAB_XMLNS

RTF_UP = 0x0001


@dataclass(frozen=True)
class HostRoute:
    iface: str
    network: ipaddress.IPv4Network


@dataclass(frozen=True)
class LibvirtNet:
    name: str
    active: bool
    bridge: str
    owner: str | None  # the oslab lab named in its metadata
    ranges: tuple[ipaddress.IPv4Network, ...]


def _le_hex_ip(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(text), "little"))


def host_routes(root: Path = Path("/")) -> list[HostRoute]:
    """The up IPv4 routes in ``/proc/net/route``, without the default route."""
    routes: list[HostRoute] = []
    for line in (read_text(root, "proc/net/route") or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest, flags, mask = _le_hex_ip(fields[1]), int(fields[3], 16), _le_hex_ip(fields[7])
            net = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        except ValueError:
            continue
        if flags & RTF_UP and net.prefixlen > 0:
            routes.append(HostRoute(fields[0], net))
    return routes


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def lab_owner(root_el: ET.Element) -> str | None:
    """The lab name in ``<metadata><oslab:lab><name>`` of a libvirt object's XML."""
    meta = root_el.find("metadata")
    if meta is None:
        return None
    for lab in meta.findall(f"{{{LAB_XMLNS}}}lab"):
        for child in lab:
            if _local(child.tag) == "name" and child.text:
                return child.text.strip()
    return None


def parse_network_xml(xml: str, active: bool = True) -> LibvirtNet:
    el = ET.fromstring(xml)
    ranges: list[ipaddress.IPv4Network] = []
    for ip in el.findall("ip"):
        if ip.get("family", "ipv4") != "ipv4" or not ip.get("address"):
            continue
        size = ip.get("prefix") or ip.get("netmask") or "32"
        try:
            ranges.append(ipaddress.IPv4Network(f"{ip.get('address')}/{size}", strict=False))
        except ValueError:
            continue
    bridge = el.find("bridge")
    return LibvirtNet(name=el.findtext("name", ""), active=active,
                      bridge=bridge.get("name", "") if bridge is not None else "",
                      owner=lab_owner(el), ranges=tuple(ranges))


def libvirt_networks(conn: Connection) -> list[LibvirtNet]:
    nets: list[LibvirtNet] = []
    for net in conn.listAllNetworks():
        try:
            nets.append(parse_network_xml(net.XMLDesc(0), bool(net.isActive())))
        except (libvirt.libvirtError, ET.ParseError):
            continue  # vanished while we looked, or unreadable: nothing to clash with
    return nets


def _candidates(prefixlen: int) -> Iterator[ipaddress.IPv4Network]:
    """Private ranges of the given size, ``10.x.0.0`` first."""
    seen: set[ipaddress.IPv4Network] = set()
    bases = [f"10.{x}.0.0" for x in range(256)] + [f"172.{x}.0.0" for x in range(16, 32)] \
        + [f"192.168.{x}.0" for x in range(256)]
    for base in bases:
        net = ipaddress.IPv4Network(f"{base}/{prefixlen}", strict=False)
        if net not in seen and net.is_private:
            seen.add(net)
            yield net


def free_range(prefixlen: int, taken: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network \
        | None:
    used = list(taken)
    return next((c for c in _candidates(prefixlen) if not any(c.overlaps(u) for u in used)),
                None)


def check_networks(spec: LabSpec, conn: Connection | None, root: Path) -> list[Finding]:
    nets = libvirt_networks(conn) if conn is not None else []
    foreign = [n for n in nets if n.owner != spec.name]
    bridges = {n.bridge for n in nets if n.bridge}
    # Routes on libvirt bridges are the networks' own: the lab's are not clashes, and the
    # others are reported once, by network.
    routes = [r for r in host_routes(root) if r.iface not in bridges]
    taken = [r.network for r in routes] + [rng for n in foreign for rng in n.ranges] \
        + [n.cidr for n in spec.networks]
    findings: list[Finding] = []
    for lab_net in spec.networks:
        clashes = _clashes(lab_net, routes, foreign)
        if not clashes:
            findings.append(Finding(f"network-{lab_net.kind}", Severity.OK,
                                    f"{lab_net.kind} network {lab_net.cidr} is free"))
            continue
        move = _move_hint(lab_net, free_range(lab_net.cidr.prefixlen, taken))
        findings.extend(Finding(f"network-{lab_net.kind}", sev, msg, f"{move}; {other}")
                        for sev, msg, other in clashes)
    return findings


def _clashes(lab_net: Network, routes: list[HostRoute],
             foreign: list[LibvirtNet]) -> list[tuple[Severity, str, str]]:
    """(severity, what clashes, how to remove the other side) for each clash."""
    what = f"the lab's {lab_net.kind} network {lab_net.cidr}"
    out: list[tuple[Severity, str, str]] = []
    for route in routes:
        if route.network.overlaps(lab_net.cidr):
            out.append((Severity.BLOCK,
                        f"{what} clashes with the host route {route.network} dev {route.iface}",
                        f"or, if that route is not needed: ip route del {route.network} dev "
                        f"{route.iface}"))
    for net in foreign:
        for rng in net.ranges:
            if not rng.overlaps(lab_net.cidr):
                continue
            if net.active:
                out.append((Severity.BLOCK,
                            f"{what} clashes with the active libvirt network {net.name!r} "
                            f"({rng})",
                            f"or, if that network is not needed: virsh net-destroy {net.name}; "
                            f"virsh net-undefine {net.name}"))
            else:
                out.append((Severity.WARN,
                            f"{what} clashes with the inactive libvirt network {net.name!r} "
                            f"({rng}): the two cannot run at once",
                            f"or, if that network is not needed: virsh net-undefine {net.name}"))
    return out


def _move_hint(lab_net: Network, free: ipaddress.IPv4Network | None) -> str:
    key = f"networks.{lab_net.kind}.cidr"
    if free is None:
        hint = f"choose an unused private range for {key} in the lab TOML"
    else:
        hint = f"choose another range in the lab TOML, e.g. {key} = \"{free}\" (free here)"
    if lab_net.kind == "management":
        hint += ", and move the [[nodes]] addresses into it"
    return hint
