"""`oslab lint`: the config files as they are on the nodes, checked like `render --check` checks
oslab's own (the release's option schema, line by line), and against each other: the things a
person installing by hand gets wrong across files and nodes. Every finding is
``node:/path:LINE: error|warning: message``; no finding shows a secret (a value is named, never
printed, where it could hold one).

The rules across files:
- ``my_ip`` is the management address of the node the file is on;
- the metadata proxy secret is the same wherever it is set (nova.conf, metadata_agent.ini);
- ``transport_url``, ``[database] connection``, ``memcache_servers``/``memcached_servers``,
  ``auth_url`` and ``www_authenticate_uri`` point at the controller, by name or address.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from oslab.install.confcheck import check_configs
from oslab.install.confcheck.ini import Entry, parse
from oslab.spec import LabSpec

SECRET_OPTION = "metadata_proxy_shared_secret"
URL_OPTIONS = ("transport_url", "auth_url", "www_authenticate_uri")
SERVER_LISTS = ("memcache_servers", "memcached_servers")
Files = Mapping[tuple[str, str], str]  # (node, path on it) -> its text


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
        elif (e.key in URL_OPTIONS or (e.key == "connection" and e.section == "database")
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


def lint(spec: LabSpec, files: Files, mask: Callable[[str], str]) -> list[Finding]:
    """Every finding, file by file in line order."""
    found = schema_findings(files, spec.release, mask) + consistency(spec, files)
    return sorted(found, key=lambda f: (f.node, f.path, f.line))
