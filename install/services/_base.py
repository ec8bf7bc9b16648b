"""What every area's content shares: templates, the lab's names and URLs, shell snippets.

Config files are rendered from the jinja2 templates in ``install/templates/`` (package data of
``oslab.install``); each holds only the options oslab sets. Passwords reach a template only
through :meth:`Site.password`; in command text they are ``{password:KEY}`` placeholders that
the engine substitutes and masks.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from oslab.distro import RELEASES
from oslab.install.model import FileSpec, Guarded, InstallContext, StepDef, Where
from oslab.install.openrc import ADMIN, DEMO, KEYSTONE_PORT, REGION, remote_path
from oslab.install.services.layer import Layer, layer_for
from oslab.spec import LabSpec, Node, VirtType

# the controller's openrc files, as `oslab verify` and the user's shell source them
ADMIN_OPENRC = remote_path(ADMIN)
DEMO_OPENRC = remote_path(DEMO)


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("oslab.install", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["py"] = repr  # a Python literal (local_settings is Python)
    return env


def render(template: str, **values: object) -> str:
    """Render ``install/templates/<template>``; a missing value is an error, never empty."""
    return _environment().get_template(template).render(**values)


def config(path: str, template: str, values: Mapping[str, object], *, owner: str = "root",
           group: str = "root", mode: int = 0o644, secret: bool = False) -> FileSpec:
    """A file on the node, rendered from ``template`` with ``values``."""
    return FileSpec(path=path, content=render(template, **values), mode=mode, owner=owner,
                    group=group, secret=secret)


@dataclass(frozen=True)
class Site:
    """The lab as the service content sees it: names, addresses, URLs and passwords."""

    ctx: InstallContext

    @property
    def spec(self) -> LabSpec:
        return self.ctx.spec

    @property
    def layer(self) -> Layer:
        """Package, unit and path names of the lab's distro family."""
        return layer_for(self.spec.distro)

    @property
    def controller(self) -> Node:
        return self.spec.controller

    @property
    def host(self) -> str:
        """The controller's host name: every URL uses it, as the install guide does."""
        return self.controller.name

    @property
    def computes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.spec.nodes if n.is_compute)

    @property
    def rdo_release_package(self) -> str:
        return RELEASES[self.spec.release].rdo_release_package

    def password(self, key: str) -> str:
        return self.ctx.password(key)

    def virt_type(self, node: Node) -> VirtType:
        value = self.ctx.virt_types.get(node.name, "")
        if value not in tuple(VirtType):
            raise ValueError(f"no virt type for compute node {node.name!r} (got {value!r}); "
                             f"the installer decides kvm or qemu on the node before planning")
        return VirtType(value)

    # -- URLs -----------------------------------------------------------------------------

    @property
    def keystone(self) -> str:
        """Keystone's only port since Queens (35357 is gone)."""
        return f"http://{self.host}:{KEYSTONE_PORT}"

    @property
    def keystone_v3(self) -> str:
        return f"{self.keystone}/v3"

    @property
    def memcached_servers(self) -> str:
        return f"{self.host}:11211"

    @property
    def transport_url(self) -> str:
        return f"rabbit://openstack:{self.password('rabbit_openstack')}@{self.host}:5672/"

    def db_url(self, user: str, database: str, password_key: str) -> str:
        return f"mysql+pymysql://{user}:{self.password(password_key)}@{self.host}/{database}"

    def values(self, **extra: object) -> dict[str, object]:
        """What most templates need (the lab, the controller, the common URLs), and ``extra``."""
        return {
            "lab": self.spec.name,
            "host": self.host,
            "controller_address": str(self.controller.address),
            "keystone": self.keystone,
            "keystone_v3": self.keystone_v3,
            "memcached_servers": self.memcached_servers,
            "transport_url": self.transport_url,
            "region": REGION,
            # one worker per service (Debian labs: every Python process costs ~20x under TCG)
            "single_worker": self.layer.debian,
            **extra,
        }


# -- shell snippets (bash; placeholders {password:KEY} are the engine's) ----------------------


def q(word: str) -> str:
    return shlex.quote(word)


def as_user(user: str, command: str) -> str:
    """Run ``command`` as a service user, as the install guide does for db syncs."""
    return f"su -s /bin/sh -c {q(command)} {user}"


def wait_until(check: str, seconds: int, interval: int = 5) -> str:
    """A command that waits (bounded) until ``check`` passes."""
    loop = f"until {check}; do sleep {interval}; done"
    return f"timeout {seconds} bash -c {q(loop)}"


def restart_for(unit: str, path: str) -> Guarded:
    """Restart a running ``unit`` that started before ``path`` last changed: for a config file
    written by an earlier step than the one that runs the unit (a step restarts its services
    only for its own files). An inactive unit is left to its step's services."""
    started = f"systemctl show -p ActiveEnterTimestamp --value {q(unit)}"
    return Guarded(
        description=f"{unit} runs with the current {path}",
        check=f'! systemctl is-active --quiet {q(unit)} || '
              f'[ "$(stat -c %Y {q(path)})" -lt "$(date -d "$({started})" +%s)" ]',
        run=f"systemctl restart {q(unit)}",
    )


def symlink(link: str, target: str, description: str) -> Guarded:
    return Guarded(
        description=description,
        check=f'test "$(readlink {link})" = {target}',
        run=f"ln -sfn {target} {link}",
    )


# -- keystone objects (run on the controller with the admin credentials) ----------------------


def unless(check: str, run: str) -> str:
    """``run`` only while ``check`` fails, also inside the command: the engine runs a guarded
    command without its check when forced (``--from``), and this ``run`` is not idempotent."""
    return f"{check} || {{ {run}; }}"


IDENTITY_TOOL = "/usr/local/bin/oslab-identity"  # install/templates/keystone/oslab-identity.py


def identity_tool() -> FileSpec:
    """The node-side script that checks and makes Keystone objects in one Python process
    (one import of openstacksdk instead of one `openstack` process per object)."""
    return FileSpec(path=IDENTITY_TOOL, content=render("keystone/oslab-identity.py"), mode=0o755)


def identity_objects(description: str, *, projects: tuple[tuple[str, str], ...] = (),
                     roles: tuple[str, ...] = (),
                     users: tuple[tuple[str, str, str, str], ...] = (),
                     services: tuple[tuple[str, str, str, str], ...] = ()) -> Guarded:
    """One guarded command for a set of Keystone objects in the default domain: ``projects``
    as (name, description), ``roles`` by name, ``users`` as (name, password key, project,
    role), ``services`` as (name, type, description, url) with their three endpoints. The check
    names what is missing; the run makes it. Passwords are ``{password:KEY}`` placeholders in the
    run's here-document (the engine runs such a script from stdin), never in the check."""
    def doc(with_passwords: bool) -> str:
        data: dict[str, object] = {
            "projects": [{"name": n, "description": d} for n, d in projects],
            "roles": list(roles),
            "users": [{"name": n, "project": p, "role": r,
                       **({"password": f"{{password:{k}}}"} if with_passwords else {})}
                      for n, k, p, r in users],
            "services": [{"name": n, "type": t, "description": d, "url": u, "region": REGION}
                         for n, t, d, u in services],
        }
        return json.dumps({k: v for k, v in data.items() if v}, sort_keys=True)

    def call(mode: str, with_passwords: bool) -> str:
        return f"python3 {IDENTITY_TOOL} {mode} <<'JSON'\n{doc(with_passwords)}\nJSON"

    return Guarded(description=description, check=call("check", False),
                   run=call("ensure", True), env_file=ADMIN_OPENRC)


def registration(area: str, *, user: str, password_key: str, service: str, kind: str,
                 description: str, url: str, roles: tuple[str, ...] = ("admin",)) -> StepDef:
    """The ``<area>.keystone`` step: service user with ``roles`` on the service project,
    service entity and its three endpoints."""
    extra = tuple(r for r in roles if r != "admin")  # admin is keystone-manage bootstrap's
    return StepDef(
        name=f"{area}.keystone",
        where=Where.CONTROLLER,
        title=f"{area}: keystone user {user}, service {service} and endpoints {url}",
        commands=(identity_objects(
            f"keystone user {user} ({' and '.join(roles)} on service), service {service} "
            f"({kind}) and its public, internal and admin endpoints at {url}",
            roles=extra,
            users=tuple((user, password_key, "service", r) for r in roles),
            services=((service, kind, description, url),)),),
    )
