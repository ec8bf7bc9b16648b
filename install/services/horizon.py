"""Horizon at http://<controller>/dashboard."""

from __future__ import annotations

from oslab.install.model import StepDef, Where
from oslab.install.services._base import Site, config


def allowed_hosts(site: Site) -> list[str]:
    """The names the dashboard answers to. Not ``'*'``: the lab is reached by the controller's
    name or management address (or through an SSH tunnel on localhost)."""
    return [site.host, str(site.controller.address), "localhost", "127.0.0.1"]


def steps(site: Site) -> list[StepDef]:
    return [
        StepDef(
            name="horizon.dashboard",
            where=Where.CONTROLLER,
            title=f"Horizon at http://{site.controller.address}/dashboard",
            # python3-pymemcache: Django's PyMemcacheCache, the session cache the guide uses.
            packages=("openstack-dashboard", "python3-pymemcache"),
            files=(
                config("/etc/openstack-dashboard/local_settings", "horizon/local_settings.j2",
                       site.values(allowed_hosts=allowed_hosts(site),
                                   secret_key=site.password("horizon_secret_key"),
                                   time_zone=site.spec.timezone),
                       owner="root", group="apache", mode=0o640, secret=True),
                config("/etc/httpd/conf.d/openstack-dashboard.conf",
                       "horizon/openstack-dashboard.conf.j2", site.values()),
            ),
            services=("httpd", "memcached"),
        ),
    ]
