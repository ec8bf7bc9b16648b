"""Keystone with Fernet tokens on port 5000 only (under httpd on EL, as Debian's own uwsgi
unit on Debian), projects, users and openrc files."""

from __future__ import annotations

from oslab.install import openrc as rc
from oslab.install.markers import once
from oslab.install.model import Database, Guarded, StepDef, Where
from oslab.install.openrc import REGION
from oslab.install.services import _debian
from oslab.install.services._base import (
    ADMIN_OPENRC,
    DEMO_OPENRC,
    Site,
    as_user,
    config,
    identity_objects,
    identity_tool,
    restart_for,
    symlink,
    wait_until,
)

# The admin and demo credentials, as oslab.install.openrc (``oslab openrc``) knows them.
ADMIN = rc.credentials(rc.ADMIN)
DEMO = rc.credentials(rc.DEMO)
DEMO_PROJECT = DEMO.project
DEMO_USER = DEMO.user
KEYSTONE_CONF = "/etc/keystone/keystone.conf"  # written by keystone.install, read by the server
DEMO_ROLE = "member"  # created by keystone-manage bootstrap (admin, member, reader)


def install(site: Site) -> StepDef:
    url = f"{site.keystone_v3}/"
    bootstrap = (
        f"OS_BOOTSTRAP_PASSWORD='{{password:{ADMIN.password_key}}}' keystone-manage bootstrap "
        f"--bootstrap-admin-url {url} --bootstrap-internal-url {url} "
        f"--bootstrap-public-url {url} --bootstrap-region-id {REGION}"
    )
    return StepDef(
        name="keystone.install",
        where=Where.CONTROLLER,
        title="Keystone: database, keystone.conf, db sync, Fernet keys, bootstrap",
        packages=site.layer.pkgs("keystone"),
        files=(
            config(KEYSTONE_CONF, "keystone/keystone.conf.j2",
                   site.values(database=site.db_url("keystone", "keystone", "db_keystone")),
                   owner="root", group="keystone", mode=0o640, secret=True),
        ),
        databases=(Database("keystone", "keystone", "db_keystone"),),
        commands=(
            once("keystone-db-sync", "populate the Identity database",
                 as_user("keystone", "keystone-manage db_sync")),
            Guarded(
                description="Fernet key repository",
                check="test -f /etc/keystone/fernet-keys/0",
                run="keystone-manage fernet_setup --keystone-user keystone "
                    "--keystone-group keystone",
            ),
            Guarded(
                description="credential key repository",
                check="test -f /etc/keystone/credential-keys/0",
                run="keystone-manage credential_setup --keystone-user keystone "
                    "--keystone-group keystone",
            ),
            once("keystone-bootstrap", f"bootstrap the Identity service at {url}", bootstrap),
        ),
    )


def openrc(site: Site) -> StepDef:
    """The guide's admin-openrc and demo-openrc in /root, rendered by oslab.install.openrc
    (one definition for the installer and ``oslab openrc``), with the guide's auth URL."""
    files = rc.file_specs(site.spec, site.password, directory="/root", url=site.keystone_v3)
    if {f.path for f in files} != {ADMIN_OPENRC, DEMO_OPENRC}:
        raise RuntimeError(f"openrc files moved: {[f.path for f in files]}")
    return StepDef(
        name="keystone.openrc",
        where=Where.CONTROLLER,
        title=f"client environment scripts {ADMIN_OPENRC} and {DEMO_OPENRC}",
        files=files,
    )


def httpd(site: Site) -> StepDef:
    return StepDef(
        name="keystone.httpd",
        where=Where.CONTROLLER,
        title=f"httpd: ServerName {site.host}, wsgi-keystone.conf (Keystone on port 5000)",
        files=(config("/etc/httpd/conf.d/oslab-servername.conf", "keystone/servername.conf.j2",
                      site.values()),),
        commands=(symlink("/etc/httpd/conf.d/wsgi-keystone.conf",
                          "/usr/share/keystone/wsgi-keystone.conf",
                          "httpd serves Keystone (wsgi-keystone.conf)"),
                  restart_for("httpd", KEYSTONE_CONF)),
        services=("httpd",),
    )


def uwsgi(site: Site) -> StepDef:
    """Debian: keystone's own unit runs uwsgi on port 5000; oslab writes its ini (one
    process) and a start timeout for TCG."""
    app = _debian.APPS["keystone"]
    units = site.layer.unit("keystone")
    return StepDef(
        name="keystone.uwsgi",
        where=Where.CONTROLLER,
        title="keystone under uwsgi on port 5000 (one process)",
        files=(_debian.uwsgi_ini(app, site.values()),
               *_debian.start_timeouts(units, site.values())),
        commands=(_debian.reload_for(units),
                  *(restart_for(unit, KEYSTONE_CONF) for unit in units)),
        services=units,
    )


def projects(site: Site) -> StepDef:
    # Keystone's /v3 answers (python3's urllib: no 16-24 s `openstack` start under emulation)
    token = ("python3 -c 'import sys, urllib.request; "
             f"urllib.request.urlopen(sys.argv[1], timeout=10)' {site.keystone_v3}")

    def os_cmd(description: str, check: str, run: str) -> Guarded:
        return Guarded(description=description, check=check, run=run, env_file=ADMIN_OPENRC)

    commands = [
        os_cmd("Keystone answers on port 5000", token, wait_until(token, 300, 3)),
        identity_objects(
            f"projects service and {DEMO_PROJECT}, role {DEMO_ROLE}, user {DEMO_USER} with "
            f"role {DEMO_ROLE} on {DEMO_PROJECT}",
            projects=(("service", "Service Project"), (DEMO_PROJECT, "Demo Project")),
            roles=(DEMO_ROLE,),
            users=((DEMO_USER, DEMO.password_key, DEMO_PROJECT, DEMO_ROLE),)),
    ]
    return StepDef(
        name="keystone.projects",
        where=Where.CONTROLLER,
        files=(identity_tool(),),
        title=f"projects service and {DEMO_PROJECT}, user {DEMO_USER} with role {DEMO_ROLE}",
        commands=tuple(commands),
    )


def steps(site: Site) -> list[StepDef]:
    server = uwsgi(site) if site.layer.debian else httpd(site)
    return [install(site), openrc(site), server, projects(site)]
