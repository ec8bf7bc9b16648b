"""The services rows asked over the APIs' REST from this host, for `oslab start` and `resume`.

verify's ``compute services``, ``network agents`` and ``volume services`` rows ask the
``openstack`` client on the controller. Under TCG the client takes 45-55 s to load, and the
``upgrade check`` rows after them about 40 s more: most of the wait of a lab that was just
started (e2e: resume 143 s, of which the nodes took 17). Those commands only need one answer
from the cloud: does every service report up? Here Keystone gives a token (its body carries the
catalog), and nova's ``os-services``, neutron's ``agents`` and cinder's ``os-services`` are
asked directly, by the controller's address (the catalog names the host ``controller``, which
only the nodes resolve). Each listing is mapped to the client's JSON shape and goes to verify's
own parsers, so the verdicts, waits and hints are the services rows' own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from oslab.install.openrc import Credentials
from oslab.install.verify.results import Verdict

# (method, url, headers, JSON body or None, timeout) -> (HTTP status or 0, headers, body text)
Http = Callable[[str, str, Mapping[str, str], Any, float],
                tuple[int, Mapping[str, str], str]]

SERVICE_FIELDS = {"binary": "Binary", "host": "Host", "state": "State", "status": "Status"}
AGENT_FIELDS = {"agent_type": "Agent Type", "binary": "Binary", "host": "Host",
                "alive": "Alive", "admin_state_up": "State"}


@dataclass(frozen=True)
class Listing:
    """One row's listing: the catalog type of its API, the path under the endpoint, the key
    of the list in the answer, and the client's names for the fields the parsers read."""

    kind: str
    path: str
    key: str
    fields: Mapping[str, str]


# by the services row's name (``settle.SERVICES_ROWS``)
LISTINGS = {
    "compute services": Listing("compute", "/os-services", "services", SERVICE_FIELDS),
    "network agents": Listing("network", "/v2.0/agents", "agents", AGENT_FIELDS),
    "volume services": Listing("volumev3", "/os-services", "services", SERVICE_FIELDS),
}


def client_json(listing: Listing, answer: Any) -> str:
    """The API's answer as ``openstack ... list -f json`` prints it (the fields the parsers
    read); raises ValueError for an answer without the listing's list."""
    items = answer.get(listing.key) if isinstance(answer, dict) else None
    if not isinstance(items, list):
        raise ValueError(f"no {listing.key!r} list in the answer")
    return json.dumps([{name: item.get(key) for key, name in listing.fields.items()}
                       for item in items if isinstance(item, dict)])


def endpoint(catalog: Sequence[Any], kind: str, address: str) -> str | None:
    """The public endpoint of the ``kind`` API in a token's catalog, its host replaced by
    ``address`` (the port and path kept); None when the catalog has none."""
    for service in catalog:
        if not isinstance(service, dict) or service.get("type") != kind:
            continue
        for point in service.get("endpoints") or ():
            if isinstance(point, dict) and point.get("interface") == "public":
                url = urlsplit(str(point.get("url", "")))
                netloc = address + (f":{url.port}" if url.port else "")
                return urlunsplit((url.scheme, netloc, url.path.rstrip("/"), "", ""))
    return None


def token_request(who: Credentials, password: str) -> dict[str, Any]:
    """Keystone's password authentication, scoped to ``who``'s project."""
    user = {"name": who.user, "domain": {"name": who.user_domain}, "password": password}
    project = {"name": who.project, "domain": {"name": who.project_domain}}
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": user}},
                     "scope": {"project": project}}}


class ServiceApi:
    """The three listings from this host: a token from ``auth_url`` (made again when it
    fails), then each API by the catalog's endpoint with its host replaced by ``address``.
    A listing is the client's JSON text, or a failing Verdict that says what answered."""

    def __init__(self, auth_url: str, address: str, who: Credentials, password: str,
                 http: Http, timeout: float = 60.0) -> None:
        self.auth_url = auth_url.rstrip("/")
        self.address = address
        self.body = token_request(who, password)
        self.http = http
        self.timeout = timeout
        self.token = ""
        self.catalog: Sequence[Any] = ()

    def _login(self) -> Verdict | None:
        url = f"{self.auth_url}/auth/tokens"
        status, headers, text = self.http("POST", url, {}, self.body, self.timeout)
        token = {k.lower(): v for k, v in headers.items()}.get("x-subject-token", "")
        if status != 201 or not token:
            return Verdict(False, f"keystone: {_said(status, url, text)}",
                           "Keystone runs under Apache on the controller: `systemctl status "
                           "apache2 httpd`, /var/log/keystone/")
        try:
            self.catalog = json.loads(text)["token"]["catalog"]
        except (ValueError, KeyError, TypeError):
            return Verdict(False, "keystone: its token has no catalog",
                           "/var/log/keystone/ on the controller")
        self.token = token
        return None

    def listing(self, row: str) -> str | Verdict:
        listing = LISTINGS[row]
        if not self.token and (failed := self._login()) is not None:
            return failed
        base = endpoint(self.catalog, listing.kind, self.address)
        if base is None:
            return Verdict(False, f"{row}: the catalog has no public {listing.kind} endpoint",
                           "`oslab verify --only catalog` shows what is registered")
        url = base + listing.path
        status, _headers, text = self.http("GET", url, {"X-Auth-Token": self.token}, None,
                                           self.timeout)
        if status == 401:
            self.token = ""  # expired, or Keystone was restarted with new fernet keys
        if status != 200:
            return Verdict(False, f"{row}: {_said(status, url, text)}",
                           "the API runs on the controller: `oslab verify --only services` "
                           "shows its service's state")
        try:
            return client_json(listing, json.loads(text))
        except ValueError as exc:
            return Verdict(False, f"{row}: {url} answered what is not its listing ({exc})")


def _said(status: int, url: str, text: str) -> str:
    if status == 0:
        return f"cannot reach {url}: {text}"
    return f"{url} answered HTTP {status}: {' '.join(text.split())[:200]}"
