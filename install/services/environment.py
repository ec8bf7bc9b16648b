"""The install guide's environment, on every node: hosts, time, the RDO repositories (EL)
or debconf answers, package lists, log rotation and the node's own iSCSI initiator name
(Debian)."""

from __future__ import annotations

from oslab.install import debian
from oslab.install.model import Guarded, StepDef, Where
from oslab.install.services._base import Site, config
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
    layer = site.layer
    path = layer.path("chrony.conf")
    conf = config(path, "environment/chrony.conf.j2",
                  site.values(node=node.name, server=server, pool=layer.ntp_pool, path=path,
                              allow=str(site.spec.management.cidr), upstream=site.host,
                              debian=layer.debian))
    if server:
        return StepDef(
            name="env.chrony-server",
            where=Where.CONTROLLER,
            title=f"chrony: sync from {layer.ntp_pool}, serve {site.spec.management.cidr}",
            packages=layer.pkgs("chrony"),
            files=(conf,),
            services=layer.unit("chrony"),
        )
    return StepDef(
        name="env.chrony-client",
        where=Where.COMPUTE,
        title=f"chrony: sync from {site.host}",
        packages=layer.pkgs("chrony"),
        files=(conf,),
        services=layer.unit("chrony"),
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
            packages=site.layer.pkgs("client"),
        ),
    ]


SELECTIONS = "/var/lib/oslab/debconf-selections"


def apt(site: Site) -> StepDef:
    """Debian: debconf answers before any package installs (the packages then configure no
    database, endpoint or vhost themselves), and no policy-rc.d left behind by an interrupted
    install (it would stop every later package from restarting a service). The package lists
    are the install command's business (oslab.install.debian)."""
    applied = f"{SELECTIONS}.applied"
    return StepDef(
        name="env.apt",
        where=Where.ALL,
        title="debconf answers for the OpenStack packages",
        files=(config(SELECTIONS, "environment/debconf-selections.j2",
                      site.values(selections=debian.debconf_selections())),),
        commands=(
            Guarded(
                description="debconf knows oslab's answers",
                check=f"cmp -s {SELECTIONS} {applied}",
                run=f"debconf-set-selections {SELECTIONS} && cp {SELECTIONS} {applied}",
            ),
            Guarded(
                description=f"no {debian.POLICY_RC_D} left by an interrupted install",
                check=debian.stale_policy_check(),
                run=f"rm -f {debian.POLICY_RC_D}",
            ),
        ),
    )


def client(site: Site) -> StepDef:
    return StepDef(
        name="env.client",
        where=Where.ALL,
        title="OpenStack client",
        packages=site.layer.pkgs("client"),
    )


LOGROTATE_TIMER = "logrotate.timer"


def logrotate() -> StepDef:
    """Debian: every service's log rotated daily. Nothing on the controller pulls logrotate in
    (the packages that recommend it install without recommends), and on compute nodes, where
    libvirt-daemon depends on it, a baked base image has its timer disabled with every unit
    the role's packages enabled. EL has no such step: logrotate is in the minimal install
    (@core) and its timer is enabled by the distribution's presets there."""
    return StepDef(
        name="env.logrotate",
        where=Where.ALL,
        title="logrotate: every log rotated daily",
        packages=("logrotate",),
        services=(LOGROTATE_TIMER,),
    )


INITIATOR_NAME = "/etc/iscsi/initiatorname.iscsi"
ISCSI_STARTUP_CHECKS = "/usr/lib/open-iscsi/startup-checks.sh"  # open-iscsi's, Debian


def initiator_name() -> StepDef:
    """Debian: the node's own iSCSI initiator name, before iscsid or os-brick first reads it.

    A baked base image holds ``GenerateName=yes`` instead of the name open-iscsi's postinst
    made at its build (the image clean-up), so that no two nodes share one. Debian's iscsid
    runs ``startup-checks.sh`` before it starts, which writes a new name in place of that line
    and refuses to start without the file; os-brick reads the name from the file itself. The
    step runs the package's own check once, on every node that has open-iscsi (python3-os-brick
    depends on it, so the controller has it too). Where open-iscsi is not installed yet, its
    postinst makes the name when it installs. EL needs nothing: iscsi-initiator-utils ships no
    name and iscsid's iscsi-init.service makes one when the file is missing."""
    named = f"grep -q '^InitiatorName=[^[:space:]]' {INITIATOR_NAME}"
    return StepDef(
        name="env.initiator-name",
        where=Where.ALL,
        title="this node's own iSCSI initiator name",
        commands=(Guarded(
            description="this node's own iSCSI initiator name (where open-iscsi is installed)",
            check=f"! test -e {ISCSI_STARTUP_CHECKS} || {named}",
            run=f"{{ test -e {INITIATOR_NAME} || echo GenerateName=yes > {INITIATOR_NAME}; }} "
                f"&& {ISCSI_STARTUP_CHECKS}",
        ),),
    )


CLOUD_INIT_DISABLED = "/etc/cloud/cloud-init.disabled"


def cloud_init_once() -> StepDef:
    """cloud-init runs at a node's first boot only. A node booted from a base image (Debian)
    or a golden clone (EL) gets its identity from its NoCloud seed then; its address, host
    keys and time zone stay on its disk. At every later boot cloud-init would only read the
    seed again: on the e2e lab's compute node under TCG its stages took 37 s of a 146 s boot,
    in front of SSH, and 18 s of the controller's (`systemd-analyze blame`). oslab never
    reseeds a node whose domain exists, so nothing is lost: the file makes cloud-init's
    generator leave its units out of every later boot. A kickstarted node has no /etc/cloud."""
    return StepDef(
        name="env.cloud-init-once",
        where=Where.ALL,
        title="cloud-init stays out of later boots",
        commands=(Guarded(
            description="cloud-init, which seeded this node, stays out of its later boots",
            check=f"! test -d /etc/cloud || test -e {CLOUD_INIT_DISABLED}",
            run=f"touch {CLOUD_INIT_DISABLED}",
        ),),
    )


def steps(site: Site, node: Node) -> list[StepDef]:
    if site.layer.debian:
        return [hosts(site), apt(site), chrony(site, node), client(site), logrotate(),
                initiator_name(), cloud_init_once()]
    return [hosts(site), chrony(site, node), *repositories(site), cloud_init_once()]
