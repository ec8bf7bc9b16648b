"""The per-distro layer: package names, unit names and paths by distro family.

The service content is one tree; where CentOS Stream 9 + RDO and Debian 13 differ only by a
name, the content asks the lab's :class:`Layer` (``site.layer``). Everything the two share
(the Epoxy config files, the order, the commands) stays in the service modules.

EL names are RDO Epoxy's (openstack-*-distgit spec files). Debian names and paths were read
from the trixie packages themselves (``dpkg-deb -c/-e`` of the debs apt downloaded): their
systemd units (generated from ``/etc/init.d/*`` by openstack-pkg-tools), uwsgi ini files,
conffiles and maintainer scripts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from oslab.distro import Family, distro_for
from oslab.kickstart.render import NTP_POOL

# EL9 libvirt is built with modular daemons (libvirt.spec: with_modular_daemons when
# rhel >= 9; %post daemon-driver-qemu: %systemd_post virtqemud.socket virtqemud-ro.socket
# virtqemud-admin.socket virtqemud.service; %post daemon: virtlogd, virtlockd and virtproxyd,
# not libvirtd). RDO's openstack-nova-compute requires libvirt-daemon-driver-qemu, -nodedev,
# -nwfilter, -secret and -storage-core, not libvirt-daemon (libvirtd). virtqemud.service
# declares Conflicts=libvirtd.service, so starting libvirtd would stop virtqemud under a
# running nova-compute. The sockets start each daemon on nova-compute's first connection.
EL9_LIBVIRT_UNITS = ("virtqemud.socket", "virtqemud-ro.socket", "virtqemud-admin.socket",
                     "virtlogd.socket", "virtnodedevd.socket", "virtnwfilterd.socket",
                     "virtsecretd.socket", "virtstoraged.socket")


@dataclass(frozen=True)
class Layer:
    """What one distro family calls things. ``packages``, ``units`` and ``paths`` are keyed by
    the same role names for every family (a unit test holds them to that)."""

    family: Family
    packages: Mapping[str, tuple[str, ...]]
    units: Mapping[str, tuple[str, ...]]
    paths: Mapping[str, str]
    web_group: str  # the web server's group (Horizon's settings are readable by it)
    memcached_template: str  # memcached's config: sysconfig variables or command-line options
    target_helper: str  # cinder's iSCSI target: LIO on EL, tgt (cinder-volume's own) on Debian
    ntp_pool: str  # the controller's upstream time source

    @property
    def debian(self) -> bool:
        return self.family is Family.DEBIAN

    def pkgs(self, role: str) -> tuple[str, ...]:
        return self.packages[role]

    def unit(self, role: str) -> tuple[str, ...]:
        return self.units[role]

    def path(self, role: str) -> str:
        return self.paths[role]

    def unit_of(self, binary: str) -> str:
        """The systemd unit that runs a service ``binary`` (nova-compute, cinder-volume), for
        a hint: ``openstack-nova-compute`` on EL, ``nova-compute`` on Debian; the binary's own
        name where no unit of this layer runs it."""
        for units in self.units.values():
            for unit in units:
                if unit == binary or unit.endswith(f"-{binary}"):
                    return unit
        return binary


V = TypeVar("V")


def _frozen(d: dict[str, V]) -> Mapping[str, V]:
    return MappingProxyType(d)


EL = Layer(
    family=Family.EL,
    packages=_frozen({
        "chrony": ("chrony",),
        "client": ("python3-openstackclient", "openstack-selinux"),
        "mariadb": ("mariadb", "mariadb-server", "python3-PyMySQL"),
        "rabbitmq": ("rabbitmq-server",),
        "memcached": ("memcached", "python3-memcached"),
        "etcd": ("etcd",),
        "keystone": ("openstack-keystone", "httpd", "python3-mod_wsgi"),
        "glance": ("openstack-glance",),
        # python3-osc-placement: the client's placement commands (`openstack resource class
        # list`, the install guide's check of Placement); RDO's python-osc-placement 4.6.0.
        "placement": ("openstack-placement-api", "python3-osc-placement"),
        "nova-controller": ("openstack-nova-api", "openstack-nova-conductor",
                            "openstack-nova-novncproxy", "openstack-nova-scheduler"),
        # iscsi-initiator-utils: os-brick attaches Cinder's LVM/iSCSI volumes with it.
        "nova-compute": ("openstack-nova-compute", "iscsi-initiator-utils"),
        "openvswitch": ("openstack-neutron-openvswitch",),
        "neutron-controller": ("openstack-neutron", "openstack-neutron-ml2",
                               "openstack-neutron-openvswitch"),
        # python3-pymemcache: Django's PyMemcacheCache, the session cache the guide uses.
        "horizon": ("openstack-dashboard", "python3-pymemcache"),
        "cinder-lvm": ("lvm2", "device-mapper-persistent-data", "targetcli"),
        "cinder": ("openstack-cinder",),
        "cinder-volume": (),  # in openstack-cinder
    }),
    units=_frozen({
        "chrony": ("chronyd",),
        "web": ("httpd",),
        "keystone": ("httpd",),
        "glance": ("openstack-glance-api",),
        "placement": ("httpd",),
        "nova-controller": ("openstack-nova-api", "openstack-nova-scheduler",
                            "openstack-nova-conductor", "openstack-nova-novncproxy"),
        "libvirt": EL9_LIBVIRT_UNITS,
        "nova-compute": ("openstack-nova-compute",),
        "openvswitch": ("openvswitch",),
        "neutron-server": ("neutron-server",),
        "cinder-target": ("target",),
        "cinder-api": ("openstack-cinder-api", "openstack-cinder-scheduler"),
        "cinder-volume": ("openstack-cinder-volume",),
        "etcd": ("etcd",),
    }),
    paths=_frozen({
        "chrony.conf": "/etc/chrony.conf",
        "mariadb.cnf": "/etc/my.cnf.d/openstack.cnf",
        "memcached": "/etc/sysconfig/memcached",
        "etcd": "/etc/etcd/etcd.conf",
        "horizon-settings": "/etc/openstack-dashboard/local_settings",
        "horizon-web": "/etc/httpd/conf.d/openstack-dashboard.conf",
        "horizon-policy": "/etc/openstack-dashboard",
        "web-log": "/var/log/httpd/error_log",
    }),
    web_group="apache",
    memcached_template="infra/memcached.j2",
    target_helper="lioadm",
    ntp_pool=NTP_POOL,
)

DEBIAN = Layer(
    family=Family.DEBIAN,
    packages=_frozen({
        "chrony": ("chrony",),
        "client": ("python3-openstackclient",),
        "mariadb": ("mariadb-server", "python3-pymysql"),
        "rabbitmq": ("rabbitmq-server",),
        "memcached": ("memcached", "python3-memcache"),
        "etcd": ("etcd-server",),
        # keystone runs under uwsgi as its own unit (uwsgi-plugin-python3 is a dependency).
        "keystone": ("keystone",),
        "glance": ("glance-api",),
        # python3-osc-placement: as on EL (trixie ships 4.6.0-2).
        "placement": ("placement-api", "python3-osc-placement"),
        # nova-consoleproxy ships the noVNC, SPICE and serial proxies.
        "nova-controller": ("nova-api", "nova-conductor", "nova-consoleproxy",
                            "nova-scheduler"),
        # nova-compute depends on "nova-compute-kvm | nova-compute-hypervisor": name the
        # hypervisor package; nova-compute-qemu brings libvirt-daemon-system and qemu-system.
        "nova-compute": ("nova-compute", "nova-compute-qemu", "open-iscsi"),
        # neutron-openvswitch-agent does not depend on openvswitch-switch.
        "openvswitch": ("openvswitch-switch", "neutron-openvswitch-agent"),
        "neutron-controller": ("neutron-api", "neutron-rpc-server",
                               "neutron-openvswitch-agent", "neutron-dhcp-agent",
                               "neutron-metadata-agent", "neutron-l3-agent"),
        "horizon": ("openstack-dashboard", "openstack-dashboard-apache", "python3-pymemcache"),
        # cinder-volume depends on "tgt | open-iscsi" and ships /etc/tgt/conf.d/cinder_tgt.conf
        "cinder-lvm": ("lvm2", "thin-provisioning-tools", "tgt"),
        "cinder": ("cinder-api", "cinder-scheduler"),
        "cinder-volume": ("cinder-volume",),
    }),
    units=_frozen({
        "chrony": ("chrony",),  # chronyd is only an alias of chrony.service
        "web": ("apache2",),
        "keystone": ("keystone",),
        "glance": ("glance-api",),
        "placement": ("placement-api",),
        # nova-api-metadata: nova-api's second uwsgi unit (the metadata API, port 8775).
        "nova-controller": ("nova-api", "nova-api-metadata", "nova-scheduler",
                            "nova-conductor", "nova-novncproxy"),
        # Debian 13's libvirt 11.3 ships the monolithic daemon only: libvirt-daemon holds
        # libvirtd.service and its sockets (enabled by its postinst), and no package of it
        # ships virtqemud.
        # and open-iscsi's iscsid (os-brick attaches Cinder's volumes with iscsiadm), which a
        # baked base image has disabled with every unit its packages enabled
        "libvirt": ("libvirtd", "iscsid.socket"),
        "nova-compute": ("nova-compute",),
        "openvswitch": ("openvswitch-switch",),
        # The API under uwsgi (neutron-api), the RPC workers in their own unit.
        "neutron-server": ("neutron-api", "neutron-rpc-server"),
        "cinder-target": ("tgt",),
        "cinder-api": ("cinder-api", "cinder-scheduler"),
        "cinder-volume": ("cinder-volume",),
        "etcd": ("etcd",),
    }),
    paths=_frozen({
        "chrony.conf": "/etc/chrony/chrony.conf",
        # read after Debian's 50-server.cnf (which binds 127.0.0.1)
        "mariadb.cnf": "/etc/mysql/mariadb.conf.d/99-openstack.cnf",
        "memcached": "/etc/memcached.conf",
        "etcd": "/etc/default/etcd",
        # local_settings.d is read after local_settings.py and after Debian's own
        # _0005_debian_webroot.py and _0006_debian_cache.py, which it overrides.
        "horizon-settings": "/etc/openstack-dashboard/local_settings.d/_9990_oslab.py",
        "horizon-web": "/etc/apache2/conf-available/oslab-dashboard.conf",
        # openstack_dashboard/conf links here (the package's postinst)
        "horizon-policy": "/etc/openstack-dashboard/policy",
        "web-log": "/var/log/apache2/error.log",
    }),
    web_group="www-data",
    memcached_template="infra/memcached.conf.j2",
    target_helper="tgtadm",
    ntp_pool="2.debian.pool.ntp.org",  # chrony's own default on Debian
)

LAYERS: Mapping[Family, Layer] = MappingProxyType({Family.EL: EL, Family.DEBIAN: DEBIAN})


def layer_for(distro: str) -> Layer:
    """The layer of a lab spec's ``distro`` (its family's)."""
    return LAYERS[distro_for(distro).family]
