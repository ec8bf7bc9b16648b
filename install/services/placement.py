"""Placement on port 8778 (under httpd on EL, Debian's own uwsgi unit on Debian), its policy
in YAML (the default policy.yaml)."""

from __future__ import annotations

from oslab.install.markers import once
from oslab.install.model import Database, FileSpec, Guarded, StepDef, Where
from oslab.install.services import _debian
from oslab.install.services._base import Site, as_user, config, registration

POLICY_JSON = "/etc/placement/policy.json"


def steps(site: Site) -> list[StepDef]:
    url = f"http://{site.host}:8778"
    register = registration("placement", user="placement", password_key="svc_placement",
                            service="placement", kind="placement", description="Placement API",
                            url=url)
    # oslo.policy reads policy.json instead of the default policy.yaml while one lies around
    # (JSON policy files are deprecated since Wallaby); oslab ships none and moves one aside.
    no_json_policy = Guarded(
        description=f"no {POLICY_JSON} (policies are in YAML)",
        check=f"test ! -e {POLICY_JSON}",
        run=f"if [ -e {POLICY_JSON} ]; then mv {POLICY_JSON} {POLICY_JSON}.oslab-disabled; fi",
    )
    layer = site.layer
    units = layer.unit("placement")
    server: list[FileSpec]
    reload: list[Guarded] = []
    if layer.debian:
        server = [_debian.uwsgi_ini(_debian.APPS["placement-api"], site.values()),
                  *_debian.start_timeouts(units, site.values())]
        reload = [_debian.reload_for(units)]
    else:
        server = [config("/etc/httpd/conf.d/00-placement-api.conf",
                         "placement/00-placement-api.conf.j2", site.values())]
    install = StepDef(
        name="placement.install",
        where=Where.CONTROLLER,
        title=f"Placement API under {'uwsgi' if layer.debian else 'httpd'} at {url}",
        packages=layer.pkgs("placement"),
        files=(
            config("/etc/placement/placement.conf", "placement/placement.conf.j2",
                   site.values(database=site.db_url("placement", "placement", "db_placement"),
                               password=site.password("svc_placement")),
                   owner="root", group="placement", mode=0o640, secret=True),
            *server,
        ),
        databases=(Database("placement", "placement", "db_placement"),),
        commands=(
            *reload,
            no_json_policy,
            once("placement-db-sync", "populate the Placement database",
                 as_user("placement", "placement-manage db sync")),
        ),
        services=units,
        checkpoint="identity",
    )
    return [register, install]
