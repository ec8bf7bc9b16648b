"""Neutron: ML2 with Open vSwitch and self-service networks (install guide, option 2).

Linux bridge is removed in Epoxy. Security groups use Open vSwitch's native firewall driver
(``firewall_driver = openvswitch``, the guide's first choice), which needs no br_netfilter
module and no bridge sysctls; those are only for ``iptables_hybrid``.
"""

from __future__ import annotations

from oslab.install.markers import once
from oslab.install.model import Database, FileSpec, Guarded, StepDef, Where
from oslab.install.services import _debian
from oslab.install.services._base import (
    ADMIN_OPENRC,
    Site,
    as_user,
    config,
    q,
    registration,
    symlink,
    wait_until,
)
from oslab.spec import Node

BRIDGE = "br-provider"
ML2_CONF = "/etc/neutron/plugins/ml2/ml2_conf.ini"
OVS_AGENT_INI = "/etc/neutron/plugins/ml2/openvswitch_agent.ini"
CONTROLLER_STEP = "neutron.controller"
AGENTS = ("neutron-openvswitch-agent", "neutron-dhcp-agent", "neutron-metadata-agent",
          "neutron-l3-agent")
COMPUTE_STEP = "neutron.compute"


def _neutron_file(path: str, template: str, values: dict[str, object], *,
                  secret: bool = False) -> FileSpec:
    return config(path, template, values, owner="root", group="neutron", mode=0o640,
                  secret=secret)


def _find_nic(mac: str) -> str:
    """Set ``nic`` to the physical NIC with ``mac`` (the bridge takes the same MAC once the NIC
    is its port, but it has no ``device``)."""
    return (f'nic=""; for d in /sys/class/net/*; do if [ -e "$d/device" ] && '
            f'[ "$(cat "$d/address")" = {q(mac)} ]; then nic=${{d##*/}}; fi; done')


def openvswitch(site: Site) -> StepDef:
    """Open vSwitch running: the bridge step's ovs-vsctl needs its database server, and the
    engine starts a step's services only after the step's commands."""
    return StepDef(
        name="neutron.openvswitch",
        where=Where.ALL,
        title="Open vSwitch and the Neutron Open vSwitch agent's package",
        packages=site.layer.pkgs("openvswitch"),
        services=site.layer.unit("openvswitch"),
    )


def provider_bridge(site: Site, node: Node) -> StepDef:
    """br-provider on the NIC of the provider network, found by its MAC (Open vSwitch runs:
    the step before started it)."""
    mac = site.spec.mac(node, 1)
    find = _find_nic(mac)
    bridge = Guarded(
        description=f"{BRIDGE} on the provider NIC ({mac})",
        # the NIC must also be up: Open vSwitch keeps the port across a reboot but not the
        # link (the e2e controller came back with it down, and no floating IP answered)
        check=f'{find}; [ -n "$nic" ] && ovs-vsctl br-exists {BRIDGE} && '
              f'[ "$(ovs-vsctl port-to-br "$nic" 2>/dev/null)" = {BRIDGE} ] && '
              f'ip -o link show dev "$nic" | grep -q "[<,]UP[,>]"',
        run=f'{find}; if [ -z "$nic" ]; then echo "oslab: no NIC with MAC {mac} on '
            f'{node.name}" >&2; false; else ovs-vsctl --may-exist add-br {BRIDGE} && '
            f'ovs-vsctl --may-exist add-port {BRIDGE} "$nic" && ip link set dev "$nic" up && '
            f"ip link set dev {BRIDGE} up; fi",
    )
    return StepDef(
        name="neutron.provider-bridge",
        where=Where.ALL,
        title=f"Open vSwitch bridge {BRIDGE} on the provider network's NIC",
        commands=(bridge,),
    )


def bridge_steps(site: Site, node: Node) -> list[StepDef]:
    return [openvswitch(site), provider_bridge(site, node)]


def _agent_ini(site: Site, node: Node) -> FileSpec:
    return _neutron_file(OVS_AGENT_INI, "neutron/openvswitch_agent.ini.j2",
                         site.values(node=node.name, bridge=BRIDGE, local_ip=str(node.address)))


def _neutron_conf(site: Site, node: Node, *, controller: bool) -> FileSpec:
    return _neutron_file(
        "/etc/neutron/neutron.conf", "neutron/neutron.conf.j2",
        site.values(node=node.name, controller=controller,
                    database=site.db_url("neutron", "neutron", "db_neutron"),
                    neutron_password=site.password("svc_neutron"),
                    nova_password=site.password("svc_nova")),
        secret=True)


def controller_steps(site: Site) -> list[StepDef]:
    node = site.controller
    values = site.values()
    register = registration("neutron", user="neutron", password_key="svc_neutron",
                            service="neutron", kind="network",
                            description="OpenStack Networking", url=f"http://{site.host}:9696")
    upgrade = as_user("neutron", f"neutron-db-manage --config-file /etc/neutron/neutron.conf "
                                 f"--config-file {ML2_CONF} upgrade head")
    layer = site.layer
    units = (*layer.unit("neutron-server"), *AGENTS)
    extra: list[FileSpec] = []
    reload: list[Guarded] = []
    if layer.debian:
        extra = [_debian.uwsgi_ini(_debian.APPS["neutron-api"], values),
                 *_debian.start_timeouts(units, values)]
        reload = [_debian.reload_for(units)]
    install = StepDef(
        name=CONTROLLER_STEP,
        where=Where.CONTROLLER,
        title="Neutron server, Open vSwitch, DHCP, metadata and L3 agents",
        packages=layer.pkgs("neutron-controller"),
        files=(
            _neutron_conf(site, node, controller=True),
            _neutron_file(ML2_CONF, "neutron/ml2_conf.ini.j2", values),
            _agent_ini(site, node),
            _neutron_file("/etc/neutron/l3_agent.ini", "neutron/l3_agent.ini.j2", values),
            _neutron_file("/etc/neutron/dhcp_agent.ini", "neutron/dhcp_agent.ini.j2", values),
            _neutron_file("/etc/neutron/metadata_agent.ini", "neutron/metadata_agent.ini.j2",
                          site.values(metadata_secret=site.password("metadata_secret")),
                          secret=True),
            *extra,
        ),
        databases=(Database("neutron", "neutron", "db_neutron"),),
        commands=(
            *reload,
            symlink("/etc/neutron/plugin.ini", ML2_CONF, "/etc/neutron/plugin.ini -> ML2"),
            once("neutron-db-upgrade", "populate the Networking database", upgrade,
                 timeout=1200),
        ),
        services=units,
    )
    return [register, *bridge_steps(site, node), install]


def compute(site: Site, node: Node) -> StepDef:
    """The agent talks to neutron-server over RabbitMQ: it starts after the server is up."""
    units = ("neutron-openvswitch-agent",)
    debian = site.layer.debian
    return StepDef(
        name=COMPUTE_STEP,
        where=Where.COMPUTE,
        title="Neutron Open vSwitch agent",
        files=(_neutron_conf(site, node, controller=False), _agent_ini(site, node),
               *(_debian.start_timeouts(units, site.values()) if debian else [])),
        commands=(_debian.reload_for(units),) if debian else (),
        services=units,
        after=(CONTROLLER_STEP,),
    )


def agents(site: Site) -> StepDef:
    """Wait until every agent has reported to neutron-server (the end of the network phase)."""
    expected = [(site.host, f"neutron-{kind}-agent")
                for kind in ("openvswitch", "dhcp", "l3", "metadata")]
    expected += [(n.name, "neutron-openvswitch-agent") for n in site.computes]
    # one client process for every agent (each `openstack` call costs 15-25 s under TCG): the
    # distinct lines that match a wanted pair, either way round (whatever order the client
    # prints its columns in), must be as many as the pairs
    patterns = " ".join(f"-e {q(f'{a} {b}')}" for host, binary in expected
                        for a, b in ((host, binary), (binary, host)))
    check = ("openstack network agent list -f value -c Host -c Binary | sort -u | "
             f"grep -c -x -F {patterns} | grep -q -x {len(expected)}")
    return StepDef(
        name="neutron.agents",
        where=Where.CONTROLLER,
        title="Neutron agents reporting: " + ", ".join(sorted({h for h, _ in expected})),
        commands=(Guarded(description="every Neutron agent has reported", check=check,
                          run=wait_until(check, 600), env_file=ADMIN_OPENRC, timeout=700),),
        after=(COMPUTE_STEP,) if site.computes else (),
        checkpoint="network",
    )
