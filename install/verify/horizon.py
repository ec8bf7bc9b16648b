"""Horizon's pages, read as a person's browser would: the login form (its action, its hidden
fields, among them Django's CSRF token), what a login POST came back with, and the project's
instances page. Pure: each takes a page (status, body, final URL) and gives the form or a
:class:`~.results.Verdict`; :mod:`.cloud` drives the requests through a cookie-keeping
:class:`~.connections.WebSession`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from oslab.install.services.layer import Layer
from oslab.install.verify.results import Verdict

LOGIN_PATH = "auth/login/"
INSTANCES_PATH = "project/instances/"
# what Horizon (openstack_auth) says on its login page when a login fails
LOGIN_ERRORS = (
    "Invalid credentials.",
    "An error occurred authenticating. Please try again later.",
    "Unable to establish connection to keystone endpoint.",
    "Unable to retrieve authorized projects.",
    "You are not authorized for any projects or domains.",
    "CSRF verification failed. Request aborted.",
)


@dataclass(frozen=True)
class Page:
    """One answer, after its redirects: the status, the body, the URL it came from and its
    headers. Status 0: nothing answered (the body says why)."""

    status: int
    body: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class LoginForm:
    action: str
    fields: dict[str, str] = field(default_factory=dict)  # every input, hidden ones included


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[LoginForm] = []
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(LoginForm(a.get("action", "")))
            self._in_form = True
        elif tag in ("input", "select") and self._in_form and a.get("name"):
            self.forms[-1].fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def login_form(page: Page) -> LoginForm | None:
    """The page's login form (the one with a password field), its action made absolute."""
    parser = _Forms()
    parser.feed(page.body)
    for form in parser.forms:
        if "password" in form.fields and "username" in form.fields:
            return LoginForm(urljoin(page.url, form.action or page.url), dict(form.fields))
    return None


def login_fields(form: LoginForm, user: str, password: str, domain: str = "Default"
                 ) -> dict[str, str]:
    """What the browser posts: every field of the form as the page gave it (the CSRF token,
    ``next``, ``region``; the autofill decoys ``fake_email``/``fake_password`` empty), with
    the user, the password and, where the form asks for one, the domain."""
    fields = dict(form.fields)
    fields.update(username=user, password=password)
    if "domain" in fields:
        fields["domain"] = domain
    return fields


def _text(body: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def not_answering(page: Page, layer: Layer) -> Verdict | None:
    """The verdict for a page that is no page (nothing answered, an error status)."""
    if page.status == 0:
        return Verdict(False, f"nothing answers: {page.body}",
                       f"systemctl status {layer.unit('web')[0]} on the controller")
    if page.status >= 400:
        title = re.search(r"<title>(.*?)</title>", page.body, re.S | re.I)
        said = f" ({_text(title.group(1))})" if title else ""
        return Verdict(False, f"HTTP {page.status} from {urlsplit(page.url).path}{said}",
                       f"{layer.path('web-log')} on the controller")
    return None


def parse_login(page: Page, layer: Layer) -> Verdict:
    """What a login POST came back with, after its redirects: a page that is not the login
    page is a session; the login page again says why in its alert."""
    bad = not_answering(page, layer)
    if bad is not None:
        if "CSRF" in page.body:
            return Verdict(False, f"HTTP {page.status}: CSRF verification failed",
                           "the login form's csrfmiddlewaretoken and the csrftoken cookie must "
                           "travel together (CSRF_COOKIE_SECURE on plain HTTP?)")
        return bad
    if login_form(page) is None:
        return Verdict(True, f"logged in ({urlsplit(page.url).path})")
    said = next((m for m in LOGIN_ERRORS if m in html.unescape(page.body)),
                "the login page came back with no message")
    if "Invalid credentials" in said:
        hint = ("the demo user's password: `oslab openrc demo --print`; "
                "/var/log/keystone/keystone.log on the controller")
    else:
        hint = (f"OPENSTACK_KEYSTONE_URL in {layer.path('horizon-settings')}; "
                f"{layer.path('web-log')} on the controller")
    return Verdict(False, f"login refused: {said}", hint)


def parse_instances(page: Page, name: str, layer: Layer) -> Verdict:
    """The project's instances page lists ``name`` (or, with no name, is the instances
    page)."""
    bad = not_answering(page, layer)
    if bad is not None:
        return bad
    if login_form(page) is not None:
        return Verdict(False, "the instances page sent the session back to the login page",
                       "SESSION_ENGINE and CACHES (memcached) in "
                       f"{layer.path('horizon-settings')}")
    if 'id="instances"' not in page.body:
        return Verdict(False, f"{urlsplit(page.url).path} has no instances table",
                       f"{layer.path('web-log')} on the controller")
    if not name:
        return Verdict(True, "the instances page")
    if f'data-display="{html.escape(name)}"' in page.body or \
            f">{html.escape(name, quote=False)}<" in page.body:
        return Verdict(True, f"the instances page lists {name}")
    return Verdict(False, f"the instances page does not list {name}",
                   "the instance is the demo project's: `openstack server list` as demo")
