"""Horizon at http://<controller>/dashboard.

Debian: openstack-dashboard reads local_settings.py, then every file of local_settings.d
(Debian's own set WEBROOT "/", COMPRESS_OFFLINE and a local-memory cache); oslab's settings
are the last of them. Debian compresses the static files at install time for its WEBROOT,
so they are collected and compressed again for /dashboard. With ``horizon/activate_vhost``
false the package enables its site ``openstack-dashboard-alias-only`` (Horizon at /horizon);
oslab disables it and serves /dashboard from its own conf-available snippet.

The same postinst enables apache2's default-ssl site, and it does so on every ``configure``,
an upgrade included (``a2ensite default-ssl.conf || true``, not apache2's maintscript helper,
so an administrator's ``a2dissite`` is not respected). mod_ssl is off, and trixie's
default-ssl.conf no longer sits inside ``<IfModule mod_ssl.c>``: apache2 refuses such a
configuration ("Invalid command 'SSLEngine'"), the postinst's reload fails quietly and at the
next restart or reboot apache2, and the dashboard with it, stays down. oslab disables the
site and also wraps default-ssl.conf in ``<IfModule mod_ssl.c>``, so that an upgrade that
enables it again changes nothing. The file is an apache2 conffile, so dpkg keeps the local
version on upgrades (silently while the package's own is unchanged; when it changes, oslab's
apt answers with ``--force-confold``), and the next `oslab up` wraps a replaced one again. A
dpkg-divert of the file would make the postinst's ``a2ensite`` fail harmlessly too, but
Debian's policy warns against diverting a conffile (dpkg does not handle it well).
"""

from __future__ import annotations

from oslab.install.markers import once
from oslab.install.model import Guarded, StepDef, Where
from oslab.install.services._base import Site, config, q

WEBROOT = "/dashboard/"
MANAGE = "/usr/share/openstack-dashboard/manage.py"  # Debian
VAR = "/var/lib/openstack-dashboard"  # Debian


def allowed_hosts(site: Site) -> list[str]:
    """The names the dashboard answers to. Not ``'*'``: the lab is reached by the controller's
    name or management address (or through an SSH tunnel on localhost)."""
    return [site.host, str(site.controller.address), "localhost", "127.0.0.1"]


SSL_SITE = "/etc/apache2/sites-available/default-ssl.conf"  # Debian's apache2
IF_SSL = "<IfModule mod_ssl.c>"


def ssl_site_guard() -> Guarded:
    """default-ssl.conf inside ``<IfModule mod_ssl.c>``: harmless while mod_ssl is off, even
    when a package enables the site again (see the module's docstring)."""
    return Guarded(
        description=f"{SSL_SITE} is empty without mod_ssl (a dashboard upgrade enables it)",
        check=f"! test -e {SSL_SITE} || head -n 1 {SSL_SITE} | grep -qxF {q(IF_SSL)}",
        run=f"sed -i -e {q('1i ' + IF_SSL)} -e {q('1i # oslab: nothing here without mod_ssl')} "
            f"-e {q('$a </IfModule>')} {SSL_SITE}",
    )


def _debian_commands() -> tuple[Guarded, ...]:
    sites = "/etc/apache2/sites-enabled"
    return (
        Guarded(description="the package's /horizon site is off (oslab serves /dashboard)",
                check=f"test ! -e {sites}/openstack-dashboard-alias-only.conf",
                run="a2dissite -q openstack-dashboard-alias-only"),
        # With horizon/activate_vhost false the package's postinst enables default-ssl.conf,
        # but mod_ssl is off: apache2 would refuse its configuration ("Invalid command
        # 'SSLEngine'") and not start. Seen on the real trixie packages.
        Guarded(description="apache2's default-ssl site is off (mod_ssl is not enabled)",
                check=f"test ! -e {sites}/default-ssl.conf",
                run="a2dissite -q default-ssl"),
        ssl_site_guard(),
        Guarded(description="apache2 serves oslab-dashboard.conf",
                check="test -e /etc/apache2/conf-enabled/oslab-dashboard.conf",
                run="a2enconf -q oslab-dashboard"),
        # As the package's own rebuild_static does: manage.py, run as root, leaves a
        # root-owned secret key store that www-data cannot read (HTTP 500 on every page).
        # compress needs the session cache (memcached) answering: without it one block of
        # the login page is left out of the offline manifest and every page fails with
        # OfflineGenerationError (both seen on the real trixie packages).
        once("horizon-static-dashboard", f"static files collected and compressed for {WEBROOT}",
             "systemctl is-active --quiet memcached && "
             f"{MANAGE} collectstatic --noinput --clear >/dev/null && "
             f"{MANAGE} compress --force >/dev/null && "
             f"rm -f {VAR}/secret-key/.secret_key_store && "
             f"chown -R www-data {VAR}/secret-key {VAR}/static", timeout=1800),
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
