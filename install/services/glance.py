"""Glance with the local file store (the Epoxy guide's multi-store form: enabled_backends)."""

from __future__ import annotations

from oslab.install.markers import once
from oslab.install.model import Database, StepDef, Where
from oslab.install.services import _debian
from oslab.install.services._base import Site, as_user, config, registration


def steps(site: Site) -> list[StepDef]:
    url = f"http://{site.host}:9292"
    register = registration("glance", user="glance", password_key="svc_glance",
                            service="glance", kind="image", description="OpenStack Image",
                            url=url)
    layer = site.layer
    units = layer.unit("glance")
    # Debian's glance-api is not under uwsgi in trixie (its init script runs glance-api with
    # glance-api.conf, whose workers option the template sets); it gets a start timeout.
    timeouts = _debian.start_timeouts(units, site.values()) if layer.debian else []
    install = StepDef(
        name="glance.install",
        where=Where.CONTROLLER,
        title="Glance API with the file store in /var/lib/glance/images",
        packages=layer.pkgs("glance"),
        files=(
            config("/etc/glance/glance-api.conf", "glance/glance-api.conf.j2",
                   site.values(database=site.db_url("glance", "glance", "db_glance"),
                               password=site.password("svc_glance")),
                   owner="root", group="glance", mode=0o640, secret=True),
            *timeouts,
        ),
        databases=(Database("glance", "glance", "db_glance"),),
        commands=(
            *([_debian.reload_for(units)] if timeouts else []),
            once("glance-db-sync", "populate the Image service database",
                 as_user("glance", "glance-manage db_sync")),
        ),
        services=units,
    )
    return [register, install]
