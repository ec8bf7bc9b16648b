"""Nova: API, conductor, scheduler and noVNC proxy on the controller; libvirt compute nodes.

nova.conf is written whole, once, on every node: the controller's ``[neutron]`` (metadata
proxy) and ``[cinder]`` sections are there from the start, so the guide's later "restart
nova-api" steps are the engine's restart-on-change of this step instead.

Debian: nova-api and nova-api-metadata are two uwsgi units of the nova-api package (oslab
writes their ini files); nova-consoleproxy runs the proxy named in
``/etc/default/nova-consoleproxy``, which must say novnc before the package installs (its
debconf question cannot be preseeded: the config script reads that file and falls back to
spicehtml5); nova-compute also reads ``/etc/nova/nova-compute.conf`` (shipped by
nova-compute-qemu with ``virt_type=qemu``), which oslab writes with the node's own virt type.
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
    restart_for,
    unless,
    wait_until,
)
from oslab.spec import Node

NOVA_CONF = "/etc/nova/nova.conf"
NOVA_COMPUTE_CONF = "/etc/nova/nova-compute.conf"  # Debian: read after nova.conf
CONSOLE_PROXY_DEFAULT = "/etc/default/nova-consoleproxy"  # Debian
COMPUTE_STEP = "nova.compute"


def nova_conf(site: Site, node: Node, *, controller: bool, virt_type: str = "") -> FileSpec:
    values = site.values(
        node=node.name, controller=controller, my_ip=str(node.address), virt_type=virt_type,
        api_database=site.db_url("nova", "nova_api", "db_nova"),
        database=site.db_url("nova", "nova", "db_nova"),
        nova_password=site.password("svc_nova"),
        neutron_password=site.password("svc_neutron"),
        placement_password=site.password("svc_placement"),
        metadata_secret=site.password("metadata_secret"),
        # The browser that opens a console runs on the lab's host, which knows the controller
        # by its address, not by its name (the guide's note on novncproxy_base_url).
        novncproxy_base_url=f"http://{site.controller.address}:6080/vnc_auto.html",
    )
    return config(NOVA_CONF, "nova/nova.conf.j2", values, owner="root", group="nova",
                  mode=0o640, secret=True)


def _manage(command: str) -> str:
    return as_user("nova", f"nova-manage {command}")


def controller_steps(site: Site) -> list[StepDef]:
    # nova's service token must carry the service role: cinder deletes the attachment of an
    # in-use volume (nova's detach) only for a service token with a role in its
    # [keystone_authtoken] service_token_roles (default service; OSSA-2023-003, bug 2004555).
    # With admin alone every detach failed on the e2e lab: ConflictNovaUsingAttachment (409).
    register = registration("nova", user="nova", password_key="svc_nova", service="nova",
                            kind="compute", description="OpenStack Compute",
                            url=f"http://{site.host}:8774/v2.1", roles=("admin", "service"))
    cells = _manage("cell_v2 list_cells")
    layer = site.layer
    units = layer.unit("nova-controller")
    files = [nova_conf(site, site.controller, controller=True)]
    commands: list[Guarded] = []
    if layer.debian:
        files += [_debian.uwsgi_ini(_debian.APPS[u], site.values())
                  for u in ("nova-api", "nova-api-metadata")]
        files += _debian.start_timeouts(units, site.values())
        commands += [_debian.reload_for(units),
                     restart_for("nova-novncproxy", CONSOLE_PROXY_DEFAULT)]
    install = StepDef(
        name="nova.controller",
        where=Where.CONTROLLER,
        title="Nova API, scheduler, conductor and noVNC proxy; cells cell0 and cell1",
        packages=layer.pkgs("nova-controller"),
        files=tuple(files),
        databases=tuple(Database(name, "nova", "db_nova")
                        for name in ("nova_api", "nova", "nova_cell0")),
        commands=(
            *commands,
            once("nova-api-db-sync", "populate the nova_api database", _manage("api_db sync")),
            Guarded(description="register the cell0 database",
                    check=f"{cells} | grep -qw cell0",
                    run=_manage("cell_v2 map_cell0")),
            Guarded(description="create the cell1 cell",
                    check=f"{cells} | grep -qw cell1",
                    run=unless(f"{cells} | grep -qw cell1",
                               _manage("cell_v2 create_cell --name=cell1 --verbose"))),
            once("nova-db-sync", "populate the nova database", _manage("db sync"),
                 timeout=1200),
        ),
        services=units,
    )
    if layer.debian:
        return [register, console_proxy_type(site), install]
    return [register, install]


def console_proxy_type(site: Site) -> StepDef:
    """Debian: nova-consoleproxy's postinst keeps NOVA_CONSOLE_PROXY_TYPE from this file."""
    return StepDef(
        name="nova.console-type",
        where=Where.CONTROLLER,
        title="nova-consoleproxy runs the noVNC proxy (before the package installs)",
        files=(config(CONSOLE_PROXY_DEFAULT, "nova/nova-consoleproxy.j2", site.values()),),
    )


def compute_packages(site: Site) -> StepDef:
    """Packages and libvirt: they need nothing from the controller, so they install in
    parallel with it."""
    return StepDef(
        name="nova.compute-packages",
        where=Where.COMPUTE,
        title="Nova compute and libvirt packages; libvirt's daemons",
        packages=site.layer.pkgs("nova-compute"),
        # EL9's modular daemons (their sockets) or Debian's libvirtd. Here, not in
        # nova.compute: a change to nova.conf restarts nova-compute, never libvirt.
        services=site.layer.unit("libvirt"),
    )


def compute(site: Site, node: Node) -> StepDef:
    """nova-compute starts only when the conductor runs: it waits for it at start-up, and
    systemd waits for nova-compute (Type=notify)."""
    virt_type = site.virt_type(node)
    layer = site.layer
    files = [nova_conf(site, node, controller=False, virt_type=virt_type)]
    commands: list[Guarded] = []
    units = layer.unit("nova-compute")
    if layer.debian:
        files.append(config(NOVA_COMPUTE_CONF, "nova/nova-compute.conf.j2",
                            site.values(node=node.name, virt_type=virt_type),
                            owner="root", group="nova", mode=0o640))
        files += _debian.start_timeouts(units, site.values())
        commands.append(_debian.reload_for(units))
    return StepDef(
        name=COMPUTE_STEP,
        where=Where.COMPUTE,
        title=f"nova-compute with libvirt ({virt_type}) on {node.address}",
        files=tuple(files),
        commands=tuple(commands),
        services=units,
        after=("nova.controller",),
    )


def discover(site: Site) -> StepDef:
    """Map every compute node into cell1 once its nova-compute has registered."""
    names = [n.name for n in site.computes]
    hosts = _manage("cell_v2 list_hosts")
    mapped = " && ".join(f'printf "%s\\n" "$hosts" | grep -qw {q(name)}' for name in names)
    registered = " && ".join(
        "openstack compute service list --service nova-compute -f value -c Host "
        f"| grep -qx {q(name)}" for name in names)
    return StepDef(
        name="nova.discover",
        where=Where.CONTROLLER,
        title="discover compute hosts: " + ", ".join(names),
        commands=(
            Guarded(
                description="compute hosts mapped to cell1: " + ", ".join(names),
                check=f"hosts=$({hosts}) && {mapped}",
                run=f"{wait_until(registered, 600)} && "
                    + _manage("cell_v2 discover_hosts --verbose"),
                env_file=ADMIN_OPENRC,
                timeout=900,
            ),
        ),
        after=(COMPUTE_STEP,),
        checkpoint="compute",
    )
