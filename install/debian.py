"""What installing Debian's packages needs: debconf answers, the apt command, policy-rc.d.

Debian's OpenStack packages can configure a database, RabbitMQ, keystone_authtoken, the
service's endpoints and Horizon's vhost themselves, through debconf questions. oslab writes
every config itself, so every one of those answers is preseeded ``false`` (they default to
false; preseeding makes it not depend on that). The image builder bakes packages into base
images on the host and must preseed the same answers: it calls :func:`debconf_selections`.

The packages also start each service as they install it, with its unconfigured defaults
(keystone's uwsgi with 8 processes of 32 threads). While oslab installs packages, an
``/usr/sbin/policy-rc.d`` that exits 101 tells ``invoke-rc.d``/``deb-systemd-invoke`` not to
start anything; the install command removes it again when apt exits, however it exits. The
services stay enabled; the steps start them once their configs are written.

Names were read from the trixie packages themselves (``dpkg-deb -e``, their ``templates``).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

# (package that owns the question, question) -> answer. Every boolean question of the
# OpenStack packages oslab installs that would make the package configure something itself.
DEBCONF: tuple[tuple[str, str, bool], ...] = (
    ("keystone", "keystone/configure_db", False),
    ("keystone", "keystone/create-admin-tenant", False),
    ("keystone", "keystone/register-endpoint", False),
    ("glance-common", "glance/configure_db", False),
    ("glance-common", "glance/configure_rabbit", False),
    ("glance-common", "glance/configure_ksat", False),
    ("glance-api", "glance/configure_api-endpoint", False),
    ("placement-common", "placement/configure_db", False),
    ("placement-common", "placement/configure_ksat", False),
    ("placement-api", "placement/configure_api-endpoint", False),
    ("nova-common", "nova/configure_db", False),
    ("nova-common", "nova/configure_rabbit", False),
    ("nova-common", "nova/configure_ksat", False),
    ("nova-common", "nova/configure_neutron", False),
    ("nova-common", "nova/configure_placement", False),
    ("nova-api", "novaapi/configure_db", False),
    ("nova-api", "nova/configure_api-endpoint", False),
    ("neutron-common", "neutron/configure_db", False),
    ("neutron-common", "neutron/configure_rabbit", False),
    ("neutron-common", "neutron/configure_ksat", False),
    ("neutron-common", "neutron/configure_nova", False),
    ("neutron-api", "neutron/configure_api-endpoint", False),
    ("neutron-metadata-agent", "neutron-metadata/configure", False),
    ("cinder-common", "cinder/configure_db", False),
    ("cinder-common", "cinder/configure_rabbit", False),
    ("cinder-common", "cinder/configure_ksat", False),
    ("cinder-api", "cinder/configure_api-endpoint", False),
    ("openstack-dashboard-apache", "horizon/activate_vhost", False),
    ("openstack-dashboard-apache", "horizon/use_ssl", False),
)

POLICY_RC_D = "/usr/sbin/policy-rc.d"
POLICY_RC_D_MARK = "oslab: no service starts while packages install"
APT_RETRIES = 3  # transient mirror failures; the engine waits between attempts
APT_GET = ("apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef "
           "-o Dpkg::Options::=--force-confold")


def debconf_selections() -> str:
    """The ``debconf-set-selections`` input: one ``owner question boolean value`` per line."""
    return "".join(f"{owner} {question} boolean {'true' if value else 'false'}\n"
                   for owner, question, value in DEBCONF)


# Package lists younger than this are used as they are; older or none: apt-get update first.
# Only an install needs them, so a node whose packages are all there (a baked base image)
# never asks a repository for anything.
LISTS_MAX_AGE_MIN = 60
FRESH_LISTS = (f"find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' "
               f"-mmin -{LISTS_MAX_AGE_MIN} -print -quit")


def install_command(packages: Sequence[str]) -> str:
    """Install ``packages`` without recommends and without starting services.

    The package lists are refreshed when they are missing or older than an hour, and once
    more when the install fails (a mirror that moved on since the lists were read).
    ``dpkg --configure -a`` first finishes an install that was interrupted (apt refuses to
    run until it is done). policy-rc.d is removed on every exit, a signal included.
    """
    names = " ".join(shlex.quote(p) for p in packages)
    install = f"{APT_GET} install -y --no-install-recommends {names}"
    policy = shlex.quote(f"#!/bin/sh\n# {POLICY_RC_D_MARK}\nexit 101\n")
    return (f"trap 'rm -f {POLICY_RC_D}' EXIT && trap 'exit 129' HUP INT TERM && "
            f"printf '%s' {policy} > {POLICY_RC_D} && chmod 755 {POLICY_RC_D} && "
            f"export DEBIAN_FRONTEND=noninteractive && dpkg --configure -a && "
            f"{{ [ -n \"$({FRESH_LISTS})\" ] || {APT_GET} update; }} && "
            f"{{ {install} || {{ {APT_GET} update && {install}; }}; }}")


def stale_policy_check() -> str:
    """Passes unless an interrupted install left oslab's policy-rc.d behind."""
    return f"! grep -qsF {shlex.quote(POLICY_RC_D_MARK)} {POLICY_RC_D}"
