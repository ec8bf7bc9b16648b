"""Cinder: API and scheduler on the controller, and cinder-volume with LVM on its extra disk.

CentOS Stream 9 restricts LVM to the devices in ``/etc/lvm/devices/system.devices`` (the
LVM devices file, ``use_devicesfile = 1``). oslab adds the Cinder disk there with
``lvmdevices --adddev`` and also writes the guide's filter (accept the Cinder disk, reject
everything else) to ``/etc/lvm/lvmlocal.conf``, so the volume groups instances create inside
their volumes stay invisible to the host either way. The system disk has no LVM (the
kickstart's ``autopart --type=plain``).

Debian's lvm2 (2.03.31) leaves the devices file off (``use_devicesfile = 0``) and ships no
``lvmdevices`` command (measured on a Debian 13 node), so there the filter alone restricts LVM.

Debian: cinder-volume depends on ``tgt | open-iscsi`` and ships
``/etc/tgt/conf.d/cinder_tgt.conf`` (``include /var/lib/cinder/volumes/*``), so its target is
tgt (``target_helper = tgtadm``); on EL it is LIO (``lioadm``, targetcli). cinder-api runs
under uwsgi as its own unit.
"""

from __future__ import annotations

from oslab.install.markers import once
from oslab.install.model import Database, FileSpec, Guarded, StepDef, Where
from oslab.install.services import _debian
from oslab.install.services._base import (
    Site,
    as_user,
    config,
    q,
    registration,
    unless,
)

VOLUME_GROUP = "cinder-volumes"


def cinder_device(site: Site) -> str:
    """The controller's first extra disk (virtio: vda is the system disk), or ''."""
    return "/dev/vdb" if site.controller.extra_disks_gib else ""


def lvm(site: Site, device: str) -> StepDef:
    listed = f"lvmdevices 2>/dev/null | grep -Eq {q('DEVNAME=' + device + '( |$)')}"
    vg = f"vgs {VOLUME_GROUP} >/dev/null 2>&1"
    layer = site.layer
    target = "tgt" if layer.debian else "LIO"
    return StepDef(
        name="cinder.lvm",
        where=Where.CONTROLLER,
        title=f"LVM volume group {VOLUME_GROUP} on {device}, {target} iSCSI target",
        packages=layer.pkgs("cinder-lvm"),
        files=(config("/etc/lvm/lvmlocal.conf", "cinder/lvmlocal.conf.j2",
                      site.values(device=device)),),
        commands=(
            # Debian's lvm2 does not use a devices file (use_devicesfile = 0) and ships no
            # lvmdevices command: the filter in lvmlocal.conf alone decides there
            *(() if layer.debian else (Guarded(
                description=f"{device} in the LVM devices file",
                check=listed,
                run=unless(listed, f"lvmdevices --adddev {device}"),
            ),)),
            Guarded(
                description=f"volume group {VOLUME_GROUP} on {device}",
                check=vg,
                run=unless(vg, f"pvcreate --yes {device} && vgcreate {VOLUME_GROUP} {device}"),
            ),
        ),
        services=layer.unit("cinder-target"),
    )


def steps(site: Site) -> list[StepDef]:
    device = cinder_device(site)
    register = registration("cinder", user="cinder", password_key="svc_cinder",
                            service="cinderv3", kind="volumev3",
                            description="OpenStack Block Storage",
                            url=f"http://{site.host}:8776/v3/%(project_id)s")
    layer = site.layer
    services = list(layer.unit("cinder-api"))
    if device:
        services += layer.unit("cinder-volume")
    extra: list[FileSpec] = []
    reload: list[Guarded] = []
    if layer.debian:
        extra = [_debian.uwsgi_ini(_debian.APPS["cinder-api"], site.values()),
                 *_debian.start_timeouts(services, site.values())]
        reload = [_debian.reload_for(services)]
    install = StepDef(
        name="cinder.controller",
        where=Where.CONTROLLER,
        title="Cinder API and scheduler" + (f", cinder-volume on LVM ({device})" if device else ""),
        packages=(*layer.pkgs("cinder"), *(layer.pkgs("cinder-volume") if device else ())),
        files=(
            config("/etc/cinder/cinder.conf", "cinder/cinder.conf.j2",
                   site.values(lvm=bool(device), device=device, volume_group=VOLUME_GROUP,
                               target_helper=layer.target_helper,
                               database=site.db_url("cinder", "cinder", "db_cinder"),
                               cinder_password=site.password("svc_cinder")),
                   owner="root", group="cinder", mode=0o640, secret=True),
            *extra,
        ),
        databases=(Database("cinder", "cinder", "db_cinder"),),
        commands=(*reload, once("cinder-db-sync", "populate the Block Storage database",
                                as_user("cinder", "cinder-manage db sync"))),
        services=tuple(services),
    )
    return [register, *([lvm(site, device)] if device else []), install]
