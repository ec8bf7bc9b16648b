"""The lab's openrc files: admin and demo credentials for the ``openstack`` client.

One file per user, rendered from ``templates/verify/openrc.j2``: kept in the lab's state dir
(mode 0600, for use from the host) and in ``/root`` on the controller (mode 0600; the
installer's guarded commands and ``oslab verify`` source them there). On the controller the
installer's keystone step owns the files (:func:`file_specs` gives them as installer files);
:func:`write_all` only adds one that is missing, so a rerun of the installer changes nothing.
The passwords are the lab's generated ones (``LabState.password(ADMIN_PASSWORD_KEY)`` and
``DEMO_PASSWORD_KEY``), the keys the installer's keystone bootstrap and demo user use.

``oslab openrc [admin|demo] [--print]`` is :func:`openrc_command`: the path of the file, or its
contents (the only way oslab shows a password).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from oslab.access.ssh import NodeConn
from oslab.access.state import LabState
from oslab.errors import OslabError
from oslab.files import write_private
from oslab.install.model import FileSpec
from oslab.spec import LabSpec

ADMIN = "admin"
DEMO = "demo"
# LabState.password keys, shared with the installer's keystone steps (bootstrap, demo user).
ADMIN_PASSWORD_KEY = "keystone_admin"
DEMO_PASSWORD_KEY = "keystone_demo"
REGION = "RegionOne"
KEYSTONE_PORT = 5000
REMOTE_DIR = "/root"
PUT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Credentials:
    """Who an openrc file logs in as (the install guide's admin and demo)."""

    who: str
    user: str
    project: str
    password_key: str
    user_domain: str = "Default"
    project_domain: str = "Default"

    @property
    def filename(self) -> str:
        return f"{self.who}-openrc"


USERS: dict[str, Credentials] = {
    ADMIN: Credentials(ADMIN, "admin", "admin", ADMIN_PASSWORD_KEY),
    DEMO: Credentials(DEMO, "demo", "demo", DEMO_PASSWORD_KEY),
}


def credentials(who: str) -> Credentials:
    try:
        return USERS[who]
    except KeyError:
        raise OslabError(f"no openrc for {who!r}",
                         hint="choose one of: " + ", ".join(sorted(USERS))) from None


def auth_url(spec: LabSpec) -> str:
    """Keystone's public endpoint by the controller's address: it works on the nodes and on
    the host alike (the name ``controller`` resolves only on the nodes)."""
    return f"http://{spec.controller.address}:{KEYSTONE_PORT}/v3"


_ENV = jinja2.Environment(loader=jinja2.PackageLoader("oslab.install", "templates/verify"),
                          undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                          autoescape=False)
_ENV.filters["shquote"] = shlex.quote


def render(who: str, password: str, url: str, *, lab: str = "", region: str = REGION) -> str:
    """The text of ``who``'s openrc file: ``export OS_...`` lines, every value shell-quoted."""
    c = credentials(who)
    return _ENV.get_template("openrc.j2").render(
        who=c.who, lab=lab, filename=c.filename, user=c.user, project=c.project,
        user_domain=c.user_domain, project_domain=c.project_domain, password=password,
        auth_url=url, region=region)


def render_for_lab(spec: LabSpec, password: Callable[[str], str], who: str,
                   url: str | None = None) -> str:
    return render(who, password(credentials(who).password_key), url or auth_url(spec),
                  lab=spec.name)


def local_path(state: LabState, who: str) -> Path:
    return state.dir / credentials(who).filename


def remote_path(who: str, directory: str = REMOTE_DIR) -> str:
    return f"{directory}/{credentials(who).filename}"


def write_local(spec: LabSpec, state: LabState, who: str, url: str | None = None) -> Path:
    """Write ``who``'s openrc into the lab's state dir (0600, atomically); return its path."""
    state.ensure()
    path = local_path(state, who)
    write_private(path, render_for_lab(spec, state.password, who, url))
    return path


def write_all(spec: LabSpec, state: LabState, node: NodeConn | None = None,
              directory: str = REMOTE_DIR, overwrite: bool = False,
              url: str | None = None) -> list[str]:
    """Write the admin and demo openrc files locally and, given ``node`` (the controller),
    to ``directory`` there when missing (or always, with ``overwrite``). ``url`` overrides
    the auth URL. Returns what was written."""
    written: list[str] = []
    for who in USERS:
        written.append(str(write_local(spec, state, who, url)))
        if node is None:
            continue
        path = remote_path(who, directory)
        if not overwrite and node.run(f"test -f {shlex.quote(path)}", timeout=PUT_TIMEOUT).ok:
            continue
        node.put(path, render_for_lab(spec, state.password, who, url).encode(),
                 timeout=PUT_TIMEOUT)
        written.append(f"{spec.controller.name}:{path}")
    return written


def file_specs(spec: LabSpec, password: Callable[[str], str], directory: str = REMOTE_DIR,
               url: str | None = None) -> tuple[FileSpec, ...]:
    """The openrc files as installer files (for the keystone step on the controller);
    ``url`` overrides the auth URL (e.g. ``http://controller:5000/v3``)."""
    return tuple(FileSpec(path=remote_path(who, directory),
                          content=render(who, password(credentials(who).password_key),
                                         url or auth_url(spec), lab=spec.name),
                          mode=0o600, secret=True)
                 for who in USERS)


def require_password(spec: LabSpec, state: LabState, key: str, what: str) -> None:
    """An error naming ``what`` is missing unless this host holds the lab's password ``key``
    (made by its install): nothing can log in to a lab that was not built here."""
    if not state.owned or state.stored_password(key) is None:
        raise OslabError(f"lab {spec.name} has no {what} on this host: its install has not run "
                         f"(state directory {state.dir})",
                         hint="`oslab up` builds the lab and makes the passwords; check -f, "
                              "--lab and XDG_STATE_HOME if it was built")


def openrc_command(spec: LabSpec, state: LabState, who: str = ADMIN,
                   show: bool = False) -> str:
    """What ``oslab openrc WHO [--print]`` prints: the file's path, or with ``show`` its
    contents (password included). The file is (re)written first, so it is never stale.
    A lab whose install never made the password gets an error, and nothing is made."""
    require_password(spec, state, credentials(who).password_key, f"{who} password")
    path = write_local(spec, state, who)
    if show:
        return path.read_text()
    return str(path)
