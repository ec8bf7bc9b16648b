"""Horizon at http://<controller>/dashboard.

Debian: openstack-dashboard reads local_settings.py, then every file of local_settings.d
(Debian's own set WEBROOT "/", COMPRESS_OFFLINE and a local-memory cache); oslab's settings
are the last of them. Debian compresses the static files at install time for its WEBROOT,
so they are collected and compressed again for /dashboard. With ``horizon/activate_vhost``
false the package enables its site ``openstack-dashboard-alias-only`` (Horizon at /horizon);
oslab disables it and serves /dashboard from its own conf-available snippet.
"""

from __future__ import annotations

from oslab.install.model import Guarded, StepDef, Where
from oslab.install.services._base import Site, config, once

WEBROOT = "/dashboard/"
MANAGE = "/usr/share/openstack-dashboard/manage.py"  # Debian


def allowed_hosts(site: Site) -> list[str]:
    """The names the dashboard answers to. Not ``'*'``: the lab is reached by the controller's
    name or management address (or through an SSH tunnel on localhost)."""
    return [site.host, str(site.controller.address), "localhost", "127.0.0.1"]


def _debian_commands() -> tuple[Guarded, ...]:
    alias_only = "/etc/apache2/sites-enabled/openstack-dashboard-alias-only.conf"
    return (
        Guarded(description="the package's /horizon site is off (oslab serves /dashboard)",
                check=f"test ! -e {alias_only}",
                run="a2dissite -q openstack-dashboard-alias-only"),
        Guarded(description="apache2 serves oslab-dashboard.conf",
                check="test -e /etc/apache2/conf-enabled/oslab-dashboard.conf",
                run="a2enconf -q oslab-dashboard"),
        once("horizon-static-dashboard", f"static files collected and compressed for {WEBROOT}",
             f"{MANAGE} collectstatic --noinput --clear >/dev/null && "
             f"{MANAGE} compress --force >/dev/null && "
             "chown -R www-data /var/lib/openstack-dashboard/static", timeout=1800),
    )


def steps(site: Site) -> list[StepDef]:
    layer = site.layer
    settings = layer.path("horizon-settings")
    web = layer.path("horizon-web")
    return [
        StepDef(
            name="horizon.dashboard",
            where=Where.CONTROLLER,
            title=f"Horizon at http://{site.controller.address}/dashboard",
            packages=layer.pkgs("horizon"),
            files=(
                config(settings, "horizon/local_settings.j2",
                       site.values(allowed_hosts=allowed_hosts(site), path=settings,
                                   secret_key=site.password("horizon_secret_key"),
                                   time_zone=site.spec.timezone,
                                   policy_path=layer.path("horizon-policy")),
                       owner="root", group=layer.web_group, mode=0o640, secret=True),
                config(web, "horizon/debian-dashboard.conf.j2" if layer.debian
                       else "horizon/openstack-dashboard.conf.j2", site.values()),
            ),
            commands=_debian_commands() if layer.debian else (),
            services=(*layer.unit("web"), "memcached"),
        ),
    ]
