"""Debian only: the uwsgi ini files of the API services, and start timeouts that suit TCG.

Debian runs keystone, placement, nova-api, nova-api-metadata, neutron-api and cinder-api
under uwsgi, each as its own systemd unit (``/etc/init.d/<unit> systemd-start`` execs
``uwsgi_python3 --http-socket :<port> --ini <ini>``). glance-api in trixie does not: its
init script has the uwsgi lines commented out and runs ``glance-api`` with
``glance-api.conf``, whose ``workers`` oslab sets instead.

The packages' ini files ask for 8 processes of up to 32 threads each; under TCG that is
dozens of Python processes per service. oslab writes each ini whole (the package's options,
one process, one thread) rather than editing the package's file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from oslab.install.model import FileSpec, Guarded
from oslab.install.services._base import config, q

# Python services take minutes to start under TCG, and a reboot starts them all at once: on
# the rebooted e2e controller nova-scheduler got 68 s of CPU in 10 min, was killed at a 600 s
# timeout and restarted from nothing, twice (a start that times out loses all its work, so
# the boot need not converge). Give every OpenStack unit as long as the boot wait.
START_TIMEOUT_S = 1800
START_TIMEOUT_SHOWN = "30min"  # systemctl show -p TimeoutStartUSec prints it like this
DROPIN = "oslab-tcg.conf"


@dataclass(frozen=True)
class UwsgiApp:
    """One API service under uwsgi, as its package ships it (name, user, wsgi file, log)."""

    unit: str
    ini: str
    project: str  # the service user, group and /var/lib, /var/log directory name
    wsgi_file: str
    log: str
    plugins: str = "python3"
    enable_threads: bool = True
    close_on_exec: bool = True
    extra: tuple[str, ...] = ()  # the package's service-specific options, verbatim


# Read from each package's ini (trixie): /etc/<project>/<name>-uwsgi.ini.
_CHUNKED = ("socket-timeout = 10", "http-auto-chunked = true", "http-chunked-input = true",
            "http-raw-body = true", "chmod-socket = 666", "add-header = Connection: close",
            "exit-on-reload = true", "wsgi-manage-chunked-input = true")
APPS = {
    "keystone": UwsgiApp("keystone", "/etc/keystone/keystone-uwsgi.ini", "keystone",
                         "/usr/bin/keystone-wsgi-public", "/var/log/keystone/keystone.log",
                         plugins="python3,apparmor", extra=("apparmor-profile = keystone",)),
    "placement-api": UwsgiApp("placement-api", "/etc/placement/placement-api-uwsgi.ini",
                              "placement", "/usr/bin/placement-api",
                              "/var/log/placement/placement-api.log", extra=_CHUNKED),
    "nova-api": UwsgiApp("nova-api", "/etc/nova/nova-api-uwsgi.ini", "nova",
                         "/usr/bin/nova-api-wsgi", "/var/log/nova/nova-api.log",
                         close_on_exec=False),
    "nova-api-metadata": UwsgiApp("nova-api-metadata", "/etc/nova/nova-api-metadata-uwsgi.ini",
                                  "nova", "/usr/bin/nova-metadata-wsgi",
                                  "/var/log/nova/nova-api-metadata.log", close_on_exec=False),
    "neutron-api": UwsgiApp("neutron-api", "/etc/neutron/neutron-api-uwsgi.ini", "neutron",
                            "/usr/bin/neutron-api", "/var/log/neutron/neutron-api.log",
                            enable_threads=False, extra=("add-header = Connection: close",
                                   "paste = config:/etc/neutron/api-paste.ini",
                                   "start-time = %t")),
    "cinder-api": UwsgiApp("cinder-api", "/etc/cinder/cinder-api-uwsgi.ini", "cinder",
                           "/usr/bin/cinder-wsgi", "/var/log/cinder/cinder-api.log",
                           extra=_CHUNKED),
}


def uwsgi_ini(app: UwsgiApp, values: dict[str, object]) -> FileSpec:
    return config(app.ini, "debian/uwsgi.ini.j2", {**values, "app": app})


def start_timeouts(units: Sequence[str], values: dict[str, object]) -> list[FileSpec]:
    """A ``TimeoutStartSec`` drop-in per unit."""
    return [config(f"/etc/systemd/system/{unit}.service.d/{DROPIN}", "debian/timeout.conf.j2",
                   {**values, "seconds": START_TIMEOUT_S})
            for unit in units]


def reload_for(units: Sequence[str]) -> Guarded:
    """``systemctl daemon-reload`` until systemd sees the drop-ins (a restart without it would
    keep the old timeout)."""
    names = " ".join(q(f"{u}.service") for u in units)
    return Guarded(
        description=f"systemd sees the start timeout of {', '.join(units)}",
        check=f"! systemctl show -p TimeoutStartUSec --value {names} | grep -v '^$' "
              f"| grep -qvx {START_TIMEOUT_SHOWN}",
        run="systemctl daemon-reload",
    )
