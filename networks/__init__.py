"""libvirt network XML for the lab: the management NAT network and the provider bridge."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from oslab.spec import LabSpec, Network
from oslab.virt.metadata import LabMeta

_env = Environment(
    loader=PackageLoader("oslab.networks", ""),
    undefined=StrictUndefined,
    autoescape=True,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class DhcpHost:
    mac: str
    name: str
    ip: ipaddress.IPv4Address


@dataclass(frozen=True)
class NetworkDef:
    """One libvirt network. The management network carries a DHCP reservation per node."""

    name: str
    bridge: str
    mode: str
    cidr: ipaddress.IPv4Network
    dhcp_hosts: tuple[DhcpHost, ...]
    meta: LabMeta

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.cidr.network_address + 1

    @property
    def netmask(self) -> ipaddress.IPv4Address:
        return self.cidr.netmask

    @property
    def dhcp_start(self) -> ipaddress.IPv4Address:
        """Dynamic leases come from the upper half, away from the nodes' fixed addresses."""
        return self.cidr.network_address + self.cidr.num_addresses // 2

    @property
    def dhcp_end(self) -> ipaddress.IPv4Address:
        return self.cidr.broadcast_address - 1

    def xml(self) -> str:
        return _env.get_template("network.xml.j2").render(
            net=self, metadata=Markup(self.meta.xml())
        )


SUFFIX = {"management": "mgmt", "provider": "prov"}


def network_name(lab: str, kind: str) -> str:
    return f"{lab}-{SUFFIX[kind]}"


def network_def(spec: LabSpec, net: Network) -> NetworkDef:
    hosts: tuple[DhcpHost, ...] = ()
    if net.kind == "management":
        hosts = tuple(DhcpHost(spec.mac(n, 0), n.name, n.address) for n in spec.nodes)
    name = network_name(spec.name, net.kind)
    return NetworkDef(
        name=name,
        bridge=name,
        mode=net.mode.value,
        cidr=net.cidr,
        dhcp_hosts=hosts,
        meta=LabMeta(lab=spec.name, kind="network", role=net.kind, spec=spec.digest()),
    )
