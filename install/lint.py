"""`oslab lint`: the config files as they are on the nodes, checked like `render --check` checks
oslab's own (the release's option schema, line by line), and against each other: the things a
person installing by hand gets wrong across files and nodes. Every finding is
``node:/path:LINE: error|warning: message``; no finding shows a secret (a value is named, never
printed, where it could hold one).

The rules across files:
- ``my_ip`` is the management address of the node the file is on;
- the metadata proxy secret is the same wherever it is set (nova.conf, metadata_agent.ini);
- ``transport_url``, ``[database] connection``, ``memcache_servers``/``memcached_servers``,
  ``auth_url`` and ``www_authenticate_uri`` point at the controller, by name or address;
- a database ``connection`` or ``transport_url`` that is set is not empty (an empty one is
  the guide's "Could not parse rfc1738 URL from string ''");
- ``region_name``/``os_region_name`` is the catalog's region, RegionOne (region names are
  case-sensitive).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from oslab.access.ssh import Session, mask
from oslab.access.state import LabState
from oslab.errors import OslabError
from oslab.install.confcheck import check_configs
from oslab.install.confcheck.ini import Entry, parse
from oslab.install.confdiff import MAX_READ
from oslab.install.openrc import REGION
from oslab.spec import LabSpec

SECRET_OPTION = "metadata_proxy_shared_secret"
URL_OPTIONS = ("transport_url", "auth_url", "www_authenticate_uri")
SERVER_LISTS = ("memcache_servers", "memcached_servers")
REGION_OPTIONS = ("region_name", "os_region_name")
DATABASE_SECTIONS = ("database", "api_database", "placement_database")
Files = Mapping[tuple[str, str], str]  # (node, path on it) -> its text
ABSENT = 3  # the exit code of the read below when the file is not there


@dataclass(frozen=True)
class Finding:
    node: str
    path: str
    line: int
    severity: str  # "error" or "warning"
    message: str

    def __str__(self) -> str:
        where = f"{self.node}:{self.path}" + (f":{self.line}" if self.line else "")
        return f"{where}: {self.severity}: {self.message}"


def schema_findings(files: Files, release: str, mask: Callable[[str], str]) -> list[Finding]:
    """The option schema's problems, as `render --check` finds them in oslab's own files."""
    by_name = {f"{node}\0{path}": text for (node, path), text in files.items()}
    _checked, problems = check_configs(by_name, release)
    out = []
    for p in problems:
        node, path = p.file.split("\0", 1)
        out.append(Finding(node, path, p.line, p.severity, mask(p.message)))
    return out


def _host(value: str) -> str:
    """The host a URL or a ``host:port`` names ('' when it names none)."""
    if "://" in value:
        try:
            return (urlsplit(value.split(",")[0]).hostname or "").lower()
        except ValueError:
            return ""
    return value.rsplit(":", 1)[0].strip("[]").lower()


def _entries(files: Files) -> Iterable[tuple[str, str, Entry]]:
    for (node, path), text in files.items():
        for entry in parse(text).entries:
            yield node, path, entry


def consistency(spec: LabSpec, files: Files) -> list[Finding]:
    """The rules across files and nodes (see the module's docstring)."""
    address = {n.name: str(n.address) for n in spec.nodes}
    controller = spec.controller
    ok_hosts = {controller.name.lower(), str(controller.address)}
    out: list[Finding] = []
    secrets: list[tuple[str, str, Entry]] = []
    for node, path, e in _entries(files):
        where = f"[{e.section}] {e.key}"
        if e.key == "my_ip" and e.section == "DEFAULT" and e.value != address.get(node):
            out.append(Finding(node, path, e.line, "error",
                               f"{where} is {e.value!r}, not {node}'s management address "
                               f"{address.get(node)}"))
        elif e.key == SECRET_OPTION:
            secrets.append((node, path, e))
        elif not e.value.strip() and (e.key == "transport_url" or (
                e.key == "connection" and e.section in DATABASE_SECTIONS)):
            out.append(Finding(node, path, e.line, "error",
                               f"{where} is empty: the service has no "
                               f"{'database' if e.key == 'connection' else 'message queue'} "
                               "URL to use"))
        elif e.key in REGION_OPTIONS and e.value != REGION:
            out.append(Finding(node, path, e.line, "error",
                               f"{where} is {e.value!r}, not the catalog's region {REGION} "
                               "(region names are case-sensitive)"))
        elif (e.key in URL_OPTIONS or (e.key == "connection" and e.section in DATABASE_SECTIONS)
              or e.key in SERVER_LISTS):
            hosts = ([_host(v) for v in e.value.split(",")] if e.key in SERVER_LISTS
                     else [_host(e.value)])
            wrong = sorted({h for h in hosts if h and h not in ok_hosts})
            if wrong:
                out.append(Finding(node, path, e.line, "error",
                                   f"{where} points at {', '.join(wrong)}, not the controller "
                                   f"({controller.name}, {controller.address})"))
    if len({e.value for _n, _p, e in secrets}) > 1:
        first = secrets[0]
        for node, path, e in secrets[1:]:
            if e.value != first[2].value:
                out.append(Finding(node, path, e.line, "error",
                                   f"[{e.section}] {SECRET_OPTION} differs from the one in "
                                   f"{first[0]}:{first[1]}:{first[2].line}: nova and the "
                                   "metadata agent must share it"))
    return out


@dataclass(frozen=True)
class Login:
    """A service's credentials in one section of a file (``[keystone_authtoken]``, nova's
    ``[placement]``, ...): what that service will ask Keystone for a token with."""

    node: str
    path: str
    line: int  # of its username
    section: str
    auth_url: str
    username: str
    password: str = field(repr=False)
    project: str = ""
    user_domain: str = "Default"
    project_domain: str = "Default"

    @property
    def request_key(self) -> tuple[str, ...]:
        return (self.auth_url, self.username, self.password, self.project, self.user_domain,
                self.project_domain)

    def request(self) -> dict[str, object]:
        """The token request (its ``url`` and the body Keystone's v3 API takes)."""
        base = self.auth_url.rstrip("/")
        user = {"name": self.username, "password": self.password,
                "domain": {"name": self.user_domain}}
        body: dict[str, object] = {"identity": {"methods": ["password"],
                                                "password": {"user": user}}}
        if self.project:
            body["scope"] = {"project": {"name": self.project,
                                         "domain": {"name": self.project_domain}}}
        return {"url": (base if base.endswith("/v3") else base + "/v3") + "/auth/tokens",
                "auth": body}


def logins(files: Files) -> list[Login]:
    """Every section that holds an ``auth_url``, a ``username`` and a ``password``."""
    found = []
    for (node, path), text in files.items():
        sections: dict[str, dict[str, Entry]] = {}
        for e in parse(text).entries:
            sections.setdefault(e.section, {})[e.key] = e
        for section, opts in sections.items():
            if {"auth_url", "username", "password"} <= set(opts):
                def value(key: str, default: str = "", opts: dict[str, Entry] = opts) -> str:
                    return opts[key].value if key in opts else default
                found.append(Login(node, path, opts["username"].line, section,
                                   value("auth_url"), value("username"), value("password"),
                                   value("project_name"), value("user_domain_name", "Default"),
                                   value("project_domain_name", "Default")))
    return found


# Run on a node with the requests as JSON on stdin (never a password on a command line): one
# line per request, Keystone's HTTP status or "error: why".
LOGIN_SCRIPT = """
import json, sys, urllib.error, urllib.request
for r in json.load(sys.stdin):
    q = urllib.request.Request(r["url"], data=json.dumps({"auth": r["auth"]}).encode(),
                               headers={"Content-Type": "application/json"})
    try:
        print(urllib.request.urlopen(q, timeout=120).status)
    except urllib.error.HTTPError as e:
        print(e.code)
    except Exception as e:
        print("error: " + " ".join(str(e).split())[:200])
    sys.stdout.flush()
"""


def login_problems(tried: Sequence[Login], stdout: str) -> dict[Login, str]:
    """What each login's line of LOGIN_SCRIPT's output says is wrong (ok ones are left out)."""
    lines = stdout.splitlines()
    out = {}
    for i, login in enumerate(tried):
        got = lines[i].strip() if i < len(lines) else "error: no answer"
        if got in ("200", "201"):
            continue
        if got == "401":
            out[login] = "Keystone refuses its username or password (HTTP 401)"
        elif got.isdigit():
            out[login] = f"Keystone answered HTTP {got}"
        else:
            out[login] = f"cannot ask {login.auth_url}: {got.removeprefix('error: ')}"
    return out


Authenticate = Callable[[Sequence[Login]], Mapping[Login, str]]


def login_findings(found: Sequence[Login], problems: Mapping[Login, str]) -> list[Finding]:
    return [Finding(g.node, g.path, g.line, "error",
                    f"[{g.section}] user {g.username!r} cannot log in: {problems[g]}")
            for g in found if g in problems]


def lint(spec: LabSpec, files: Files, mask: Callable[[str], str],
         authenticate: Authenticate | None = None) -> list[Finding]:
    """Every finding, file by file in line order; with ``authenticate``, also each service
    user that cannot log in with the name and password its file gives."""
    found = schema_findings(files, spec.release, mask) + consistency(spec, files)
    if authenticate is not None:
        tried = logins(files)
        found += login_findings(tried, authenticate(tried))
    return sorted(found, key=lambda f: (f.node, f.path, f.line))


def try_logins(spec: LabSpec, state: LabState, tried: Sequence[Login]) -> dict[Login, str]:
    """Ask Keystone for a token with each login, from the node its file is on."""
    import json

    secrets = state.known_passwords()
    out: dict[Login, str] = {}
    for node in dict.fromkeys(g.node for g in tried):
        mine = [g for g in tried if g.node == node]
        unique = list({g.request_key: g for g in mine}.values())  # each user asked once
        with Session(state.spec_target(spec.node(node)), connect_timeout=60.0) as session:
            got = session.run(f"python3 -c {shlex.quote(LOGIN_SCRIPT)}",
                              stdin=json.dumps([g.request() for g in unique]),
                              timeout=600.0, secrets=[*secrets, *(g.password for g in unique)])
        said = {g.request_key: why for g, why in login_problems(unique, got.stdout).items()}
        out.update({g: said[g.request_key] for g in mine if g.request_key in said})
    return out


def read_files(spec: LabSpec, state: LabState, wanted: Mapping[str, Sequence[str]]
               ) -> tuple[dict[tuple[str, str], str], list[tuple[str, str]]]:
    """The text of each wanted file as it is on its node (one SSH session per node), and the
    files that are not there. Never logs what it read: a config file holds passwords."""
    secrets = state.known_passwords()
    files: dict[tuple[str, str], str] = {}
    missing: list[tuple[str, str]] = []
    for name, paths in wanted.items():
        if not paths:
            continue
        with Session(state.spec_target(spec.node(name)), connect_timeout=60.0) as session:
            for path in paths:
                q = shlex.quote(path)
                read = session.run(f"if [ -e {q} ]; then head -c {MAX_READ} {q}; "
                                   f"else exit {ABSENT}; fi", timeout=120.0, secrets=secrets)
                if read.returncode == ABSENT:
                    missing.append((name, path))
                elif not read.ok:
                    raise OslabError(f"{name}: cannot read {path}: "
                                     f"{mask(read.stderr, secrets)[:200]}",
                                     hint="check the node (`oslab ssh NODE`)")
                else:
                    files[(name, path)] = read.stdout
    return files, missing
