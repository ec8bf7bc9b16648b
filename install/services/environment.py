"""The install guide's environment, on every node: hosts, time, the RDO repositories."""

from __future__ import annotations

from oslab.install.model import Guarded, StepDef, Where
from oslab.install.services._base import Site, config
from oslab.kickstart.render import NTP_POOL
from oslab.spec import Node, Role


def hosts(site: Site) -> StepDef:
    """/etc/hosts names every node by its management address (the kickstart wrote the same)."""
    entries = [(str(n.address), n.name) for n in site.spec.nodes]
    return StepDef(
        name="env.hosts",
        where=Where.ALL,
        title="/etc/hosts: every node of the lab by its management address",
        files=(config("/etc/hosts", "environment/hosts.j2", site.values(hosts=entries)),),
    )


def chrony(site: Site, node: Node) -> StepDef:
    """The controller serves time to the lab; every other node syncs from the controller."""
    server = node.role is Role.CONTROLLER
    conf = config("/etc/chrony.conf", "environment/chrony.conf.j2",
                  site.values(node=node.name, server=server, pool=NTP_POOL,
                              allow=str(site.spec.management.cidr), upstream=site.host))
    if server:
        return StepDef(
            name="env.chrony-server",
            where=Where.CONTROLLER,
            title=f"chrony: sync from {NTP_POOL}, serve {site.spec.management.cidr}",
            packages=("chrony",),
            files=(conf,),
            services=("chronyd",),
        )
    return StepDef(
        name="env.chrony-client",
        where=Where.COMPUTE,
        title=f"chrony: sync from {site.host}",
        packages=("chrony",),
        files=(conf,),
        services=("chronyd",),
    )


def repositories(site: Site) -> list[StepDef]:
    """CRB, then the RDO release package, then the client and SELinux policy from RDO."""
    crb = Guarded(
        description="enable the CRB repository (RDO needs it)",
        check="dnf config-manager --dump crb 2>/dev/null | grep -Eqx 'enabled = (1|[Tt]rue)'",
        run="dnf config-manager --set-enabled crb",
    )
    return [
        StepDef(
            name="env.crb",
            where=Where.ALL,
            title="enable the CRB repository",
            packages=("dnf-plugins-core",),
            commands=(crb,),
        ),
        StepDef(
            name="env.rdo",
            where=Where.ALL,
            title=f"RDO repositories for OpenStack {site.spec.release}",
            packages=(site.rdo_release_package,),
        ),
        StepDef(
            name="env.client",
            where=Where.ALL,
            title="OpenStack client and openstack-selinux",
            packages=("python3-openstackclient", "openstack-selinux"),
        ),
    ]


def steps(site: Site, node: Node) -> list[StepDef]:
    return [hosts(site), chrony(site, node), *repositories(site)]
